"""Remove what an interrupted bench could not (e.g. after SIGKILL): `tg_bench_*` databases and temp dirs.

Only for when no bench is running: it drops every `tg_bench_*` database and deletes every tg_bench_* temporary
directory. The benches clean up after themselves on success, on errors, on Ctrl-C and on SIGTERM.

    bash bench/run.sh clean
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

from bench._common import PG_ADMIN_DSN, console, pg_drop


async def _bench_databases() -> list[str]:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        rows = await conn.fetch(r"SELECT datname FROM pg_database WHERE datname LIKE 'tg\_bench\_%'")
        return [r["datname"] for r in rows]
    finally:
        await conn.close()


def main() -> None:
    try:
        names = asyncio.run(_bench_databases())
    except Exception as exc:  # PostgreSQL absent: nothing to drop there
        console.print(f"PostgreSQL not reachable ({exc}); no databases dropped")
        names = []
    for name in names:
        pg_drop(name)
        console.print(f"dropped database {name}")
    for d in Path(tempfile.gettempdir()).glob("tg_bench_*"):
        if d.is_dir():
            shutil.rmtree(d, ignore_errors=True)
            console.print(f"removed {d}")
    if not names:
        console.print("no tg_bench_* databases left")


if __name__ == "__main__":
    main()
