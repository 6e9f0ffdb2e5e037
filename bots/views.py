"""Official-account webhook (filled by the official-account chat issue)."""

from fastapi import APIRouter

router = APIRouter(prefix="/wechat", tags=["official account"])
