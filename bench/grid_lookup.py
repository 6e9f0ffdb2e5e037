"""Point → unit grid lookups on the city-scale geography: the STRtree index against a linear scan.

The index is built exactly as a process builds it (core.geo.service.build_spatial_index) from a freshly seeded
SQLite database (`tongguan seed --scale city --components 0` in a temporary TG_VAR_DIR), or with `--source synth`
from core.geo.synth.build_city(CITY) passed through the same GeoJSON round trip the database applies.
Then, for 100,000 seeded-random points in the city's bounding box:

  (a) index.locate(lon, lat) in a Python loop               target ≥ 100,000 lookups/s
  (b) index.locate_many(lons, lats) in one call
  (c) core.geo.index.linear_scan_locate over a sample      target: (a) ≥ 1,000 × (c)
  (d) vectorised scan: shapely.contains_xy(all grids, x, y) per point, over a sample

and checks that (a), (b), (c) and (d) give the same grid for every sampled point.

    .venv/bin/python -m bench.grid_lookup [--source db|synth] [--sqlite FILE] [--points N] [--scan-sample N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import statistics
import time
from collections.abc import Callable
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
    peak_rss_self_mib,
    print_table,
    record,
    run_measured,
    temp_dir,
)

BENCH = "grid_lookup"
SEED = 20_251_130
TARGET_LOOKUPS_S = 100_000
TARGET_RATIO = 1_000


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _best_and_median(fn: Callable[[], None], repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        gc.collect()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times)


# --- building the index ---------------------------------------------------------------------------------------


async def _index_from_db(sqlite_file: Path, repeats: int) -> tuple[object, dict[str, float]]:
    """build_spatial_index() timed as a whole (best and median of `repeats`), and its three steps once."""
    from core.db import db_context
    from core.geo.index import SpatialIndex
    from core.geo.projection import LocalProjection
    from core.geo.service import build_spatial_index, parse_geojson_many
    from core.regions.models import RoadSegment, UnitGrid
    from core.settings import get_settings

    settings = get_settings()
    async with db_context(settings, url=f"sqlite://{sqlite_file}"):
        rss0 = _rss_mib()
        times = []
        index = None
        for _ in range(repeats):
            index = None
            gc.collect()
            t = time.perf_counter()
            index = await build_spatial_index()
            times.append(time.perf_counter() - t)
        rss_index = _rss_mib() - rss0
        # The same steps one by one, to see where the build time goes.
        t0 = time.perf_counter()
        grids = await UnitGrid.all().order_by("code").values_list("code", "geometry", "responsibility_grid_id")
        roads = await RoadSegment.all().order_by("code").values_list("code", "geometry")
        t1 = time.perf_counter()
        grid_geoms = parse_geojson_many([g[1] for g in grids])
        road_geoms = parse_geojson_many([r[1] for r in roads])
        t2 = time.perf_counter()
        SpatialIndex(
            grid_codes=[g[0] for g in grids],
            grid_geoms=grid_geoms,
            responsibility={g[0]: g[2] for g in grids},
            road_codes=[r[0] for r in roads],
            road_geoms=road_geoms,
            projection=LocalProjection(settings.city_center_lon, settings.city_center_lat),
        )
        t3 = time.perf_counter()
    return index, {
        "build_best_s": min(times),
        "build_median_s": statistics.median(times),
        "build_read_db_s": t1 - t0,
        "build_parse_geojson_s": t2 - t1,
        "build_prepare_strtree_s": t3 - t2,
        "index_rss_mib": rss_index,
    }


def _index_from_synth() -> tuple[object, dict[str, float]]:
    from core.geo import synth
    from core.geo.index import SpatialIndex
    from core.geo.projection import LocalProjection
    from core.geo.service import parse_geojson_many
    from core.regions.service import to_geojson_many
    from core.settings import get_settings

    settings = get_settings()
    t0 = time.perf_counter()
    city = synth.build_city(synth.CITY)
    t1 = time.perf_counter()
    grids = sorted(city.unit_grids, key=lambda g: g.code)  # the database hands them out ordered by code
    rgrid_of = {g: r.code for r in city.responsibility_grids for g in r.unit_grid_codes}
    roads = sorted(city.road_segments, key=lambda r: r.code)
    # Stored form: rounded GeoJSON text, parsed back, exactly what build_spatial_index gets from the database.
    grid_texts = to_geojson_many([g.geometry for g in grids])
    road_texts = to_geojson_many([r.geometry for r in roads])
    t2 = time.perf_counter()
    grid_geoms = parse_geojson_many(grid_texts)
    road_geoms = parse_geojson_many(road_texts)
    t3 = time.perf_counter()
    index = SpatialIndex(
        grid_codes=[g.code for g in grids],
        grid_geoms=grid_geoms,
        responsibility={g.code: rgrid_of.get(g.code) for g in grids},
        road_codes=[r.code for r in roads],
        road_geoms=road_geoms,
        projection=LocalProjection(settings.city_center_lon, settings.city_center_lat),
    )
    t4 = time.perf_counter()
    return index, {
        "synth_build_city_s": t1 - t0,
        "build_best_s": t4 - t2,
        "build_median_s": t4 - t2,
        "build_parse_geojson_s": t3 - t2,
        "build_prepare_strtree_s": t4 - t3,
    }


def _seed_sqlite(tmp: Path) -> tuple[Path, float]:
    env = child_env(var_dir=tmp / "var")
    log = tmp / "seed.log"
    run_measured([TONGGUAN, "migrate"], env=env, cwd=tmp, log=log, timeout_s=300, what="migrate")
    cmd = [TONGGUAN, "seed", "--scale", "city", "--components", "0"]
    seeded = run_measured(cmd, env=env, cwd=tmp, log=log, timeout_s=1800, what="seed")
    return tmp / "var" / "tongguan.sqlite3", seeded.wall_s


# --- the lookups ----------------------------------------------------------------------------------------------


def locate_breakdown(index, xs: list[float], ys: list[float]) -> dict[str, float]:
    """Per-call cost (µs) of the steps of SpatialIndex.locate, each timed alone over the same points."""
    buckets = index._buckets
    spans = [buckets.span_at(x, y) for x, y in zip(xs, ys, strict=True)]
    probe = [(x, y, a, b) for x, y, (a, b) in zip(xs, ys, spans, strict=True) if a < b]
    geoms = buckets.candidate_geoms
    hits = [shapely.intersects_xy(geoms[a:b], x, y) for x, y, a, b in probe]
    found = [
        (x, y, int(buckets.candidates[a + h.argmax()])) for (x, y, a, _), h in zip(probe, hits, strict=True) if h.any()
    ]
    steps: dict[str, Callable[[], None]] = {
        "locate_us": lambda: [index.locate(x, y) for x, y in zip(xs, ys, strict=True)],
        "bucket_us": lambda: [buckets.span_at(x, y) for x, y in zip(xs, ys, strict=True)],
        "intersects_xy_us": lambda: [shapely.intersects_xy(geoms[a:b], x, y) for x, y, a, b in probe],
        "location_us": lambda: [index._location(x, y, i) for x, y, i in found],
    }
    counts = {"intersects_xy_us": len(probe), "location_us": len(found)}
    out = {}
    for name, fn in steps.items():
        best, _ = _best_and_median(fn, 3)
        out[name] = best / max(counts.get(name, len(xs)), 1) * 1e6
    return out


def measure(index, n_points: int, scan_sample: int, vscan_sample: int, repeats: int) -> dict[str, float]:
    from core.geo.index import linear_scan_locate

    geoms = index.grid_geoms
    code_to_idx = {str(c): i for i, c in enumerate(index.grid_codes)}
    xmin, ymin, xmax, ymax = shapely.total_bounds(geoms)
    rng = np.random.default_rng(SEED)
    xs = rng.uniform(xmin, xmax, n_points)
    ys = rng.uniform(ymin, ymax, n_points)
    xl, yl = xs.tolist(), ys.tolist()  # Python floats, as a request handler would pass them
    locate = index.locate

    def loop() -> None:
        for x, y in zip(xl, yl, strict=True):
            locate(x, y)

    console.print(f"(a) locate × {n_points:,}, {repeats} runs …")
    loop()  # warm-up
    a_best, a_med = _best_and_median(loop, repeats)
    console.print(f"(b) locate_many × {n_points:,}, {repeats} runs …")
    b_best, b_med = _best_and_median(lambda: index.locate_many(xs, ys), repeats)

    # Correctness over every point: the loop and the bulk call agree.
    many = index.locate_many(xs, ys)
    single = np.asarray([code_to_idx[h.unit_grid] if (h := locate(x, y)) else -1 for x, y in zip(xl, yl, strict=True)])
    disagree_all = int((many != single).sum())
    inside = many >= 0

    # Inside-city points only (the lookups the platform really does: reports are in the city).
    xi, yi = [xl[i] for i in np.flatnonzero(inside)], [yl[i] for i in np.flatnonzero(inside)]

    def loop_inside() -> None:
        for x, y in zip(xi, yi, strict=True):
            locate(x, y)

    ai_best, ai_med = _best_and_median(loop_inside, repeats)

    # (c) the naive scan, on the first `scan_sample` points, over the very same (prepared) geometries;
    # (c') over unprepared copies (what a scan written from scratch would test against);
    # (d) the vectorised scan: one contains_xy over all grids per point. Each timed `repeats` times (median).
    plain = shapely.from_wkb(shapely.to_wkb(geoms))

    def vscan_one(i: int) -> int:
        hit = np.flatnonzero(shapely.contains_xy(geoms, xs[i], ys[i]))
        return int(hit[0]) if len(hit) else -1

    answers: dict[str, np.ndarray] = {}

    def scan_with(name: str, fn: Callable[[int], int], n: int) -> Callable[[], None]:
        def run() -> None:
            answers[name] = np.asarray([fn(i) for i in range(n)])

        return run

    console.print(f"(c) linear_scan_locate × {scan_sample}, {repeats} runs (and unprepared) …")
    _, c_s = _best_and_median(scan_with("c", lambda i: linear_scan_locate(geoms, xl[i], yl[i]), scan_sample), repeats)
    _, c_plain_s = _best_and_median(
        scan_with("c_plain", lambda i: linear_scan_locate(plain, xl[i], yl[i]), scan_sample), repeats
    )
    console.print(f"(d) shapely.contains_xy(all grids) × {vscan_sample}, {repeats} runs …")
    _, d_s = _best_and_median(scan_with("d", vscan_one, vscan_sample), repeats)
    scan, scan_plain, vscan = answers["c"], answers["c_plain"], answers["d"]

    # Points on shared edges (grid vertices) touch 2–3 grids: both calls must break the tie the same way.
    verts = shapely.get_coordinates(geoms)
    verts = verts[rng.choice(len(verts), min(20_000, len(verts)), replace=False)]
    edge_many = index.locate_many(verts[:, 0], verts[:, 1])
    edge_single = np.asarray([code_to_idx[h.unit_grid] if (h := locate(x, y)) else -1 for x, y in verts.tolist()])
    disagree_edges = int((edge_many != edge_single).sum())

    console.print("cost of each step of locate …")
    breakdown = locate_breakdown(index, xl[:20_000], yl[:20_000])

    k = min(scan_sample, vscan_sample)
    disagree_sample = int(
        (scan != many[:scan_sample]).sum()
        + (scan_plain != many[:scan_sample]).sum()
        + (single[:scan_sample] != scan).sum()
        + (vscan[:k] != scan[:k]).sum()
    )
    a, ai, b = n_points / a_med, len(xi) / ai_med, n_points / b_med
    c, c_plain, d = scan_sample / c_s, scan_sample / c_plain_s, vscan_sample / d_s
    return {
        "points": n_points,
        "inside_share": float(inside.mean()),
        "a_locate_per_s": a,
        "a_locate_per_s_best": n_points / a_best,
        "a_locate_inside_only_per_s": ai,
        "a_locate_inside_only_per_s_best": len(xi) / ai_best,
        "b_locate_many_per_s": b,
        "b_locate_many_per_s_best": n_points / b_best,
        "c_scan_per_s": c,
        "c_scan_unprepared_per_s": c_plain,
        "c_scan_sample": scan_sample,
        "d_vscan_per_s": d,
        "d_vscan_sample": vscan_sample,
        "ratio_a_over_c": a / c,
        "ratio_b_over_c": b / c,
        "ratio_a_over_c_unprepared": a / c_plain,
        "ratio_a_over_d": a / d,
        "ratio_b_over_d": b / d,
        "disagreements_locate_vs_many": disagree_all,
        "disagreements_on_sample": disagree_sample,
        "edge_points": len(verts),
        "disagreements_on_edge_points": disagree_edges,
        "sample_inside_share": float((scan >= 0).mean()),
        **{f"step_{k}": v for k, v in breakdown.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=["db", "synth"], default="db")
    parser.add_argument("--sqlite", type=Path, help="an already seeded city-scale SQLite file (skips seeding)")
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--scan-sample", type=int, default=1000)
    parser.add_argument("--vscan-sample", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        seed_s = None
        if args.source == "synth":
            console.print("building the synthetic city in memory (core.geo.synth.build_city(CITY)) …")
            index, build = _index_from_synth()
            source = "synth: core.geo.synth.build_city(CITY) → stored GeoJSON form → SpatialIndex"
        else:
            sqlite_file = args.sqlite
            if sqlite_file is None:
                tmp = stack.enter_context(temp_dir("lookup"))
                console.print("seeding a city-scale SQLite database (--components 0) …")
                sqlite_file, seed_s = _seed_sqlite(tmp)
            if not sqlite_file.exists():
                raise BenchError(f"no such SQLite file: {sqlite_file}")
            console.print("building the index from the database (build_spatial_index) …")
            index, build = asyncio.run(_index_from_db(sqlite_file.resolve(), args.repeats))
            source = "db: core.geo.service.build_spatial_index() on a seeded SQLite database"
        figures = {**build, **measure(index, args.points, args.scan_sample, args.vscan_sample, args.repeats)}
        figures["grids"] = len(index)
        figures["peak_rss_mib"] = peak_rss_self_mib()
        if seed_s is not None:
            figures["seed_no_components_wall_s"] = seed_s

    figures = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in figures.items()}
    record(BENCH, args.source, figures, {"source": source, "rng_seed": SEED, "repeats": args.repeats})
    f = figures
    rows: list[tuple[str, str, str, bool | None]] = [
        ("unit grids indexed", fmt_int(f["grids"]), "51,495", f["grids"] == 51_495),
        ("index build (whole, median)", fmt_s(f["build_median_s"]), "", None),
    ]
    if "synth_build_city_s" in f:
        rows.insert(1, ("synth.build_city(CITY) (not part of the index)", fmt_s(f["synth_build_city_s"]), "", None))
    if "build_read_db_s" in f:
        rows.append(("  read rows from the database", fmt_s(f["build_read_db_s"]), "", None))
    rows += [
        ("  parse GeoJSON", fmt_s(f["build_parse_geojson_s"]), "", None),
        ("  prepare + STRtrees (grids, roads)", fmt_s(f["build_prepare_strtree_s"]), "", None),
        *([("index memory (RSS growth)", fmt_mib(f["index_rss_mib"]), "", None)] if "index_rss_mib" in f else []),
        (f"random points in bbox (inside city {f['inside_share']:.0%})", fmt_int(f["points"]), "", None),
        (
            "(a) locate, Python loop",
            f"{fmt_int(f['a_locate_per_s'])}/s",
            f"≥ {TARGET_LOOKUPS_S:,}/s",
            f["a_locate_per_s"] >= TARGET_LOOKUPS_S,
        ),
        ("(a') locate, inside-city points only", f"{fmt_int(f['a_locate_inside_only_per_s'])}/s", "", None),
        ("(b) locate_many, one call", f"{fmt_int(f['b_locate_many_per_s'])}/s", "", None),
        (f"(c) linear_scan_locate ({f['c_scan_sample']} pts)", f"{f['c_scan_per_s']:,.1f}/s", "", None),
        ("(c') same scan, unprepared geometries", f"{f['c_scan_unprepared_per_s']:,.1f}/s", "", None),
        (f"(d) contains_xy over all grids ({f['d_vscan_sample']} pts)", f"{f['d_vscan_per_s']:,.1f}/s", "", None),
        ("(a)/(c)", f"{f['ratio_a_over_c']:,.0f}×", f"≥ {TARGET_RATIO:,}×", f["ratio_a_over_c"] >= TARGET_RATIO),
        ("(b)/(c)", f"{f['ratio_b_over_c']:,.0f}×", f"≥ {TARGET_RATIO:,}×", f["ratio_b_over_c"] >= TARGET_RATIO),
        ("(a)/(c') unprepared scan", f"{f['ratio_a_over_c_unprepared']:,.0f}×", "", None),
        ("(a)/(d)", f"{f['ratio_a_over_d']:,.0f}×", "", None),
        ("(b)/(d)", f"{f['ratio_b_over_d']:,.0f}×", "", None),
        (
            "locate vs locate_many disagreements (all points)",
            fmt_int(f["disagreements_locate_vs_many"]),
            "0",
            f["disagreements_locate_vs_many"] == 0,
        ),
        (
            "(a)/(b)/(c)/(c')/(d) disagreements on sample",
            fmt_int(f["disagreements_on_sample"]),
            "0",
            f["disagreements_on_sample"] == 0,
        ),
        (
            f"locate vs locate_many on {f['edge_points']:,} grid vertices (shared edges)",
            fmt_int(f["disagreements_on_edge_points"]),
            "0",
            f["disagreements_on_edge_points"] == 0,
        ),
        ("peak RSS of this process", fmt_mib(f["peak_rss_mib"]), "", None),
    ]
    caption = f"source — {source}; rates are medians of {args.repeats} runs"
    print_table("grid lookup: spatial index vs linear scan", rows, caption)
    steps = [
        ("locate(lon, lat), whole call", "step_locate_us"),
        ("  bucket cell → candidate grids", "step_bucket_us"),
        ("  intersects_xy on the candidates (points with candidates)", "step_intersects_xy_us"),
        ("  _location(…) → Location  (inside points)", "step_location_us"),
    ]
    print_table(
        "where a locate() call spends its time (µs per call, best of 3 over 20,000 points)",
        [(label, f"{f[key]:.2f} µs", f"{f[key] / f['step_locate_us']:.0%}", None) for label, key in steps],
        third="share",
    )
    if f["disagreements_locate_vs_many"] or f["disagreements_on_sample"] or f["disagreements_on_edge_points"]:
        raise BenchError("the lookups disagree (see the table)")


if __name__ == "__main__":
    main_guard(BENCH, main)
