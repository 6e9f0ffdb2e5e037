"""The migrations describe the models exactly, and apply the same way on SQLite and PostgreSQL."""

import subprocess
import sys

from tortoise import Tortoise, connections

from core import db as core_db
from core.settings import Settings

PENDING_CHANGES = """
import asyncio
from tortoise.cli.cli import tortoise_cli_context
from tortoise.migrations.autodetector import MigrationAutodetector
from core.db import tortoise_config

async def main():
    config = tortoise_config("sqlite://:memory:")
    async with tortoise_cli_context(config) as ctx:
        writers = await MigrationAutodetector(ctx.apps, config["apps"]).changes()
    print(len(writers))

asyncio.run(main())
"""


def test_models_have_no_changes_missing_from_the_migrations():
    result = subprocess.run([sys.executable, "-c", PENDING_CHANGES], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "0", "run `tortoise makemigrations` and commit the result"


async def test_every_model_has_its_table_after_migrating(db):
    conn = connections.get("default")
    for model in Tortoise.apps[core_db.APP_LABEL].values():
        await conn.execute_query(f"SELECT COUNT(*) FROM {model._meta.db_table}")


async def test_migrating_an_up_to_date_database_changes_nothing(db):
    await Tortoise.close_connections()
    await core_db.migrate(Settings(_env_file=None), url=db)
    await core_db.init_db(Settings(_env_file=None), url=db)
    conn = connections.get("default")
    _, rows = await conn.execute_query("SELECT COUNT(*) AS n FROM district")
    assert rows[0]["n"] == 0
