"""The mini-program API (/miniapp/v1) and Open311 GeoReport v2 (/open311/v2), one router for the app."""

from fastapi import APIRouter, Depends

from miniapp_api import citizen, open311, places
from miniapp_api.deps import limit_by_address

router = APIRouter()
router.include_router(citizen.router)
# Public routes count against the client address as well (the citizen routes add their own per-user limit).
router.include_router(places.router, dependencies=[Depends(limit_by_address)])
router.include_router(open311.router, dependencies=[Depends(limit_by_address)])
