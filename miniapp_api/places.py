"""Public services for citizens: toilets, parks and road works nearby, shop pages, the open-cases map feed."""

from fastapi import APIRouter

router = APIRouter(prefix="/miniapp/v1", tags=["mini-program: public"])
