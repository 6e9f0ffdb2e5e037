"""The API shell: health, problem+json errors, body limit, request ids. Runs on both databases."""

import io
import json
import logging

import pytest
from fastapi import APIRouter

from core.errors import ValidationFailed
from core.logs import JsonFormatter
from core.settings import Settings
from tests.asgi import serving
from tongguan.app import create_app


def make_app(url: str, **overrides):
    settings = Settings(database_url=url, log_json=True, _env_file=None, **overrides)
    return create_app(settings)


@pytest.fixture
async def api(db):
    app = make_app(db, max_body_bytes=1000)
    probe = APIRouter()

    @probe.post("/probe/echo")
    async def echo(payload: dict) -> dict:
        return payload

    @probe.get("/probe/refuse")
    async def refuse() -> dict:
        raise ValidationFailed("weak_password", "password must have at least 8 characters")

    @probe.get("/probe/crash")
    async def crash() -> dict:
        raise RuntimeError("boom: internal detail")

    app.include_router(probe)
    async with serving(app) as client:
        yield client


async def test_healthz_reports_the_database_in_embedded_mode(api):
    response = await api.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["database"] == "ok"
    assert body["redis"].startswith("not configured")


async def test_healthz_checks_redis_when_configured(db, redis_url):
    app = make_app(db, redis_url=redis_url)
    async with serving(app) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["redis"] == "ok"


async def test_healthz_is_503_when_redis_is_unreachable(db):
    app = make_app(db, redis_url="redis://127.0.0.1:1/0")
    async with serving(app) as client:
        response = await client.get("/healthz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "unavailable"


async def test_our_errors_become_problem_json_with_a_stable_code_and_chinese_title(api):
    response = await api.get("/probe/refuse")
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "weak_password"
    assert "密码" in body["title"]
    assert body["request_id"] == response.headers["x-request-id"]


async def test_malformed_json_is_a_clear_invalid_request(api):
    response = await api.post("/probe/echo", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"


async def test_bodies_over_the_limit_are_refused_with_413(api):
    response = await api.post("/probe/echo", json={"text": "x" * 2000})
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"


async def test_streamed_bodies_over_the_limit_are_refused_without_a_length_header(api):
    async def chunks():
        for _ in range(10):
            yield b"x" * 500

    response = await api.post("/probe/echo", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


async def test_unknown_paths_are_problem_json_404(api):
    response = await api.get("/no/such/thing")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


async def test_crashes_hide_their_internals_and_keep_the_request_id(api):
    response = await api.get("/probe/crash", headers={"x-request-id": "abc-123"})
    assert response.status_code == 500
    body = response.json()
    assert body["code"] == "internal_error"
    assert "boom" not in response.text
    assert body["request_id"] == "abc-123"


async def test_access_log_is_json_with_the_request_id(api):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    access = logging.getLogger("tongguan.access")
    access.addHandler(handler)
    try:
        await api.get("/healthz", headers={"x-request-id": "req-42"})
    finally:
        access.removeHandler(handler)
    entry = json.loads(stream.getvalue().splitlines()[-1])
    assert entry["request_id"] == "req-42"
    assert entry["status"] == 200 and entry["path"] == "/healthz"


async def test_openapi_docs_are_served(api):
    response = await api.get("/openapi.json")
    assert response.status_code == 200
    assert "/healthz" in response.json()["paths"]
