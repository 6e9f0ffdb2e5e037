"""Fast bulk writes: COPY on PostgreSQL, executemany on SQLite, inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient


def dialect(conn: BaseDBAsyncClient) -> str:
    return conn.capabilities.dialect


async def insert_rows(conn: BaseDBAsyncClient, table: str, columns: Sequence[str], rows: list[Any]) -> None:
    """Insert many rows into `table`; the caller owns the transaction."""
    if not rows:
        return
    if dialect(conn) == "postgres":
        async with conn.acquire_connection() as raw:
            # COPY is ~10x faster than INSERT for millions of rows and streams without building SQL text.
            await raw.copy_records_to_table(table, records=rows, columns=list(columns))
        return
    placeholders = ", ".join("?" for _ in columns)
    await conn.execute_many(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})", rows)
