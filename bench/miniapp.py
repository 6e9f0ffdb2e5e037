"""The citizen mini-program's report intake (POST /miniapp/v1/reports) beside a bare FastAPI endpoint.

`tongguan serve` on PostgreSQL + Redis against a bare FastAPI app on the same uvicorn settings, same load.

A fresh `tg_bench_miniapp_*` database is migrated and seeded with the small city (`tongguan migrate`, `tongguan seed
--scale small` as child processes); then, in this process, `--citizens` citizens sign in through
`core.accounts.citizens.sign_in` (one session token each; by default one citizen per 10 requests, so no citizen
comes near TG_RATE_REPORTS_PER_HOUR = 20) and a few hundred report points are taken inside the city: the
`point_on_surface` of unit grids, converted to GCJ-02 (what wx.getLocation gives), kept only when the server's own
spatial index puts them back in their grid.

1. tongguan — `tongguan serve --workers W` (`--workers`, 2) with TG_DATABASE_URL = the bench database, TG_REDIS_URL =
   the bench's Redis database (12, flushed), so a report only writes its outbox entry and no job runs in the API
   (no worker runs either: this measures intake); TG_RATE_IP_PER_MINUTE=1000000, because every request comes from
   127.0.0.1; no TG_MINIAPP_APPID, so the demo gateway passes the content-security check locally. The load
   generator (httpx, uvloop, `--concurrency` clients of one keep-alive connection each, 50) sends `--alone` requests
   one at a time (latency without queueing); then connects all clients and checks in /proc how many connections
   each uvicorn worker holds, connecting again until none holds more than its share + 10 % (the workers share one
   listening socket, and all 50 connections on one worker happened); then `--warmup` requests and the measured
   `--requests` (5,000) `POST /miniapp/v1/reports`: description, subclass event:0102, a GCJ-02 location, an address
   and an idempotency key unique per request, each with its citizen's bearer token. Bodies are encoded before the
   clock starts. Every answer must be 202 (others are counted by status and problem code); afterwards the
   database must hold exactly one report and one outbox entry per request sent.
2. bare — `python -m bench.bare_app --workers W`: uvicorn started exactly as `tongguan serve` starts it (factory,
   default loop and HTTP implementation, `log_config=None`, logging set up by core.logs at the same TG_LOG_LEVEL),
   `POST /bare` parses the same body into the same pydantic model and answers 202; same load, same concurrency.
   The ratio is tongguan req/s ÷ bare req/s.
   For both: requests/s, p50 / p90 / p99 / max latency, CPU of the server's process tree (per uvicorn worker too),
   of PostgreSQL (this database's backends, and the shared WAL writer / checkpointer) and Redis, of the load
   generator (this process), and of the whole machine; the CPU-bound ceiling (cores ÷ server + PostgreSQL + Redis
   CPU per request: the rate with the cores to itself and no load generator).
3. profile — when tongguan misses 500 req/s (or with --profile): the app in this process, one "worker" on uvloop,
   called directly through ASGI (no HTTP, no client): wall and CPU time of each piece of a request at concurrency
   1 (rate-limit hits in Redis, the session lookup, sync dependencies sent to the thread pool, the replay lookups,
   the content check's thread hop, submit_report's validation and its transaction), SQL statements and Redis round
   trips per request, the rate of one process at `--concurrency`, then cProfile of as many: the top costs.

    .venv/bin/python -m bench.miniapp [--requests 5000] [--concurrency 50] [--workers 2] [--warmup 200]
        [--alone 100] [--citizens N] [--log-level INFO] [--parts tongguan,bare,profile] [--profile]
        [--profile-requests 1000] [--profile-dump FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import logging
import math
import os
import pstats
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from rich.table import Table

from bench._common import (
    REDIS_URL,
    REPO,
    TONGGUAN,
    VENV_BIN,
    BenchError,
    child_env,
    console,
    fmt_s,
    main_guard,
    pg_database,
    record,
    redis_flush,
    run_measured,
    services_ready,
    tail,
    temp_dir,
    verdict,
)
from bench.pipeline import CpuWatch, _fetch, _free_port, _opened, _split, _tree_cpu, child, counting_queries

BENCH = "miniapp"
SEED = 20261206
TARGET_PER_S = 500.0
PER_CITIZEN = 10  # requests per citizen in a run (TG_RATE_REPORTS_PER_HOUR is 20 by default)
POINTS = 300
PATH_TONGGUAN = "/miniapp/v1/reports"
PATH_BARE = "/bare"
LOAD_TIMEOUT_S = 600
START_TIMEOUT_S = 60
DESCRIPTIONS = (
    "小区门口有暴露垃圾，已经好几天没人清理了",
    "路边垃圾桶满了，垃圾散落一地，气味很大",
    "楼下绿化带里堆着装修垃圾，请尽快清运",
    "菜市场门口垃圾没有及时清理，苍蝇很多",
)
STREETS = ("幸福路", "和平街", "建设大路", "新华路", "中山路", "青年大街")


# --- preparation ----------------------------------------------------------------------------------------------


@dataclass
class Load:
    """Everything the load generator sends, encoded before the clock starts: body and headers per request."""

    bodies: list[bytes]
    headers: list[dict[str, str]]
    citizens: int


def seed_database(url: str, tmp: Path) -> float:
    env = child_env(var_dir=tmp / "var", database_url=url)
    log = tmp / "seed.log"
    run_measured([TONGGUAN, "migrate"], env=env, cwd=tmp, log=log, timeout_s=300, what="migrate")
    seeded = run_measured([TONGGUAN, "seed", "--scale", "small"], env=env, cwd=tmp, log=log, timeout_s=600, what="seed")
    return seeded.wall_s


async def _prepare(url: str, citizens: int, seed: int) -> tuple[list[str], list[tuple[float, float]]]:
    """Sign in `citizens` citizens (their tokens) and take report points inside the city (GCJ-02)."""
    from core.accounts.citizens import sign_in
    from core.geo.datum import Datum, from_wgs84
    from core.geo.service import get_spatial_index
    from core.regions.models import UnitGrid

    async with _opened(url):
        grids = await UnitGrid.all().order_by("code").values_list("code", "geometry")
        rng = np.random.default_rng(seed)
        chosen = rng.choice(len(grids), size=min(POINTS, len(grids)), replace=False)
        geoms = shapely.from_geojson(np.asarray([grids[i][1] for i in chosen], dtype=object))
        inner = shapely.point_on_surface(geoms)
        index = await get_spatial_index()
        points = []
        for i, p in zip(chosen, inner, strict=True):
            lon, lat = from_wgs84(p.x, p.y, "gcj02")
            found = index.locate(lon, lat, Datum.GCJ02)
            if found is not None and found.unit_grid == grids[i][0]:
                points.append((round(lon, 7), round(lat, 7)))
        if len(points) < min(POINTS, len(grids)) // 2:
            raise BenchError(f"only {len(points)} of {len(chosen)} grid points locate back into their grid")
        tokens = []
        for n in range(citizens):
            signed = await sign_in(openid=f"bench-{SEED}-{n:06d}", unionid=None, session_key="bench")
            tokens.append(signed.token)
    return tokens, points


def build_load(tokens: Sequence[str], points: Sequence[tuple[float, float]], total: int, seed: int, tag: str) -> Load:
    """Request i comes from citizen i mod len(tokens): nobody sends more than ceil(total / citizens)."""
    rng = np.random.default_rng(seed)
    where = rng.integers(len(points), size=total)
    bodies, headers = [], []
    for i in range(total):
        lon, lat = points[where[i]]
        body = {
            "description": f"{DESCRIPTIONS[i % len(DESCRIPTIONS)]}（{i}）",
            "subclass": "event:0102",
            "location": {"lon": lon, "lat": lat, "datum": "gcj02"},
            "address": f"{STREETS[i % len(STREETS)]} {i % 300 + 1} 号",
            "idempotency_key": f"{tag}-{SEED}-{i:07d}",
        }
        bodies.append(json.dumps(body, ensure_ascii=False).encode())
        headers.append({"Authorization": f"Bearer {tokens[i % len(tokens)]}", "Content-Type": "application/json"})
    return Load(bodies, headers, len(tokens))


# --- load -----------------------------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError, ValueError):
            out += [int(x) for x in task.read_text().split()]
    return out


def _process_cpu(pid: int) -> float:
    """user + system CPU seconds of one process (not its children)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def _tree_cpu_by_process(root: int) -> dict[int, float]:
    """CPU seconds of the server's processes: the supervisor and each uvicorn worker (with its own children)."""
    return {root: _process_cpu(root)} | {pid: _tree_cpu(pid) for pid in _children(root)}


def _code_of(response: Any) -> str:
    with contextlib.suppress(ValueError, AttributeError):
        return str(response.json().get("code") or "")
    return ""


def quiet_sniffio() -> bool:
    """httpcore asks `import sniffio` on every lock and semaphore it creates; sniffio is not installed here, and a
    failed import is not remembered, so each one searched sys.path again (two per request: a fifth of the load
    generator's time in a profile). Mark it absent once, in this process only — what it is anyway."""
    import importlib.util

    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]
        return True
    return False


def run_loop(coro: Any) -> Any:
    """The load generator's event loop: uvloop when installed (as uvicorn picks for the servers), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def _socket_inodes(pid: int) -> set[int]:
    out: set[int] = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    out.add(int(target[8:-1]))
    return out


async def balance_connections(
    clients: list[Any], new_client: Callable[[], Any], *, server_pid: int, port: int, spare: bool = True
) -> tuple[list[Any], dict[int, int], int]:
    """Connect every client (one keep-alive connection each) until no uvicorn worker holds more than its share
    + 10 % (+ one more with `spare`), as a balancing proxy or SO_REUSEPORT would give; returns the clients (new ones
    if it had to connect again), the connections per worker and the attempts.

    uvicorn's workers share one listening socket; whichever is woken first accepts, and the connections stay with it
    (keep-alive): in trials all 50 landed on one worker, with both connecting at once and one after the other. So:
    connect, count each worker's connections (/proc), close and connect again, alternating both ways.
    """
    n = len(clients)
    workers = len(connections_by_worker(server_pid, port)) or 1
    fair = math.ceil(n / workers) + (max(1, n // 10) if spare else n // 10)
    split: dict[int, int] = {}
    attempt = 0
    for attempt in range(12):
        if attempt % 2 == 0:
            await asyncio.gather(*(client.get("/healthz") for client in clients))
        else:
            for client in clients:
                await client.get("/healthz")
        split = connections_by_worker(server_pid, port)
        if not split or max(split.values()) <= fair:
            break
        for client in clients:
            await client.aclose()
        clients = [new_client() for _ in range(n)]
    return clients, split, attempt + 1


def connections_by_worker(server_pid: int, port: int) -> dict[int, int]:
    """Established connections to `port` held by each uvicorn worker (the children holding the listening socket),
    from /proc/net/tcp and the workers' socket inodes."""
    listening: set[int] = set()
    established: set[int] = set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            f = line.split()
            if int(f[1].rsplit(":", 1)[1], 16) != port:
                continue
            (listening if f[3] == "0A" else established if f[3] == "01" else set()).add(int(f[9]))
    out = {}
    for pid in _children(server_pid):
        inodes = _socket_inodes(pid)
        if inodes & listening:
            out[pid] = len(inodes & established)
    return out


async def wait_healthy(client: Any, base: str, server_alive: Any) -> None:
    """Until the server answers /healthz; BenchError when it exits or takes longer than START_TIMEOUT_S."""
    import httpx

    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        with contextlib.suppress(httpx.TransportError):
            if (await client.get("/healthz")).status_code == 200:
                return
        if not server_alive():
            raise BenchError(f"the server at {base} exited before answering /healthz")
        if time.monotonic() > deadline:
            raise BenchError(f"the server at {base} did not answer /healthz within {START_TIMEOUT_S} s")
        await asyncio.sleep(0.2)


async def _fire(
    base: str,
    path: str,
    load: Load,
    *,
    warmup: int,
    alone: int,
    concurrency: int,
    server_pid: int,
    server_alive: Callable[[], bool],
    database: str,
) -> dict[str, Any]:
    """One at a time, then balanced connections, warm-up and the measured requests. Each of the `concurrency`
    callers has its own httpx.AsyncClient with one keep-alive connection: one shared pool of 50 costs httpcore a
    scan of the pool per request (7.4 against 2.6 ms of client CPU per request, measured), and the client shares
    the cores."""
    import ssl

    import httpx

    total = len(load.bodies)
    requests = total - warmup - alone
    port = int(base.rsplit(":", 1)[1])
    one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    tls = ssl.create_default_context()  # unused over http, but each client would load the CA file again

    def new_client() -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=base, limits=one, timeout=30, verify=tls)

    clients = [new_client() for _ in range(concurrency)]
    try:
        await wait_healthy(clients[0], base, server_alive)

        latencies = np.zeros(total)
        answers: Counter[tuple[int, str]] = Counter()

        async def caller(client: httpx.AsyncClient, todo: Iterator[int]) -> None:
            for i in todo:
                t = time.perf_counter()
                try:
                    r = await client.post(path, content=load.bodies[i], headers=load.headers[i])
                except httpx.TransportError as exc:
                    latencies[i] = time.perf_counter() - t
                    answers[(0, type(exc).__name__)] += 1
                    continue
                latencies[i] = time.perf_counter() - t
                answers[(r.status_code, "" if r.status_code == 202 else _code_of(r))] += 1

        first = warmup + alone
        await caller(clients[0], iter(range(warmup, first)))  # one at a time: latency without queueing

        clients, split, attempts = await balance_connections(clients, new_client, server_pid=server_pid, port=port)

        warm = iter(range(warmup))
        await asyncio.gather(*(caller(client, warm) for client in clients))
        split = connections_by_worker(server_pid, port)
        todo = iter(range(first, total))
        watch = CpuWatch(database)
        cpu0 = _tree_cpu_by_process(server_pid)
        started = time.perf_counter()
        await asyncio.gather(*(caller(client, todo) for client in clients))
        wall = time.perf_counter() - started
        cpu1 = _tree_cpu_by_process(server_pid)
        spent = watch.spent()
    finally:
        for client in clients:
            await client.aclose()
    ms = latencies[first:] * 1000
    alone_ms = latencies[warmup:first] * 1000
    per_process = {pid: cpu1.get(pid, 0.0) - cpu0.get(pid, 0.0) for pid in cpu1}
    workers = sorted((v for pid, v in per_process.items() if pid != server_pid), reverse=True)
    server_cpu = sum(per_process.values())
    postgres = spent["postgres"] + spent["postgres_shared"]
    ours = server_cpu + postgres + spent["redis"] + spent["bench"]
    figures: dict[str, Any] = {
        "requests": requests,
        "concurrency": concurrency,
        "sent": total,
        "wall_s": round(wall, 3),
        "per_s": round(requests / wall, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p90_ms": round(float(np.percentile(ms, 90)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "max_ms": round(float(ms.max()), 1),
        "mean_ms": round(float(ms.mean()), 1),
        "alone_p50_ms": round(float(np.percentile(alone_ms, 50)), 2) if alone else 0.0,
        "alone_p99_ms": round(float(np.percentile(alone_ms, 99)), 2) if alone else 0.0,
        "server_cpu_s": round(server_cpu, 2),
        "server_cpu_ms_per_request": round(1000 * server_cpu / requests, 3),
        "server_busy_cores": round(server_cpu / wall, 2),
        "postgres_cpu_s": round(postgres, 2),
        "postgres_cpu_ms_per_request": round(1000 * postgres / requests, 3),
        "redis_cpu_s": round(spent["redis"], 2),
        "client_cpu_s": round(spent["bench"], 2),
        "client_cpu_ms_per_request": round(1000 * spent["bench"] / requests, 3),
        "client_busy_cores": round(spent["bench"] / wall, 2),
        "machine_busy_cores": round(spent["cores"], 2),
        "other_cpu_s": round(max(0.0, spent["machine"] - ours), 2),
        "other_busy_cores": round(max(0.0, spent["machine"] - ours) / wall, 2),
        # What the cores could carry with nothing else on them (no load generator either): cores / CPU per request.
        "cpu_bound_per_s": round((os.cpu_count() or 1) / ((server_cpu + postgres + spent["redis"]) / requests), 1),
        "busiest_worker_share": round(workers[0] / sum(workers), 3) if workers and sum(workers) > 0 else 1.0,
        "non_202": sum(n for (status, _), n in answers.items() if status != 202),
        "_answers": {f"{status} {code}".strip(): n for (status, code), n in sorted(answers.items())},
        "_worker_cpu_s": [round(v, 2) for v in workers],
        "_connections_by_worker": sorted(split.values(), reverse=True),
        "balance_attempts": attempts,
        "_supervisor_cpu_s": round(per_process.get(server_pid, 0.0), 2),
    }
    return figures


def run_server(
    what: str,
    cmd: list[str],
    *,
    env: dict[str, str],
    tmp: Path,
    path: str,
    load: Load,
    args: argparse.Namespace,
    database: str,
) -> dict[str, Any]:
    port = _free_port()
    log = tmp / f"{what}.log"
    with child([*cmd, "--port", str(port)], env=env, cwd=tmp, log=log) as c:

        async def fire() -> dict[str, Any]:
            async with asyncio.timeout(LOAD_TIMEOUT_S):
                return await _fire(
                    f"http://127.0.0.1:{port}",
                    path,
                    load,
                    warmup=args.warmup,
                    alone=args.alone,
                    concurrency=args.concurrency,
                    server_pid=c.proc.pid,
                    server_alive=lambda: c.proc.poll() is None,
                    database=database,
                )

        try:
            figures = run_loop(fire())
        except TimeoutError:
            raise BenchError(f"{what}: the load did not finish within {LOAD_TIMEOUT_S} s\n{tail(log)}") from None
        except BenchError as exc:
            raise BenchError(f"{what}: {exc}\n{tail(log)}") from None
    figures["_log_lines"] = sum(1 for _ in log.open("rb"))
    return figures


async def _stored(url: str) -> dict[str, int]:
    rows = await _fetch(
        url,
        "SELECT (SELECT COUNT(*) FROM report WHERE source = 'miniapp') AS reports,"
        " (SELECT COUNT(DISTINCT idempotency_key) FROM report WHERE source = 'miniapp') AS keys,"
        " (SELECT COUNT(*) FROM report WHERE source = 'miniapp' AND flagged) AS flagged,"
        " (SELECT COUNT(*) FROM outbox WHERE task = 'process_report') AS outbox,"
        " (SELECT COUNT(DISTINCT (args->>'report_id')) FROM outbox WHERE task = 'process_report') AS outbox_reports,"
        " (SELECT COUNT(*) FROM outbox o JOIN report r ON r.id = (o.args->>'report_id')::bigint"
        "   WHERE o.task = 'process_report' AND r.source = 'miniapp') AS matched",
    )
    return {k: int(v) for k, v in dict(rows[0]).items()}


# --- profile --------------------------------------------------------------------------------------------------


async def _asgi_post(app: Any, path: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    """One request straight into the ASGI app (no HTTP, no client): its status."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }
    done = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal done
        if not done:
            done = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


# (key, label, owner "module" or "module:Class", attribute). Looked up at call time by their callers, so wrapping the
# attribute times every call.
PIECES = (
    ("hit", "RateLimiter.hit ×3 (per address, per citizen, reports per hour): Redis INCR+EXPIRE",
     "core.ratelimit:RateLimiter", "hit"),
    ("authenticate", "authenticate: SELECT citizen_session JOIN citizen", "miniapp_api.deps", "authenticate"),
    ("sync_deps", "sync dependencies (settings_of, limiter_of, gateway) sent to the thread pool",
     "fastapi.dependencies.utils", "run_in_threadpool"),
    ("get_or_none", "Report.get_or_none ×2 (replay check in the view, again in submit_report)",
     "core.reports.models:Report", "get_or_none"),
    ("check_text", "run_in_threadpool(check_text) (demo gateway: the thread hop only)", "miniapp_api.citizen",
     "run_in_threadpool"),
    ("submit_report", "submit_report, in all", "miniapp_api.citizen", "submit_report"),
    ("_validate", "‥ _validate: checks, spatial index locate (GCJ-02 → WGS-84), subclass (cached)",
     "core.reports.service", "_validate"),
)  # fmt: skip
INSIDE_SUBMIT = ("_validate",)


@dataclass
class Pieces:
    wall: dict[str, float]
    cpu: dict[str, float]  # CPU of the event-loop thread while the piece ran (at concurrency 1: the piece's own)
    calls: Counter[str]


@contextlib.contextmanager
def timed_pieces(pieces: tuple[tuple[str, str, str, str], ...] = PIECES) -> Iterator[Pieces]:
    """Wrap the pieces (key, label, "module[:Class]", attribute) to add up their wall time and the event-loop
    thread's CPU time, and count their calls."""
    import importlib

    keys = [key for key, _, _, _ in pieces]
    out = Pieces(dict.fromkeys(keys, 0.0), dict.fromkeys(keys, 0.0), Counter())
    undo: list[tuple[Any, str, Any, bool]] = []

    def timer(key: str, fn: Any) -> Any:
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            t, c = time.perf_counter(), time.thread_time()
            try:
                return await fn(*args, **kwargs)
            finally:
                out.wall[key] += time.perf_counter() - t
                out.cpu[key] += time.thread_time() - c
                out.calls[key] += 1

        return wrapper

    for key, _, where, attr in pieces:
        module, _, cls = where.partition(":")
        owner = importlib.import_module(module)
        if cls:
            owner = getattr(owner, cls)
            original = owner.__dict__.get(attr)
            if original is None:  # inherited (Model.get_or_none): wrap the bound classmethod, delete afterwards
                setattr(owner, attr, timer(key, getattr(owner, attr)))
                undo.append((owner, attr, None, True))
                continue
            if isinstance(original, classmethod):
                replacement: Any = classmethod(timer(key, original.__func__))
            else:
                replacement = timer(key, original)
        else:
            original = getattr(owner, attr)
            replacement = timer(key, original)
        undo.append((owner, attr, original, False))
        setattr(owner, attr, replacement)
    try:
        yield out
    finally:
        for owner, attr, original, inherited in reversed(undo):
            if inherited:
                delattr(owner, attr)
            else:
                setattr(owner, attr, original)


@contextlib.contextmanager
def counting_redis() -> Iterator[list[int]]:
    """Counts Redis round trips of the rate limiter (one pipeline of INCR + EXPIRE per hit)."""
    from core.ratelimit import RateLimiter

    original = RateLimiter._count
    count = [0]

    async def counted(self: Any, key: str, window_s: int) -> Any:
        count[0] += 1
        return await original(self, key, window_s)

    RateLimiter._count = counted  # type: ignore[method-assign]
    try:
        yield count
    finally:
        RateLimiter._count = original  # type: ignore[method-assign]


def profile_case(
    url: str,
    database: str,
    load: Load,
    tmp: Path,
    *,
    alone: int,
    loaded: int,
    concurrency: int,
    log_level: str,
    dump: Path | None = None,
) -> dict[str, Any]:
    """The app in this process, called through ASGI (no HTTP, no client): pieces of a request at concurrency 1 (wall
    and CPU), SQL and Redis per request, the rate at `concurrency`, then the same under cProfile."""
    from core.geo.service import forget_spatial_index
    from core.settings import Settings
    from tongguan.app import create_app

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        redis_url=REDIS_URL,
        var_dir=tmp / "var",
        rate_ip_per_minute=1_000_000,
        log_level=log_level,
        log_json=False,
    )
    warm, counted = 20, 50
    needed = warm + alone + counted + 2 * loaded
    if len(load.bodies) < needed:
        raise BenchError(f"profile: {len(load.bodies)} prepared requests, {needed} needed")
    heads = [[(k.lower().encode(), v.encode()) for k, v in h.items()] for h in load.headers]
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    profiler = cProfile.Profile()

    async def work() -> dict[str, Any]:
        forget_spatial_index()
        app = create_app(settings)  # sets up logging on stderr, which is sent to a file below
        statuses: Counter[int] = Counter()
        todo = iter(range(needed))

        async def post(i: int) -> None:
            statuses[await _asgi_post(app, PATH_TONGGUAN, load.bodies[i], heads[i])] += 1

        async def serial(n: int) -> None:
            for _ in range(n):
                await post(next(todo))

        async def concurrent(n: int) -> tuple[float, float]:
            batch = iter([next(todo) for _ in range(n)])

            async def caller() -> None:
                for i in batch:
                    await post(i)

            cpu0, started = time.process_time(), time.perf_counter()
            await asyncio.gather(*(caller() for _ in range(concurrency)))
            return time.perf_counter() - started, time.process_time() - cpu0

        async with app.router.lifespan_context(app):
            await serial(warm)  # the spatial index, the subclass cache, pool connections
            with timed_pieces() as pieces:
                cpu0, started = time.process_time(), time.perf_counter()
                await serial(alone)
                alone_wall, alone_cpu = time.perf_counter() - started, time.process_time() - cpu0
            with counting_queries() as sql, counting_redis() as redis_calls:
                await serial(counted)
            watch = CpuWatch(database)
            loaded_wall, loaded_cpu = await concurrent(loaded)
            spent = watch.spent()
            profiler.enable()
            profiled_wall, _ = await concurrent(loaded)
            profiler.disable()
        forget_spatial_index()
        return {
            "statuses": statuses,
            "pieces": pieces,
            "sql": sql.counts,
            "redis_calls": redis_calls[0],
            "alone_wall": alone_wall,
            "alone_cpu": alone_cpu,
            "loaded_wall": loaded_wall,
            "loaded_cpu": loaded_cpu,
            "profiled_wall": profiled_wall,
            "postgres_cpu": spent["postgres"] + spent["postgres_shared"],
            "redis_cpu": spent["redis"],
        }

    console.print(
        f"[bold]profile[/bold]: the app in this process through ASGI, {alone} requests one at a time (pieces timed),"
        f" {counted} with SQL counted, {loaded:,} at concurrency {concurrency}, {loaded:,} more under cProfile …"
    )
    redis_flush()  # the rate-limit counters of the run before
    try:
        with (tmp / "profile.log").open("w") as sink, contextlib.redirect_stderr(sink):
            result = run_loop(work())  # uvloop, as in the servers
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        redis_flush()
    if set(result["statuses"]) != {202}:
        raise BenchError(f"profile: answers {dict(result['statuses'])}\n{tail(tmp / 'profile.log')}")

    pieces: Pieces = result["pieces"]
    ms = 1000 / alone
    wall, cpu = result["alone_wall"], result["alone_cpu"]
    # get_or_none runs once in the view and once inside submit_report (_existing): half of it is inside.
    inner = {k: v["submit_report"] - v["_validate"] - v["get_or_none"] / 2 for k, v in (("wall", pieces.wall),
             ("cpu", pieces.cpu))}  # fmt: skip
    outer = [key for key, _, _, _ in PIECES if key not in INSIDE_SUBMIT]
    rest = {
        "wall": wall - sum(pieces.wall[a] for a in outer) + pieces.wall["get_or_none"] / 2,
        "cpu": cpu - sum(pieces.cpu[a] for a in outer) + pieces.cpu["get_or_none"] / 2,
    }
    rows: list[tuple[str, str, str, str]] = [
        ("one request at a time (ASGI call, no HTTP), in all", f"{wall * ms:.2f} ms", f"{cpu * ms:.2f} ms", "100 %")
    ]
    for attr, label, _, _ in PIECES:
        rows.append(
            (
                label,
                f"{pieces.wall[attr] * ms:.2f} ms",
                f"{pieces.cpu[attr] * ms:.2f} ms",
                f"{pieces.cpu[attr] / cpu:.0%}",
            )
        )
        if attr == INSIDE_SUBMIT[-1]:
            rows.append(
                ("‥ the rest of it: _existing (above), BEGIN, INSERT report, INSERT outbox, COMMIT",
                 f"{inner['wall'] * ms:.2f} ms", f"{inner['cpu'] * ms:.2f} ms", f"{inner['cpu'] / cpu:.0%}")
            )  # fmt: skip
    rows.append(
        ("the rest: middleware, routing, dependencies, pydantic in/out, access log", f"{rest['wall'] * ms:.2f} ms",
         f"{rest['cpu'] * ms:.2f} ms", f"{rest['cpu'] / cpu:.0%}")
    )  # fmt: skip
    per_request_sql = {k: v / counted for k, v in result["sql"].most_common()}
    rows.append(
        ("SQL statements per request (BEGIN/COMMIT not counted)", f"{sum(per_request_sql.values()):.1f}", "", "")
    )
    rows.append(("Redis round trips per request", f"{result['redis_calls'] / counted:.1f}", "", ""))
    lw, lc = result["loaded_wall"], result["loaded_cpu"]
    rows.append(
        (f"at concurrency {concurrency}: requests/s of this one process", f"{loaded / lw:,.0f}/s",
         f"{1000 * lc / loaded:.2f} ms", "")
    )  # fmt: skip
    rows.append(("‥ PostgreSQL CPU per request", "", f"{1000 * result['postgres_cpu'] / loaded:.2f} ms", ""))
    rows.append(("‥ Redis CPU per request", "", f"{1000 * result['redis_cpu'] / loaded:.2f} ms", ""))
    table = Table(
        title="where the time of one request goes (in-process, one worker; CPU = the event-loop thread's)",
        title_justify="left",
    )
    for col in ("piece", "wall", "CPU", "CPU share"):
        table.add_column(col, justify="left" if col == "piece" else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print("SQL per request: " + ", ".join(f"{k} {v:.2f}" for k, v in per_request_sql.items()))
    console.print("calls per request: " + ", ".join(f"{k} {v / alone:.1f}" for k, v in pieces.calls.items()))

    if dump is not None:
        profiler.dump_stats(dump)
        console.print(f"cProfile stats written to {dump}")
    top = _top(profiler, 25)
    console.print(
        f"[bold]cProfile at concurrency {concurrency}, {loaded:,} requests ({loaded / result['profiled_wall']:,.0f}/s"
        " with the profiler): top 25 by self time[/bold] (waiting for PostgreSQL and Redis is epoll; a coroutine's"
        " calls count each resumption)"
    )
    for e in top["self"]:
        console.print(
            f"  {e['tottime_s']:7.3f} s self  {e['cumtime_s']:7.3f} s cum  {e['calls']:>9,} calls  {e['function']}",
            markup=False,
            soft_wrap=True,
        )
    console.print("[bold]self time summed by package[/bold]")
    for pkg, seconds in top["packages"]:
        console.print(f"  {seconds:7.3f} s  {pkg}", markup=False)
    return {
        "figures": {
            "alone_ms_per_request": round(wall * ms, 3),
            "alone_cpu_ms_per_request": round(cpu * ms, 3),
            **{f"{a}_ms": round(pieces.wall[a] * ms, 3) for a in pieces.wall},
            **{f"{a}_cpu_ms": round(pieces.cpu[a] * ms, 3) for a in pieces.cpu},
            "transaction_ms": round(inner["wall"] * ms, 3),
            "transaction_cpu_ms": round(inner["cpu"] * ms, 3),
            "rest_ms": round(rest["wall"] * ms, 3),
            "rest_cpu_ms": round(rest["cpu"] * ms, 3),
            "sql_per_request": round(sum(per_request_sql.values()), 2),
            "redis_per_request": round(result["redis_calls"] / counted, 2),
            "inprocess_per_s": round(loaded / lw, 1),
            "inprocess_cpu_ms_per_request": round(1000 * lc / loaded, 3),
            "inprocess_postgres_cpu_ms_per_request": round(1000 * result["postgres_cpu"] / loaded, 3),
        },
        "notes": {
            "sql_per_request": {k: round(v, 2) for k, v in per_request_sql.items()},
            "profile_top_tottime": top["self"][:15],
            "profile_packages": top["packages"],
        },
    }


def _top(profiler: cProfile.Profile, n: int) -> dict[str, Any]:
    stats = pstats.Stats(profiler, stream=io.StringIO())
    entries = []
    packages: Counter[str] = Counter()
    for (file, line, func), (_cc, ncalls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        short = file
        for marker in ("site-packages/", "/work/main/", "/lib/python3.11/"):
            if marker in file:
                short = file.split(marker, 1)[1]
                break
        where = f"{short}:{line}({func})" if line else func
        entries.append(
            {"function": where, "calls": int(ncalls), "tottime_s": round(tottime, 3), "cumtime_s": round(cumtime, 3)}
        )
        package = short.split("/", 1)[0] if "/" in short else ("builtins" if not line else short)
        if package.endswith(".py"):
            package = "stdlib:" + package
        packages[package] += tottime
    return {
        "self": sorted(entries, key=lambda e: -e["tottime_s"])[:n],
        "packages": [(k, round(v, 3)) for k, v in packages.most_common(15)],
    }


# --- main -----------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5_000, help="measured requests per server")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes of both servers")
    parser.add_argument("--warmup", type=int, default=200, help="requests at concurrency before measuring")
    parser.add_argument("--alone", type=int, default=100, help="requests one at a time (latency without queueing)")
    parser.add_argument("--citizens", type=int, default=0, help=f"default: one per {PER_CITIZEN} requests sent")
    parser.add_argument("--log-level", default="INFO", help="TG_LOG_LEVEL of both servers (INFO: access logs on)")
    parser.add_argument("--parts", default="tongguan,bare", help="comma-separated: tongguan, bare, profile")
    parser.add_argument("--profile", action="store_true", help="profile in-process even when the target is met")
    parser.add_argument(
        "--profile-requests",
        type=int,
        default=1_000,
        help="requests at concurrency in-process, and as many under cProfile",
    )
    parser.add_argument("--profile-dump", type=Path, help="also write the cProfile stats to this file (pstats)")
    args = parser.parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if set(parts) - {"tongguan", "bare", "profile"}:
        parser.error(f"unknown parts {sorted(set(parts) - {'tongguan', 'bare', 'profile'})}")
    if args.concurrency < 1 or args.requests < 1 or args.warmup < 0 or args.alone < 0:
        parser.error("--requests and --concurrency must be positive, --warmup and --alone not negative")
    ready = services_ready(BENCH)
    if ready is None:
        return
    sniffio_shim = quiet_sniffio()
    sent = args.warmup + args.alone + args.requests
    prof_alone = max(args.alone, 100)
    prof_sent = 70 + prof_alone + 2 * args.profile_requests  # see profile_case; the profile may run (target missed)
    citizens = args.citizens or math.ceil(max(sent, prof_sent) / PER_CITIZEN)
    per_citizen = math.ceil(sent / citizens)
    if per_citizen > 20:
        console.print(
            f"[yellow]{per_citizen} reports per citizen: over TG_RATE_REPORTS_PER_HOUR's default of 20[/yellow]"
        )
    notes_all = {
        **ready,
        "scale": "small",
        "workers": args.workers,
        "log_level": args.log_level,
        "citizens": citizens,
        "reports_per_citizen": per_citizen,
        "rate_ip_per_minute": 1_000_000,
        "wechat": "demo gateway (no TG_MINIAPP_APPID): content check answered locally",
        "load_generator": f"httpx, {args.concurrency} clients of one connection each"
        + (", sniffio marked absent" if sniffio_shim else ""),
    }
    console.print(
        f"[bold]miniapp[/bold]: POST {PATH_TONGGUAN} on tongguan serve --workers {args.workers} (PostgreSQL"
        f" {ready['postgres']}, Redis {REDIS_URL}) vs POST {PATH_BARE} on a bare FastAPI app; {args.requests:,}"
        f" requests at concurrency {args.concurrency} after {args.warmup} warm-up and {args.alone} one at a time;"
        f" {citizens:,} citizens, ≤ {per_citizen} reports each."
    )
    console.print(
        "  Settings: TG_RATE_IP_PER_MINUTE=1000000 (every request comes from 127.0.0.1; the default 300/min per"
        " address would refuse them); no TG_MINIAPP_APPID, so the demo gateway answers the content-security check"
        " locally — with real WeChat every report also waits for msg_sec_check over the network (in a thread);"
        f" TG_LOG_LEVEL={args.log_level} on both servers."
    )
    results: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    with temp_dir(BENCH) as tmp, pg_database(BENCH) as (name, url):
        try:
            console.print("seeding the small city into PostgreSQL …")
            seed_s = seed_database(url, tmp)
            t = time.perf_counter()
            tokens, points = asyncio.run(_prepare(url, citizens, SEED))
            console.print(
                f"  seeded in {fmt_s(seed_s)}; {len(tokens):,} citizens signed in and {len(points)} points taken in"
                f" {fmt_s(time.perf_counter() - t)}"
            )
            load = build_load(tokens, points, sent, SEED, "tg")
            env = child_env(var_dir=tmp / "var", database_url=url) | {
                "TG_REDIS_URL": REDIS_URL,
                "TG_RATE_IP_PER_MINUTE": "1000000",
                "TG_LOG_LEVEL": args.log_level,
            }
            if "tongguan" in parts:
                redis_flush()
                console.print(f"[bold]tongguan[/bold]: tongguan serve --workers {args.workers} …")
                cmd = [TONGGUAN, "serve", "--host", "127.0.0.1", "--workers", str(args.workers)]
                figures = run_server(
                    "tongguan", cmd, env=env, tmp=tmp, path=PATH_TONGGUAN, load=load, args=args, database=name
                )
                stored = asyncio.run(_stored(url))
                figures["_stored"] = stored
                figures["stored_reports"] = stored["reports"]
                figures["stored_outbox"] = stored["outbox"]
                ok = (
                    stored["reports"] == stored["keys"] == stored["outbox"] == stored["outbox_reports"]
                    == stored["matched"] == sent
                )  # fmt: skip
                figures["db_ok"] = int(ok)
                if not ok:
                    problems.append(f"database: {stored}, expected {sent:,} reports and outbox entries")
                if figures["non_202"]:
                    problems.append(f"tongguan answered {figures['_answers']}")
                results["tongguan"] = figures
                redis_flush()
            if "bare" in parts:
                console.print(f"[bold]bare[/bold]: python -m bench.bare_app --workers {args.workers} …")
                cmd = [str(VENV_BIN / "python"), "-m", "bench.bare_app", "--host", "127.0.0.1"]
                cmd += ["--workers", str(args.workers)]
                bare_env = env | {"PYTHONPATH": str(REPO)}
                figures = run_server(
                    "bare", cmd, env=bare_env, tmp=tmp, path=PATH_BARE, load=load, args=args, database="-"
                )
                if figures["non_202"]:
                    problems.append(f"bare answered {figures['_answers']}")
                results["bare"] = figures
            if "tongguan" in results and "bare" in results:
                results["tongguan"]["bare_per_s"] = results["bare"]["per_s"]
                results["tongguan"]["ratio_to_bare"] = round(results["tongguan"]["per_s"] / results["bare"]["per_s"], 3)
            for case, figures in results.items():
                nums, notes = _split(figures)
                if case == "tongguan":
                    nums["target_met"] = int(nums["per_s"] >= TARGET_PER_S)
                record(BENCH, case, nums, notes | notes_all)
            if results:
                print_results(results, args)
            missed = "tongguan" in results and results["tongguan"]["per_s"] < TARGET_PER_S
            if "profile" in parts or args.profile or missed:
                prof_load = build_load(tokens, points, prof_sent, SEED + 1, "prof")
                prof = profile_case(
                    url,
                    name,
                    prof_load,
                    tmp,
                    alone=prof_alone,
                    loaded=args.profile_requests,
                    concurrency=args.concurrency,
                    log_level=args.log_level,
                    dump=args.profile_dump,
                )
                record(BENCH, "profile", prof["figures"], prof["notes"] | notes_all)
        finally:
            with contextlib.suppress(Exception):
                redis_flush()
    if problems:
        raise BenchError("; ".join(problems))


def print_results(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    cases = [c for c in ("tongguan", "bare") if c in results]
    heads = {"tongguan": f"tongguan {PATH_TONGGUAN}", "bare": f"bare FastAPI {PATH_BARE}"}
    table = Table(
        title=f"{args.requests:,} POSTs at concurrency {args.concurrency}, uvicorn --workers {args.workers},"
        f" {os.cpu_count()} cores, log level {args.log_level}",
        title_justify="left",
    )
    table.add_column("figure")
    for c in cases:
        table.add_column(heads[c], justify="right")
    table.add_column("target", justify="right")
    table.add_column("")

    def row(label: str, fmt: Callable[[dict[str, Any]], str], target: str = "", ok: bool | None = None) -> None:
        table.add_row(label, *(fmt(results[c]) for c in cases), target, verdict(ok))

    tg = results.get("tongguan")
    row("requests/s", lambda f: f"{f['per_s']:,.0f}", f"≥ {TARGET_PER_S:,.0f}", None if tg is None else
        tg["per_s"] >= TARGET_PER_S)  # fmt: skip
    row("p50 / p90 latency", lambda f: f"{f['p50_ms']:,.1f} / {f['p90_ms']:,.1f} ms")
    row("p99 latency", lambda f: f"{f['p99_ms']:,.1f} ms")
    row("max latency", lambda f: f"{f['max_ms']:,.1f} ms")
    row(f"one at a time ({args.alone}): p50 / p99", lambda f: f"{f['alone_p50_ms']:,.2f} / {f['alone_p99_ms']:,.2f} ms")
    row("answers other than 202", lambda f: f"{f['non_202']:,}" + (f" {f['_answers']}" if f["non_202"] else ""))
    row("server CPU per request", lambda f: f"{f['server_cpu_ms_per_request']:,.2f} ms")
    row("PostgreSQL CPU per request", lambda f: f"{f['postgres_cpu_ms_per_request']:,.2f} ms")
    row("load generator (httpx) CPU per request", lambda f: f"{f['client_cpu_ms_per_request']:,.2f} ms")
    row(
        "busy cores: server / PostgreSQL / Redis / client",
        lambda f: (
            f"{f['server_busy_cores']:.2f} / {f['postgres_cpu_s'] / f['wall_s']:.2f} /"
            f" {f['redis_cpu_s'] / f['wall_s']:.2f} / {f['client_busy_cores']:.2f}"
        ),
    )
    row("connections by worker (connect rounds)", lambda f: " + ".join(str(n) for n in f["_connections_by_worker"])
        + f" ({f['balance_attempts']})")  # fmt: skip
    row("server CPU by worker (supervisor)", lambda f: " + ".join(f"{v:.1f}" for v in f["_worker_cpu_s"][:args.workers])
        + f" s ({f['_supervisor_cpu_s']:.1f})")  # fmt: skip
    row(f"machine busy (of {os.cpu_count()} cores); other processes", lambda f: f"{f['machine_busy_cores']:.2f};"
        f" {f['other_busy_cores']:.2f} cores")  # fmt: skip
    row(f"CPU-bound ceiling: {os.cpu_count()} cores ÷ (server + PostgreSQL + Redis CPU per request)",
        lambda f: f"{f['cpu_bound_per_s']:,.0f}/s")  # fmt: skip
    if tg is not None:
        row("reports / outbox entries stored", lambda f: f"{f['stored_reports']:,} / {f['stored_outbox']:,}"
            if "stored_reports" in f else "—", f"{tg['sent']:,} each", bool(tg["db_ok"]))  # fmt: skip
    if "ratio_to_bare" in (tg or {}):
        table.add_row("ratio tongguan ÷ bare (requests/s)", f"{tg['ratio_to_bare']:.2f}", "", "", "")  # type: ignore[index]
    console.print(table)
    for c in cases:
        busy = results[c]["_worker_cpu_s"][: args.workers]
        if len(busy) > 1 and busy[0] > 0.7 * sum(busy):
            console.print(
                f"[yellow]{c}: one uvicorn worker did {busy[0] / sum(busy):.0%} of the work[/yellow] (its connections"
                " landed unevenly: the workers share one listening socket); the rate is not that of both cores"
            )
    if tg is not None:
        console.print(
            f"target ≥ {TARGET_PER_S:,.0f} req/s on {os.cpu_count()} cores: "
            + ("[green]met[/green]" if tg["per_s"] >= TARGET_PER_S else "[red]missed[/red]")
            + f" ({tg['per_s']:,.0f} req/s; the load generator shares the cores: it used"
            f" {tg['client_busy_cores']:.2f} of them)"
        )


if __name__ == "__main__":
    main_guard(BENCH, main)
