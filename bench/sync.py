"""Offline sync of the field app: latency of a `POST /field/v1/sync` batch of 200 operations, first delivery and replay.

A fresh `tg_bench_sync_*` database is migrated and seeded with the small city (`tongguan migrate`, `tongguan seed
--scale small`, child processes); it has 8 road works under way today. The small city has only 6 seeded inspectors,
so the bench makes its own: 2 × `--inspectors` (8) + 2 accounts `bench-sync-NNNNN` with the inspector role
(made as `tracks.py` makes its staff) that sign in with `POST /auth/token` and the demo password.

1. http — `tongguan serve --workers W` (`--workers`, 2) with TG_REDIS_URL = Redis db 12 (no job runs in the API).
   One httpx client of one keep-alive connection per inspector, connections balanced over the uvicorn workers as in
   `miniapp.py`. A batch is `--ops` (200) operations of one inspector: `--reports` (50) `report` (an inspector's own
   report, event:0102, at the `point_on_surface` of a unit grid, kept when the spatial index puts it back in its
   grid) spread evenly among `check_in`s at the open road works (up to 20 m from the works' point, inside its
   geofence). Each operation has its own photo, taken "now": a 640×480 JPEG of a scene of its own (the approach of
   tests/factories.field_photo: shapes on a plain ground; a scene is redrawn while its dHash lies within 10 bits of
   one drawn before, so no photo is a near copy of another) with EXIF time and EXIF GPS at the operation's place,
   uploaded with `POST /field/v1/media` by the inspector before the clock starts (uploads are not timed). Warm-up:
   one small batch (a check-in and a report) through every connection, by a warm-up inspector.
   - first_sequential: inspectors of group A send their batch one after another (one batch in flight);
   - first_concurrent: the `--inspectors` of group B send theirs all at once (photos drawn and uploaded just before);
   - replay_sequential / replay_concurrent: the same bodies again (a device that lost the answers).
   Per batch: latency p50 / p99 / max; operations/s; server (uvicorn tree), PostgreSQL and load-generator CPU per
   operation. Every answer must be 200, a first delivery must answer every item applied (201 / 202) and store
   exactly one `patrol_check_in`, `report`, `sync_op` and `used_photo` row per operation of its inspectors; a replay
   must answer every item `replayed` with the first status and change no row count.
2. profile — the app in this process (`tongguan.app.create_app`) through httpx's ASGI transport (no HTTP, no
   socket), one inspector, one batch of `--profile-ops` (60) check-ins and one of a third as many reports, each
   operation timed in pieces (wall and CPU of the pieces wrapped: `apply_one`, the SyncOp lookup and insert,
   `check_in`, `locate_site`, `check_photos`, `_check_unused`, `near_blobs`, `mark_used`, `submit_report`,
   `_validate`) and SQL statements counted by kind (tortoise's query log; BEGIN / SAVEPOINT / COMMIT not counted).

    .venv/bin/python -m bench.sync [--inspectors 8] [--ops 200] [--reports 50] [--workers 2] [--profile-ops 60]
        [--parts http,profile]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import logging
import math
import os
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
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
    Pieces,
    _tree_cpu_by_process,
    balance_connections,
    quiet_sniffio,
    run_loop,
    seed_database,
    timed_pieces,
    wait_healthy,
)
from bench.pipeline import CpuWatch, _free_port, _opened, _pg, child, counting_queries
from bench.tracks import _make_staff

BENCH = "sync"
SEED = 20261210
PREFIX = "bench-sync"
PHOTO_W, PHOTO_H = 640, 480
MIN_DHASH_BITS = 10  # scenes closer than this are redrawn (the server calls ≤ 6 bits a near copy)
LOAD_TIMEOUT_S = 1800
REQUEST_TIMEOUT_S = 600
M_PER_DEG_LAT = 111_195.0


# --- photos ---------------------------------------------------------------------------------------------------


class Photographer:
    """Photos of scenes of their own: a scene whose dHash lies within MIN_DHASH_BITS of one drawn before is redrawn."""

    def __init__(self, seed: int) -> None:
        self.next_seed = seed
        self.hashes = np.zeros(0, dtype=np.uint64)
        self.redrawn = 0

    def take(self, *, taken: datetime, lon: float, lat: float) -> bytes:
        from media.images import _dhash

        while True:
            image = _scene(self.next_seed)
            self.next_seed += 1
            digest = np.uint64(_dhash(image))
            if self.hashes.size == 0 or int(np.bitwise_count(self.hashes ^ digest).min()) >= MIN_DHASH_BITS:
                self.hashes = np.append(self.hashes, digest)
                return _with_exif(image, taken=taken, lon=lon, lat=lat)
            self.redrawn += 1


def _scene(seed: int) -> Any:
    """tests/factories.field_photo's picture, smaller and on a plain ground (its linear gradient makes dHashes alike:
    180 pairs within 6 bits among 3,400 scenes, against none here)."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    w, h = PHOTO_W, PHOTO_H
    image = Image.new("RGB", (w, h), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    draw = ImageDraw.Draw(image)
    for _ in range(24):
        x, y = rng.randrange(-w // 4, w), rng.randrange(-h // 4, h)
        box = [x, y, x + rng.randrange(w // 12, w // 2), y + rng.randrange(h // 12, h // 2)]
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    return image


def _with_exif(image: Any, *, taken: datetime, lon: float, lat: float) -> bytes:
    """JPEG with EXIF time (China time) and GPS, as tests/factories.field_photo writes them."""
    from tests.factories import camera_exif

    exif = camera_exif(taken=taken, lon=lon, lat=lat)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85, exif=exif)
    return out.getvalue()


# --- the city: road works open today, report points -----------------------------------------------------------


@dataclass(frozen=True)
class Work:
    permit_no: str
    lon: float
    lat: float
    radius_m: float


@dataclass
class City:
    works: list[Work]
    points: list[tuple[float, float]]  # WGS-84, inside unit grids
    staff: list[tuple[int, str]]  # (id, username)


async def _prepare_city(url: str, accounts: int) -> City:
    import shapely

    from core import clock
    from core.geo.service import get_spatial_index
    from core.places.models import RoadWork
    from core.regions.models import UnitGrid

    async with _opened(url):
        today = clock.china(clock.now()).date()
        # Open today and tomorrow: a run across midnight (China time) still finds its works open.
        rows = await RoadWork.filter(starts_on__lte=today, ends_on__gte=today + timedelta(days=1)).order_by("id")
        works = [Work(w.permit_no, w.lon, w.lat, w.radius_m) for w in rows]
        grids = await UnitGrid.all().order_by("code").values_list("code", "geometry")
        inner = shapely.point_on_surface(shapely.from_geojson(np.asarray([g for _, g in grids], dtype=object)))
        index = await get_spatial_index()
        points = []
        for (code, _), p in zip(grids, inner, strict=True):
            lon, lat = round(p.x, 6), round(p.y, 6)
            found = index.locate(lon, lat)
            if found is not None and found.unit_grid == code:
                points.append((lon, lat))
        ids = await _make_staff(accounts, PREFIX)
    if not works:
        raise BenchError("the seeded city has no road work open today and tomorrow")
    if not points:
        raise BenchError("no unit grid point locates back into its grid")
    return City(works, points, [(i, f"{PREFIX}-{k:05d}") for k, i in enumerate(ids)])


# --- batches --------------------------------------------------------------------------------------------------


@dataclass
class Batch:
    """One inspector's batch: the places of its operations, then (after the uploads) its body."""

    staff_id: int
    username: str
    kinds: list[str]  # check_in / report, in order
    places: list[tuple[float, float]]
    sites: list[str]  # the permit number of a check-in's road work ("" for a report)
    photos: list[bytes] = field(default_factory=list)
    media: list[str] = field(default_factory=list)
    body: bytes = b""

    def counts(self) -> Counter[str]:
        return Counter(self.kinds)


def plan_batch(k: int, staff: tuple[int, str], city: City, ops: int, reports: int, rng: random.Random) -> Batch:
    """`reports` reports spread evenly among `ops` operations; check-ins go round the open works."""
    kinds, places, sites = [], [], []
    for i in range(ops):
        if (i * reports) // ops != ((i + 1) * reports) // ops:
            kinds.append("report")
            places.append(city.points[(k * 37 + i) % len(city.points)])
            sites.append("")
            continue
        work = city.works[(k + i) % len(city.works)]
        # Up to 20 m from the works' point (and well inside its geofence), in a random direction.
        r, a = min(20.0, work.radius_m / 3) * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
        k_lon = M_PER_DEG_LAT * math.cos(math.radians(work.lat))
        kinds.append("check_in")
        lon, lat = work.lon + r * math.cos(a) / k_lon, work.lat + r * math.sin(a) / M_PER_DEG_LAT
        places.append((round(lon, 6), round(lat, 6)))
        sites.append(work.permit_no)
    return Batch(staff[0], staff[1], kinds, places, sites)


def take_photos(batches: list[Batch], photographer: Photographer) -> None:
    from core import clock

    for b in batches:
        now = clock.now()
        b.photos = [photographer.take(taken=now, lon=lon, lat=lat) for lon, lat in b.places]


def build_body(b: Batch, tag: str) -> None:
    """The operations of a batch, each with its own device UUID and its own photo."""
    items = []
    for i, (kind, (lon, lat), site, media) in enumerate(zip(b.kinds, b.places, b.sites, b.media, strict=True)):
        if kind == "check_in":
            body: dict[str, Any] = {
                "site_kind": "road_work", "site_code": site, "lon": lon, "lat": lat, "accuracy": 10,
                "photos": [media], "note": f"巡查 {tag}-{i}",
            }  # fmt: skip
        else:
            body = {
                "subclass": "event:0102", "text": f"巡查发现暴露垃圾（{tag}-{i}）", "photos": [media],
                "lon": lon, "lat": lat, "accuracy": 6, "address": f"网格巡查点 {i}",
            }  # fmt: skip
        items.append({"id": str(uuid.uuid4()), "op": kind, "body": body})
    b.body = json.dumps({"operations": items}, ensure_ascii=False).encode()


# --- stored rows ----------------------------------------------------------------------------------------------


async def stored_rows(url: str, staff_ids: list[int]) -> dict[str, int]:
    conn = await _pg(url)
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT COUNT(*) FROM patrol_check_in WHERE staff_id = ANY($1::int[])) AS check_ins,"
            " (SELECT COUNT(*) FROM report WHERE source = 'field_app' AND reporter_type = 'staff'"
            "   AND reporter_id = ANY($2::text[])) AS reports,"
            " (SELECT COUNT(*) FROM sync_op WHERE staff_id = ANY($1::int[])) AS sync_ops,"
            " (SELECT COUNT(*) FROM used_photo u JOIN media m ON m.blob_id = u.blob_sha256"
            "   WHERE m.owner_type = 'staff' AND m.owner_id = ANY($2::text[])) AS used_photos",
            staff_ids,
            [str(i) for i in staff_ids],
        )
    finally:
        await conn.close()
    return {k: int(v) for k, v in dict(row).items()}


# --- 1. http --------------------------------------------------------------------------------------------------


def percentile_ms(latencies: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(latencies) * 1000, q)), 1) if latencies else 0.0


@dataclass
class Answer:
    status: int
    counts: dict[str, int]
    items: list[tuple[int, bool]]  # (status, replayed) per item
    codes: Counter[str]  # error codes of refused / deferred items


class Fleet:
    """The inspectors' clients against one server: sign-in, uploads, batches."""

    def __init__(self, base: str, n: int, clients: list[Any] | None = None) -> None:
        import httpx

        self.base = base
        self.n = n
        self._limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        self.clients = clients if clients is not None else [self._new() for _ in range(n)]
        self.tokens: dict[int, str] = {}

    def _new(self) -> Any:
        import httpx

        return httpx.AsyncClient(base_url=self.base, limits=self._limits, timeout=REQUEST_TIMEOUT_S)

    async def balance(self, server_pid: int, port: int) -> list[int]:
        """Connect every client; again until no uvicorn worker holds more than its share + 10 % (as tracks.py, but
        without its one spare: with 8 clients, 4 + 4)."""
        self.clients, split, _ = await balance_connections(
            self.clients, self._new, server_pid=server_pid, port=port, spare=False
        )
        return sorted(split.values(), reverse=True)

    async def close(self) -> None:
        for c in self.clients:
            await c.aclose()

    async def sign_in(self, staff: list[tuple[int, str]]) -> None:
        from core.seed import DEMO_PASSWORD

        for staff_id, username in staff:
            r = await self.clients[0].post("/auth/token", data={"username": username, "password": DEMO_PASSWORD})
            if r.status_code != 200:
                raise BenchError(f"sign-in of {username}: {r.status_code} {r.text[:200]}")
            self.tokens[staff_id] = r.json()["access_token"]

    def headers(self, staff_id: int, json_body: bool = False) -> dict[str, str]:
        h = {"Authorization": f"Bearer {self.tokens[staff_id]}"}
        return h | {"Content-Type": "application/json"} if json_body else h

    async def upload(self, client: Any, b: Batch) -> None:
        b.media = []
        for data in b.photos:
            r = await client.post(
                "/field/v1/media", files={"file": ("p.jpg", data, "image/jpeg")}, headers=self.headers(b.staff_id)
            )
            if r.status_code != 201:
                raise BenchError(f"upload of {b.username}: {r.status_code} {r.text[:200]}")
            b.media.append(r.json()["media_id"])
        b.photos = []

    async def upload_all(self, batches: list[Batch]) -> float:
        """Batch i's photos through client i % n, the clients in parallel; returns the wall time."""
        t = time.perf_counter()
        lanes = [batches[i :: self.n] for i in range(self.n)]

        async def lane(client: Any, mine: list[Batch]) -> None:
            for b in mine:
                await self.upload(client, b)

        await asyncio.gather(*(lane(c, mine) for c, mine in zip(self.clients, lanes, strict=True)))
        return time.perf_counter() - t

    async def send(self, client: Any, b: Batch) -> tuple[float, Answer]:
        t = time.perf_counter()
        r = await client.post("/field/v1/sync", content=b.body, headers=self.headers(b.staff_id, json_body=True))
        latency = time.perf_counter() - t
        if r.status_code != 200:
            return latency, Answer(r.status_code, {}, [], Counter({r.text[:120]: 1}))
        data = r.json()
        codes: Counter[str] = Counter(x["error"]["code"] for x in data["results"] if x.get("error"))
        counts = {k: int(data[k]) for k in ("applied", "replayed", "refused", "deferred")}
        return latency, Answer(200, counts, [(x["status"], x["replayed"]) for x in data["results"]], codes)


async def _phase(
    fleet: Fleet, batches: list[Batch], *, concurrent: bool, server_pid: int, database: str
) -> dict[str, Any]:  # fmt: skip
    """Send every batch once (one after another, or all at once): latencies, answers, CPU."""
    latencies: list[float] = []
    answers: list[Answer] = []

    async def one(i: int, b: Batch) -> None:
        latency, answer = await fleet.send(fleet.clients[i % fleet.n], b)
        latencies.append(latency)
        answers.append(answer)

    watch = CpuWatch(database)
    cpu0 = _tree_cpu_by_process(server_pid)
    started = time.perf_counter()
    if concurrent:
        await asyncio.gather(*(one(i, b) for i, b in enumerate(batches)))
    else:
        for i, b in enumerate(batches):
            await one(i, b)
    wall = time.perf_counter() - started
    cpu1 = _tree_cpu_by_process(server_pid)
    spent = watch.spent()
    ops = sum(len(b.kinds) for b in batches)
    server = sum(cpu1.get(p, 0.0) - cpu0.get(p, 0.0) for p in cpu1)
    postgres = spent["postgres"] + spent["postgres_shared"]
    totals: Counter[str] = Counter()
    items: Counter[str] = Counter()
    codes: Counter[str] = Counter()
    for a in answers:
        totals.update(a.counts)
        items.update(f"{s}{' replayed' if r else ''}" for s, r in a.items)
        codes.update(a.codes)
    return {
        "batches": len(batches),
        "ops_per_batch": len(batches[0].kinds),
        "ops": ops,
        "wall_s": round(wall, 3),
        "ops_per_s": round(ops / wall, 1),
        "batches_per_s": round(len(batches) / wall, 3),
        "p50_ms": percentile_ms(latencies, 50),
        "p99_ms": percentile_ms(latencies, 99),
        "max_ms": percentile_ms(latencies, 100),
        "min_ms": percentile_ms(latencies, 0),
        "ms_per_op_p50": round(percentile_ms(latencies, 50) / len(batches[0].kinds), 2),
        "server_cpu_ms_per_op": round(1000 * server / ops, 2),
        "postgres_cpu_ms_per_op": round(1000 * postgres / ops, 2),
        "client_cpu_ms_per_op": round(1000 * spent["bench"] / ops, 2),
        "cpu_bound_ops_per_s": round((os.cpu_count() or 1) / max((server + postgres) / ops, 1e-9), 1),
        "machine_busy_cores": round(spent["cores"], 2),
        # Busy cores of everything else on the machine (other databases' backends included): others' tests.
        "other_cores": round(
            max(0.0, spent["machine"] - server - postgres - spent["redis"] - spent["bench"]) / wall, 2
        ),
        "not_200": sum(1 for a in answers if a.status != 200),
        "applied": totals["applied"],
        "replayed": totals["replayed"],
        "refused": totals["refused"],
        "deferred": totals["deferred"],
        "_item_statuses": dict(items),
        "_error_codes": dict(codes),
        "_answers": answers,
    }


async def _http_run(
    base: str, url: str, database: str, city: City, args: argparse.Namespace, *, server_pid: int,
    server_alive: Any,
) -> dict[str, Any]:  # fmt: skip
    n = args.inspectors
    group_a, group_b = city.staff[:n], city.staff[n : 2 * n]
    warm_staff = city.staff[2 * n]
    port = int(base.rsplit(":", 1)[1])
    rng = random.Random(SEED)
    photographer = Photographer(SEED)
    fleet = Fleet(base, n)
    out: dict[str, Any] = {}
    try:
        await wait_healthy(fleet.clients[0], base, server_alive)
        out["_connections_by_worker"] = await fleet.balance(server_pid, port)
        await fleet.sign_in([*group_a, *group_b, warm_staff])

        # Warm-up: a check-in and a report through every connection (spatial index, caches, pool connections).
        warm = [plan_batch(100 + i, warm_staff, city, 2, 1, rng) for i in range(n)]
        take_photos(warm, photographer)
        await fleet.upload_all(warm)
        for i, b in enumerate(warm):
            build_body(b, f"warm{i}")
        warm_answers = await asyncio.gather(*(fleet.send(fleet.clients[i], b) for i, b in enumerate(warm)))
        if any(a.status != 200 or a.counts.get("applied") != 2 for _, a in warm_answers):
            raise BenchError(f"warm-up batches: {[(a.status, a.counts, dict(a.codes)) for _, a in warm_answers]}")

        phases: dict[str, list[Batch]] = {}
        for case, group, concurrent in (("first_sequential", group_a, False), ("first_concurrent", group_b, True)):
            batches = [plan_batch(k, s, city, args.ops, args.reports, rng) for k, s in enumerate(group)]
            t = time.perf_counter()
            take_photos(batches, photographer)
            drawn = time.perf_counter() - t
            uploaded = await fleet.upload_all(batches)
            for k, b in enumerate(batches):
                build_body(b, f"{case}-{k}")
            console.print(
                f"  {case}: {sum(len(b.kinds) for b in batches):,} photos drawn in {drawn:.1f} s, uploaded in"
                f" {uploaded:.1f} s; {n} batches of {args.ops}, {'all at once' if concurrent else 'one at a time'} …"
            )
            before = await stored_rows(url, [s for s, _ in group])
            figures = await _phase(fleet, batches, concurrent=concurrent, server_pid=server_pid, database=database)
            after = await stored_rows(url, [s for s, _ in group])
            figures |= {"upload_s": round(uploaded, 1), "photos_drawn_s": round(drawn, 1)}
            out[case] = _first_checks(figures, batches, before, after)
            phases[case] = batches
        for case, first, concurrent in (
            ("replay_sequential", "first_sequential", False),
            ("replay_concurrent", "first_concurrent", True),
        ):
            batches = phases[first]
            console.print(f"  {case}: the {n} batches of {first} again …")
            ids = [b.staff_id for b in batches]
            before = await stored_rows(url, ids)
            figures = await _phase(fleet, batches, concurrent=concurrent, server_pid=server_pid, database=database)
            after = await stored_rows(url, ids)
            out[case] = _replay_checks(figures, out[first], before, after)
        out["_photos_redrawn"] = photographer.redrawn
    finally:
        await fleet.close()
    return out


def _first_checks(f: dict[str, Any], batches: list[Batch], before: dict[str, int], after: dict[str, int]) -> dict:
    sent: Counter[str] = Counter()
    for b in batches:
        sent.update(b.counts())
    added = {k: after[k] - before[k] for k in after}
    f |= {
        "check_ins_sent": sent["check_in"],
        "reports_sent": sent["report"],
        "check_ins_stored": added["check_ins"],
        "reports_stored": added["reports"],
        "sync_ops_stored": added["sync_ops"],
        "used_photos_stored": added["used_photos"],
    }
    # Every item applied and every row there once: 0 when all is well.
    f["not_applied"] = (
        f["ops"] - f["applied"]
        + abs(added["check_ins"] - sent["check_in"]) + abs(added["reports"] - sent["report"])
        + abs(added["sync_ops"] - f["ops"]) + abs(added["used_photos"] - f["ops"])
    )  # fmt: skip
    return f


def _replay_checks(f: dict[str, Any], first: dict[str, Any], before: dict[str, int], after: dict[str, int]) -> dict:
    same = sum(
        1
        for a, b in zip(first["_answers"], f["_answers"], strict=True)
        for (s1, _), (s2, r2) in zip(a.items, b.items, strict=False)
        if r2 and s1 == s2
    )
    f["rows_changed"] = sum(abs(after[k] - before[k]) for k in after)
    f["not_replayed"] = f["ops"] - same
    return f


def _http(url: str, name: str, tmp: Path, city: City, args: argparse.Namespace) -> dict[str, Any]:
    env = child_env(var_dir=tmp / "var", database_url=url) | {"TG_REDIS_URL": REDIS_URL, "TG_LOG_LEVEL": "INFO"}
    port = _free_port()
    log = tmp / "serve.log"
    cmd = [TONGGUAN, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers)]
    redis_flush()
    with child(cmd, env=env, cwd=tmp, log=log) as c:

        async def fire() -> dict[str, Any]:
            async with asyncio.timeout(LOAD_TIMEOUT_S):
                return await _http_run(
                    f"http://127.0.0.1:{port}", url, name, city, args, server_pid=c.proc.pid,
                    server_alive=lambda: c.proc.poll() is None,
                )  # fmt: skip

        try:
            return run_loop(fire())
        except TimeoutError:
            raise BenchError(f"http: the load did not finish within {LOAD_TIMEOUT_S} s\n{tail(log)}") from None


# --- 2. profile -----------------------------------------------------------------------------------------------

TX = "tortoise.backends.asyncpg.client:TransactionWrapper"  # savepoint() calls begin(), release_savepoint() commit()
# (key, label, owner "module" or "module:Class", attribute): looked up at call time by their callers, so wrapping the
# attribute times every call.
PIECES = (
    ("apply_one", "sync.apply_one: one operation, its transaction included", "core.sync.service", "apply_one"),
    ("syncop_get", "‥ SyncOp.get_or_none: applied before?", "core.sync.models:SyncOp", "get_or_none"),
    ("resolve", "‥ resolve_photos (media ids: nothing to look up)", "field_app_api.operations", "resolve_photos"),
    ("check_in", "‥ checkins.check_in", "core.patrols.checkins", "check_in"),
    ("locate_site", "‥ ‥ locate_site: SELECT road_work, distance", "core.patrols.checkins", "locate_site"),
    ("submit_report", "‥ reports.submit_report (INSERT report + outbox)", "core.reports.service", "submit_report"),
    ("validate", "‥ ‥ _validate: Media count, locate, subclass", "core.reports.service", "_validate"),
    ("check_photos", "‥ ‥ evidence.check_photos", "core.media.evidence", "check_photos"),
    ("check_unused", "‥ ‥ ‥ _check_unused: near_blobs + SELECT used_photo", "core.media.evidence", "_check_unused"),
    ("near_blobs", "‥ ‥ ‥ ‥ near_blobs: dHash band probes", "core.media.evidence", "near_blobs"),
    ("mark_used", "‥ ‥ evidence.mark_used: INSERT used_photo", "core.media.evidence", "mark_used"),
    ("syncop_create", "‥ SyncOp.create: the answer remembered", "core.sync.models:SyncOp", "create"),
    ("tx_begin", "‥ BEGIN, and SAVEPOINT for each nested in_transaction", TX, "begin"),
    ("tx_savepoint", "‥ ‥ of which SAVEPOINT", TX, "savepoint"),
    ("tx_commit", "‥ COMMIT, and RELEASE SAVEPOINT for each nested in_transaction", TX, "commit"),
    ("tx_release", "‥ ‥ of which RELEASE SAVEPOINT", TX, "release_savepoint"),
)  # fmt: skip


def _profile(url: str, tmp: Path, city: City, args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    from core.geo.service import forget_spatial_index
    from core.settings import Settings
    from tongguan.app import create_app

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        redis_url=REDIS_URL,
        var_dir=tmp / "var-profile",
        log_level="WARNING",
        log_json=False,
    )
    staff = city.staff[2 * args.inspectors + 1]
    rng = random.Random(SEED + 1)
    photographer = Photographer(SEED + 500_000)
    n_check, n_report = args.profile_ops, max(1, args.profile_ops // 3)
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)

    async def work() -> dict[str, Any]:
        forget_spatial_index()
        app = create_app(settings)
        out: dict[str, Any] = {}
        async with app.router.lifespan_context(app):
            asgi = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=600)
            fleet = Fleet("http://bench", 1, [asgi])
            try:
                await fleet.sign_in([staff])
                warm = plan_batch(7, staff, city, 2, 1, rng)
                checks = plan_batch(8, staff, city, n_check, 0, rng)
                reports = plan_batch(9, staff, city, n_report, n_report, rng)
                batches = [warm, checks, reports]
                take_photos(batches, photographer)
                await fleet.upload_all(batches)
                for tag, b in zip(("pwarm", "pcheck", "preport"), batches, strict=True):
                    build_body(b, tag)
                _, answer = await fleet.send(fleet.clients[0], warm)
                if answer.status != 200 or answer.counts.get("applied") != 2:
                    raise BenchError(f"profile warm-up: {answer.status} {answer.counts} {dict(answer.codes)}")
                for kind, b in (("check_in", checks), ("report", reports)):
                    with timed_pieces(PIECES) as pieces, counting_queries() as sql:
                        t, c = time.perf_counter(), time.process_time()
                        _, answer = await fleet.send(fleet.clients[0], b)
                        wall, cpu = time.perf_counter() - t, time.process_time() - c
                    if answer.status != 200 or answer.counts.get("applied") != len(b.kinds):
                        raise BenchError(f"profile {kind}: {answer.status} {answer.counts} {dict(answer.codes)}")
                    out[kind] = {"ops": len(b.kinds), "wall": wall, "cpu": cpu, "pieces": pieces, "sql": sql.counts}
            finally:
                await fleet.close()
        forget_spatial_index()
        return out

    console.print(
        f"[bold]profile[/bold]: the app in this process through ASGI: a batch of {n_check} check-ins and one of"
        f" {n_report} reports, pieces timed, SQL counted …"
    )
    try:
        with (tmp / "profile.log").open("w") as sink, contextlib.redirect_stderr(sink):
            raw = run_loop(work())
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    results: dict[str, Any] = {}
    for kind, r in raw.items():
        n = r["ops"]
        p: Pieces = r["pieces"]
        sql: Counter[str] = r["sql"]
        figures: dict[str, Any] = {
            "ops": n,
            "ms_per_op": round(1000 * r["wall"] / n, 2),
            "cpu_ms_per_op": round(1000 * r["cpu"] / n, 2),
            "sql_per_op": round(sum(sql.values()) / n, 2),
        }
        for key, _, _, _ in PIECES:
            if p.calls[key]:
                figures[f"{key}_ms"] = round(1000 * p.wall[key] / n, 3)
                figures[f"{key}_cpu_ms"] = round(1000 * p.cpu[key] / n, 3)
                figures[f"{key}_calls"] = round(p.calls[key] / n, 2)
        figures["_sql"] = {k: round(v / n, 2) for k, v in sql.most_common()}
        results[f"profile_{kind}"] = figures
    return results


# --- main -----------------------------------------------------------------------------------------------------


def _split(figures: dict[str, Any]) -> tuple[dict[str, float | int], dict[str, Any]]:
    nums = {k: v for k, v in figures.items() if not k.startswith("_") and isinstance(v, int | float)}
    notes = {k.lstrip("_"): v for k, v in figures.items() if k not in nums and k != "_answers"}
    return nums, notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inspectors", type=int, default=8, help="inspectors per group (and concurrency)")
    parser.add_argument("--ops", type=int, default=200, help="operations in a batch")
    parser.add_argument("--reports", type=int, default=50, help="of which inspector reports (the rest check-ins)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--profile-ops", type=int, default=60, help="profile: check-ins (and a third as many reports)")
    parser.add_argument("--parts", default="http,profile")
    args = parser.parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if set(parts) - {"http", "profile"}:
        parser.error(f"unknown parts {parts}")
    if not 0 <= args.reports <= args.ops:
        parser.error("--reports must be between 0 and --ops")
    ready = services_ready(BENCH)
    if ready is None:
        return
    quiet_sniffio()
    notes_all = {**ready, "workers": args.workers, "inspectors": args.inspectors, "ops": args.ops,
                 "reports": args.reports, "photo": f"{PHOTO_W}x{PHOTO_H} JPEG"}  # fmt: skip
    console.print(
        f"[bold]sync[/bold]: POST /field/v1/sync, batches of {args.ops} operations"
        f" ({args.ops - args.reports} check-ins, {args.reports} reports), {args.inspectors} inspectors per group,"
        f" PostgreSQL {ready['postgres']}"
    )
    results: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    with temp_dir(BENCH) as tmp, pg_database(BENCH) as (name, url):
        try:
            console.print("seeding the small city into PostgreSQL …")
            seed_database(url, tmp)
            city = asyncio.run(_prepare_city(url, 2 * args.inspectors + 2))
            console.print(
                f"{len(city.works)} road works open today, {len(city.points)} report points, {len(city.staff)}"
                " bench inspectors"
            )
            if "http" in parts:
                console.print(f"[bold]http[/bold]: tongguan serve --workers {args.workers} …")
                http = _http(url, name, tmp, city, args)
                for case in ("first_sequential", "first_concurrent", "replay_sequential", "replay_concurrent"):
                    f = results[case] = http[case] | {
                        "_connections_by_worker": http["_connections_by_worker"],
                        "_photos_redrawn": http["_photos_redrawn"],
                    }
                    if f["not_200"]:
                        problems.append(f"{case}: {f['not_200']} answers other than 200 ({f['_error_codes']})")
                    if f.get("not_applied"):
                        problems.append(
                            f"{case}: {f['applied']} of {f['ops']} applied, stored check-ins {f['check_ins_stored']},"
                            f" reports {f['reports_stored']}, sync ops {f['sync_ops_stored']}, used photos"
                            f" {f['used_photos_stored']} ({f['_error_codes']})"
                        )
                    if f.get("not_replayed") or f.get("rows_changed"):
                        problems.append(
                            f"{case}: {f['not_replayed']} items not replayed as before,"
                            f" {f['rows_changed']} rows changed"
                        )
                results["checks"] = {
                    "not_applied": sum(results[c]["not_applied"] for c in ("first_sequential", "first_concurrent")),
                    "not_replayed": sum(results[c]["not_replayed"] for c in ("replay_sequential", "replay_concurrent")),
                    "rows_changed": sum(results[c]["rows_changed"] for c in ("replay_sequential", "replay_concurrent")),
                    "not_200": sum(results[c]["not_200"] for c in http if not c.startswith("_")),
                }
            if "profile" in parts:
                results |= _profile(url, tmp, city, args)
        finally:
            with contextlib.suppress(Exception):
                redis_flush()
    for case, figures in results.items():
        nums, notes = _split(figures)
        record(BENCH, case, nums, notes | notes_all)
    print_results(results, args)
    if problems:
        raise BenchError("; ".join(problems))


def print_results(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    if "first_sequential" in results:
        cases = ("first_sequential", "first_concurrent", "replay_sequential", "replay_concurrent")
        fs = [results[c] for c in cases]
        first = results["first_sequential"]
        rows: list[tuple[str, str, str, bool | None]] = [
            ("in flight", " / ".join(["1", str(args.inspectors)] * 2), "", None),
            ("batch latency p50 (ms)", " / ".join(f"{f['p50_ms']:,.0f}" for f in fs), "", None),
            ("batch latency p99 (ms)", " / ".join(f"{f['p99_ms']:,.0f}" for f in fs), "", None),
            ("batch latency max (ms)", " / ".join(f"{f['max_ms']:,.0f}" for f in fs), "", None),
            ("p50 ÷ operations (ms per operation)", " / ".join(f"{f['ms_per_op_p50']}" for f in fs), "", None),
            ("operations/s", " / ".join(fmt_int(f["ops_per_s"]) for f in fs), "", None),
            ("server CPU per operation (ms)", " / ".join(f"{f['server_cpu_ms_per_op']}" for f in fs), "", None),
            ("PostgreSQL CPU per operation (ms)", " / ".join(f"{f['postgres_cpu_ms_per_op']}" for f in fs), "", None),
            ("load generator CPU per operation (ms)", " / ".join(f"{f['client_cpu_ms_per_op']}" for f in fs), "",
             None),
            ("CPU-bound ceiling: cores ÷ (server + PostgreSQL CPU per operation), ops/s",
             " / ".join(fmt_int(f["cpu_bound_ops_per_s"]) for f in fs), "", None),
            ("busy cores: whole machine", " / ".join(f"{f['machine_busy_cores']}" for f in fs), "", None),
            ("‥ of which other processes (not server, this database, Redis, bench)",
             " / ".join(f"{f['other_cores']}" for f in fs), "", None),
            ("answers other than 200", " / ".join(str(f["not_200"]) for f in fs), "0",
             all(not f["not_200"] for f in fs)),
        ]  # fmt: skip
        for c in cases[:2]:
            f = results[c]
            ok = not f["not_applied"]
            rows.append((
                f"{c}: applied / sent; check-ins, reports, sync ops, used photos stored",
                f"{f['applied']:,} / {f['ops']:,}; {f['check_ins_stored']:,}, {f['reports_stored']:,},"
                f" {f['sync_ops_stored']:,}, {f['used_photos_stored']:,}",
                "all", ok,
            ))  # fmt: skip
        for c in cases[2:]:
            f = results[c]
            ok = not f["not_replayed"] and not f["rows_changed"]
            rows.append((
                f"{c}: replayed as first answered / sent; rows changed",
                f"{f['ops'] - f['not_replayed']:,} / {f['ops']:,}; {f['rows_changed']}", "all; 0", ok,
            ))  # fmt: skip
        print_table(
            f"POST /field/v1/sync: batches of {first['ops_per_batch']} ({args.ops - args.reports} check_in +"
            f" {args.reports} report), {args.inspectors} inspectors a group, tongguan serve --workers {args.workers},"
            f" {os.cpu_count()} cores — first sequential / first concurrent / replay sequential / replay concurrent",
            rows,
            caption=f"connections by worker {' + '.join(map(str, first['_connections_by_worker']))}; uploads before the"
            f" clock: {first['upload_s']} s and {results['first_concurrent']['upload_s']} s for"
            f" {first['ops']:,} photos each; scenes redrawn (dHash too close): {first['_photos_redrawn']}",
            third="target",
        )
    for kind in ("check_in", "report"):
        p = results.get(f"profile_{kind}")
        if not p:
            continue
        rows = [("one operation in all (sync batch, in-process, no HTTP)", f"{p['ms_per_op']} ms",
                 f"{p['cpu_ms_per_op']} ms", None)]  # fmt: skip
        for key, label, _, _ in PIECES:
            if f"{key}_ms" in p:
                calls = p[f"{key}_calls"]
                rows.append((label + (f" (×{calls:g})" if calls != 1 else ""), f"{p[f'{key}_ms']} ms",
                             f"{p[f'{key}_cpu_ms']} ms", None))  # fmt: skip
        if "tx_commit_ms" in p:
            rows.append((
                "‥ the outer COMMIT alone (its WAL flush: synchronous_commit)",
                f"{p['tx_commit_ms'] - p.get('tx_release_ms', 0):.3f} ms",
                f"{p['tx_commit_cpu_ms'] - p.get('tx_release_cpu_ms', 0):.3f} ms", None,
            ))  # fmt: skip
        rows.append(("SQL statements (BEGIN / SAVEPOINT / COMMIT not counted)", f"{p['sql_per_op']}", "", None))
        print_table(
            f"profile: {p['ops']} × {kind} in one batch, per operation (wall, CPU of the event loop)",
            rows,
            caption="SQL per operation: " + ", ".join(f"{k} {v}" for k, v in p["_sql"].items()),
            third="CPU",
        )
    if "first_sequential" in results:
        seq, conc = results["first_sequential"], results["first_concurrent"]
        rs, rc = results["replay_sequential"], results["replay_concurrent"]
        applied = "yes" if not seq["not_applied"] + conc["not_applied"] else "NO"
        wrong = rs["not_replayed"] + rc["not_replayed"] + rs["rows_changed"] + rc["rows_changed"]
        replayed = "yes" if not wrong else "NO"
        console.print(
            f"[bold]sync summary[/bold]: a batch of {seq['ops_per_batch']} takes p50 {seq['p50_ms'] / 1000:.2f} s"
            f" alone ({seq['ops_per_s']:,.0f} ops/s), p50 {conc['p50_ms'] / 1000:.2f} s / p99"
            f" {conc['p99_ms'] / 1000:.2f} s with {args.inspectors} at once ({conc['ops_per_s']:,.0f} ops/s);"
            f" replayed p50 {rs['p50_ms'] / 1000:.2f} s alone, {rc['p50_ms'] / 1000:.2f} s at once; all applied:"
            f" {applied}, all replayed (no row changed): {replayed}"
        )


if __name__ == "__main__":
    main_guard(BENCH, main)
