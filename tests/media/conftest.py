"""Shared fixtures of the media tests: the HOG detector, an app on a test DB (the photos: tests/face_photos.py)."""

from __future__ import annotations

import pytest

from core.settings import Settings
from media.faces import FaceDetectorUnavailable, HogFaceDetector
from tests.asgi import serving
from tests.conftest import unavailable
from tongguan.app import create_app


@pytest.fixture(scope="session")
def hog() -> HogFaceDetector:
    try:
        return HogFaceDetector()
    except FaceDetectorUnavailable as exc:
        unavailable("face_recognition (installed by scripts/install.sh)", exc.detail)
        raise


@pytest.fixture
async def app_settings(db, tmp_path):
    return Settings(database_url=db, var_dir=tmp_path, _env_file=None)


@pytest.fixture
async def api(app_settings):
    app = create_app(app_settings)
    async with serving(app) as c:
        yield c
