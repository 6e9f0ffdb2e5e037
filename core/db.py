"""Database wiring: one tortoise app for every domain model, the same migrations on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tortoise import Tortoise, connections
from tortoise.backends.base.executor import EXECUTOR_CACHE
from tortoise.migrations.api.migrate import migrate as tortoise_migrate

from core.settings import Settings

APP_LABEL = "tongguan"
MODEL_MODULES = [
    "core.regions.models",
    "core.catalog.models",
    "core.org.models",
    "core.components.models",
    "core.calendar.models",
    "core.accounts.models",
    "core.audit.models",
    "core.reports.models",
    "core.cases.models",
    "core.outbox.models",
    "core.media.models",
    "core.notices.models",
    "core.permits.models",
    "core.places.models",
    "core.chat.models",
    "core.patrols.models",
    "core.sync.models",
    "core.muck.models",
    "core.enforcement.models",
]
MIGRATIONS_MODULE = "core.migrations"

# Process caches of data read from the database (limits, classifier...) register here to be dropped whenever
# the process opens a database, which may not be the one they were read from.
_cache_resets: list[Callable[[], None]] = []


def on_open(reset: Callable[[], None]) -> Callable[[], None]:
    """Register a cache reset to run whenever a database is opened."""
    _cache_resets.append(reset)
    return reset


def tortoise_config(database_url: str) -> dict[str, Any]:
    """The tortoise configuration for one database URL."""
    return {
        "connections": {"default": database_url},
        "apps": {
            APP_LABEL: {
                "models": MODEL_MODULES,
                "default_connection": "default",
                "migrations": MIGRATIONS_MODULE,
            }
        },
        "use_tz": True,
        "timezone": "Asia/Shanghai",
    }


def is_sqlite(database_url: str) -> bool:
    return database_url.startswith("sqlite")


def _prepare_sqlite_folder(database_url: str) -> None:
    if is_sqlite(database_url) and ":memory:" not in database_url:
        path = database_url.split("://", 1)[1].split("?", 1)[0]
        Path(path).parent.mkdir(parents=True, exist_ok=True)


async def init_db(settings: Settings, *, url: str | None = None) -> None:
    """Open the ORM's connections (the schema must already be migrated)."""
    database_url = url or settings.effective_database_url
    _prepare_sqlite_folder(database_url)
    # tortoise caches each model's SQL by connection name; a process that opens another database under the same
    # name (the tests open SQLite and PostgreSQL in turn) must not reuse SQL written for the other dialect.
    EXECUTOR_CACHE.clear()
    for reset in _cache_resets:
        reset()
    await Tortoise.init(config=tortoise_config(database_url), _enable_global_fallback=True)
    if is_sqlite(database_url):
        # WAL lets the API read while an import or a job writes; foreign keys are off by default in SQLite.
        conn = connections.get("default")
        await conn.execute_script("PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;")


async def close_db() -> None:
    await Tortoise.close_connections()


@asynccontextmanager
async def db_context(settings: Settings, *, url: str | None = None) -> AsyncIterator[None]:
    """Open the database for a command or a job, and close it afterwards."""
    await init_db(settings, url=url)
    try:
        yield
    finally:
        await close_db()


async def migrate(settings: Settings, *, url: str | None = None, progress: Any = None) -> None:
    """Apply every pending migration."""
    database_url = url or settings.effective_database_url
    _prepare_sqlite_folder(database_url)
    await tortoise_migrate(config=tortoise_config(database_url), progress=progress)
    await Tortoise.close_connections()
