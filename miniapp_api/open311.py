"""Open311 GeoReport v2 at /open311/v2 (being built)."""

from fastapi import APIRouter

router = APIRouter(prefix="/open311/v2", tags=["open311"])
