"""The mini-program API (/miniapp/v1) and Open311 GeoReport v2 (/open311/v2), one router for the app."""

from fastapi import APIRouter

from miniapp_api import open311, places

router = APIRouter()
router.include_router(places.router)
router.include_router(open311.router)
