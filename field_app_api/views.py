"""Field app API for inspectors, crews and officers (filled by the field-app issue)."""

from fastapi import APIRouter

router = APIRouter(prefix="/field/v1", tags=["field app"])
