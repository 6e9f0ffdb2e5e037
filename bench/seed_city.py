"""`tongguan seed --scale city`: wall time and peak memory, on SQLite and on PostgreSQL.

Each backend gets a fresh place (a temporary TG_VAR_DIR for SQLite, a `tg_bench_seed_*` database for PostgreSQL,
dropped afterwards); `tongguan migrate` then `tongguan seed --scale city` run as child processes, and their peak
RSS is the kernel's ru_maxrss of that very child (wait4).

    .venv/bin/python -m bench.seed_city [--backend sqlite|postgres|both] [--components N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sqlite3
from pathlib import Path

from bench._common import (
    TONGGUAN,
    child_env,
    console,
    fmt_int,
    fmt_mib,
    fmt_s,
    main_guard,
    pg_database,
    pg_server_version,
    print_table,
    record,
    run_measured,
    temp_dir,
)

BENCH = "seed_city"
GRIDS = 51_495
TIMEOUT_S = 30 * 60


def _counts_sqlite(path: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("unit_grid", "component")}


async def _counts_pg(url: str) -> tuple[dict[str, int], int]:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        counts = {t: await conn.fetchval(f"SELECT COUNT(*) FROM {t}") for t in ("unit_grid", "component")}
        size = await conn.fetchval("SELECT pg_database_size(current_database())")
        return counts, int(size)
    finally:
        await conn.close()


def run_case(backend: str, components: int) -> dict[str, float | int]:
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(temp_dir("seed"))
        url = ""
        if backend == "postgres":
            _, url = stack.enter_context(pg_database("seed"))
        env = child_env(var_dir=tmp / "var", database_url=url)
        log = tmp / "seed.log"
        console.print(f"[bold]{backend}[/bold]: tongguan migrate …")
        mig = run_measured([TONGGUAN, "migrate"], env=env, cwd=tmp, log=log, timeout_s=300, what="migrate")
        console.print(f"[bold]{backend}[/bold]: tongguan seed --scale city --components {components:,} …")
        cmd = [TONGGUAN, "seed", "--scale", "city", "--components", str(components)]
        seed = run_measured(cmd, env=env, cwd=tmp, log=log, timeout_s=TIMEOUT_S, what="seed")
        if backend == "sqlite":
            db_file = tmp / "var" / "tongguan.sqlite3"
            counts = _counts_sqlite(db_file)
            size = sum(f.stat().st_size for f in db_file.parent.glob("tongguan.sqlite3*"))
        else:
            counts, size = asyncio.run(_counts_pg(url))
        if counts != {"unit_grid": GRIDS, "component": components}:
            console.print(f"[red]unexpected row counts[/red] {counts}")
        return {
            "migrate_wall_s": round(mig.wall_s, 3),
            "seed_wall_s": round(seed.wall_s, 3),
            "seed_peak_rss_mib": round(seed.peak_rss_mib, 1),
            "seed_cpu_s": round(seed.user_s + seed.sys_s, 2),
            "unit_grids": counts["unit_grid"],
            "components": counts["component"],
            "database_mib": round(size / 2**20, 1),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--components", type=int, default=100_000)
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    rows: list[tuple[str, str, str, bool | None]] = []
    for backend in backends:
        if backend == "postgres" and (version := pg_server_version()) is None:
            console.print("[yellow]PostgreSQL is not answering on 127.0.0.1:5432: postgres case skipped[/yellow]")
            continue
        figures = run_case(backend, args.components)
        notes = {"postgres": version} if backend == "postgres" else {}
        record(BENCH, backend, figures, {"components": args.components, **notes})
        rows += [
            (f"{backend}: migrate wall", fmt_s(figures["migrate_wall_s"]), "", None),
            (f"{backend}: seed wall", fmt_s(figures["seed_wall_s"]), "", None),
            (f"{backend}: seed peak RSS", fmt_mib(figures["seed_peak_rss_mib"]), "", None),
            (f"{backend}: seed CPU (user+sys)", fmt_s(figures["seed_cpu_s"]), "", None),
            (
                f"{backend}: rows written",
                f"{fmt_int(figures['unit_grids'])} grids, {fmt_int(figures['components'])} comp.",
                "",
                None,
            ),
            (f"{backend}: database size", fmt_mib(figures["database_mib"]), "", None),
        ]
    print_table(f"seed --scale city --components {args.components:,}", rows)


if __name__ == "__main__":
    main_guard(BENCH, main)
