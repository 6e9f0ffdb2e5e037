"""`tongguan import components FILE` into PostgreSQL: 2,580,000 rows, wall time, rows/s and peak memory.

1. A `tg_bench_import_tpl_*` database is migrated and seeded with the city and no components
   (`tongguan seed --scale city --components 0`).
2. A CSV of valid components is written, streaming, from that database's own reference data: code = the grid's
   district (6) + a component subclass of the active catalog (4) + a serial (6) unique per (district, subclass);
   owner department from the routing rules (as `seed` does), property = owner, maintainer = any department of
   the district; the point is uniform inside a random unit grid (area-weighted, rejection-sampled inside the
   stored grid polygon after rounding to 7 decimals, so it lies in the district its code names); state drawn
   with the inventory's weights; datum wgs84. Smaller files are prefixes of the big one.
3. Each file is imported by the CLI, as a child process, into its own copy of the template database
   (CREATE DATABASE … TEMPLATE), so every import starts from the same empty inventory; wall time, rows/s and
   the child's own peak RSS (under /usr/bin/time) are recorded. The peak RSS across sizes shows whether memory
   is flat.
4. import_components_csv runs once more in-process on the 500,000-row file with its phases timed (read and check
   rows, COPY into staging, duplicate checks, INSERT … SELECT + commit); when the big import misses the 2-minute
   target (or with --profile) it runs again under cProfile and the top costs are printed.

Every database is dropped and the temporary directory (CSV files, logs) deleted at the end, also on failure.

    .venv/bin/python -m bench.import_components [--rows 2580000] [--compare 500000,100000] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import csv
import io
import pstats
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely

from bench._common import (
    TONGGUAN,
    BenchError,
    child_env,
    console,
    fmt_int,
    fmt_mib,
    fmt_s,
    main_guard,
    new_pg_name,
    peak_rss_self_mib,
    pg_create,
    pg_drop,
    pg_server_version,
    print_table,
    record,
    run_measured,
    temp_dir,
)
from core.components.service import CSV_COLUMNS
from core.geo.synth import random_points_in

BENCH = "import_components"
SEED = 2_580_000
TARGET_S = 120.0
CHUNK = 200_000
STATES = {"intact": 0.95, "damaged": 0.03, "lost": 0.01, "occupied": 0.01}
HEADER = CSV_COLUMNS


# --- reference data of the seeded city ------------------------------------------------------------------------


@dataclass
class CityData:
    grid_codes: np.ndarray  # str, ordered by code
    grid_geoms: np.ndarray  # shapely, as stored
    grid_area: np.ndarray
    sub_codes: list[str]
    sub_names: list[str]
    owner: np.ndarray  # [subclass, street] → owner department code
    grid_street: np.ndarray  # grid → street index
    grid_district: np.ndarray  # grid → district index
    districts: list[str]
    district_depts: list[np.ndarray]  # district index → its department codes


async def _load_city(url: str) -> CityData:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        grids = await conn.fetch("SELECT code, geometry, area_m2 FROM unit_grid ORDER BY code")
        subs = await conn.fetch(
            "SELECT s.code, s.name FROM catalog_subclass s JOIN catalog_version v ON v.id = s.catalog_id"
            " WHERE v.active AND s.kind = 'component' ORDER BY s.code"
        )
        rules = await conn.fetch(
            "SELECT s.code, r.area_level, r.area_code, r.department_id FROM routing_rule r"
            " JOIN catalog_subclass s ON s.id = r.subclass_id JOIN catalog_version v ON v.id = s.catalog_id"
            " WHERE v.active AND s.kind = 'component'"
        )
        depts = await conn.fetch("SELECT code, district_id FROM department WHERE district_id IS NOT NULL")
    finally:
        await conn.close()
    codes = np.asarray([g["code"] for g in grids])
    streets = sorted({c[:9] for c in codes.tolist()})
    districts = sorted({s[:6] for s in streets})
    street_idx = {s: i for i, s in enumerate(streets)}
    district_idx = {d: i for i, d in enumerate(districts)}
    sub_codes = [s["code"] for s in subs]
    table = {(r["code"], r["area_code"] if r["area_level"] != "city" else ""): r["department_id"] for r in rules}
    owner = np.empty((len(sub_codes), len(streets)), dtype=object)
    for i, sub in enumerate(sub_codes):
        for j, street in enumerate(streets):
            for area in (street, street[:6], ""):
                if (sub, area) in table:
                    owner[i, j] = table[(sub, area)]
                    break
            else:
                raise BenchError(f"no routing rule gives an owner for {sub} in {street}")
    by_district: dict[str, list[str]] = {d: [] for d in districts}
    for d in depts:
        if d["district_id"] in by_district:
            by_district[d["district_id"]].append(d["code"])
    return CityData(
        grid_codes=codes,
        grid_geoms=shapely.from_geojson(np.asarray([g["geometry"] for g in grids], dtype=object)),
        grid_area=np.asarray([g["area_m2"] for g in grids], dtype=float),
        sub_codes=sub_codes,
        sub_names=[s["name"] for s in subs],
        owner=owner,
        grid_street=np.asarray([street_idx[c[:9]] for c in codes.tolist()]),
        grid_district=np.asarray([district_idx[c[:6]] for c in codes.tolist()]),
        districts=districts,
        district_depts=[np.asarray(sorted(by_district[d]), dtype=object) for d in districts],
    )


# --- the CSV --------------------------------------------------------------------------------------------------


def write_csvs(city: CityData, rows: int, files: dict[int, Path]) -> None:
    """Stream `rows` components into files[rows]; every smaller size in `files` gets the same first rows."""
    rng = np.random.default_rng(SEED)
    weights = city.grid_area / city.grid_area.sum()
    n_sub = len(city.sub_codes)
    serial_next = np.zeros(len(city.districts) * n_sub, dtype=np.int64)
    states = np.asarray(list(STATES), dtype=object)
    state_p = np.asarray(list(STATES.values()))
    handles = {n: _open_csv(p) for n, p in files.items()}
    try:
        writers = {n: csv.writer(fh, lineterminator="\n") for n, fh in handles.items()}
        for w in writers.values():
            w.writerow(HEADER)
        done = 0
        while done < rows:
            n = min(CHUNK, rows - done)
            gi = rng.choice(len(weights), size=n, p=weights)
            si = rng.integers(n_sub, size=n)
            lon, lat = random_points_in(city.grid_geoms, gi, rng, decimals=7)
            di = city.grid_district[gi]
            # Serial: rank within (district, subclass), continuing from earlier chunks.
            key = di * n_sub + si
            order = np.argsort(key, kind="stable")
            sk = key[order]
            starts = np.flatnonzero(np.r_[True, sk[1:] != sk[:-1]])
            rank = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
            serial = np.empty(n, dtype=np.int64)
            serial[order] = serial_next[sk] + rank + 1
            serial_next += np.bincount(key, minlength=len(serial_next))
            if serial_next.max() > 999_999:
                raise BenchError("more than 999,999 components of one subclass in one district")
            owner = city.owner[si, city.grid_street[gi]]
            maint = np.empty(n, dtype=object)
            for d, codes in enumerate(city.district_depts):
                mask = di == d
                maint[mask] = codes[rng.integers(len(codes), size=int(mask.sum()))]
            state = states[rng.choice(len(states), size=n, p=state_p)]
            out = [
                (
                    f"{city.districts[d]}{city.sub_codes[s]}{k:06d}",
                    city.sub_names[s],
                    o,
                    o,
                    m,
                    st,
                    f"{x:.7f}",
                    f"{y:.7f}",
                    "wgs84",
                )
                for d, s, k, o, m, st, x, y in zip(
                    di.tolist(),
                    si.tolist(),
                    serial.tolist(),
                    owner,
                    maint,
                    state,
                    lon.tolist(),
                    lat.tolist(),
                    strict=True,
                )
            ]
            for size, w in writers.items():
                if size == rows:
                    w.writerows(out)
                elif done < size:
                    w.writerows(out[: size - done])
            done += n
            if console.is_terminal:
                console.print(f"  {done:,} / {rows:,} rows written", end="\r")
        if console.is_terminal:
            console.print()
    finally:
        for fh in handles.values():
            fh.close()


def _open_csv(path: Path) -> io.TextIOWrapper:
    return path.open("w", newline="", encoding="utf-8", buffering=1 << 20)


# --- importing ------------------------------------------------------------------------------------------------


async def _count(url: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        return int(await conn.fetchval("SELECT COUNT(*) FROM component"))
    finally:
        await conn.close()


def import_one(template: str, path: Path, rows: int, tmp: Path) -> dict[str, float | int]:
    """Import `path` into a fresh copy of the template; the copy is dropped afterwards."""
    name = new_pg_name("import")
    try:
        url = pg_create(name, template=template)
        env = child_env(var_dir=tmp / "var", database_url=url)
        console.print(f"importing {rows:,} rows ({path.stat().st_size / 2**20:,.0f} MiB) …")
        cmd = [TONGGUAN, "import", "components", str(path)]
        m = run_measured(cmd, env=env, cwd=tmp, log=tmp / f"import_{rows}.log", timeout_s=30 * 60, what="import")
        count = asyncio.run(_count(url))
        if count != rows:
            raise BenchError(f"the import wrote {count:,} components, expected {rows:,}")
    finally:
        pg_drop(name)
    return {
        "rows": rows,
        "file_mib": round(path.stat().st_size / 2**20, 1),
        "wall_s": round(m.wall_s, 2),
        "rows_per_s": round(rows / m.wall_s),
        "peak_rss_mib": round(m.peak_rss_mib, 1),
        "cpu_s": round(m.user_s + m.sys_s, 2),
    }


async def _in_process_import(url: str, path: Path, profiler: cProfile.Profile | None) -> dict[str, float]:
    """import_components_csv in this process, with wall-clock timings of its phases (module attributes wrapped)."""
    import core.components.service as svc
    from core.db import db_context
    from core.geo.service import forget_spatial_index, get_spatial_index
    from core.settings import get_settings

    timings: dict[str, float] = {"stage": 0.0, "copy": 0.0, "duplicates": 0.0}

    def timed(name: str, fn):
        async def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                timings[name] += time.perf_counter() - t

        return wrapper

    originals = (svc._stage, svc._check_duplicates, svc.insert_rows)
    svc._stage = timed("stage", svc._stage)
    svc._check_duplicates = timed("duplicates", svc._check_duplicates)
    svc.insert_rows = timed("copy", svc.insert_rows)
    forget_spatial_index()
    try:
        async with db_context(get_settings(), url=url):
            t = time.perf_counter()
            await get_spatial_index()
            timings["index"] = time.perf_counter() - t
            if profiler:
                profiler.enable()
            t = time.perf_counter()
            report = await svc.import_components_csv(path=path)
            timings["total"] = time.perf_counter() - t
            if profiler:
                profiler.disable()
    finally:
        svc._stage, svc._check_duplicates, svc.insert_rows = originals
        forget_spatial_index()
    if not report.ok:
        raise BenchError(f"in-process import rejected: {report.errors[:3]}")
    return {
        "index_build_s": timings["index"],
        "import_total_s": timings["total"],
        "read_validate_locate_s": timings["stage"] - timings["copy"],
        "copy_to_staging_s": timings["copy"],
        "duplicate_check_s": timings["duplicates"],
        "insert_select_commit_s": timings["total"] - timings["stage"] - timings["duplicates"],
    }


def in_process(template: str, path: Path, *, profiler: cProfile.Profile | None = None) -> dict[str, float]:
    name = new_pg_name("inproc")
    try:
        url = pg_create(name, template=template)
        return asyncio.run(_in_process_import(url, path, profiler))
    finally:
        pg_drop(name)


def print_phases(rows: int, phases: dict[str, float]) -> None:
    total = phases["import_total_s"]
    table_rows: list[tuple[str, str, str, bool | None]] = [
        ("spatial index build (before the import)", fmt_s(phases["index_build_s"]), "", None)
    ]
    for key, label in (
        ("read_validate_locate_s", "read CSV, check rows, datum, locate_many (Python)"),
        ("copy_to_staging_s", "COPY chunks into the staging table"),
        ("duplicate_check_s", "duplicate-code checks (SQL)"),
        ("insert_select_commit_s", "INSERT … SELECT into component + commit"),
        ("import_total_s", "import_components_csv total"),
    ):
        table_rows.append((label, fmt_s(phases[key]), f"{phases[key] / total:.0%}", None))
    print_table(f"where the time goes: {rows:,} rows in-process (wall clock per phase)", table_rows, third="share")


def profile_import(template: str, path: Path, rows: int, top: int = 18) -> list[dict[str, object]]:
    console.print(f"profiling import_components_csv in-process on {rows:,} rows (cProfile) …")
    profiler = cProfile.Profile()
    t = time.perf_counter()
    in_process(template, path, profiler=profiler)
    wall = time.perf_counter() - t
    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    entries = []
    for (file, line, func), (_cc, ncalls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{Path(file).name}:{line}({func})" if line else func
        entries.append({"function": where, "calls": ncalls, "tottime_s": tottime, "cumtime_s": cumtime})
    by_tot = sorted(entries, key=lambda e: -float(e["tottime_s"]))[:top]
    by_cum = sorted(entries, key=lambda e: -float(e["cumtime_s"]))[:top]
    for title, items in (("self time (tottime)", by_tot), ("cumulative time", by_cum)):
        console.print(
            f"[bold]cProfile of import_components_csv, {rows:,} rows: top {top} by {title}[/bold]"
            f" (wall {wall:.1f} s with profiler, profiled total {total:.1f} s; awaiting PostgreSQL shows as epoll)"
        )
        for e in items:
            console.print(
                f"  {float(e['tottime_s']):7.2f} s self  {float(e['cumtime_s']):7.2f} s cum"
                f"  {int(e['calls']):>10,} calls  {e['function']}"
            )
    # Keep the JSON line small: the ten largest self times.
    return [
        {**e, "tottime_s": round(float(e["tottime_s"]), 3), "cumtime_s": round(float(e["cumtime_s"]), 3)}
        for e in by_tot[:10]
    ]


# --- main -----------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_580_000)
    parser.add_argument("--compare", default="500000,100000", help="smaller files (prefixes) for the memory check")
    parser.add_argument("--profile", action="store_true", help="profile even when the target is met")
    parser.add_argument("--profile-rows", type=int, default=500_000)
    args = parser.parse_args()
    sizes: Sequence[int] = sorted({args.rows, *(int(s) for s in args.compare.split(",") if s.strip())})
    sizes = [s for s in sizes if 0 < s <= args.rows]
    pg_version = pg_server_version()
    if pg_version is None:
        console.print("[yellow]PostgreSQL is not answering on 127.0.0.1:5432: import bench skipped[/yellow]")
        return

    template = new_pg_name("import_tpl")
    results: dict[int, dict[str, float | int]] = {}
    profile: list[dict[str, object]] = []
    with temp_dir("import") as tmp:
        try:
            url = pg_create(template)
            env = child_env(var_dir=tmp / "var", database_url=url)
            log = tmp / "seed.log"
            console.print("seeding the city into PostgreSQL (--components 0) …")
            run_measured([TONGGUAN, "migrate"], env=env, cwd=tmp, log=log, timeout_s=300, what="migrate")
            cmd = [TONGGUAN, "seed", "--scale", "city", "--components", "0"]
            seeded = run_measured(cmd, env=env, cwd=tmp, log=log, timeout_s=1800, what="seed")
            city = asyncio.run(_load_city(url))
            files = {n: tmp / f"components_{n}.csv" for n in sizes}
            console.print(f"writing {args.rows:,} components to CSV ({', '.join(f'{n:,}' for n in sizes)}) …")
            t = time.perf_counter()
            write_csvs(city, args.rows, files)
            gen_s = time.perf_counter() - t
            del city
            for n in sizes:
                results[n] = import_one(template, files[n], n, tmp)
            prof_rows = args.profile_rows if args.profile_rows in files else args.rows
            console.print(f"phase breakdown: import_components_csv in-process on {prof_rows:,} rows …")
            phases = in_process(template, files[prof_rows])
            if args.profile or results[args.rows]["wall_s"] > TARGET_S:
                profile = profile_import(template, files[prof_rows], prof_rows)
        finally:
            pg_drop(template)

    for n in sizes:
        notes: dict[str, object] = {"postgres": pg_version, "generator_peak_rss_mib": round(peak_rss_self_mib(), 1)}
        if n == args.rows:
            notes |= {"csv_generation_s": round(gen_s, 1), "seed_no_components_s": round(seeded.wall_s, 1)}
            if profile:
                notes["profile_top_tottime"] = profile
        record(BENCH, f"postgres_{n}", results[n], notes)
    record(BENCH, f"postgres_{prof_rows}_phases", {k: round(v, 2) for k, v in phases.items()}, {"in_process": True})

    big = results[args.rows]
    rows: list[tuple[str, str, str, bool | None]] = [
        ("seed city (--components 0)", fmt_s(seeded.wall_s), "", None),
        (f"CSV generation ({args.rows:,} rows, {big['file_mib']:,.0f} MiB)", fmt_s(gen_s), "", None),
    ]
    for n in sizes:
        r = results[n]
        target = n == args.rows and n >= 2_580_000
        rows += [
            (
                f"{n:,} rows: wall",
                fmt_s(float(r["wall_s"])),
                "≤ 120 s" if target else "",
                (float(r["wall_s"]) <= TARGET_S) if target else None,
            ),
            (f"{n:,} rows: rows/s", fmt_int(float(r["rows_per_s"])), "", None),
            (f"{n:,} rows: importer peak RSS", fmt_mib(float(r["peak_rss_mib"])), "", None),
            (f"{n:,} rows: importer CPU (user+sys)", fmt_s(float(r["cpu_s"])), "", None),
        ]
    for n in sizes[:-1]:
        small = float(results[n]["peak_rss_mib"])
        growth = float(big["peak_rss_mib"]) - small
        # Flat: within 5 % (allocator noise), whatever the file size.
        rows.append(
            (
                f"peak RSS growth {n:,} → {args.rows:,} rows",
                f"{growth:+,.0f} MiB ({growth / small:+.1%})",
                "flat (±5 %)",
                abs(growth) <= 0.05 * small,
            )
        )
    print_table(f"import components into PostgreSQL {pg_version}", rows)
    print_phases(prof_rows, phases)


if __name__ == "__main__":
    main_guard(BENCH, main)
