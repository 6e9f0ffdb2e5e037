"""The staff API on the small city, for the console's tests."""

import pytest

from core.settings import Settings
from tests.asgi import serving
from tongguan.app import create_app


@pytest.fixture
async def api(city, tmp_path):
    app = create_app(Settings(database_url=city, var_dir=tmp_path, _env_file=None))
    async with serving(app) as c:
        yield c
