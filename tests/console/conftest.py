"""The staff API on the small city, for the console's tests."""

import httpx
import pytest

from core.settings import Settings
from tongguan.app import create_app


@pytest.fixture
async def api(city, tmp_path):
    app = create_app(Settings(database_url=city, var_dir=tmp_path, _env_file=None))
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c
