"""GPS track ingest (issue 8): track points stored per second in batches of 500 on PostgreSQL, and bytes per point.

A fresh `tg_bench_tracks_*` database is migrated and seeded with the small city (`tongguan migrate`, `tongguan seed
--scale small`, child processes). Tracks are random walks from points inside the city: workers at ~1.4 m/s and
vehicles at ~8 m/s, a fix every `--step-s` (10) seconds with GPS noise (σ 3 m), accuracy 3–20 m and the phone's
speed; one point in 2,000 jumps 2 km away (a spoofed fix, flagged and stored). Each subject's batches cover
consecutive stretches of its track ending a minute before now, so a subject's later batches follow its earlier
ones as a phone sends them; everything is generated before the clock starts.

1. service — `core.patrols.tracks.ingest` in this process (the contract other code calls, with `TrackPoint`s):
   `--subjects` (800: three workers to one vehicle) × `--batches` (4) batches of 500 points, `--concurrency` (8)
   subjects at a time, each subject's batches in order; the ORM pool holds as many connections. Then 5 % of the
   batches again (a phone that lost our answer): all duplicates, nothing stored. Points/s, batch p50 / p99,
   Python and PostgreSQL CPU per batch, SQL statements per batch (tortoise's query log).
2. http — `tongguan serve --workers W` (`--workers`, 2) with TG_REDIS_URL = Redis db 12 (no job runs in the API):
   `--http-subjects` (256) field workers (accounts made for the bench, signed in through `core.accounts.tokens`)
   POST `/field/v1/tracks` with `--batches` batches of 500 points each (ISO 8601 times with +08:00, WGS-84), at
   `--http-concurrency` (16): one httpx client of one keep-alive connection per caller, each caller sending its
   subjects' batches in order; connections balanced over the uvicorn workers as in `miniapp.py`. Every answer must
   be 200 with 500 accepted.
3. summary — `core.patrols.summary.summarize_day` for the workers of the service part on the day of most of their
   points: patrol days per second.
4. storage — bytes per point of `track_chunk` (the packed data alone, and the table with its indexes and TOAST) and,
   for comparison, of the same points as a row per point: `track_point_row` (subject, time, lon, lat, accuracy,
   speed, flag, bigserial id; index on subject and time) COPYed with every point of the service part.

    .venv/bin/python -m bench.tracks [--subjects 800] [--batches 4] [--concurrency 8] [--http-subjects 256]
        [--http-concurrency 16] [--workers 2] [--step-s 10] [--parts service,http,summary,storage]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from bench._common import (
    REDIS_URL,
    TONGGUAN,
    BenchError,
    child_env,
    console,
    fmt_int,
    main_guard,
    pg_database,
    print_table,
    record,
    redis_flush,
    services_ready,
    tail,
    temp_dir,
)
from bench.miniapp import (
    _tree_cpu_by_process,
    balance_connections,
    quiet_sniffio,
    run_loop,
    seed_database,
    wait_healthy,
)
from bench.pipeline import CpuWatch, _fetch, _free_port, _opened, _pg, child, counting_queries

BENCH = "tracks"
TARGET_PER_S = 20_000.0
BATCH = 500
SEED = 20261208
CENTER = (123.43, 41.80)
LOAD_TIMEOUT_S = 900
M_PER_DEG_LAT = 111_195.0


# --- tracks ---------------------------------------------------------------------------------------------------


@dataclass
class Subject:
    kind: str  # staff / vehicle
    ident: str  # staff id or a vehicle id
    at_ms: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    accuracy: np.ndarray
    speed: np.ndarray

    def batch(self, i: int) -> slice:
        return slice(i * BATCH, (i + 1) * BATCH)


def make_track(rng: np.random.Generator, kind: str, ident: str, n: int, step_s: float, end_ms: int) -> Subject:
    """A random walk inside the city, one fix every ~step_s seconds, ending at end_ms."""
    speed_ms = 1.4 if kind == "staff" else 8.0
    dt = rng.uniform(0.8, 1.2, n) * step_s
    at = end_ms - np.round(np.cumsum(dt[::-1])[::-1] * 1000).astype(np.int64)
    heading = np.cumsum(rng.normal(0, 0.3, n)) + rng.uniform(0, 2 * math.pi)
    step = speed_ms * dt * rng.uniform(0.3, 1.2, n)
    x = np.cumsum(step * np.cos(heading)) + rng.normal(0, 3, n)
    y = np.cumsum(step * np.sin(heading)) + rng.normal(0, 3, n)
    r, a = 12_000 * math.sqrt(rng.uniform()), rng.uniform(0, 2 * math.pi)
    x0, y0 = r * math.cos(a), r * math.sin(a)
    k = M_PER_DEG_LAT * math.cos(math.radians(CENTER[1]))
    lon = np.round(CENTER[0] + (x0 + x) / k, 6)
    lat = np.round(CENTER[1] + (y0 + y) / M_PER_DEG_LAT, 6)
    jumps = rng.random(n) < 1 / 2000
    lon[jumps] += 2000 / k
    accuracy = np.round(rng.uniform(3, 20, n), 1)
    speed = np.round(np.clip(step / dt * 3.6 + rng.normal(0, 0.5, n), 0, None), 1)
    return Subject(kind, ident, at, lon, lat, accuracy, speed)


def make_subjects(kinds_ids: list[tuple[str, str]], batches: int, step_s: float, seed: int) -> list[Subject]:
    rng = np.random.default_rng(seed)
    end_ms = int(time.time() * 1000) - 60_000
    return [make_track(rng, kind, ident, batches * BATCH, step_s, end_ms) for kind, ident in kinds_ids]


def percentile_ms(latencies: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(latencies) * 1000, q)), 1) if latencies else 0.0


# --- 1. service -----------------------------------------------------------------------------------------------


async def _make_staff(n: int, prefix: str) -> list[int]:
    """n staff accounts (inspectors of the first street), made in one statement; their ids."""
    from core.accounts.models import StaffAccount, StaffRole
    from core.accounts.service import hash_password
    from core.regions.models import Street
    from core.seed import DEMO_PASSWORD

    street = await Street.all().order_by("code").first()
    assert street is not None
    password_hash = hash_password(DEMO_PASSWORD)
    names = [f"{prefix}-{i:05d}" for i in range(n)]
    await StaffAccount.bulk_create(
        [StaffAccount(username=u, display_name=u, password_hash=password_hash) for u in names]
    )
    ids = dict(await StaffAccount.filter(username__in=names).values_list("username", "id"))
    await StaffRole.bulk_create([StaffRole(staff_id=ids[u], role="inspector", area_code=street.code) for u in names])
    return [int(ids[u]) for u in names]


async def _service(url: str, args: argparse.Namespace) -> dict[str, Any]:
    from core.patrols.tracks import TrackPoint, from_epoch_ms, ingest

    async with _opened(f"{url}?minsize=1&maxsize={args.concurrency}"):
        staff_n = args.subjects * 3 // 4
        staff_ids = await _make_staff(staff_n, "bench-walker")
        kinds = [("staff", str(i)) for i in staff_ids]
        kinds += [("vehicle", f"truck-{i:05d}") for i in range(args.subjects - staff_n)]
        subjects = make_subjects(kinds, args.batches, args.step_s, SEED)
        # The contract's own input: TrackPoint objects, built before the clock starts.
        batches: dict[int, list[list[TrackPoint]]] = {}
        for k, s in enumerate(subjects):
            batches[k] = []
            for b in range(args.batches):
                sl = s.batch(b)
                batches[k].append(
                    [
                        TrackPoint(from_epoch_ms(t), x, y, a, v)
                        for t, x, y, a, v in zip(
                            s.at_ms[sl].tolist(), s.lon[sl].tolist(), s.lat[sl].tolist(),
                            s.accuracy[sl].tolist(), s.speed[sl].tolist(), strict=True,
                        )
                    ]
                )  # fmt: skip
        latencies: list[float] = []
        outcome: Counter[str] = Counter()
        todo = iter(range(len(subjects)))

        async def caller(replay: list[tuple[int, int]] | None = None) -> None:
            jobs = replay if replay is not None else None
            while True:
                if jobs is not None:
                    if not jobs:
                        return
                    k, b = jobs.pop()
                    plan = [(k, b)]
                else:
                    k = next(todo, -1)
                    if k < 0:
                        return
                    plan = [(k, b) for b in range(args.batches)]
                for k, b in plan:
                    s = subjects[k]
                    t = time.perf_counter()
                    result = await ingest(subject_type=s.kind, subject_id=s.ident, points=batches[k][b])
                    latencies.append(time.perf_counter() - t)
                    outcome["accepted"] += result.accepted
                    outcome["spoofed"] += len(result.spoofed)
                    outcome["duplicates"] += result.duplicates
                    outcome["rejected"] += len(result.rejected)

        # Warm-up: the connections of the pool, tortoise's SQL caches; one subject outside the measurement.
        warm = make_subjects([("vehicle", "warm-up")], 2, args.step_s, SEED + 1)[0]
        for b in range(2):
            sl = warm.batch(b)
            points = [
                TrackPoint(from_epoch_ms(t), x, y, 5.0, 3.0)
                for t, x, y in zip(warm.at_ms[sl].tolist(), warm.lon[sl].tolist(), warm.lat[sl].tolist(), strict=True)
            ]
            await ingest(subject_type="vehicle", subject_id="warm-up", points=points)

        watch = CpuWatch(_dbname(url))
        cpu0, started = time.process_time(), time.perf_counter()
        with counting_queries() as sql:
            await asyncio.gather(*(caller() for _ in range(args.concurrency)))
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu0
        spent = watch.spent()
        n_batches = len(latencies)
        points_sent = n_batches * BATCH
        first = dict(outcome)

        # 5 % of the batches again: each must be found stored and stored nothing.
        rng = np.random.default_rng(SEED + 2)
        pairs = [(k, b) for k in range(len(subjects)) for b in range(args.batches)]
        chosen = [pairs[i] for i in rng.choice(len(pairs), size=max(1, len(pairs) // 20), replace=False)]
        replayed_batches = len(chosen)
        outcome.clear()
        replay_latencies = latencies[:]
        latencies.clear()
        t = time.perf_counter()
        await asyncio.gather(*(caller(chosen) for _ in range(args.concurrency)))
        replay_wall = time.perf_counter() - t
        replayed = dict(outcome)
        replay_lat = latencies[:]
        latencies[:] = replay_latencies
        stored = await _fetch(url, "SELECT COALESCE(SUM(n), 0) AS n, COUNT(*) AS chunks FROM track_chunk"
                              " WHERE subject_id <> 'warm-up'")  # fmt: skip
    statements = sum(sql.counts.values())
    return {
        "subjects": len(subjects),
        "staff_subjects": staff_n,
        "batches": n_batches,
        "points": points_sent,
        "wall_s": round(wall, 3),
        "per_s": round(points_sent / wall, 1),
        "batches_per_s": round(n_batches / wall, 1),
        "p50_ms": percentile_ms(latencies, 50),
        "p99_ms": percentile_ms(latencies, 99),
        "max_ms": percentile_ms(latencies, 100),
        "python_cpu_ms_per_batch": round(1000 * cpu / n_batches, 2),
        "postgres_cpu_ms_per_batch": round(1000 * (spent["postgres"] + spent["postgres_shared"]) / n_batches, 2),
        "busy_cores": round(spent["cores"], 2),
        "sql_per_batch": round(statements / n_batches, 2),
        "accepted": first.get("accepted", 0),
        "spoofed": first.get("spoofed", 0),
        "duplicates": first.get("duplicates", 0),
        "rejected": first.get("rejected", 0),
        "stored_points": int(stored[0]["n"]),
        "chunks": int(stored[0]["chunks"]),
        "replayed_batches": replayed_batches,
        "replay_duplicates": replayed.get("duplicates", 0),
        "replay_accepted": replayed.get("accepted", 0),
        "replay_p50_ms": percentile_ms(replay_lat, 50),
        "replay_per_s": round(replayed_batches * BATCH / replay_wall, 1),
        "_sql": {k: round(v / n_batches, 2) for k, v in sql.counts.most_common()},
        "_staff_ids": staff_ids,
        "_day": _main_day(subjects),
    }


def _dbname(url: str) -> str:
    return url.rsplit("/", 1)[1].split("?", 1)[0]


def _main_day(subjects: list[Subject]) -> str:
    from core.patrols.tracks import china_days

    days = np.concatenate([china_days(s.at_ms) for s in subjects])
    values, counts = np.unique(days, return_counts=True)
    return (datetime(1970, 1, 1) + timedelta(days=int(values[np.argmax(counts)]))).date().isoformat()


# --- 2. http --------------------------------------------------------------------------------------------------


async def _http_prepare(url: str, n: int, warm: int) -> list[tuple[int, str]]:
    """Bench field workers and their access tokens."""
    from core.accounts.tokens import sign_in
    from core.seed import DEMO_PASSWORD

    async with _opened(url):
        ids = await _make_staff(n + warm, "bench-phone")
        out = []
        for i, staff_id in enumerate(ids):
            pair = await sign_in(username=f"bench-phone-{i:05d}", password=DEMO_PASSWORD)
            out.append((staff_id, pair.access_token))
    return out


def _bodies(subject: Subject, batches: int) -> list[bytes]:
    out = []
    for b in range(batches):
        sl = subject.batch(b)
        times = [
            datetime.fromtimestamp(t / 1000, _china()).isoformat(timespec="milliseconds")
            for t in subject.at_ms[sl].tolist()
        ]
        points = [
            {"t": t, "lat": y, "lon": x, "accuracy": a, "speed": v}
            for t, x, y, a, v in zip(
                times, subject.lon[sl].tolist(), subject.lat[sl].tolist(), subject.accuracy[sl].tolist(),
                subject.speed[sl].tolist(), strict=True,
            )
        ]  # fmt: skip
        out.append(json.dumps({"datum": "wgs84", "points": points}).encode())
    return out


def _china() -> Any:
    from core.clock import CHINA

    return CHINA


async def _fire(
    base: str, subjects: list[tuple[str, list[bytes]]], warm: list[tuple[str, list[bytes]]], *, concurrency: int,
    server_pid: int, server_alive: Any, database: str,
) -> dict[str, Any]:  # fmt: skip
    import ssl

    import httpx

    port = int(base.rsplit(":", 1)[1])
    one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    tls = ssl.create_default_context()

    def new_client() -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=base, limits=one, timeout=60, verify=tls)

    clients = [new_client() for _ in range(concurrency)]
    latencies: list[float] = []
    answers: Counter[str] = Counter()
    accepted = 0

    async def send(client: httpx.AsyncClient, token: str, body: bytes, measure: bool) -> None:
        nonlocal accepted
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        t = time.perf_counter()
        try:
            r = await client.post("/field/v1/tracks", content=body, headers=headers)
        except httpx.TransportError as exc:
            answers[f"0 {type(exc).__name__}"] += 1
            return
        if measure:
            latencies.append(time.perf_counter() - t)
        ok = r.status_code == 200 and r.json().get("accepted") == BATCH
        answers["200 all accepted" if ok else f"{r.status_code} {r.text[:80]}"] += 1
        if measure and r.status_code == 200:
            accepted += int(r.json()["accepted"])

    try:
        await wait_healthy(clients[0], base, server_alive)
        clients, split, _ = await balance_connections(clients, new_client, server_pid=server_pid, port=port)
        # Warm-up: one subject per caller, outside the measurement.
        await asyncio.gather(
            *(
                send(c, token, body, False)
                for c, (token, bodies) in zip(clients, warm, strict=False)
                for body in bodies[:1]
            )
        )
        todo = iter(subjects)

        async def caller(client: httpx.AsyncClient) -> None:
            for token, bodies in todo:
                for body in bodies:
                    await send(client, token, body, True)

        watch = CpuWatch(database)
        cpu0 = _tree_cpu_by_process(server_pid)
        started = time.perf_counter()
        await asyncio.gather(*(caller(c) for c in clients))
        wall = time.perf_counter() - started
        cpu1 = _tree_cpu_by_process(server_pid)
        spent = watch.spent()
    finally:
        for client in clients:
            await client.aclose()
    n = len(latencies)
    server_cpu = sum(cpu1.get(p, 0.0) - cpu0.get(p, 0.0) for p in cpu1)
    postgres = spent["postgres"] + spent["postgres_shared"]
    return {
        "batches": n,
        "points": accepted,
        "wall_s": round(wall, 3),
        "per_s": round(accepted / wall, 1),
        "batches_per_s": round(n / wall, 1),
        "p50_ms": percentile_ms(latencies, 50),
        "p99_ms": percentile_ms(latencies, 99),
        "max_ms": percentile_ms(latencies, 100),
        "server_cpu_ms_per_batch": round(1000 * server_cpu / max(n, 1), 2),
        "postgres_cpu_ms_per_batch": round(1000 * postgres / max(n, 1), 2),
        "client_cpu_ms_per_batch": round(1000 * spent["bench"] / max(n, 1), 2),
        "machine_busy_cores": round(spent["cores"], 2),
        "cpu_bound_per_s": round((os.cpu_count() or 1) * BATCH / ((server_cpu + postgres) / max(n, 1)), 1),
        "not_ok": sum(v for k, v in answers.items() if k != "200 all accepted"),
        "_answers": dict(answers),
        "_connections_by_worker": sorted(split.values(), reverse=True),
    }


def _http(url: str, name: str, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    signed = asyncio.run(_http_prepare(url, args.http_subjects, args.http_concurrency))
    kinds = [("staff", str(staff_id)) for staff_id, _ in signed]
    tracks_ = make_subjects(kinds, args.batches, args.step_s, SEED + 3)
    loads = [(token, _bodies(s, args.batches)) for (_, token), s in zip(signed, tracks_, strict=True)]
    subjects, warm = loads[: args.http_subjects], loads[args.http_subjects :]
    body_kib = np.mean([len(b) for _, bodies in subjects for b in bodies]) / 1024
    env = child_env(var_dir=tmp / "var", database_url=url) | {"TG_REDIS_URL": REDIS_URL, "TG_LOG_LEVEL": "INFO"}
    port = _free_port()
    log = tmp / "serve.log"
    cmd = [TONGGUAN, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers)]
    redis_flush()
    with child(cmd, env=env, cwd=tmp, log=log) as c:

        async def fire() -> dict[str, Any]:
            async with asyncio.timeout(LOAD_TIMEOUT_S):
                return await _fire(
                    f"http://127.0.0.1:{port}", subjects, warm, concurrency=args.http_concurrency,
                    server_pid=c.proc.pid, server_alive=lambda: c.proc.poll() is None, database=name,
                )  # fmt: skip

        try:
            figures = run_loop(fire())
        except TimeoutError:
            raise BenchError(f"http: the load did not finish within {LOAD_TIMEOUT_S} s\n{tail(log)}") from None
    figures["body_kib"] = round(float(body_kib), 1)
    return figures


# --- 3. summary, 4. storage -----------------------------------------------------------------------------------


async def _summary(url: str, staff_ids: list[int], day: str) -> dict[str, Any]:
    from datetime import date

    from core.geo.service import get_spatial_index
    from core.patrols.summary import summarize_day

    async with _opened(url):
        await get_spatial_index()  # built once per process; not part of the summaries' time
        t = time.perf_counter()
        run = await summarize_day(day=date.fromisoformat(day), staff_ids=staff_ids)
        wall = time.perf_counter() - t
    return {
        "day": day,
        "workers": run.staff,
        "summarised": run.summarised,
        "failed": len(run.failed),
        "points": run.points,
        "wall_s": round(wall, 3),
        "workers_per_s": round(run.staff / wall, 1),
        "points_per_s": round(run.points / wall, 1),
    }


ROWS_DDL = """
CREATE TABLE track_point_row (
    id BIGSERIAL PRIMARY KEY, subject_type VARCHAR(8) NOT NULL, subject_id VARCHAR(32) NOT NULL,
    at TIMESTAMPTZ NOT NULL, lon DOUBLE PRECISION NOT NULL, lat DOUBLE PRECISION NOT NULL,
    accuracy_m REAL, speed_kmh REAL, spoofed BOOLEAN NOT NULL
);
CREATE INDEX track_point_row_subject_at ON track_point_row (subject_type, subject_id, at);
"""


async def _storage(url: str) -> dict[str, Any]:
    from core.patrols.tracks import unpack

    conn = await _pg(url)
    try:
        await conn.execute("VACUUM ANALYZE track_chunk")
        chunk = await conn.fetchrow(
            "SELECT COUNT(*) AS chunks, SUM(n) AS points, SUM(octet_length(data)) AS data_bytes,"
            " pg_total_relation_size('track_chunk') AS total, pg_relation_size('track_chunk') AS heap,"
            " pg_indexes_size('track_chunk') AS indexes FROM track_chunk"
        )
        await conn.execute("DROP TABLE IF EXISTS track_point_row")
        await conn.execute(ROWS_DDL)
        cursor_rows = 0
        async with conn.transaction():
            async for rec in conn.cursor("SELECT subject_type, subject_id, data FROM track_chunk", prefetch=200):
                p = unpack(bytes(rec["data"]))
                at = [datetime.fromtimestamp(t / 1000, _china()) for t in p["at_ms"].tolist()]
                acc = [None if math.isnan(a) else a for a in p["accuracy_m"].tolist()]
                spd = [None if math.isnan(v) else v for v in p["speed_kmh"].tolist()]
                rows = zip(
                    [rec["subject_type"]] * len(p), [rec["subject_id"]] * len(p), at, p["lon"].tolist(),
                    p["lat"].tolist(), acc, spd, p["spoofed"].tolist(), strict=True,
                )  # fmt: skip
                await conn.copy_records_to_table(
                    "track_point_row",
                    records=list(rows),
                    columns=["subject_type", "subject_id", "at", "lon", "lat", "accuracy_m", "speed_kmh", "spoofed"],
                )
                cursor_rows += len(p)
        await conn.execute("VACUUM ANALYZE track_point_row")
        rows = await conn.fetchrow(
            "SELECT pg_total_relation_size('track_point_row') AS total, pg_relation_size('track_point_row') AS heap,"
            " pg_indexes_size('track_point_row') AS indexes"
        )
        await conn.execute("DROP TABLE track_point_row")
    finally:
        await conn.close()
    points = int(chunk["points"])
    return {
        "chunks": int(chunk["chunks"]),
        "points": points,
        "points_per_chunk": round(points / int(chunk["chunks"]), 1),
        "data_bytes_per_point": round(int(chunk["data_bytes"]) / points, 2),
        "chunk_table_bytes_per_point": round(int(chunk["total"]) / points, 2),
        "chunk_heap_bytes_per_point": round(int(chunk["heap"]) / points, 2),
        "chunk_index_bytes_per_point": round(int(chunk["indexes"]) / points, 2),
        "row_table_bytes_per_point": round(int(rows["total"]) / cursor_rows, 2),
        "row_heap_bytes_per_point": round(int(rows["heap"]) / cursor_rows, 2),
        "row_index_bytes_per_point": round(int(rows["indexes"]) / cursor_rows, 2),
        "ratio_rows_over_chunks": round((int(rows["total"]) / cursor_rows) / (int(chunk["total"]) / points), 1),
    }


# --- main -----------------------------------------------------------------------------------------------------


def _split(figures: dict[str, Any]) -> tuple[dict[str, float | int], dict[str, Any]]:
    nums = {k: v for k, v in figures.items() if not k.startswith("_") and isinstance(v, int | float)}
    notes = {k.lstrip("_"): v for k, v in figures.items() if k not in nums and k not in ("_staff_ids",)}
    return nums, notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=800, help="service part: subjects (3 workers : 1 vehicle)")
    parser.add_argument("--batches", type=int, default=4, help="batches of 500 points per subject")
    parser.add_argument("--concurrency", type=int, default=8, help="service part: subjects ingested at a time")
    parser.add_argument("--http-subjects", type=int, default=256, help="http part: field workers")
    parser.add_argument("--http-concurrency", type=int, default=16, help="http part: clients")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--step-s", type=float, default=10.0, help="seconds between fixes")
    parser.add_argument("--parts", default="service,http,summary,storage")
    args = parser.parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if set(parts) - {"service", "http", "summary", "storage"}:
        parser.error(f"unknown parts {parts}")
    ready = services_ready(BENCH)
    if ready is None:
        return
    quiet_sniffio()
    notes_all = {**ready, "batch": BATCH, "step_s": args.step_s, "workers": args.workers}
    console.print(
        f"[bold]tracks[/bold]: batches of {BATCH} points on PostgreSQL {ready['postgres']}; {args.batches} batches per"
        f" subject, a fix every ~{args.step_s:g} s (each subject's points span"
        f" {args.batches * BATCH * args.step_s / 3600:.1f} h up to a minute ago)"
    )
    results: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    with temp_dir(BENCH) as tmp, pg_database(BENCH) as (name, url):
        try:
            console.print("seeding the small city into PostgreSQL …")
            seed_database(url, tmp)
            if "service" in parts or "summary" in parts:
                console.print(
                    f"[bold]service[/bold]: ingest() of {args.subjects * args.batches:,} batches, concurrency"
                    f" {args.concurrency} …"
                )
                results["service"] = s = asyncio.run(_service(url, args))
                sent = s["points"]
                if s["accepted"] != sent or s["stored_points"] != sent or s["rejected"] or s["duplicates"]:
                    problems.append(
                        f"service: sent {sent:,}, accepted {s['accepted']:,}, stored {s['stored_points']:,}"
                    )
                if s["replay_accepted"] or s["replay_duplicates"] != s["replayed_batches"] * BATCH:
                    problems.append(f"service replay stored {s['replay_accepted']} points")
            if "http" in parts:
                console.print(
                    f"[bold]http[/bold]: tongguan serve --workers {args.workers}, {args.http_subjects} workers ×"
                    f" {args.batches} POST /field/v1/tracks at concurrency {args.http_concurrency} …"
                )
                results["http"] = h = _http(url, name, tmp, args)
                if h["not_ok"]:
                    problems.append(f"http answers: {h['_answers']}")
            if "summary" in parts and "service" in results:
                svc = results["service"]
                console.print(
                    f"[bold]summary[/bold]: summarize_day({svc['_day']}) for {len(svc['_staff_ids'])} workers …"
                )
                results["summary"] = asyncio.run(_summary(url, svc["_staff_ids"], svc["_day"]))
            if "storage" in parts:
                console.print("[bold]storage[/bold]: sizes, and the same points as a row per point …")
                results["storage"] = asyncio.run(_storage(url))
        finally:
            with contextlib.suppress(Exception):
                redis_flush()
    for case, figures in results.items():
        nums, notes = _split(figures)
        if case in ("service", "http"):
            nums["target_met"] = int(nums["per_s"] >= TARGET_PER_S)
        record(BENCH, case, nums, notes | notes_all)
    print_results(results, args)
    if problems:
        raise BenchError("; ".join(problems))


def print_results(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    if s := results.get("service"):
        print_table(
            f"(a) service: ingest() of {s['batches']:,} batches of {BATCH} ({s['subjects']} subjects, concurrency"
            f" {args.concurrency}, one process)",
            [
                ("points/s", fmt_int(s["per_s"]), f"≥ {TARGET_PER_S:,.0f}", s["per_s"] >= TARGET_PER_S),
                ("batches/s", f"{s['batches_per_s']:,.1f}", "", None),
                ("batch latency p50 / p99 / max", f"{s['p50_ms']} / {s['p99_ms']} / {s['max_ms']} ms", "", None),
                ("Python CPU per batch", f"{s['python_cpu_ms_per_batch']} ms", "", None),
                ("PostgreSQL CPU per batch", f"{s['postgres_cpu_ms_per_batch']} ms", "", None),
                ("SQL statements per batch (BEGIN/COMMIT not counted)", f"{s['sql_per_batch']}", "", None),
                (
                    "stored / sent points",
                    f"{s['stored_points']:,} / {s['points']:,}",
                    "equal",
                    s["stored_points"] == s["points"],
                ),
                ("flagged as spoofed (1 in 2,000 fixes jumps 2 km)", f"{s['spoofed']:,}", "", None),
                (
                    f"replayed {s['replayed_batches']} batches: duplicates / stored",
                    f"{s['replay_duplicates']:,} / {s['replay_accepted']}",
                    "all / 0",
                    s["replay_accepted"] == 0,
                ),
                ("replays: points/s, p50", f"{fmt_int(s['replay_per_s'])}, {s['replay_p50_ms']} ms", "", None),
            ],
            caption="SQL per batch: " + ", ".join(f"{k} {v}" for k, v in s["_sql"].items()),
        )
    if h := results.get("http"):
        print_table(
            f"(b) HTTP: POST /field/v1/tracks, {h['batches']:,} batches of {BATCH} ({h['body_kib']} KiB), tongguan"
            f" serve --workers {args.workers}, concurrency {args.http_concurrency}, {os.cpu_count()} cores",
            [
                ("points/s", fmt_int(h["per_s"]), f"≥ {TARGET_PER_S:,.0f}", h["per_s"] >= TARGET_PER_S),
                ("batches/s", f"{h['batches_per_s']:,.1f}", "", None),
                ("batch latency p50 / p99 / max", f"{h['p50_ms']} / {h['p99_ms']} / {h['max_ms']} ms", "", None),
                (
                    "server / PostgreSQL / client CPU per batch",
                    f"{h['server_cpu_ms_per_batch']} /"
                    f" {h['postgres_cpu_ms_per_batch']} / {h['client_cpu_ms_per_batch']} ms",
                    "",
                    None,
                ),
                (
                    "CPU-bound ceiling (cores ÷ server + PostgreSQL CPU per point)",
                    fmt_int(h["cpu_bound_per_s"]),
                    "",
                    None,
                ),
                ("answers other than 200 with 500 accepted", f"{h['not_ok']}", "0", h["not_ok"] == 0),
                ("connections by worker", " + ".join(str(n) for n in h["_connections_by_worker"]), "", None),
            ],
        )
    if m := results.get("summary"):
        print_table(
            f"(c) summarize_day({m['day']}): patrol days of {m['workers']} workers",
            [
                ("workers/s", f"{m['workers_per_s']:,.1f}", "", None),
                ("points/s", fmt_int(m["points_per_s"]), "", None),
                ("stored / failed", f"{m['summarised']} / {m['failed']}", "all / 0", m["failed"] == 0),
            ],
        )
    if st := results.get("storage"):
        print_table(
            f"(d) storage: {st['points']:,} points in {st['chunks']:,} chunks ({st['points_per_chunk']} a chunk)",
            [
                ("packed data alone, bytes/point", f"{st['data_bytes_per_point']}", "", None),
                ("track_chunk (heap + TOAST + indexes), bytes/point", f"{st['chunk_table_bytes_per_point']}", "", None),
                ("row per point (heap + indexes), bytes/point", f"{st['row_table_bytes_per_point']}", "", None),
                ("‥ of which indexes", f"{st['row_index_bytes_per_point']}", "", None),
                ("row per point ÷ chunks", f"{st['ratio_rows_over_chunks']}×", "", None),
            ],
        )
    if "service" in results or "http" in results:
        line = ", ".join(
            f"{case} {results[case]['per_s']:,.0f} points/s (p99 {results[case]['p99_ms']} ms)"
            for case in ("service", "http")
            if case in results
        )
        size = results.get("storage", {}).get("chunk_table_bytes_per_point")
        console.print(f"[bold]tracks summary[/bold]: {line}" + (f", {size} bytes/point stored" if size else ""))


if __name__ == "__main__":
    main_guard(BENCH, main)
