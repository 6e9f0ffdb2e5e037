"""Test worlds on real databases: every database test runs on SQLite and on PostgreSQL.

Each backend gets two template databases per session (migrated-empty and seeded with the small city);
each test gets a fresh copy (a file copy on SQLite, CREATE DATABASE … TEMPLATE on PostgreSQL), so tests
never see each other's rows and seeding runs once per session.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from tortoise import Tortoise

from core import db as core_db
from core.geo.service import forget_spatial_index
from core.settings import Settings, get_settings, reset_settings

# face_recognition's test photos (`test_images`), for the media and enforcement tests.
pytest_plugins = ["tests.face_photos"]

PG_ADMIN_DSN = os.environ.get("TG_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_TEST_URL = os.environ.get("TG_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() == "true"
RUN_ID = uuid.uuid4().hex[:8]


def unavailable(what: str, why: object) -> None:
    """Missing PostgreSQL or Redis fails the run in CI and skips the test on a laptop."""
    message = f"{what} is not reachable ({why}); start it, or run scripts/test.sh (the README's test command)"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@dataclass
class Backend:
    name: str
    tmp: Path

    def url(self, dbname: str) -> str:
        if self.name == "sqlite":
            return f"sqlite://{self.tmp / (dbname + '.sqlite3')}"
        return f"postgres://postgres@127.0.0.1:5432/{dbname}"

    async def create_from(self, template: str | None, dbname: str) -> str:
        if self.name == "sqlite":
            if template:
                shutil.copyfile(self.tmp / f"{template}.sqlite3", self.tmp / f"{dbname}.sqlite3")
            return self.url(dbname)
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            suffix = f' TEMPLATE "{template}"' if template else ""
            await conn.execute(f'CREATE DATABASE "{dbname}"{suffix}')
        finally:
            await conn.close()
        return self.url(dbname)

    async def drop(self, dbname: str) -> None:
        if self.name == "sqlite":
            for f in self.tmp.glob(f"{dbname}.sqlite3*"):
                f.unlink()
            return
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        finally:
            await conn.close()


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
async def backend(request, tmp_path_factory) -> AsyncIterator[Backend]:
    if request.param == "postgres":
        try:
            conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
            await conn.close()
        except (OSError, asyncpg.PostgresError) as exc:
            unavailable("PostgreSQL", exc)
    yield Backend(request.param, tmp_path_factory.mktemp(request.param))


async def _template(backend: Backend, name: str, *, seeded: bool) -> AsyncIterator[str]:
    dbname = f"tg_{RUN_ID}_{name}"
    url = await backend.create_from(None, dbname)
    try:
        await core_db.migrate(Settings(), url=url)
        if seeded:
            from core.seed import seed_city

            await core_db.init_db(Settings(), url=url)
            await seed_city(scale="small", seed=7)
            await core_db.close_db()
        forget_spatial_index()
        yield dbname
    finally:
        await Tortoise.close_connections()
        await backend.drop(dbname)


@pytest.fixture(scope="session")
async def empty_template(backend: Backend) -> AsyncIterator[str]:
    async for name in _template(backend, "empty", seeded=False):
        yield name


@pytest.fixture(scope="session")
async def seeded_template(backend: Backend) -> AsyncIterator[str]:
    async for name in _template(backend, "seeded", seeded=True):
        yield name


async def _fresh(backend: Backend, template: str) -> AsyncIterator[str]:
    dbname = f"tg_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    url = await backend.create_from(template, dbname)
    forget_spatial_index()
    try:
        await core_db.init_db(get_settings(), url=url)
        yield url
    finally:
        await Tortoise.close_connections()
        forget_spatial_index()
        await backend.drop(dbname)


@pytest.fixture
async def db(backend: Backend, empty_template: str) -> AsyncIterator[str]:
    """A migrated, empty database; yields its URL."""
    async for url in _fresh(backend, empty_template):
        yield url


@pytest.fixture
async def city(backend: Backend, seeded_template: str) -> AsyncIterator[str]:
    """A database holding the small synthetic city (seed 7); yields its URL."""
    async for url in _fresh(backend, seeded_template):
        yield url


@pytest.fixture
def redis_url() -> str:
    import redis

    client = redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=2)
    try:
        client.flushdb()
    except redis.RedisError as exc:
        unavailable("Redis", exc)
    finally:
        client.close()
    return REDIS_TEST_URL


@pytest.fixture(autouse=True)
def _forget_chosen_settings():
    """create_app makes its settings the process's; the next test starts from the environment again."""
    yield
    reset_settings()
