"""Field app API for inspectors, crews and officers (the field-app issue fills the rest)."""

from fastapi import APIRouter

from field_app_api.deps import media_owner
from media.views import add_upload_routes

router = APIRouter(prefix="/field/v1", tags=["field app"])
# Evidence, before/after and check-in photos: whole, or resumable chunks on weak mobile networks.
add_upload_routes(router, media_owner)
