"""The command centre's city map (一张图) at city scale: boundary layers, open cases and heat.

Per backend (a temporary TG_VAR_DIR for SQLite, a `tg_bench_map_*` database for PostgreSQL, both removed at the
end), `tongguan migrate` and `tongguan seed --scale city --components 0` (51,495 unit grids) run as child processes.
Then, in this process: each level's layer built from the database without the cache (median of 3: read, simplify,
round, serialise, gzip), its feature count and bytes raw and gzipped; for the grid layer also its size at gzip
levels 1 and 9 and as stored (no simplification, 7 decimals), its vertices, area against the stored polygons and
validity, and what a browser does after the download, gunzip + JSON.parse, timed in V8 (Node) when `node` is
installed. Then --cases open cases (bulk_create: every subclass, points inside random grids, deadlines from a day
ago to four days ahead) and the service calls behind /map/cases and /map/heat. Last, `tongguan serve` as a child
process and httpx over 127.0.0.1 as the city-wide dispatcher: the first grid request (it builds the layer), warm
requests (raw bytes as sent), 304s on If-None-Match, /map/cases and /map/heat: median and p95 of --requests each.

    .venv/bin/python -m bench.console_map_data [--backend sqlite|postgres|both] [--cases 10000] [--requests 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import shutil
import socket
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench._common import (
    TONGGUAN,
    BenchError,
    child_env,
    console,
    fmt_int,
    fmt_s,
    main_guard,
    pg_database,
    pg_server_version,
    print_table,
    record,
    run_measured,
    temp_dir,
)
from bench.pipeline import child

BENCH = "console_map_data"
SEED = 20261130
GZIP_MAX_BYTES = 3 * 2**20
WARM_MAX_MS = 50.0
CASES_MAX_MS = 500.0
OPEN_STATUSES = ("pending_accept", "accepted", "registered", "dispatched", "processing", "fixed", "checked")
NODE_PARSE = """
const fs = require("fs"), zlib = require("zlib");
const packed = fs.readFileSync(process.argv[1]);
const times = [];
for (let i = 0; i < 5; i++) {
  const t = process.hrtime.bigint();
  const doc = JSON.parse(zlib.gunzipSync(packed).toString("utf8"));
  times.push(Number(process.hrtime.bigint() - t) / 1e6);
  if (!doc.features.length) throw new Error("no features");
}
times.sort((a, b) => a - b);
console.log(JSON.stringify(times[2]));
"""


def _ms(samples: list[float]) -> tuple[float, float]:
    """(median, p95) in milliseconds of samples in seconds."""
    ms = np.asarray(samples) * 1000
    return round(float(np.median(ms)), 1), round(float(np.percentile(ms, 95)), 1)


async def _timed(fn: Callable[[], Awaitable[Any]], n: int) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(n):
        t = time.perf_counter()
        result = await fn()
        times.append(time.perf_counter() - t)
    return times, result


@contextlib.asynccontextmanager
async def _opened(url: str, var: Path):
    from core import db as core_db
    from core.settings import Settings

    await core_db.init_db(Settings(database_url=url, var_dir=var, _env_file=None), url=url)
    try:
        yield
    finally:
        await core_db.close_db()


# --- in process -------------------------------------------------------------------------------------------------


async def _layers(url: str, var: Path) -> tuple[dict[str, Any], bytes]:
    """Figures per level, and the grid layer's gzip for the browser-side parse."""
    from core.regions import mapdata

    figures: dict[str, Any] = {}
    grid = b""
    async with _opened(url, var):
        for level in mapdata.LEVELS:
            layers = [await mapdata.build_layer(level=level) for _ in range(3)]
            layer = layers[-1]
            figures[level] = {
                "features": layer.features,
                "raw_bytes": len(layer.body),
                "gzip_bytes": len(layer.gzipped),
                "build_s": round(statistics.median(x.build_s for x in layers), 3),
            }
            if level == "grid":
                figures[level] |= await _grid_choices(layer)
                grid = layer.gzipped
    return figures, grid


async def _grid_choices(layer: Any) -> dict[str, Any]:
    """What simplification, rounding and the gzip level do to the grid layer."""
    import shapely

    from core.geo.service import parse_geojson_many
    from core.regions.models import UnitGrid

    texts = await UnitGrid.all().order_by("code").values_list("geometry", flat=True)
    stored = parse_geojson_many(list(texts))
    as_stored = ",".join(shapely.to_geojson(stored)).encode()
    features = json.loads(layer.body)["features"]
    shown = shapely.from_geojson(np.asarray([json.dumps(f["geometry"]) for f in features], dtype=object))
    ratio = shapely.area(shown) / shapely.area(stored)
    return {
        "gzip1_bytes": len(gzip.compress(layer.body, 1, mtime=0)),
        "gzip9_bytes": len(gzip.compress(layer.body, 9, mtime=0)),
        "stored_geometry_bytes": len(as_stored),
        "stored_geometry_gzip_bytes": len(gzip.compress(as_stored, 6, mtime=0)),
        "vertices_stored": int(shapely.get_num_coordinates(stored).sum()),
        "vertices_shown": int(shapely.get_num_coordinates(shown).sum()),
        "area_ratio_min": round(float(ratio.min()), 4),
        "area_ratio_max": round(float(ratio.max()), 4),
        "all_valid": bool(shapely.is_valid(shown).all()),
    }


def _node_parse(gzipped: bytes, tmp: Path) -> float | None:
    """gunzip + JSON.parse of the layer in V8 (Node), as a browser does after the download: median of 5, ms."""
    node = shutil.which("node")
    if node is None:
        return None
    path = tmp / "grid.geojson.gz"
    path.write_bytes(gzipped)
    out = subprocess.run([node, "-e", NODE_PARSE, str(path)], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise BenchError(f"node could not parse the grid layer: {out.stderr[-500:]}")
    return round(float(out.stdout), 1)


async def _cases(url: str, var: Path, n: int) -> dict[str, Any]:
    """n open cases, then the service calls behind /map/cases and /map/heat."""
    from datetime import timedelta

    import shapely

    from core import clock
    from core.cases.models import Case
    from core.cases.workflow import Actor, RoleGrant
    from core.catalog.models import CatalogVersion, Subclass
    from core.geo.service import parse_geojson_many
    from core.regions import mapdata
    from core.regions.models import UnitGrid

    async with _opened(url, var):
        rng = np.random.default_rng(SEED)
        grids = await UnitGrid.all().order_by("code").values_list("code", "geometry")
        points = shapely.get_coordinates(shapely.point_on_surface(parse_geojson_many([g[1] for g in grids])))
        catalog = await CatalogVersion.get(active=True)
        subclasses = await Subclass.filter(catalog=catalog).values_list("id", flat=True)
        now = clock.now()
        rows = []
        for k, gi in enumerate(rng.integers(len(grids), size=n)):
            code = grids[gi][0]
            rows.append(
                Case(
                    number=f"MAP{k:09d}",
                    subclass_id=int(subclasses[rng.integers(len(subclasses))]),
                    urgency="urgent" if rng.random() < 0.1 else "normal",
                    source="field_app",
                    lon=float(points[gi][0]),
                    lat=float(points[gi][1]),
                    unit_grid=code,
                    community=code[:12],
                    street=code[:9],
                    district=code[:6],
                    status=OPEN_STATUSES[rng.integers(len(OPEN_STATUSES))],
                    is_open=True,
                    stage="dispose",
                    stage_deadline=now + timedelta(hours=float(rng.uniform(-24, 96))),
                )
            )
        t = time.perf_counter()
        await Case.bulk_create(rows, batch_size=2000)
        insert_s = time.perf_counter() - t
        city = Actor(kind="staff", id="0", name="bench", grants=(RoleGrant(role="dispatcher"),))
        local = Actor(kind="staff", id="0", name="bench", grants=(RoleGrant(role="dispatcher", area_code=code[:6]),))
        await mapdata.warm_map_cache()
        cases_t, body = await _timed(lambda: mapdata.open_cases(actor=city), 10)
        local_t, local_body = await _timed(lambda: mapdata.open_cases(actor=local), 10)
        heat_t, heat = await _timed(lambda: mapdata.heat(actor=city, days=30, subclass=None), 10)
        if body["total"] != n or sum(p[2] for p in heat["points"]) != n:
            raise BenchError(f"{n} cases written, the map shows {body['total']}")
        encoded = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        return {
            "insert_s": round(insert_s, 2),
            "open_cases_ms": _ms(cases_t),
            "open_cases_district_ms": _ms(local_t),
            "district_rows": local_body["total"],
            "overdue_rows": sum(r[4] for r in body["rows"]),
            "heat_ms": _ms(heat_t),
            "heat_points": len(heat["points"]),
            "cases_bytes": len(encoded),
            "cases_gzip_bytes": len(gzip.compress(encoded, 6)),
        }


# --- over HTTP --------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _http(base: str, requests: int) -> dict[str, Any]:
    import httpx

    from core.seed import DEMO_PASSWORD

    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/healthz")).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise BenchError("tongguan serve did not answer /healthz within 60 s")
            await asyncio.sleep(0.2)
        signed = await client.post("/auth/token", data={"username": "dispatcher", "password": DEMO_PASSWORD})
        if signed.status_code != 200:
            raise BenchError(f"sign-in failed: {signed.status_code} {signed.text[:300]}")
        auth = {"Authorization": f"Bearer {signed.json()['access_token']}"}
        zipped = {**auth, "Accept-Encoding": "gzip"}

        async def grid(headers: dict[str, str]) -> tuple[int, int, str]:
            # Raw bytes as they cross the wire: the server's time, not httpx's gunzip.
            async with client.stream("GET", "/staff/v1/map/boundaries/grid", headers=headers) as r:
                size = 0
                async for chunk in r.aiter_raw():
                    size += len(chunk)
                return r.status_code, size, r.headers.get("etag", "")

        t = time.perf_counter()
        status, _, etag = await grid(zipped)
        cold_s = time.perf_counter() - t
        if status != 200:
            raise BenchError(f"the grid layer answered {status}")
        warm_t, (_, wire, _) = await _timed(lambda: grid(zipped), requests)
        plain_t, (_, plain_wire, _) = await _timed(lambda: grid({**auth, "Accept-Encoding": "identity"}), requests)
        same_t, (again, _, _) = await _timed(lambda: grid({**zipped, "If-None-Match": etag}), requests)
        if again != 304:
            raise BenchError(f"If-None-Match answered {again}")
        cases_t, cases = await _timed(lambda: client.get("/staff/v1/map/cases", headers=auth), requests)
        heat_t, heat = await _timed(lambda: client.get("/staff/v1/map/heat", headers=auth), requests)
        for r in (cases, heat):
            if r.status_code != 200:
                raise BenchError(f"{r.url.path} answered {r.status_code}: {r.text[:300]}")
        return {
            "cold_grid_s": round(cold_s, 2),
            "grid_gzip_ms": _ms(warm_t),
            "grid_gzip_wire_bytes": wire,
            "grid_identity_ms": _ms(plain_t),
            "grid_identity_wire_bytes": plain_wire,
            "not_modified_ms": _ms(same_t),
            "cases_ms": _ms(cases_t),
            "cases_rows": cases.json()["total"],
            "heat_ms": _ms(heat_t),
        }


# --- the run ----------------------------------------------------------------------------------------------------


def run(backend: str, cases: int, requests: int) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(temp_dir("map"))
        var = tmp / "var"
        url = ""
        if backend == "postgres":
            _, url = stack.enter_context(pg_database("map"))
        env = child_env(var_dir=var, database_url=url)
        log = tmp / "bench.log"
        console.print(f"[bold]{backend}[/bold]: tongguan migrate …")
        run_measured([TONGGUAN, "migrate"], env=env, cwd=tmp, log=log, timeout_s=300, what="migrate")
        console.print(f"[bold]{backend}[/bold]: tongguan seed --scale city --components 0 …")
        seed_cmd = [TONGGUAN, "seed", "--scale", "city", "--components", "0"]
        seed = run_measured(seed_cmd, env=env, cwd=tmp, log=log, timeout_s=30 * 60, what="seed")
        url = url or f"sqlite://{var / 'tongguan.sqlite3'}"
        console.print(f"[bold]{backend}[/bold]: each layer built three times …")
        layers, grid_gzipped = asyncio.run(_layers(url, var))
        layers["grid"]["node_parse_ms"] = _node_parse(grid_gzipped, tmp)
        console.print(f"[bold]{backend}[/bold]: {cases:,} open cases, the service calls …")
        service = asyncio.run(_cases(url, var, cases))
        port = _free_port()
        console.print(f"[bold]{backend}[/bold]: tongguan serve on 127.0.0.1:{port}, {requests} requests each …")
        with child([TONGGUAN, "serve", "--port", str(port)], env=env, cwd=tmp, log=tmp / "serve.log"):
            http = asyncio.run(_http(f"http://127.0.0.1:{port}", requests))
    return {"seed_s": round(seed.wall_s, 1), "layers": layers, "service": service, "http": http}


def _pair(figure: tuple[float, float]) -> str:
    return f"{figure[0]} / {figure[1]} ms"


def _rows(result: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    layers, service, http = result["layers"], result["service"], result["http"]
    rows: list[tuple[str, str, str, bool | None]] = [("seed --scale city", fmt_s(result["seed_s"]), "", None)]
    for level, f in layers.items():
        rows += [
            (f"{level}: features", fmt_int(f["features"]), "", None),
            (f"{level}: bytes raw / gzip", f"{fmt_int(f['raw_bytes'])} / {fmt_int(f['gzip_bytes'])}", "", None),
            (f"{level}: cold build (median of 3)", fmt_s(f["build_s"]), "", None),
        ]
    g = layers["grid"]
    node = g["node_parse_ms"]
    rows += [
        (
            "grid: gzip bytes",
            fmt_int(g["gzip_bytes"]),
            f"≤ {fmt_int(GZIP_MAX_BYTES)}",
            g["gzip_bytes"] <= GZIP_MAX_BYTES,
        ),
        ("grid: gzip level 1 / 9", f"{fmt_int(g['gzip1_bytes'])} / {fmt_int(g['gzip9_bytes'])}", "", None),
        (
            "grid: geometries as stored, raw / gzip",
            f"{fmt_int(g['stored_geometry_bytes'])} / {fmt_int(g['stored_geometry_gzip_bytes'])}",
            "",
            None,
        ),
        (
            "grid: vertices stored → shown",
            f"{fmt_int(g['vertices_stored'])} → {fmt_int(g['vertices_shown'])}",
            "",
            None,
        ),
        ("grid: area shown / stored", f"{g['area_ratio_min']} … {g['area_ratio_max']}", "", None),
        ("grid: every shown polygon valid", str(g["all_valid"]), "True", g["all_valid"]),
        ("grid: gunzip + JSON.parse in V8", "no node" if node is None else f"{node} ms", "", None),
        ("http: first grid request (builds)", fmt_s(http["cold_grid_s"]), "", None),
        (
            "http: grid, gzip, p50 / p95",
            _pair(http["grid_gzip_ms"]),
            f"≤ {WARM_MAX_MS:.0f} ms",
            http["grid_gzip_ms"][0] <= WARM_MAX_MS,
        ),
        ("http: grid, gzip, bytes sent", fmt_int(http["grid_gzip_wire_bytes"]), "", None),
        ("http: grid, identity, p50 / p95", _pair(http["grid_identity_ms"]), "", None),
        ("http: grid, 304, p50 / p95", _pair(http["not_modified_ms"]), "", None),
        (
            f"http: /map/cases ({fmt_int(http['cases_rows'])} rows) p50 / p95",
            _pair(http["cases_ms"]),
            f"≤ {CASES_MAX_MS:.0f} ms",
            http["cases_ms"][0] <= CASES_MAX_MS,
        ),
        ("http: /map/heat p50 / p95", _pair(http["heat_ms"]), "", None),
        ("service: open_cases, city-wide, p50 / p95", _pair(service["open_cases_ms"]), "", None),
        (
            f"service: open_cases, one district ({fmt_int(service['district_rows'])} rows)",
            _pair(service["open_cases_district_ms"]),
            "",
            None,
        ),
        (f"service: heat ({fmt_int(service['heat_points'])} points)", _pair(service["heat_ms"]), "", None),
        (
            "/map/cases body, raw / gzip",
            f"{fmt_int(service['cases_bytes'])} / {fmt_int(service['cases_gzip_bytes'])}",
            "",
            None,
        ),
        ("bulk_create of the cases", fmt_s(service["insert_s"]), "", None),
    ]
    return rows


def _flat(result: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in result.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= _flat(value, f"{name}.")
        elif isinstance(value, tuple):
            out[f"{name}.p50"], out[f"{name}.p95"] = value
        else:
            out[name] = value
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--cases", type=int, default=10_000, help="open cases for /map/cases and /map/heat")
    parser.add_argument("--requests", type=int, default=20, help="timed requests per endpoint")
    args = parser.parse_args()
    for backend in ["sqlite", "postgres"] if args.backend == "both" else [args.backend]:
        notes: dict[str, Any] = {"cases": args.cases, "requests": args.requests}
        if backend == "postgres":
            if (version := pg_server_version()) is None:
                console.print("[yellow]PostgreSQL is not answering on 127.0.0.1:5432: postgres case skipped[/yellow]")
                continue
            notes["postgres"] = version
        result = run(backend, args.cases, args.requests)
        record(BENCH, backend, _flat(result), notes)
        print_table(f"city map data: 51,495 grids, {args.cases:,} open cases, {backend}", _rows(result))


if __name__ == "__main__":
    main_guard(BENCH, main)
