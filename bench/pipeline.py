"""The intake pipeline on PostgreSQL + Redis: reports/s to a dispatched case, hotline intake latency, and the
duplicate lookup among 1,000,000 open cases.

A `tg_bench_pipeline_tpl_*` database is migrated and seeded with the city-scale synthetic city (51,495 unit
grids, no components: no report here names one) by `tongguan migrate` / `tongguan seed` as child processes;
every case below runs in its own copy of it (CREATE DATABASE … TEMPLATE), dropped afterwards. Points are
uniform inside uniformly drawn unit grids (core.geo.synth.random_points_in on the stored polygons), so reports
are spread like the grids are (denser downtown) and almost none is a duplicate of another. Redis: a dedicated
database (TG_BENCH_REDIS_URL, default redis://127.0.0.1:6379/12), flushed before and after.

1. throughput — `--reports` N reports (source field_app, reporter staff: trusted, so no 核实 and they go
   straight to dispatched) with subclasses that auto-dispatch (event 01xx/05xx, component 01xx/02xx) are
   stored first with `submit_report` in this process; then `tongguan worker --processes K` (child process,
   TG_DATABASE_URL / TG_REDIS_URL set) runs until no report is `received`. Wall time from starting the worker
   (spawn, imports, spatial index, relay all included) and the steady rate (first to last `processed_at`);
   cases, reports and outbox entries by status; CPU of the worker's process tree, of PostgreSQL (this database's
   backends and the shared WAL writer / checkpointer) and Redis, and of anything else on the machine; what the
   worker's busy connections were doing (pg_stat_activity sampled every 0.1 s). For K in `--processes`.
2. profile — when a throughput case misses 200/s (or with --profile, or `--parts profile`):
   `jobs.runner.run_entries` in this process over batches of 25 (as one rq job does) on a fresh copy: its rate
   without rq and relay, Python and PostgreSQL CPU per report, wall time per step of the job (wrapped
   functions), how long the day's case_counter row stays locked, SQL statements per report (tortoise's query
   log) and the cost of one ORM statement against the same SQL on asyncpg; then cProfile of the same work on
   another copy: the top costs.
3. intake — `tongguan serve --workers W` (TG_REDIS_URL set, so no job runs inside it; no worker runs) and
   POST /staff/v1/reports (hotline intake, signed in as the demo dispatcher) from httpx: 100 warm-up requests,
   200 one at a time (latency without queueing), then `--requests` at `--concurrency`: p50 / p90 / p99 / max
   and requests/s, CPU per request of the server processes.
4. duplicates — `--cases` open case_file rows (COPY through core.bulk.insert_rows: unique numbers, every
   subclass of the catalog, random points inside the city, opened within the last 72 h), ANALYZE, then
   core.reports.flows.find_duplicate for `--lookups` random points and subclasses: mean / p50 / p99 ms; and
   EXPLAIN (ANALYZE, BUFFERS) of the SQL it issued (read from tortoise's query log), as planned for these
   values and as the generic plan a cached prepared statement may switch to.

    .venv/bin/python -m bench.pipeline [--parts throughput,profile,intake,duplicates] [--reports 5000]
        [--processes 1,2] [--profile] [--requests 2000] [--concurrency 16] [--api-workers 1]
        [--cases 1000000] [--lookups 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import logging
import os
import pstats
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from bench._common import (
    REDIS_URL,
    TONGGUAN,
    BenchError,
    child_env,
    console,
    fmt_int,
    fmt_s,
    main_guard,
    new_pg_name,
    pg_create,
    pg_database,
    pg_drop,
    pg_url,
    print_table,
    record,
    redis_flush,
    run_measured,
    services_ready,
    tail,
    temp_dir,
)
from core.geo.synth import random_points_in

BENCH = "pipeline"
SEED = 20261130
TARGET_PER_S = 200.0
# Subclasses whose cases the pipeline accepts, registers and dispatches without a person (catalog_v1.json).
AUTO_PREFIXES = {"event": ("01", "05"), "component": ("01", "02")}
WARMUP_REQUESTS = 100
UNLOADED_REQUESTS = 200
PIPELINE_TIMEOUT_S = 30 * 60


# --- the seeded city ------------------------------------------------------------------------------------------


@dataclass
class City:
    grid_codes: np.ndarray
    grid_geoms: np.ndarray
    subclasses: list[tuple[int, str, str, str]]  # id, kind, code, name — active catalog, auto-dispatch ones
    all_subclass_ids: np.ndarray  # every subclass of the active catalog

    def points(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """n points uniform inside uniformly drawn grids (rounded to 7 decimals, still inside): grid index, lon, lat."""
        gi = rng.integers(len(self.grid_codes), size=n)
        lon, lat = random_points_in(self.grid_geoms, gi, rng, decimals=7)
        return gi, lon, lat


async def _load_city(url: str) -> City:
    conn = await _pg(url)
    try:
        grids = await conn.fetch("SELECT code, geometry FROM unit_grid ORDER BY code")
        subs = await conn.fetch(
            "SELECT s.id, s.kind, s.code, s.name, s.auto_dispatch FROM catalog_subclass s"
            " JOIN catalog_version v ON v.id = s.catalog_id WHERE v.active ORDER BY s.kind, s.code"
        )
    finally:
        await conn.close()
    auto = [
        (s["id"], s["kind"], s["code"], s["name"])
        for s in subs
        if s["auto_dispatch"] and s["code"][:2] in AUTO_PREFIXES.get(s["kind"], ())
    ]
    if not auto:
        raise BenchError("the active catalog has no auto-dispatch subclass in event 01xx/05xx, component 01xx/02xx")
    return City(
        grid_codes=np.asarray([g["code"] for g in grids]),
        grid_geoms=shapely.from_geojson(np.asarray([g["geometry"] for g in grids], dtype=object)),
        subclasses=auto,
        all_subclass_ids=np.asarray([s["id"] for s in subs]),
    )


async def _pg(url: str):
    import asyncpg

    return await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))


async def _fetch(url: str, sql: str) -> list[Any]:
    conn = await _pg(url)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


def _by_status(url: str, table: str) -> dict[str, int]:
    rows = asyncio.run(_fetch(url, f"SELECT status, COUNT(*) AS n FROM {table} GROUP BY status ORDER BY status"))
    return {r["status"]: int(r["n"]) for r in rows}


def seed_template(tmp: Path) -> tuple[str, float]:
    """Migrate and seed a template database; returns its name and the seed wall time."""
    name = new_pg_name("pipeline_tpl")
    url = pg_create(name)
    try:
        env = child_env(var_dir=tmp / "var", database_url=url)
        log = tmp / "seed.log"
        console.print("seeding the city-scale city into PostgreSQL (--components 0) …")
        run_measured([TONGGUAN, "migrate"], env=env, cwd=tmp, log=log, timeout_s=300, what="migrate")
        cmd = [TONGGUAN, "seed", "--scale", "city", "--components", "0"]
        seeded = run_measured(cmd, env=env, cwd=tmp, log=log, timeout_s=1800, what="seed")
    except BaseException:
        pg_drop(name)
        raise
    return name, seeded.wall_s


# --- in-process database work ---------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _opened(url: str):
    """The ORM on `url` in this process, with the process caches (spatial index …) dropped before and after."""
    from core.db import db_context
    from core.geo.service import forget_spatial_index
    from core.settings import get_settings

    forget_spatial_index()
    try:
        async with db_context(get_settings(), url=url):
            yield
    finally:
        forget_spatial_index()


async def _submit(city: City, n: int, seed: int, concurrency: int = 4) -> float:
    """Store n trusted reports with submit_report (concurrently, as channels would); returns the wall time."""
    from core.geo.service import get_spatial_index
    from core.reports.service import NewReport, submit_report

    rng = np.random.default_rng(seed)
    _, lon, lat = city.points(n, rng)
    pick = rng.integers(len(city.subclasses), size=n)
    await get_spatial_index()  # built once here, as in a running channel process; not part of the timing
    todo = iter(range(n))

    async def channel() -> None:
        for i in todo:
            _, kind, code, name = city.subclasses[pick[i]]
            await submit_report(
                NewReport(
                    source="field_app",
                    reporter_type="staff",
                    reporter_id=f"bench-{i % 64}",
                    lon=float(lon[i]),
                    lat=float(lat[i]),
                    text=f"{name}（基准测试 {i}）",
                    subclass=f"{kind}:{code}",
                )
            )

    started = time.perf_counter()
    await asyncio.gather(*(channel() for _ in range(concurrency)))
    return time.perf_counter() - started


def submit_reports(url: str, city: City, n: int, seed: int) -> float:
    async def run() -> float:
        async with _opened(url):
            return await _submit(city, n, seed)

    return asyncio.run(run())


# --- child processes ------------------------------------------------------------------------------------------


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    fields = [float(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    total = sum(fields[:8])
    idle = fields[3] + fields[4] + fields[7]  # idle, iowait, steal (time the hypervisor gave elsewhere)
    return (total - idle) / hz, total / hz


def _server_cpu(database: str) -> dict[int, tuple[str, float]]:
    """CPU seconds (user + system) so far of the server processes, by pid: (what, seconds). What is `postgres`
    (backends and autovacuum of `database`), `postgres_shared` (checkpointer, WAL writer …), `postgres_other`
    (backends of other databases: other work on this server) or `redis`."""
    hz = os.sysconf("SC_CLK_TCK")
    out: dict[int, tuple[str, float]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = stat.read_text()
            comm = text[text.index("(") + 1 : text.rindex(")")]
            if comm == "redis-server":
                what = "redis"
            elif comm == "postgres":
                # The process title: "postgres: 15/main: <user> <database> <client> <state>" for a backend.
                title = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                words = title.split()
                if f" {database} " in f" {title} ":
                    what = "postgres"
                elif len(words) >= 5 and ("(" in words[4] or words[4] == "[local]"):
                    what = "postgres_other"
                else:
                    what = "postgres_shared"
            else:
                continue
            parts = text.rsplit(")", 1)[1].split()
            out[int(stat.parent.name)] = (what, (int(parts[11]) + int(parts[12])) / hz)
    return out


class CpuWatch:
    """CPU seconds the server processes spend from now on, sampled by `poll()`: a backend that ends before the last
    sample (asyncpg replaces a connection after 50,000 queries) still counts up to its last sample. Also the whole
    machine's busy time and this process's own CPU, to tell what else ran meanwhile."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.start = _server_cpu(database)
        self.last = dict(self.start)
        self.busy0, self.total0 = _machine_busy()
        self.own0 = time.process_time()
        self.load_before = os.getloadavg()[0]

    def poll(self) -> None:
        self.last.update(_server_cpu(self.database))

    def spent(self) -> dict[str, float]:
        """CPU seconds by what (see _server_cpu), plus `machine` (all busy CPU), `bench` (this process), `cores`."""
        self.poll()
        out: dict[str, float] = dict.fromkeys(("postgres", "postgres_shared", "postgres_other", "redis"), 0.0)
        for pid, (what, cpu) in self.last.items():
            out[what] += cpu - self.start.get(pid, (what, 0.0))[1]
        busy, total = _machine_busy()
        out["machine"] = busy - self.busy0
        out["bench"] = time.process_time() - self.own0
        out["cores"] = (busy - self.busy0) / ((total - self.total0) / (os.cpu_count() or 1))
        return out


@dataclass
class Child:
    proc: subprocess.Popen
    log: Path
    started: float
    started_wall: float


@contextlib.contextmanager
def child(cmd: Sequence[str], *, env: dict[str, str], cwd: Path, log: Path) -> Iterator[Child]:
    """A long-running tongguan child in its own process group; SIGTERM (then SIGKILL) to the group at the end."""
    with log.open("ab") as out:
        out.write(f"$ {' '.join(cmd)}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            list(cmd), env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    handle = Child(proc, log, time.perf_counter(), time.time())
    try:
        yield handle
    finally:
        stop_child(handle)


def stop_child(c: Child, grace_s: float = 15.0) -> None:
    """Stop the child: SIGTERM to it (it stops its own workers), SIGKILL to its group after `grace_s`."""
    if c.proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(c.proc.pid, signal.SIGTERM)
    try:
        c.proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        pass
    # Whatever of the group is left (nothing, normally).
    with contextlib.suppress(ProcessLookupError):
        os.killpg(c.proc.pid, signal.SIGKILL)
    c.proc.wait()


# --- 1. throughput --------------------------------------------------------------------------------------------


ACTIVITY_SQL = """
SELECT state, wait_event_type, wait_event FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
"""


async def _wait_processed(
    url: str, n: int, c: Child, timeout_s: float, watch: CpuWatch, activity: Counter[str]
) -> float:
    """Poll until no report is `received`; returns the wall time since the child started. Meanwhile samples what
    the worker's connections are doing (pg_stat_activity) into `activity`."""
    conn = await _pg(url)
    try:
        last_left, last_print = n, time.perf_counter()
        while True:
            left = int(await conn.fetchval("SELECT COUNT(*) FROM report WHERE status = 'received'"))
            now = time.perf_counter()
            if left == 0:
                return now - c.started
            if c.proc.poll() is not None:
                raise BenchError(
                    f"the worker exited (code {c.proc.returncode}) with {left:,} reports left\n{tail(c.log)}"
                )
            if now - c.started > timeout_s:
                raise BenchError(f"{left:,} reports still received after {timeout_s:.0f} s\n{tail(c.log)}")
            if console.is_terminal and (left != last_left or now - last_print > 5):
                console.print(f"  {n - left:,} / {n:,} processed", end="\r")
                last_left, last_print = left, now
            if left < n:
                for row in await conn.fetch(ACTIVITY_SQL):
                    if row["state"] != "idle":  # the relay's and the pool's spare connections
                        activity[_activity(row["state"], row["wait_event_type"], row["wait_event"])] += 1
            watch.poll()
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


def _activity(state: str | None, wait_type: str | None, wait: str | None) -> str:
    if state == "idle in transaction":
        return "in a transaction, waiting for the worker (Python)"
    if wait_type in ("Lock", "LWLock", "IO", "IPC"):
        return f"waiting: {wait_type}:{wait}"
    return "running a statement"


def _tree_cpu(root: int) -> float:
    """user + system CPU seconds of a process and all its descendants (live ones, and the ended ones it waited for)."""
    hz = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            parts = stat.read_text().rsplit(")", 1)[1].split()
            pid = int(stat.parent.name)
            parent[pid] = int(parts[1])
            cpu[pid] = sum(int(x) for x in parts[11:15]) / hz  # utime, stime, cutime, cstime
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo += [p for p, pp in parent.items() if pp == pid and p not in tree]
    return sum(cpu.get(p, 0.0) for p in tree)


async def _steady(url: str, started_wall: float) -> tuple[float, float, float]:
    """(seconds from the worker's start to the first processed report, first → last span, reports in it)."""
    rows = await _fetch(
        url,
        "SELECT EXTRACT(EPOCH FROM MIN(processed_at)) AS a, EXTRACT(EPOCH FROM MAX(processed_at)) AS b,"
        " COUNT(*) AS n FROM report WHERE processed_at IS NOT NULL",
    )
    a, b, n = float(rows[0]["a"]), float(rows[0]["b"]), int(rows[0]["n"])
    return a - started_wall, b - a, n


def throughput_case(template: str, city: City, tmp: Path, *, processes: int, n: int) -> dict[str, Any]:
    with pg_database("pipeline_run", template=template) as (name, url):
        console.print(f"[bold]throughput, {processes} worker process(es)[/bold]: storing {n:,} reports …")
        intake_s = submit_reports(url, city, n, SEED + processes)
        redis_flush()
        env = child_env(var_dir=tmp / "var", database_url=url) | {"TG_REDIS_URL": REDIS_URL}
        log = tmp / f"worker_{processes}.log"
        console.print(f"  tongguan worker --processes {processes} …")
        watch = CpuWatch(name)
        activity: Counter[str] = Counter()
        with child([TONGGUAN, "worker", "--processes", str(processes)], env=env, cwd=tmp, log=log) as c:
            wall = asyncio.run(_wait_processed(url, n, c, PIPELINE_TIMEOUT_S, watch, activity))
            worker_cpu = _tree_cpu(c.proc.pid)
            spent = watch.spent()
            startup, span, counted = asyncio.run(_steady(url, c.started_wall))
        redis_flush()
        cases = _by_status(url, "case_file")
        reports = _by_status(url, "report")
        outbox = _by_status(url, "outbox")
    dispatched = cases.get("dispatched", 0)
    if outbox.get("dead", 0) or reports.get("received", 0):
        raise BenchError(f"jobs failed: outbox {outbox}, reports {reports}\n{tail(log)}")
    ours = worker_cpu + spent["postgres"] + spent["postgres_shared"] + spent["redis"] + spent["bench"]
    samples = sum(activity.values()) or 1
    return {
        "processes": processes,
        "reports": n,
        "intake_s": round(intake_s, 2),
        "intake_per_s": round(n / intake_s, 1),
        "wall_s": round(wall, 2),
        "per_s": round(n / wall, 1),
        "startup_s": round(startup, 2),
        "steady_per_s": round((counted - 1) / span, 1) if span > 0 else 0.0,
        "dispatched": dispatched,
        "dispatched_share": round(dispatched / n, 4),
        "cases": sum(cases.values()),
        "merged": reports.get("merged", 0),
        "queued": reports.get("queued", 0),
        "worker_cpu_s": round(worker_cpu, 2),
        "postgres_cpu_s": round(spent["postgres"] + spent["postgres_shared"], 2),
        "redis_cpu_s": round(spent["redis"], 2),
        "machine_busy_cores": round(spent["cores"], 2),
        "other_cpu_s": round(max(0.0, spent["machine"] - ours), 2),
        "load_before": round(watch.load_before, 2),
        "_activity": {k: round(v / samples, 3) for k, v in activity.most_common()},
        "_cases_by_status": cases,
        "_reports_by_status": reports,
        "_outbox_by_status": outbox,
    }


# --- 2. profile of the job function in-process ----------------------------------------------------------------


class _QueryCounter(logging.Handler):
    """Counts the SQL statements tortoise sends (its DEBUG log of every query), by their first words."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.counts: Counter[str] = Counter()
        self.last: tuple[str, Any] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if not record.args or not isinstance(record.args, tuple) or len(record.args) != 2:
            return
        sql, values = record.args
        if not isinstance(sql, str):
            return
        self.last = (sql, values)
        self.counts[_statement_kind(sql)] += 1


def _statement_kind(sql: str) -> str:
    words = sql.split()
    head = words[0].upper() if words else "?"
    if head in ("SELECT", "DELETE") and " FROM " in sql.upper():
        return f"{head} {_table(sql.split(' FROM ', 1)[1].split()[0])}"
    if head == "INSERT" and len(words) > 2:
        return f"INSERT {_table(words[2])}"
    if head == "UPDATE" and len(words) > 1:
        return f"UPDATE {_table(words[1])}"
    return head


def _table(word: str) -> str:
    return word.strip('"').split("(", 1)[0].strip('"').lower()


@contextlib.contextmanager
def counting_queries() -> Iterator[_QueryCounter]:
    log = logging.getLogger("tortoise.db_client")
    handler = _QueryCounter()
    level, propagate = log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    try:
        yield handler
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
        log.propagate = propagate


async def _entry_ids() -> list[int]:
    from core.outbox.models import OutboxEntry

    return list(await OutboxEntry.filter(task="process_report").order_by("id").values_list("id", flat=True))


# Wall time inside the job, per step: (label, owner, attribute). Module functions are looked up at call time by
# their callers (jobs.runner calls outbox.start_many, flows calls find_duplicate / route), so wrapping the attribute
# times every call; Work's methods are wrapped on the class.
PHASES = (
    ("outbox.start_many: read the batch, count the attempts (autocommit)", "core.outbox.service", "start_many"),
    ("flows.process_report: one transaction, in all", "", "process_report"),
    ("flows.find_duplicate (SELECT case_file)", "core.reports.flows", "find_duplicate"),
    ("org.route (SELECT routing_rule)", "core.reports.flows", "route"),
    ("Work.open: first event and clock, in memory", "core.cases.service:Work", "open"),
    (
        "Work.advance_automatically: accept, register, dispatch + SLA",
        "core.cases.service:Work",
        "advance_automatically",
    ),
    ("Work.save: number (upsert case_counter), INSERT case_file, INSERT case_event", "core.cases.service:Work", "save"),
    ("outbox.finish_many: mark the batch done (autocommit)", "core.outbox.service", "finish_many"),
)
INSIDE_PROCESS = ("find_duplicate", "route", "open", "advance_automatically", "save")


@contextlib.contextmanager
def timed_phases() -> Iterator[dict[str, float]]:
    """Wrap the PHASES to add up their wall time (the wrappers cost about a microsecond a call)."""
    import importlib

    timings: dict[str, float] = dict.fromkeys([attr for _, _, attr in PHASES], 0.0)
    undo: list[tuple[Any, str, Any]] = []

    def timer(attr: str, fn: Any) -> Any:
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                timings[attr] += time.perf_counter() - t

        return wrapper

    for _, where, attr in PHASES:
        if not where:
            continue
        module, _, cls = where.partition(":")
        owner = importlib.import_module(module)
        if cls:
            owner = getattr(owner, cls)
            original = owner.__dict__[attr]
            if isinstance(original, classmethod):
                replacement: Any = classmethod(timer(attr, original.__func__))
            else:
                replacement = timer(attr, original)
        else:
            original = getattr(owner, attr)
            replacement = timer(attr, original)
        undo.append((owner, attr, original))
        setattr(owner, attr, replacement)
    # jobs.runner finds process_report in the registry's table, bound at import.
    import core.cases.service as cases
    from jobs.registry import TASKS

    task, numbering = TASKS["process_report"], cases.next_number
    numbered: list[float] = []

    async def process_report(*args: Any, **kwargs: Any) -> Any:
        numbered.clear()
        try:
            return await task(*args, **kwargs)
        finally:
            # The day's case_counter row stays locked from the numbering upsert until the transaction ends.
            if numbered:
                timings["counter_lock"] += time.perf_counter() - numbered[0]

    async def next_number(*args: Any, **kwargs: Any) -> Any:
        numbered.append(time.perf_counter())
        return await numbering(*args, **kwargs)

    timings["counter_lock"] = 0.0
    TASKS["process_report"] = timer("process_report", process_report)
    cases.next_number = next_number
    try:
        yield timings
    finally:
        TASKS["process_report"], cases.next_number = task, numbering
        for owner, attr, original in reversed(undo):
            setattr(owner, attr, original)


async def _orm_cost(ids: list[int]) -> dict[str, float]:
    """µs per statement: outbox.finish's UPDATE through the ORM, and the same SQL on the same pool's connection."""
    from tortoise import connections

    from core import clock
    from core.outbox.models import OutboxEntry

    now = clock.now()
    t = time.perf_counter()
    for entry_id in ids:
        await OutboxEntry.filter(id=entry_id).update(status="done", finished_at=now, last_error="")
    orm = time.perf_counter() - t
    sql = "UPDATE outbox SET status = $1, finished_at = $2, last_error = $3 WHERE id = $4"
    async with connections.get("default").acquire_connection() as raw:
        t = time.perf_counter()
        for entry_id in ids:
            await raw.execute(sql, "done", now, "", entry_id)
        direct = time.perf_counter() - t
    return {"orm_update_us": 1e6 * orm / len(ids), "asyncpg_update_us": 1e6 * direct / len(ids)}


def profile_case(template: str, city: City, *, n: int, top: int = 25) -> dict[str, Any]:
    """run_entries in this process (no rq, no relay): rate, CPU split, wall per step and SQL per report, then
    cProfile of the same work on a new copy."""
    from jobs.runner import run_entries

    batch = 25

    async def plain(url: str) -> dict[str, Any]:
        async with _opened(url):
            await _submit(city, n, SEED + 7)
            ids = await _entry_ids()
            await run_entries(ids[:batch])  # warm: spatial index, classifier, caches — as a running worker is
            rest = ids[batch:]
            with timed_phases() as phases:
                watch, cpu0 = CpuWatch(url.rsplit("/", 1)[1]), time.process_time()
                started = time.perf_counter()
                for i in range(0, len(rest), batch):
                    await run_entries(rest[i : i + batch])
                wall = time.perf_counter() - started
                cpu, servers = time.process_time() - cpu0, watch.spent()
            sample = await _submit_and_ids(city, 200)
            with counting_queries() as counter:
                for i in range(0, len(sample), batch):
                    await run_entries(sample[i : i + batch])
            orm = await _orm_cost(sample)
            return {
                "reports": len(rest),
                "wall_s": wall,
                "python_cpu_s": cpu,
                "postgres_cpu_s": servers["postgres"] + servers["postgres_shared"],
                "phases": phases,
                "queries": counter.counts,
                "sampled": len(sample),
                "orm": orm,
            }

    async def profiled(url: str, profiler: cProfile.Profile) -> float:
        async with _opened(url):
            await _submit(city, n, SEED + 8)
            ids = await _entry_ids()
            await run_entries(ids[:batch])
            rest = ids[batch:]
            started = time.perf_counter()
            profiler.enable()
            for i in range(0, len(rest), batch):
                await run_entries(rest[i : i + batch])
            profiler.disable()
            return time.perf_counter() - started

    console.print(f"[bold]profile[/bold]: run_entries in-process over {n:,} reports in batches of {batch} …")
    with pg_database("pipeline_prof", template=template) as (_, url):
        result = asyncio.run(plain(url))
    profiler = cProfile.Profile()
    with pg_database("pipeline_prof", template=template) as (_, url):
        prof_wall = asyncio.run(profiled(url, profiler))

    reports, wall = result["reports"], result["wall_s"]
    ms = 1000 / reports
    phases = result["phases"]
    per_report = {k: v / result["sampled"] for k, v in result["queries"].most_common()}
    rows: list[tuple[str, str, str, bool | None]] = [
        ("reports/s, one process, no rq or relay", f"{reports / wall:,.1f}/s", "", None),
        ("wall per report", f"{wall * ms:.2f} ms", "100 %", None),
        ("  Python CPU of this process per report", f"{result['python_cpu_s'] * ms:.2f} ms", "", None),
        ("  PostgreSQL CPU per report (its processes)", f"{result['postgres_cpu_s'] * ms:.2f} ms", "", None),
    ]
    inner = sum(phases[a] for a in INSIDE_PROCESS)
    for label, _, attr in PHASES:
        indent = "  " if attr in INSIDE_PROCESS else ""
        rows.append((indent + label, f"{phases[attr] * ms:.2f} ms", f"{phases[attr] / wall:.0%}", None))
        if attr == INSIDE_PROCESS[-1]:
            rest = phases["process_report"] - inner
            label = "  rest: BEGIN, SELECT report FOR UPDATE, advisory lock, locate, UPDATE report, COMMIT"
            rows.append((label, f"{rest * ms:.2f} ms", f"{rest / wall:.0%}", None))
    outside = wall - phases["start_many"] - phases["finish_many"] - phases["process_report"]
    rows.append(("run_entries loop, logging", f"{outside * ms:.2f} ms", f"{outside / wall:.0%}", None))
    lock = phases["counter_lock"]
    rows.append(("case_counter row locked: numbering → COMMIT (serialises workers)", f"{lock * ms:.2f} ms", "", None))
    rows.append(("SQL statements per report (BEGIN/COMMIT not counted)", f"{sum(per_report.values()):.1f}", "", None))
    rows.append(("one UPDATE outbox through the ORM", f"{result['orm']['orm_update_us']:,.0f} µs", "", None))
    rows.append(("the same SQL on asyncpg directly", f"{result['orm']['asyncpg_update_us']:,.0f} µs", "", None))
    print_table(
        f"where the time goes: run_entries in-process, {reports:,} reports (wall clock per step)", rows, third="share"
    )
    console.print("SQL statements per report: " + ", ".join(f"{k} {v:.2f}" for k, v in per_report.items()))

    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    entries = []
    for (file, line, func), (_cc, ncalls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        short = file
        for marker in ("site-packages/", "/work/main/", "/lib/python3.11/"):
            if marker in file:
                short = file.split(marker, 1)[1]
        where = f"{short}:{line}({func})" if line else func
        entries.append({"function": where, "calls": ncalls, "tottime_s": tottime, "cumtime_s": cumtime})
    by_tot = sorted(entries, key=lambda e: -float(e["tottime_s"]))[:top]
    ours = [e for e in entries if str(e["function"]).startswith(("core/", "jobs/"))]
    by_cum = sorted(ours, key=lambda e: -float(e["cumtime_s"]))[:top]
    for title, items in (("self time (tottime)", by_tot), ("cumulative time, project code", by_cum)):
        console.print(
            f"[bold]cProfile of run_entries, {reports:,} reports: top {top} by {title}[/bold]"
            f" (wall {prof_wall:.1f} s with the profiler, profiled {total:.1f} s; waiting for PostgreSQL is"
            " epoll.poll; a coroutine's calls count each resumption)"
        )
        for e in items:
            console.print(
                f"  {float(e['tottime_s']):7.3f} s self  {float(e['cumtime_s']):7.3f} s cum"
                f"  {int(e['calls']):>9,} calls  {e['function']}",
                markup=False,
                soft_wrap=True,
            )
    return {
        "figures": {
            "inprocess_per_s": round(reports / wall, 1),
            "ms_per_report": round(wall * ms, 3),
            "python_cpu_ms_per_report": round(result["python_cpu_s"] * ms, 3),
            "postgres_cpu_ms_per_report": round(result["postgres_cpu_s"] * ms, 3),
            "sql_per_report": round(sum(per_report.values()), 2),
            **{f"{attr}_ms": round(phases[attr] * ms, 3) for attr in phases},
            **{k: round(v, 1) for k, v in result["orm"].items()},
        },
        "notes": {
            "sql_per_report": {k: round(v, 2) for k, v in per_report.items()},
            "profile_top_tottime": [
                {**e, "tottime_s": round(float(e["tottime_s"]), 3), "cumtime_s": round(float(e["cumtime_s"]), 3)}
                for e in by_tot[:12]
            ],
        },
    }


async def _submit_and_ids(city: City, n: int) -> list[int]:
    from core.outbox.models import OutboxEntry

    before = await OutboxEntry.all().order_by("-id").first()
    await _submit(city, n, SEED + 9, concurrency=1)
    query = OutboxEntry.filter(task="process_report")
    if before is not None:
        query = query.filter(id__gt=before.id)
    return list(await query.order_by("id").values_list("id", flat=True))


# --- 3. intake latency ----------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _fire(base: str, city: City, *, requests: int, concurrency: int, server_pid: int) -> dict[str, Any]:
    import httpx

    from core.seed import DEMO_PASSWORD

    rng = np.random.default_rng(SEED + 3)
    total = WARMUP_REQUESTS + UNLOADED_REQUESTS + requests
    _, lon, lat = city.points(total, rng)
    events = [s for s in city.subclasses if s[1] == "event"]
    pick = rng.integers(len(events), size=total)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
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
        headers = {"Authorization": f"Bearer {signed.json()['access_token']}"}

        latencies = np.zeros(total)
        statuses: Counter[int] = Counter()

        def body(i: int) -> dict[str, Any]:
            _, kind, code, name = events[pick[i]]
            return {
                "text": f"市民来电：{name}，请尽快处理（{i}）",
                "lon": float(lon[i]),
                "lat": float(lat[i]),
                "datum": "wgs84",
                "subclass": f"{kind}:{code}",
            }

        async def caller(todo: Iterator[int]) -> None:
            for i in todo:
                t = time.perf_counter()
                r = await client.post("/staff/v1/reports", json=body(i), headers=headers)
                latencies[i] = time.perf_counter() - t
                statuses[r.status_code] += 1

        warm = iter(range(WARMUP_REQUESTS))
        await asyncio.gather(*(caller(warm) for _ in range(concurrency)))
        # One request at a time: the latency without queueing, for comparison.
        first = WARMUP_REQUESTS + UNLOADED_REQUESTS
        await caller(iter(range(WARMUP_REQUESTS, first)))
        todo = iter(range(first, total))
        cpu0, own0 = _tree_cpu(server_pid), time.process_time()
        started = time.perf_counter()
        await asyncio.gather(*(caller(todo) for _ in range(concurrency)))
        wall = time.perf_counter() - started
        server_cpu, own_cpu = _tree_cpu(server_pid) - cpu0, time.process_time() - own0
    ms = latencies[first:] * 1000
    alone = latencies[WARMUP_REQUESTS:first] * 1000
    return {
        "requests": requests,
        "concurrency": concurrency,
        "unloaded_p50_ms": round(float(np.percentile(alone, 50)), 1),
        "unloaded_p99_ms": round(float(np.percentile(alone, 99)), 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p90_ms": round(float(np.percentile(ms, 90)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "max_ms": round(float(ms.max()), 1),
        "mean_ms": round(float(ms.mean()), 1),
        "per_s": round(requests / wall, 1),
        "server_cpu_ms_per_request": round(1000 * server_cpu / requests, 2),
        "server_busy_cores": round(server_cpu / wall, 2),
        "client_busy_cores": round(own_cpu / wall, 2),
        "_statuses": dict(statuses),
    }


def intake_case(
    template: str, city: City, tmp: Path, *, requests: int, concurrency: int, api_workers: int
) -> dict[str, Any]:
    with pg_database("pipeline_intake", template=template) as (_, url):
        redis_flush()
        port = _free_port()
        env = child_env(var_dir=tmp / "var", database_url=url) | {"TG_REDIS_URL": REDIS_URL}
        log = tmp / "serve.log"
        console.print(
            f"[bold]intake[/bold]: tongguan serve --workers {api_workers} and {requests:,} POST /staff/v1/reports"
            f" at concurrency {concurrency} …"
        )
        cmd = [TONGGUAN, "serve", "--port", str(port), "--workers", str(api_workers)]
        with child(cmd, env=env, cwd=tmp, log=log) as c:
            figures = asyncio.run(
                _fire(
                    f"http://127.0.0.1:{port}", city, requests=requests, concurrency=concurrency, server_pid=c.proc.pid
                )
            )
        stored = _by_status(url, "report")
        outbox = _by_status(url, "outbox")
        redis_flush()
    sent = WARMUP_REQUESTS + UNLOADED_REQUESTS + requests
    if figures["_statuses"] != {202: sent}:
        raise BenchError(f"unexpected answers {figures['_statuses']}\n{tail(log)}")
    if sum(stored.values()) != sent:
        raise BenchError(f"{sum(stored.values()):,} reports stored, expected {sent:,}")
    figures["api_workers"] = api_workers
    figures["_outbox_by_status"] = outbox
    return figures


# --- 4. duplicate lookup --------------------------------------------------------------------------------------

CASE_COLUMNS = (
    "number", "subclass_id", "urgency", "source", "description", "address", "lon", "lat", "unit_grid",
    "community", "street", "district", "responsibility_grid", "road_segment", "component_code", "department_id",
    "routing_kind", "routing_reason", "status", "is_open", "suspended_from", "stage", "stage_seq", "stage_unit",
    "stage_started_at", "stage_deadline", "stage_warn_at", "stage_warned", "stage_overdue", "paused_at",
    "escalation_level", "dispose_overdue", "extensions", "rework_count", "report_count", "verified",
    "satisfaction", "rating_comment", "opened_at", "accepted_at", "registered_at", "dispatched_at", "fixed_at",
    "closed_at", "updated_at",
)  # fmt: skip
OPEN_STATUSES = ("pending_accept", "accepted", "registered", "dispatched", "processing", "fixed", "checked")
OPEN_WEIGHTS = (0.05, 0.05, 0.05, 0.45, 0.25, 0.10, 0.05)
CHUNK = 100_000


async def _bulk_cases(city: City, n: int, rng: np.random.Generator) -> float:
    """COPY n open cases through core.bulk.insert_rows, in chunks, one transaction; returns the wall time."""
    from tortoise.transactions import in_transaction

    from core import clock
    from core.bulk import insert_rows
    from core.cases.models import Case

    missing = set(Case._meta.db_fields) - {"id"} - set(CASE_COLUMNS)
    if missing:
        raise BenchError(f"case_file has columns the bench does not fill: {sorted(missing)}")
    now = clock.now()
    started = time.perf_counter()
    async with in_transaction() as conn:
        for start in range(0, n, CHUNK):
            m = min(CHUNK, n - start)
            gi, lon, lat = city.points(m, rng)
            subs = city.all_subclass_ids[rng.integers(len(city.all_subclass_ids), size=m)]
            status = rng.choice(len(OPEN_STATUSES), size=m, p=OPEN_WEIGHTS)
            age_s = rng.uniform(0, 72 * 3600, size=m)
            rows = []
            for k in range(m):
                code = str(city.grid_codes[gi[k]])
                opened = now - timedelta(seconds=float(age_s[k]))
                rows.append(
                    (
                        f"B{start + k:012d}", int(subs[k]), "normal", "field_app", "", "", float(lon[k]),
                        float(lat[k]), code, code[:12], code[:9], code[:6], None, None, None, None, "area", "",
                        OPEN_STATUSES[status[k]], True, None, None, 0, None, None, None, None, False, False, None,
                        0, False, 0, 0, 1, None, None, "", opened, None, None, None, None, None, opened,
                    )
                )  # fmt: skip
            await insert_rows(conn, Case._meta.db_table, CASE_COLUMNS, rows)
            if console.is_terminal:
                console.print(f"  {start + m:,} / {n:,} cases", end="\r")
    return time.perf_counter() - started


async def _duplicates(url: str, city: City, *, cases: int, lookups: int) -> dict[str, Any]:
    from tortoise import connections

    from core.reports.flows import find_duplicate, reference

    rng = np.random.default_rng(SEED + 4)
    async with _opened(url):
        console.print(f"[bold]duplicates[/bold]: COPY {cases:,} open cases into case_file …")
        copy_s = await _bulk_cases(city, cases, rng)
        conn = connections.get("default")
        t = time.perf_counter()
        await conn.execute_script("ANALYZE case_file")
        analyze_s = time.perf_counter() - t
        size = (await conn.execute_query_dict("SELECT pg_total_relation_size('case_file') AS b"))[0]["b"]
        open_cases = (await conn.execute_query_dict("SELECT COUNT(*) AS n FROM case_file WHERE is_open"))[0]["n"]

        _, lon, lat = city.points(lookups, rng)
        subs = city.all_subclass_ids[rng.integers(len(city.all_subclass_ids), size=lookups)]
        infos = [await reference.subclass(int(s)) for s in subs]
        for i in range(20):  # warm: the connection, prepared statements
            await find_duplicate(
                subclass=infos[i], lon=float(lon[i]), lat=float(lat[i]), component_code=None, conn=conn
            )
        times = np.zeros(lookups)
        found = 0
        for i in range(lookups):
            t = time.perf_counter()
            hit = await find_duplicate(
                subclass=infos[i], lon=float(lon[i]), lat=float(lat[i]), component_code=None, conn=conn
            )
            times[i] = time.perf_counter() - t
            found += hit is not None
        with counting_queries() as counter:
            await find_duplicate(
                subclass=infos[0], lon=float(lon[0]), lat=float(lat[0]), component_code=None, conn=conn
            )
        if counter.last is None:
            raise BenchError("find_duplicate issued no SQL that tortoise logged")
        sql, values = counter.last
        raw = await _pg(url)
        try:
            custom = await raw.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *values)
            # The plan a prepared statement falls back to once PostgreSQL stops planning per call (asyncpg
            # prepares and caches every statement): EXECUTE of a PREPAREd copy with generic plans forced.
            await raw.execute(f"PREPARE find_duplicate AS {sql}")
            await raw.execute("SET plan_cache_mode = force_generic_plan")
            args = ", ".join(_literal(v) for v in values)
            generic = await raw.fetch(f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE find_duplicate({args})")
        finally:
            await raw.close()
    ms = times * 1000
    return {
        "cases": int(open_cases),
        "copy_s": round(copy_s, 1),
        "copy_rows_per_s": round(cases / copy_s),
        "analyze_s": round(analyze_s, 2),
        "table_mib": round(size / 2**20),
        "lookups": lookups,
        "mean_ms": round(float(ms.mean()), 3),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "max_ms": round(float(ms.max()), 3),
        "found": found,
        "_sql": sql,
        "_values": [str(v) for v in values],
        "_plan_custom": [r[0] for r in custom],
        "_plan_generic": [r[0] for r in generic],
    }


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'::timestamptz"
    return "'" + str(value).replace("'", "''") + "'"


def duplicates_case(template: str, city: City, *, cases: int, lookups: int) -> dict[str, Any]:
    with pg_database("pipeline_dup", template=template) as (_, url):
        return asyncio.run(_duplicates(url, city, cases=cases, lookups=lookups))


# --- main -----------------------------------------------------------------------------------------------------


def _split(figures: dict[str, Any]) -> tuple[dict[str, float | int], dict[str, Any]]:
    """Numbers go to figures, the rest (keys starting with _) to notes."""
    nums = {k: v for k, v in figures.items() if not k.startswith("_")}
    notes = {k[1:]: v for k, v in figures.items() if k.startswith("_")}
    return nums, notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--parts",
        default="throughput,intake,duplicates",
        help="comma-separated: throughput, profile (also runs after throughput when it misses the target), intake,"
        " duplicates",
    )
    parser.add_argument("--reports", type=int, default=5_000, help="reports per throughput case")
    parser.add_argument("--processes", default="1,2", help="worker processes per throughput case")
    parser.add_argument("--profile", action="store_true", help="profile the job in-process even when on target")
    parser.add_argument("--profile-reports", type=int, default=2_000)
    parser.add_argument("--requests", type=int, default=2_000, help="measured intake requests")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--api-workers", type=int, default=1, help="uvicorn processes of tongguan serve")
    parser.add_argument("--cases", type=int, default=1_000_000, help="open cases for the duplicate lookup")
    parser.add_argument("--lookups", type=int, default=1_000)
    args = parser.parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(parts) - {"throughput", "profile", "intake", "duplicates"}
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}")
    ready = services_ready("pipeline")
    if ready is None:
        return
    notes_all = {**ready, "scale": "city"}

    with temp_dir("pipeline") as tmp:
        template, seed_s = seed_template(tmp)
        try:
            city = asyncio.run(_load_city(pg_url(template)))
            console.print(f"  seeded in {fmt_s(seed_s)}")
            rows: list[tuple[str, str, str, bool | None]] = []
            if "throughput" in parts:
                results, activities = [], []
                for k in [int(p) for p in args.processes.split(",") if p.strip()]:
                    figures, notes = _split(throughput_case(template, city, tmp, processes=k, n=args.reports))
                    record(BENCH, f"throughput_{k}", figures, notes | notes_all)
                    results.append(figures)
                    activities.append((k, notes["activity"]))
                    rows += _throughput_rows(figures)
                print_table(f"intake → dispatched case, {args.reports:,} reports, PostgreSQL {ready['postgres']}", rows)
                for k, activity in activities:
                    console.print(
                        f"{k} proc: the worker's busy PostgreSQL connections (not idle), share of 0.1 s samples: "
                        + "; ".join(f"{what} {share:.0%}" for what, share in activity.items())
                    )
                rows = []
                if args.profile or any(r["per_s"] < TARGET_PER_S for r in results):
                    parts.append("profile")
            if "profile" in parts:
                prof = profile_case(template, city, n=args.profile_reports)
                record(BENCH, "profile", prof["figures"], prof["notes"] | notes_all)
            if "intake" in parts:
                figures, notes = _split(
                    intake_case(
                        template,
                        city,
                        tmp,
                        requests=args.requests,
                        concurrency=args.concurrency,
                        api_workers=args.api_workers,
                    )
                )
                record(BENCH, "intake", figures, notes | notes_all)
                print_table(
                    f"POST /staff/v1/reports, {args.requests:,} requests at concurrency {args.concurrency},"
                    f" {args.api_workers} API process(es)",
                    _intake_rows(figures),
                )
            if "duplicates" in parts:
                figures, notes = _split(duplicates_case(template, city, cases=args.cases, lookups=args.lookups))
                record(BENCH, "duplicates", figures, notes | notes_all)
                print_table(f"find_duplicate among {args.cases:,} open cases", _duplicate_rows(figures))
                console.print(
                    "[bold]SQL issued by find_duplicate[/bold] (parameters: " + ", ".join(notes["values"]) + ")"
                )
                console.print(notes["sql"], markup=False, soft_wrap=True)
                console.print("[bold]EXPLAIN (ANALYZE, BUFFERS), custom plan[/bold]")
                console.print("\n".join(notes["plan_custom"]), markup=False, soft_wrap=True)
                console.print(
                    "[bold]EXPLAIN (ANALYZE, BUFFERS), generic plan (plan_cache_mode = force_generic_plan)[/bold]"
                )
                console.print("\n".join(notes["plan_generic"]), markup=False, soft_wrap=True)
        finally:
            pg_drop(template)


def _throughput_rows(f: dict[str, float | int]) -> list[tuple[str, str, str, bool | None]]:
    k, ok = f["processes"], f["per_s"] >= TARGET_PER_S
    servers = f"{fmt_s(float(f['postgres_cpu_s']))} / {fmt_s(float(f['redis_cpu_s']))}"
    return [
        (f"{k} proc: submit_report in this process", f"{fmt_int(f['intake_per_s'])}/s", "", None),
        (f"{k} proc: worker start → all processed", fmt_s(float(f["wall_s"])), "", None),
        (f"{k} proc: reports/s end to end", f"{f['per_s']:,.1f}/s", f"≥ {TARGET_PER_S:,.0f}/s", ok),
        (f"{k} proc: steady rate (first → last processed)", f"{f['steady_per_s']:,.1f}/s", "", None),
        (f"{k} proc: start until the first report done", fmt_s(float(f["startup_s"])), "", None),
        (f"{k} proc: cases dispatched", f"{fmt_int(f['dispatched'])} of {fmt_int(f['reports'])}", "", None),
        (f"{k} proc: merged / queued reports", f"{fmt_int(f['merged'])} / {fmt_int(f['queued'])}", "", None),
        (f"{k} proc: CPU of the worker processes", fmt_s(float(f["worker_cpu_s"])), "", None),
        (f"{k} proc: CPU of PostgreSQL / Redis", servers, "", None),
        (f"{k} proc: machine busy (of {os.cpu_count()} cores)", f"{f['machine_busy_cores']:.2f} cores", "", None),
        (f"{k} proc: CPU of anything else on the machine", fmt_s(float(f["other_cpu_s"])), "", None),
    ]  # fmt: skip


def _intake_rows(f: dict[str, float | int]) -> list[tuple[str, str, str, bool | None]]:
    return [
        (
            f"one at a time ({UNLOADED_REQUESTS} requests): p50 / p99",
            f"{f['unloaded_p50_ms']:,.1f} / {f['unloaded_p99_ms']:,.1f} ms",
            "",
            None,
        ),
        ("p50 latency", f"{f['p50_ms']:,.1f} ms", "", None),
        ("p90 latency", f"{f['p90_ms']:,.1f} ms", "", None),
        ("p99 latency", f"{f['p99_ms']:,.1f} ms", "", None),
        ("max latency", f"{f['max_ms']:,.1f} ms", "", None),
        ("requests/s", f"{f['per_s']:,.1f}", "", None),
        ("server CPU per request", f"{f['server_cpu_ms_per_request']:,.2f} ms", "", None),
        ("server / client busy", f"{f['server_busy_cores']:.2f} / {f['client_busy_cores']:.2f} cores", "", None),
    ]


def _duplicate_rows(f: dict[str, float | int]) -> list[tuple[str, str, str, bool | None]]:
    return [
        ("open cases in case_file", fmt_int(f["cases"]), "", None),
        ("COPY (core.bulk.insert_rows)", f"{fmt_s(float(f['copy_s']))}, {fmt_int(f['copy_rows_per_s'])}/s", "", None),
        ("ANALYZE", fmt_s(float(f["analyze_s"])), "", None),
        ("table + indexes", f"{fmt_int(f['table_mib'])} MiB", "", None),
        (f"find_duplicate mean ({fmt_int(f['lookups'])} lookups)", f"{f['mean_ms']:.3f} ms", "", None),
        ("find_duplicate p50", f"{f['p50_ms']:.3f} ms", "", None),
        ("find_duplicate p99", f"{f['p99_ms']:.3f} ms", "", None),
        ("find_duplicate max", f"{f['max_ms']:.3f} ms", "", None),
        ("lookups that found an open duplicate", fmt_int(f["found"]), "", None),
    ]  # fmt: skip


if __name__ == "__main__":
    main_guard(BENCH, main)
