"""Field app API for inspectors, crews and officers: one router made of the package's parts."""

from fastapi import APIRouter

from field_app_api import crews, enforcement, inspectors, muck, patrols, sync, tracks
from field_app_api.deps import media_owner
from media.views import add_upload_routes

router = APIRouter(prefix="/field/v1", tags=["field app"])
# Evidence, before/after and check-in photos: whole, or resumable chunks on weak mobile networks.
add_upload_routes(router, media_owner)
router.include_router(inspectors.router)
router.include_router(crews.router)
router.include_router(patrols.router)
router.include_router(sync.router)
router.include_router(tracks.router)
router.include_router(muck.router)
router.include_router(enforcement.router)
