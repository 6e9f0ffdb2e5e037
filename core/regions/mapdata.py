"""The command centre's city map (一张图): boundary layers, open cases as compact rows, and a case heat map.

Boundary layers are built once per process and level (read, simplify, serialise, gzip) and kept as bytes with an
ETag; the grid layer is 51,495 features in the city-scale seed, so a request must never rebuild it. Entries are
rebuilt in the background once they are 10 minutes old, so another process's region import shows up.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from tortoise import connections
from tortoise.expressions import Case as Choose
from tortoise.expressions import F, Q, RawSQL, When
from tortoise.functions import Count

from core import clock
from core.cases.models import Case
from core.cases.service import visible_filter
from core.cases.workflow import Actor, Status
from core.catalog.models import Subclass
from core.db import on_open
from core.errors import NotFoundError, ValidationFailed
from core.geo.service import parse_geojson_many
from core.regions.models import District, Street, UnitGrid
from core.settings import get_settings

log = logging.getLogger("tongguan.map")

# Simplification tolerance in degrees per level (1e-5° ≈ 1 m here): grids are ~120 m wide and have ~7 vertices,
# so their tolerance stays near the 1 m of the 5-decimal rounding and they keep their shape. District and street
# outlines are drawn over the grids' edges: simplified further than ~5 m they visibly leave them at street zoom.
TOLERANCE = {"district": 0.00005, "street": 0.00005, "grid": 0.00002}
LEVELS = tuple(TOLERANCE)
DECIMALS = 5
FORMAT = 1  # of the saved copies under var_dir/cache: raise it when _encode's output changes
MAX_AGE_S = 600.0
# Level 6: within 2 % of level 9's size at a quarter of its time (measured on the 51,495-grid layer).
GZIP_LEVEL = 6
MAX_CASE_ROWS = 50_000
TOP_SUBCLASSES = 20
CASE_FIELDS = ("number", "lon", "lat", "status", "overdue", "subclass", "urgency")


@dataclass(frozen=True)
class Layer:
    """One level's boundaries as served: GeoJSON bytes, their gzip, and the grids' representative points."""

    level: str
    body: bytes
    gzipped: bytes
    digest: str  # of `body`: the ETag of both encodings, told apart by a suffix
    features: int
    build_s: float
    built_at: float  # time.monotonic()
    points: dict[str, tuple[float, float]] = field(default_factory=dict)
    source: tuple = ()  # the stored rows' fingerprint when built (see _fingerprint)

    @property
    def etag(self) -> str:
        return f'"{self.digest}"'

    @property
    def etag_gzip(self) -> str:
        return f'"{self.digest}-gzip"'


def check_level(level: str) -> None:
    if level not in TOLERANCE:
        raise NotFoundError("unknown_map_level", f"map level is one of {', '.join(LEVELS)}, not {level!r}")


TABLES = {"district": "district", "street": "street", "grid": "unit_grid"}


async def _fingerprint(level: str) -> tuple:
    """What the stored boundaries of a level look like, cheaply: districts and streets (a hundred rows) by every
    code, name and geometry length; the 51,495 grids by one aggregate of count, geometry length and area."""
    conn = connections.get("default")
    if level == "grid":
        rows = await conn.execute_query_dict(
            "SELECT count(*) AS n, sum(length(geometry)) AS s, sum(area_m2) AS a FROM unit_grid"
        )
        return (int(rows[0]["n"]), int(rows[0]["s"] or 0), round(float(rows[0]["a"] or 0), 1))
    rows = await conn.execute_query_dict(f"SELECT code, name, length(geometry) AS s FROM {TABLES[level]} ORDER BY code")
    return (hashlib.sha256(repr([tuple(r.values()) for r in rows]).encode()).hexdigest(),)


async def _read(level: str) -> tuple[list[str], list[str | None], list[str | None], list[str]]:
    """(codes, names, parents, geometry texts) of one level, ordered by code."""
    if level == "district":
        rows = await District.all().order_by("code").values_list("code", "name", "geometry")
        return [r[0] for r in rows], [r[1] for r in rows], [None] * len(rows), [r[2] for r in rows]
    if level == "street":
        rows = await Street.all().order_by("code").values_list("code", "name", "district_id", "geometry")
        return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows]
    grids = await UnitGrid.all().order_by("code").values_list("code", "geometry")
    codes = [g[0] for g in grids]
    # A grid's code starts with its street's 9 digits.
    return codes, [None] * len(codes), [c[:9] for c in codes], [g[1] for g in grids]


def _encode(level: str, codes: list[str], names: list, parents: list, texts: list[str]) -> Layer:
    """Simplify, round and serialise one level (CPU only: runs in a thread)."""
    started = time.perf_counter()
    stored = parse_geojson_many(texts)
    simple = shapely.simplify(stored, TOLERANCE[level], preserve_topology=True)
    shown = shapely.set_precision(simple, 10.0**-DECIMALS, mode="pointwise")
    # Rounding can fold a thin polygon onto itself; those few keep their simplified shape at full precision.
    broken = ~shapely.is_valid(shown) & shapely.is_valid(simple)
    shown[broken] = simple[broken]
    geometries = shapely.to_geojson(shown) if len(shown) else []
    parts = []
    for code, name, parent, geometry in zip(codes, names, parents, geometries, strict=True):
        props: dict[str, Any] = {"code": code}
        if name is not None:
            props["name"] = name
        props["parent"] = parent
        head = json.dumps(
            {"type": "Feature", "id": code, "properties": props}, ensure_ascii=False, separators=(",", ":")
        )
        # The geometry text comes from GEOS already compact; splicing it avoids parsing 51,495 of them back.
        parts.append(f'{head[:-1]},"geometry":{geometry}}}')
    body = ('{"type":"FeatureCollection","features":[' + ",".join(parts) + "]}").encode()
    points: dict[str, tuple[float, float]] = {}
    if level == "grid" and len(stored):
        xy = np.round(shapely.get_coordinates(shapely.point_on_surface(stored)), DECIMALS)
        points = {code: (float(x), float(y)) for code, (x, y) in zip(codes, xy, strict=True)}
    return Layer(
        level=level,
        body=body,
        gzipped=gzip.compress(body, GZIP_LEVEL, mtime=0),
        digest=hashlib.sha256(body).hexdigest()[:32],
        features=len(codes),
        build_s=time.perf_counter() - started,
        built_at=time.monotonic(),
        points=points,
    )


async def build_layer(*, level: str) -> Layer:
    """One level's boundaries encoded for the map: from the disk copy made for the same stored boundaries, or read
    and encoded from the database (then copied to disk for the next process or restart)."""
    check_level(level)
    started = time.perf_counter()
    source = await _fingerprint(level)
    saved = _saved_path(level, source)
    layer = await asyncio.to_thread(_load_saved, level, saved)
    if layer is None:
        rows = await _read(level)
        layer = await asyncio.to_thread(_encode, level, *rows)
        await asyncio.to_thread(_save, layer, saved)
    build_s = time.perf_counter() - started
    fields = {"layer": level, "features": layer.features, "s": round(build_s, 3), "from_disk": layer.build_s == 0}
    log.info("map layer ready", extra={"fields": fields})
    return replace(layer, build_s=build_s, source=source, built_at=time.monotonic())


def _saved_path(level: str, source: tuple) -> Path:
    tag = hashlib.sha256(repr((FORMAT, level, source, TOLERANCE[level], DECIMALS)).encode()).hexdigest()[:16]
    return get_settings().var_dir / "cache" / f"map-{level}-{tag}.json.gz"


def _load_saved(level: str, path: Path) -> Layer | None:
    """The layer saved for these stored boundaries, or None (none saved, or unreadable: then it is rebuilt)."""
    try:
        gzipped = path.read_bytes()
        meta = json.loads(path.with_suffix(".meta").read_text())
        body = gzip.decompress(gzipped)
    except (OSError, ValueError, EOFError):
        return None
    points = {code: (x, y) for code, (x, y) in meta["points"].items()}
    digest = hashlib.sha256(body).hexdigest()[:32]
    return Layer(level, body, gzipped, digest, meta["features"], 0.0, time.monotonic(), points)


def _save(layer: Layer, path: Path) -> None:
    """Keep the encoded layer on disk, replacing older copies of the level; a failure only costs the next start."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = json.dumps({"features": layer.features, "points": layer.points}, separators=(",", ":"))
        # The meta file first: a reader finds the body only when both are complete (each renamed into place).
        for target, data in ((path.with_suffix(".meta"), meta.encode()), (path, layer.gzipped)):
            tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
            tmp.write_bytes(data)
            tmp.replace(target)
        for old in path.parent.glob(f"map-{layer.level}-*"):
            if old.name not in (path.name, path.with_suffix(".meta").name) and not old.name.endswith(".tmp"):
                old.unlink(missing_ok=True)
    except OSError:
        log.warning("map layer not saved to disk", extra={"fields": {"layer": layer.level, "path": str(path)}})


class _LayerCache:
    """Layers per level, built once; an old entry is still served while its replacement is built."""

    def __init__(self) -> None:
        self._layers: dict[str, Layer] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._refreshing: dict[str, asyncio.Task] = {}
        self._generation = 0  # forget() makes builds that started before it drop their result

    async def get(self, level: str) -> Layer:
        layer = self._layers.get(level)
        if layer is not None:
            if time.monotonic() - layer.built_at >= MAX_AGE_S and level not in self._refreshing:
                task = asyncio.create_task(self._refresh(level), name=f"map-layer-{level}")
                self._refreshing[level] = task
                task.add_done_callback(lambda _: self._refreshing.pop(level, None))
            return layer
        lock = self._locks.setdefault(level, asyncio.Lock())
        async with lock:
            layer = self._layers.get(level)
            if layer is None:
                layer = await self._build(level)
        return layer

    async def _build(self, level: str) -> Layer:
        generation = self._generation
        layer = await build_layer(level=level)
        if generation == self._generation:
            self._layers[level] = layer
        return layer

    async def _refresh(self, level: str) -> None:
        try:
            async with self._locks.setdefault(level, asyncio.Lock()):
                # Another process may have imported regions; unless it did, the layer is kept another while
                # (a rebuild of the grids costs seconds of CPU).
                layer = self._layers.get(level)
                if layer is not None and layer.source == await _fingerprint(level):
                    self._layers[level] = replace(layer, built_at=time.monotonic())
                    return
                await self._build(level)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The old layer stays; the next request after this one tries again.
            log.exception("map layer not rebuilt", extra={"fields": {"layer": level}})

    def forget(self) -> None:
        self._generation += 1
        self._layers.clear()


_cache = _LayerCache()


def forget_map_cache() -> None:
    """Drop every cached layer (after a region import, or when another database is opened)."""
    _cache.forget()


on_open(forget_map_cache)


async def boundary_layer(*, level: str) -> Layer:
    """The boundaries of districts, streets or unit grids, as cached GeoJSON bytes."""
    check_level(level)
    return await _cache.get(level)


async def warm_map_cache() -> None:
    """Build every layer at start (the grid layer takes a few seconds); failures are only logged."""
    try:
        for level in LEVELS:
            await _cache.get(level)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("map layers not built at start; the first request builds them")


async def open_cases(*, actor: Actor) -> dict[str, Any]:
    """The open cases the actor may see, newest first, as compact rows for the map (one query).

    Points keep 6 decimals (0.1 m): a fifth fewer bytes than full floats, and no visible difference."""
    query = Case.filter(is_open=True)
    scope = visible_filter(actor)
    if scope is not None:
        query = query.filter(scope)
    rows = (
        await query.annotate(late=_overdue(clock.now()))
        .order_by("-id")
        .limit(MAX_CASE_ROWS + 1)
        .values_list("number", "lon", "lat", "status", "late", "subclass__kind", "subclass__code", "urgency")
    )
    truncated = len(rows) > MAX_CASE_ROWS
    total = await query.count() if truncated else len(rows)
    return {
        "fields": list(CASE_FIELDS),
        "rows": [
            [number, round(lon, 6), round(lat, 6), status, int(late), f"{kind}:{code}", urgency]
            for number, lon, lat, status, late, kind, code, urgency in rows[:MAX_CASE_ROWS]
        ],
        "total": total,
        "truncated": truncated,
    }


def _overdue(now: datetime) -> Choose:
    """The console's rule (console.api._summary_fields) in SQL: flagged by the SLA job, or the deadline passed
    before now or before the clock was paused. In SQL because parsing two timestamps per row costs SQLite more
    than the rest of the query."""
    return Choose(
        When(
            Q(stage_overdue=True)
            | Q(paused_at__isnull=True, stage_deadline__lt=now)
            | Q(stage_deadline__lt=F("paused_at")),
            # Literals, not parameters: PostgreSQL would type untyped CASE parameters as text.
            then=RawSQL("1"),  # type: ignore[arg-type]  # tortoise's stubs omit RawSQL; it is rendered as is
        ),
        default=RawSQL("0"),  # type: ignore[arg-type]
    )


async def heat(*, actor: Actor, days: int, subclass: str | None) -> dict[str, Any]:
    """Cases opened in the last `days` days (voided left out) counted per unit grid, at each grid's point."""
    since = clock.now() - timedelta(days=days)
    cases = Case.filter(opened_at__gte=since).exclude(status=Status.VOIDED)
    scope = visible_filter(actor)
    if scope is not None:
        cases = cases.filter(scope)
    chosen = cases
    if subclass is not None:
        # Every catalog version's subclass of that code: cases keep the version they were filed under.
        chosen = cases.filter(subclass_id__in=await _subclass_ids(subclass))
    per_grid = await chosen.annotate(n=Count("id")).group_by("unit_grid").values_list("unit_grid", "n")
    points = (await _cache.get("grid")).points
    placed = [[*points[grid], int(n)] for grid, n in per_grid if grid in points]
    placed.sort(key=lambda p: -p[2])
    return {
        "days": days,
        "subclass": subclass,
        "points": placed,
        "max": placed[0][2] if placed else 0,
        "subclasses": await _top_subclasses(cases),
    }


async def _subclass_ids(ref: str) -> list[Any]:
    kind, _, code = ref.partition(":")
    if not kind or not code:
        raise ValidationFailed("unknown_subclass", "subclass is written kind:code, e.g. event:0102")
    ids = list(await Subclass.filter(kind=kind, code=code).values_list("id", flat=True))
    if not ids:
        raise NotFoundError("unknown_subclass", f"there is no subclass {ref}")
    return ids


async def _top_subclasses(cases: Any) -> list[dict[str, Any]]:
    """The most frequent subclasses among `cases`, merged across catalog versions by kind:code."""
    per_id = dict(await cases.annotate(n=Count("id")).group_by("subclass_id").values_list("subclass_id", "n"))
    if not per_id:
        return []
    counts: Counter[str] = Counter()
    names: dict[str, str] = {}
    # Ascending ids: a later catalog version's name wins.
    for sid, kind, code, name in (
        await Subclass.filter(id__in=list(per_id)).order_by("id").values_list("id", "kind", "code", "name")
    ):
        ref = f"{kind}:{code}"
        counts[ref] += int(per_id[sid])
        names[ref] = name
    top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:TOP_SUBCLASSES]
    return [{"subclass": ref, "name": names[ref], "count": n} for ref, n in top]
