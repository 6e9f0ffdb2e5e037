"""GPS tracks (轨迹) of field workers and vehicles: the packed chunk format and the batch ingest.

About 13,000 workers and 4,000 vehicles report a point every 10-30 s: some 100 million points a day. A row per
point would cost ~110 bytes with its index entries; a chunk stores one uploaded batch of one subject and China day
as delta-coded integer columns, byte-shuffled and zlib-compressed (~6 bytes a point, see README "GPS tracks").

Chunk format, version 1 (little-endian):

    byte 0      version (1), outside the compression so a later version may pick another codec
    bytes 1..   zlib( n: uint32 | t0: int64 epoch ms | 5 × n uint32, byte-shuffled | n uint8 flags )

The five uint32 columns are zigzag-coded deltas (the first value of each column is its own delta from 0):
time in ms from t0, lon and lat in 1e-6 degrees (WGS-84), accuracy in 0.1 m + 1 and speed in 0.1 km/h + 1
(0 = not given). Byte-shuffling (all first bytes, then all second bytes …) puts the many zero high bytes of small
deltas together, which zlib then folds: 5.8 bytes a point against 8.2 without it on a walking track.
Flags: bit 0 = spoofed (an impossible speed from the previous credible point).

What is stored is quantised: time to the millisecond, coordinates to 1e-6 degrees (~0.1 m), accuracy to 0.1 m,
speed to 0.1 km/h. Ingest quantises first, so checks and summaries see exactly what is read back later.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
from numpy.typing import ArrayLike
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from core import clock
from core.errors import BatchTooLarge, ValidationFailed
from core.geo.projection import EARTH_RADIUS_M
from core.outbox import service as outbox
from core.patrols.models import TrackChunk, TrackHead
from core.settings import get_settings

FORMAT_VERSION = 1
SUBJECT_TYPES = frozenset({"staff", "vehicle"})
FLAG_SPOOFED = 1
# Sentinel of a time the edge could not read (no zone, not a date): refused per point as bad_time.
BAD_TIME = np.iinfo(np.int64).min
# Asia/Shanghai has kept UTC+8 without daylight saving since 1991, so a China day is a fixed offset of epoch time.
_CHINA_OFFSET_MS = 8 * 3600 * 1000
_DAY_MS = 86_400_000
_EPOCH_DAY = date(1970, 1, 1)
_HEADER = np.dtype([("n", "<u4"), ("t0", "<i8")])
_COLUMNS = 5
# A late batch for a finished day asks for that day's summary again, at most once an hour per worker and day.
RESUMMARY_TASK = "patrol_days"
# A fix uncertain by more than this is no position; the bound also keeps every column within 32 bits.
MAX_ACCURACY_M = 100_000.0
MAX_SPEED_KMH = 10_000.0

POINT_DTYPE = np.dtype(
    [
        ("at_ms", "<i8"),  # epoch milliseconds
        ("lon", "<f8"),  # WGS-84
        ("lat", "<f8"),
        ("accuracy_m", "<f8"),  # NaN: not given
        ("speed_kmh", "<f8"),  # NaN: not given
        ("spoofed", "?"),
    ]
)


@dataclass(frozen=True)
class TrackPoint:
    at: datetime  # timezone-aware
    lon: float  # WGS-84 (convert other datums at the edge with core.geo.datum)
    lat: float
    accuracy_m: float | None = None
    speed_kmh: float | None = None


@dataclass(frozen=True)
class PointError:
    index: int
    code: str  # stable error code: point_in_future, point_too_old, point_outside_city, bad_accuracy …
    detail: str


@dataclass
class IngestResult:
    accepted: int  # stored (spoofed ones included, flagged)
    spoofed: list[int]  # indexes of points flagged as impossible (> track_spoof_kmh from the last credible point)
    duplicates: int  # points already stored (a replayed batch), not stored again
    rejected: list[PointError] = field(default_factory=list)  # points refused with a reason, not stored


@dataclass
class TrackColumns:
    """A batch as columns, in the order received: what the HTTP edge builds without a TrackPoint per point."""

    at_ms: np.ndarray  # int64 epoch ms; BAD_TIME where the edge could not read the time
    lon: np.ndarray  # float64, WGS-84
    lat: np.ndarray
    accuracy_m: np.ndarray  # float64, NaN = not given
    speed_kmh: np.ndarray  # float64, NaN = not given

    def __len__(self) -> int:
        return len(self.at_ms)

    @classmethod
    def from_points(cls, points: Sequence[TrackPoint]) -> TrackColumns:
        n = len(points)
        return cls(
            at_ms=np.fromiter((_epoch_ms(p.at) for p in points), dtype=np.int64, count=n),
            lon=np.fromiter((p.lon for p in points), dtype=np.float64, count=n),
            lat=np.fromiter((p.lat for p in points), dtype=np.float64, count=n),
            accuracy_m=np.fromiter((optional_value(p.accuracy_m) for p in points), dtype=np.float64, count=n),
            speed_kmh=np.fromiter((optional_value(p.speed_kmh) for p in points), dtype=np.float64, count=n),
        )


def optional_value(value: float | None) -> float:
    """NaN stands for "not given"; a given NaN becomes -1, which the checks refuse like any negative value."""
    if value is None:
        return math.nan
    return -1.0 if math.isnan(value) else float(value)


def _epoch_ms(moment: datetime) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        return int(BAD_TIME)  # a time without its zone is ambiguous by hours
    return round(moment.timestamp() * 1000)


def epoch_ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware moment."""
    return round(moment.timestamp() * 1000)


def from_epoch_ms(ms: int) -> datetime:
    """The moment of epoch milliseconds, in China time."""
    return datetime.fromtimestamp(ms / 1000, clock.CHINA)


def china_days(at_ms: np.ndarray) -> np.ndarray:
    """The China day of each epoch-ms time, as days since 1970-01-01."""
    return (np.asarray(at_ms, dtype=np.int64) + _CHINA_OFFSET_MS) // _DAY_MS


def _day(number: int) -> date:
    return _EPOCH_DAY + timedelta(days=int(number))


def _day_number(day: date) -> int:
    return (day - _EPOCH_DAY).days


# --- the packed format ----------------------------------------------------------------------------------------


def _zigzag_deltas(values: np.ndarray) -> np.ndarray:
    d: np.ndarray = np.diff(values.astype(np.int64), prepend=np.int64(0))
    z = (d << 1) ^ (d >> 63)
    if len(z) and (int(z.max()) >= 1 << 32 or int(z.min()) < 0):
        raise ValueError("a column delta does not fit 32 bits")
    return z.astype(np.uint32)


def _undo_zigzag_deltas(z: np.ndarray) -> np.ndarray:
    u = z.astype(np.int64)
    return np.cumsum((u >> 1) ^ -(u & 1))


def _quantised_optional(values: np.ndarray, scale: float) -> np.ndarray:
    """0 for not given, else round(value × scale) + 1."""
    out = np.zeros(len(values), dtype=np.int64)
    given = ~np.isnan(values)
    out[given] = np.rint(values[given] * scale).astype(np.int64) + 1
    return out


def pack(
    at_ms: np.ndarray,
    lon: np.ndarray,
    lat: np.ndarray,
    accuracy_m: np.ndarray,
    speed_kmh: np.ndarray,
    spoofed: np.ndarray,
) -> bytes:
    """Points (in any order; ingest stores them sorted by time) → one chunk's bytes."""
    n = len(at_ms)
    at = np.asarray(at_ms, dtype=np.int64)
    t0 = int(at[0]) if n else 0
    columns = np.concatenate(
        [
            _zigzag_deltas(at - t0),
            _zigzag_deltas(np.rint(np.asarray(lon) * 1e6)),
            _zigzag_deltas(np.rint(np.asarray(lat) * 1e6)),
            _zigzag_deltas(_quantised_optional(np.asarray(accuracy_m, dtype=np.float64), 10)),
            _zigzag_deltas(_quantised_optional(np.asarray(speed_kmh, dtype=np.float64), 10)),
        ]
    )
    header = np.array([(n, t0)], dtype=_HEADER).tobytes()
    shuffled = columns.view(np.uint8).reshape(-1, 4).T.tobytes()
    flags = np.where(np.asarray(spoofed, dtype=bool), FLAG_SPOOFED, 0).astype(np.uint8).tobytes()
    return bytes([FORMAT_VERSION]) + zlib.compress(header + shuffled + flags, 6)


def unpack(data: bytes) -> np.ndarray:
    """One chunk's bytes → a structured array of POINT_DTYPE, in stored order."""
    if not data or data[0] != FORMAT_VERSION:
        raise ValueError(f"unknown track chunk format {data[:1]!r}")
    raw = zlib.decompress(data[1:])
    head = np.frombuffer(raw, dtype=_HEADER, count=1)[0]
    n, t0 = int(head["n"]), int(head["t0"])
    if len(raw) != _HEADER.itemsize + n * (4 * _COLUMNS + 1):
        raise ValueError(f"track chunk of {len(raw)} bytes does not hold {n} points")
    body = np.frombuffer(raw, dtype=np.uint8, offset=_HEADER.itemsize, count=4 * _COLUMNS * n)
    columns = np.ascontiguousarray(body.reshape(4, _COLUMNS * n).T).view(np.uint32).reshape(_COLUMNS, n)
    flags = np.frombuffer(raw, dtype=np.uint8, offset=_HEADER.itemsize + 4 * _COLUMNS * n, count=n)
    out = np.empty(n, dtype=POINT_DTYPE)
    out["at_ms"] = _undo_zigzag_deltas(columns[0]) + t0
    out["lon"] = _undo_zigzag_deltas(columns[1]) / 1e6
    out["lat"] = _undo_zigzag_deltas(columns[2]) / 1e6
    for name, column in (("accuracy_m", columns[3]), ("speed_kmh", columns[4])):
        q = _undo_zigzag_deltas(column)
        out[name] = np.where(q == 0, np.nan, (q - 1) / 10)
    out["spoofed"] = (flags & FLAG_SPOOFED) != 0
    return out


def as_track_points(points: np.ndarray) -> list[tuple[TrackPoint, bool]]:
    """A structured array of points → (TrackPoint, spoofed) pairs, for callers that prefer objects."""
    return [
        (
            TrackPoint(
                at=from_epoch_ms(int(p["at_ms"])),
                lon=float(p["lon"]),
                lat=float(p["lat"]),
                accuracy_m=None if math.isnan(p["accuracy_m"]) else float(p["accuracy_m"]),
                speed_kmh=None if math.isnan(p["speed_kmh"]) else float(p["speed_kmh"]),
            ),
            bool(p["spoofed"]),
        )
        for p in points
    ]


# --- checks ---------------------------------------------------------------------------------------------------


def distance_m(lon1: ArrayLike, lat1: ArrayLike, lon2: ArrayLike, lat2: ArrayLike) -> np.ndarray:
    """Great-circle distances in metres (haversine), vectorised."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dl = np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(a, 1.0)))


def _speed_kmh(d_m: ArrayLike, dt_ms: ArrayLike) -> np.ndarray:
    # Fixes a few milliseconds apart would make any jitter "impossible": time counts as at least a second.
    return np.asarray(d_m) / np.maximum(np.asarray(dt_ms, dtype=np.float64) / 1000, 1.0) * 3.6


def _check(cols: TrackColumns, *, now_ms: int) -> tuple[np.ndarray, list[PointError]]:
    """Refuse points per item; returns the mask of the good ones and the errors, in input order."""
    s = get_settings()
    n = len(cols)
    code = np.full(n, "", dtype=object)

    def refuse(mask: np.ndarray, what: str) -> None:
        code[mask & (code == "")] = what

    refuse(cols.at_ms == BAD_TIME, "bad_time")
    lon, lat = cols.lon, cols.lat
    bad_point = ~np.isfinite(lon) | ~np.isfinite(lat) | (np.abs(lon) > 180) | (np.abs(lat) > 90)
    refuse(bad_point, "bad_point")
    refuse(cols.at_ms > now_ms + s.track_future_s * 1000, "point_in_future")
    refuse(cols.at_ms < now_ms - s.track_max_age_hours * 3_600_000, "point_too_old")
    with np.errstate(invalid="ignore"):
        far = distance_m(lon, lat, s.city_center_lon, s.city_center_lat) > s.city_radius_km * 1000
        refuse(far & ~bad_point, "point_outside_city")
        acc, speed = cols.accuracy_m, cols.speed_kmh
        refuse((acc < 0) | (acc > MAX_ACCURACY_M), "bad_accuracy")
        refuse((speed < 0) | (speed > MAX_SPEED_KMH), "bad_speed")
    details = {
        "bad_time": "time is missing its zone or is not ISO 8601 / epoch milliseconds",
        "bad_point": "longitude/latitude are not finite WGS-84 degrees",
        "point_in_future": f"more than {s.track_future_s} s after the server's time",
        "point_too_old": f"more than {s.track_max_age_hours} h before the server's time",
        "point_outside_city": f"farther than {s.city_radius_km:g} km from the city centre",
        "bad_accuracy": f"accuracy must be a number from 0 to {MAX_ACCURACY_M:,.0f} m",
        "bad_speed": f"speed must be a number from 0 to {MAX_SPEED_KMH:,.0f} km/h",
    }
    bad = np.flatnonzero(code != "")
    errors = [PointError(int(i), str(code[i]), details[str(code[i])]) for i in bad]
    return code == "", errors


def flag_spoofed(
    at_ms: np.ndarray,
    lon: np.ndarray,
    lat: np.ndarray,
    *,
    before: tuple[int, float, float] | None,
    head: tuple[int, float, float] | None = None,
    limit_kmh: float,
) -> np.ndarray:
    """Flag points (sorted by time) reached at more than `limit_kmh` from the last credible point before them.

    `before` is the last credible stored point before the batch; `head`, when later than that, takes over as the
    reference for the points after it. A flagged point never becomes the reference: one wild fix does not make
    every honest point after it look impossible.
    """
    n = len(at_ms)
    flags = np.zeros(n, dtype=bool)
    if n == 0:
        return flags
    if head is not None and head[0] < int(at_ms[0]):
        # The head precedes the batch (the common case): it is the last credible point before it.
        if before is None or head[0] >= before[0]:
            before = head
        head = None
    # Common case, vectorised: every step from its predecessor is possible, so every point is credible.
    if head is None:
        t_prev = np.concatenate([[before[0]], at_ms[:-1]]) if before else at_ms[:-1]
        lon_prev = np.concatenate([[before[1]], lon[:-1]]) if before else lon[:-1]
        lat_prev = np.concatenate([[before[2]], lat[:-1]]) if before else lat[:-1]
        start = 0 if before else 1
        speeds = _speed_kmh(distance_m(lon_prev, lat_prev, lon[start:], lat[start:]), at_ms[start:] - t_prev)
        if not (speeds > limit_kmh).any():
            return flags
    ref = before
    for i in range(n):
        t = int(at_ms[i])
        if head is not None and t > head[0] and (ref is None or ref[0] < head[0]):
            ref = head
        if ref is not None:
            d = float(distance_m(np.float64(ref[1]), np.float64(ref[2]), np.float64(lon[i]), np.float64(lat[i])))
            if float(_speed_kmh(d, t - ref[0])) > limit_kmh:
                flags[i] = True
                continue
        ref = (t, float(lon[i]), float(lat[i]))
    return flags


# --- ingest ---------------------------------------------------------------------------------------------------


async def ingest(
    *, subject_type: str, subject_id: str, points: Sequence[TrackPoint], now: datetime | None = None
) -> IngestResult:
    """Store a batch of GPS points of one worker ("staff", staff id) or vehicle ("vehicle", muck truck id).

    Bad points are refused one by one and the good ones stored; a batch over `track_max_points` is refused whole.
    Points already stored (a batch sent again) are not stored twice; points older than the head (an offline queue)
    are stored when not already there.
    """
    _check_batch_size(len(points))
    return await ingest_columns(
        subject_type=subject_type, subject_id=subject_id, columns=TrackColumns.from_points(points), now=now
    )


def _check_batch_size(n: int) -> None:
    limit = get_settings().track_max_points
    if n > limit:
        raise BatchTooLarge("batch_too_large", f"{n} points in one batch; at most {limit}, nothing was stored")


async def ingest_columns(
    *, subject_type: str, subject_id: str, columns: TrackColumns, now: datetime | None = None
) -> IngestResult:
    """`ingest` for a batch already in columns (the HTTP edge's form)."""
    if subject_type not in SUBJECT_TYPES:
        raise ValidationFailed("unknown_subject_type", f"subject type {subject_type!r} is not staff or vehicle")
    if not subject_id or len(subject_id) > 32 or (subject_type == "staff" and not subject_id.isdigit()):
        raise ValidationFailed("unknown_subject_type", f"{subject_type} {subject_id!r}: not a valid subject id")
    _check_batch_size(len(columns))
    now = clock.china(now or clock.now())
    good, rejected = _check(columns, now_ms=epoch_ms(now))
    idx = np.flatnonzero(good)
    # Sorted by time (stable: of two points with the same millisecond the first sent wins, the other is a duplicate).
    at = columns.at_ms[idx]
    order = np.argsort(at, kind="stable")
    idx, at = idx[order], at[order]
    first = np.ones(len(at), dtype=bool)
    first[1:] = at[1:] != at[:-1]
    duplicates = int((~first).sum())
    idx, at = idx[first], at[first]
    result = IngestResult(accepted=0, spoofed=[], duplicates=duplicates, rejected=rejected)
    if not len(idx):
        return result
    # Quantised as stored, so the speed check and later summaries see what is read back.
    lon = np.rint(columns.lon[idx] * 1e6) / 1e6
    lat = np.rint(columns.lat[idx] * 1e6) / 1e6
    acc = np.rint(columns.accuracy_m[idx] * 10) / 10
    speed = np.rint(columns.speed_kmh[idx] * 10) / 10
    days = china_days(at)
    async with in_transaction() as conn:
        head = await _locked_head(conn, subject_type, subject_id, now)
        stored = await _stored_times(conn, subject_type, subject_id, days, int(at[0]), int(at[-1]))
        new = ~np.isin(at, stored) if len(stored) else np.ones(len(at), dtype=bool)
        result.duplicates += int((~new).sum())
        idx, at, days = idx[new], at[new], days[new]
        lon, lat, acc, speed = lon[new], lat[new], acc[new], speed[new]
        if not len(idx):
            return result
        head_point = (epoch_ms(head.last_at), head.last_lon, head.last_lat) if head.points else None
        before = head_point
        if head_point is not None and int(at[0]) <= head_point[0]:
            # A late batch (an offline queue): its reference is the last credible point stored before it.
            before = await _credible_before(conn, subject_type, subject_id, int(at[0]))
        flags = flag_spoofed(at, lon, lat, before=before, head=head_point, limit_kmh=get_settings().track_spoof_kmh)
        chunks = []
        for day in np.unique(days):
            part = days == day
            chunks.append(
                TrackChunk(
                    subject_type=subject_type,
                    subject_id=subject_id,
                    day=_day(int(day)),
                    t0=from_epoch_ms(int(at[part][0])),
                    t1=from_epoch_ms(int(at[part][-1])),
                    n=int(part.sum()),
                    spoofed=int(flags[part].sum()),
                    data=pack(at[part], lon[part], lat[part], acc[part], speed[part], flags[part]),
                    received_at=now,
                )
            )
        await TrackChunk.bulk_create(chunks, using_db=conn)
        update: dict = {"points": F("points") + len(at), "updated_at": now}
        credible = np.flatnonzero(~flags)
        if len(credible) and (head_point is None or int(at[credible[-1]]) > head_point[0]):
            last = credible[-1]
            update |= {
                "last_at": from_epoch_ms(int(at[last])),
                "last_lon": float(lon[last]),
                "last_lat": float(lat[last]),
            }
        await TrackHead.filter(id=head.id).using_db(conn).update(**update)
        if subject_type == "staff":
            await _ask_for_summaries(conn, subject_id, {_day(int(d)) for d in np.unique(days)}, now)
    result.accepted = len(idx)
    result.spoofed = sorted(int(i) for i in idx[flags])
    return result


async def _locked_head(conn: BaseDBAsyncClient, subject_type: str, subject_id: str, now: datetime) -> TrackHead:
    """The subject's head row, locked on PostgreSQL until the batch commits (made, empty, on the first batch)."""

    def query():
        q = TrackHead.filter(subject_type=subject_type, subject_id=subject_id).using_db(conn)
        return q.select_for_update() if conn.capabilities.dialect == "postgres" else q

    head = await query().first()
    if head is None:
        # points = 0 marks "no point yet"; ON CONFLICT DO NOTHING lets two first batches race without an error.
        empty = TrackHead(
            subject_type=subject_type,
            subject_id=subject_id,
            last_at=from_epoch_ms(0),
            last_lon=0.0,
            last_lat=0.0,
            points=0,
            updated_at=now,
        )
        await TrackHead.bulk_create([empty], ignore_conflicts=True, using_db=conn)
        head = await query().first()
        assert head is not None
    return head


async def _stored_times(
    conn: BaseDBAsyncClient, subject_type: str, subject_id: str, days: np.ndarray, t_min: int, t_max: int
) -> np.ndarray:
    """Times of this subject already stored between t_min and t_max (from the chunks overlapping that span)."""
    rows = await (
        TrackChunk.filter(
            subject_type=subject_type,
            subject_id=subject_id,
            day__in=[_day(int(d)) for d in np.unique(days)],
            t0__lte=from_epoch_ms(t_max),
            t1__gte=from_epoch_ms(t_min),
        )
        .using_db(conn)
        .values_list("data", flat=True)
    )
    if not rows:
        return np.empty(0, dtype=np.int64)
    return np.concatenate([unpack(bytes(data))["at_ms"] for data in rows])


async def _credible_before(
    conn: BaseDBAsyncClient, subject_type: str, subject_id: str, t: int
) -> tuple[int, float, float] | None:
    """The last credible stored point before `t` (this day or the day before), or None."""
    day = int(china_days(np.array([t]))[0])
    rows = await (
        TrackChunk.filter(
            subject_type=subject_type,
            subject_id=subject_id,
            day__in=[_day(day - 1), _day(day)],
            t0__lt=from_epoch_ms(t),
        )
        .using_db(conn)
        .order_by("-t1")
        .limit(4)
        .values_list("data", flat=True)
    )
    best: tuple[int, float, float] | None = None
    for data in rows:
        points = unpack(bytes(data))
        points = points[(points["at_ms"] < t) & ~points["spoofed"]]
        if len(points):
            p = points[np.argmax(points["at_ms"])]
            if best is None or int(p["at_ms"]) > best[0]:
                best = (int(p["at_ms"]), float(p["lon"]), float(p["lat"]))
    return best


async def _ask_for_summaries(conn: BaseDBAsyncClient, staff_id: str, days: set[date], now: datetime) -> None:
    """Points for a finished day (uploaded late) make that day's patrol summary out of date: summarise it again."""
    today = now.date()
    for day in sorted(d for d in days if d < today):
        await outbox.add(
            task=RESUMMARY_TASK,
            args={"day": day.isoformat(), "staff_ids": [int(staff_id)]},
            dedupe_key=f"patrol_day:{staff_id}:{day.isoformat()}:{now:%Y%m%d%H}",
            conn=conn,
        )


# --- reading --------------------------------------------------------------------------------------------------


async def day_points(*, subject_type: str, subject_id: str, day: date) -> np.ndarray:
    """Every stored point of a subject on a China day, sorted by time, with the spoofed flag (POINT_DTYPE)."""
    rows = await TrackChunk.filter(subject_type=subject_type, subject_id=subject_id, day=day).values_list(
        "data", flat=True
    )
    return merge_chunks([bytes(data) for data in rows])


def merge_chunks(chunks: Sequence[bytes]) -> np.ndarray:
    """Chunks → one array sorted by time, each millisecond once (two chunks written by racing batches on SQLite)."""
    if not chunks:
        return np.empty(0, dtype=POINT_DTYPE)
    points = np.concatenate([unpack(data) for data in chunks])
    points = points[np.argsort(points["at_ms"], kind="stable")]
    keep = np.ones(len(points), dtype=bool)
    keep[1:] = points["at_ms"][1:] != points["at_ms"][:-1]
    return points[keep]


def as_geojson(points: np.ndarray, *, properties: dict | None = None) -> dict:
    """A day's points as a GeoJSON FeatureCollection: the credible points as one LineString (times, accuracy and
    speed alongside, in order), and each spoofed point as a Point marked `"spoofed": true`."""
    credible = points[~points["spoofed"]]

    def optional(values: np.ndarray) -> list[float | None]:
        return [None if math.isnan(v) else float(v) for v in values.tolist()]

    line = {
        "type": "Feature",
        "geometry": {
            # A LineString needs two positions; one fix alone is a Point.
            "type": "LineString" if len(credible) != 1 else "Point",
            "coordinates": np.column_stack([credible["lon"], credible["lat"]]).tolist()
            if len(credible) != 1
            else [float(credible["lon"][0]), float(credible["lat"][0])],
        },
        "properties": {
            **(properties or {}),
            "kind": "track",
            "times": [from_epoch_ms(t).isoformat() for t in credible["at_ms"].tolist()],
            "accuracy_m": optional(credible["accuracy_m"]),
            "speed_kmh": optional(credible["speed_kmh"]),
        },
    }
    spoofed = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [float(p["lon"]), float(p["lat"])]},
            "properties": {"kind": "spoofed", "spoofed": True, "at": from_epoch_ms(int(p["at_ms"])).isoformat()},
        }
        for p in points[points["spoofed"]]
    ]
    return {"type": "FeatureCollection", "features": [line, *spoofed]}


__all__ = [
    "BAD_TIME",
    "POINT_DTYPE",
    "BatchTooLarge",
    "IngestResult",
    "PointError",
    "TrackColumns",
    "TrackPoint",
    "as_geojson",
    "as_track_points",
    "china_days",
    "day_points",
    "distance_m",
    "flag_spoofed",
    "from_epoch_ms",
    "ingest",
    "ingest_columns",
    "merge_chunks",
    "pack",
    "unpack",
]
