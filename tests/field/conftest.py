"""The field app on the small city: an app on a fresh database, and signed-in staff."""

import httpx
import pytest

from core.seed import DEMO_PASSWORD
from core.settings import Settings
from tests.asgi import serving
from tongguan.app import create_app


@pytest.fixture
async def api(city, tmp_path):
    app = create_app(Settings(database_url=city, var_dir=tmp_path, _env_file=None))
    async with serving(app) as c:
        yield c


async def bearer(api: httpx.AsyncClient, username: str) -> dict[str, str]:
    """Sign a seeded staff member in (inspector-<grid>, handler-<department>, dispatcher, chief)."""
    response = await api.post("/auth/token", data={"username": username, "password": DEMO_PASSWORD})
    assert response.status_code == 200, response.text
    return {"authorization": f"Bearer {response.json()['access_token']}"}
