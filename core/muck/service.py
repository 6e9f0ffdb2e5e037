"""Muck trucks (控渣土): the registry of companies, trucks and approved routes, positions against the rules, alerts.

The vehicle platform sends positions of many trucks at once. They are stored in the shared track store
(core/patrols/tracks.py), one `ingest` per truck, and the rules run on the points it kept (not refused, not
flagged as spoofed):

- off_route: moving farther than the corridor from every route valid that day, for more than `muck_off_route_s`
  of moving time in a row (a single GPS jump raises nothing); a truck without a valid route is off route too;
- off_hours: moving outside the daily windows of its valid routes (a window may run past midnight);
- no_cover: moving on a China day before a cover photo (密闭照片) of that day was taken.

A broken rule is one alert per truck, rule and China day (a unique key), then a sensor report under the same key
(the intake's idempotency key), so a replayed batch or two API processes at once make one alert and one report, and
the case pipeline takes it from there. What each rule reports (subclass, urgency, text) is data: core/muck/rules.json.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from core import clock
from core.errors import ConflictError, NotFoundError, TongguanError, ValidationFailed
from core.geo.datum import Datum, to_wgs84_many
from core.geo.projection import LocalProjection, haversine_m
from core.importing import ImportRejected, ImportReport, Progress, RowError
from core.muck import messages as say
from core.muck.models import MuckAlert, MuckCompany, MuckCover, MuckRoute, MuckTruck
from core.outbox import service as outbox
from core.patrols.tracks import BatchTooLarge, TrackPoint, ingest
from core.regions.service import projection, to_geojson_many
from core.reports.models import Report
from core.reports.service import URGENCIES, NewReport, submit_report
from core.settings import Settings, get_settings

log = logging.getLogger("tongguan.muck")
RULES = ("off_route", "off_hours", "no_cover")
RULES_FILE = Path(__file__).with_name("rules.json")
REPORTER_ID = "muck"  # alerts are reports of the system, reporter "muck"
REPORT_TASK = "muck_report"  # the job that reports an alert, written with it
SUBJECT_TYPE = "vehicle"
# Camera clocks drift: a cover photo a few minutes "ahead" of the server is still taken now.
COVER_CLOCK_SKEW = timedelta(minutes=5)
# Mainland plates: province character, issuing-office letter, 5 characters (6 for new-energy vehicles); trailers
# end in 挂. Spaces and the dot of 辽A·D1234 are not part of the plate.
_PLATE = re.compile(r"[\u4e00-\u9fff][A-Z][A-Z0-9]{4,5}[A-Z0-9挂]")
_PLATE_NOISE = re.compile(r"[\s·.\-]")
_SUBCLASS_REF = re.compile(r"(component|event):\d{4}")
_WINDOW = re.compile(r"(\d{1,2}):(\d{2})\s*[-–—~]\s*(\d{1,2}):(\d{2})")
CORRIDOR_M = (10.0, 2000.0)


def normalize_plate(plate: str) -> str:
    """A plate as registered: upper case, without spaces or the dot (辽a·d1234 → 辽AD1234)."""
    return _PLATE_NOISE.sub("", plate).upper()


def alert_key(truck_id: int, rule: str, day: date) -> str:
    return f"muck:{truck_id}:{rule}:{day:%Y%m%d}"


# --- reference data: what each rule reports ---------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    code: str
    subclass: str  # "event:0303"
    urgency: str
    text: str  # Chinese template with {plate} {company} {time} {detail}


@lru_cache
def load_rules(path: Path = RULES_FILE) -> dict[str, Rule]:
    """The rules file, checked once per process: every rule present, a subclass reference and a usable text."""
    raw = json.loads(path.read_text(encoding="utf-8"))["rules"]
    rules = {}
    for code in RULES:
        entry = raw[code]
        rule = Rule(code=code, subclass=entry["subclass"], urgency=entry.get("urgency", "normal"), text=entry["text"])
        # A typo fails here, at the first batch, not as a refused report per alert.
        rule.text.format(plate="", company="", time="", detail="")
        if rule.urgency not in URGENCIES or not _SUBCLASS_REF.fullmatch(rule.subclass):
            raise ValueError(f"{path}: rule {code} needs a subclass like event:0303 and an urgency of {URGENCIES}")
        rules[code] = rule
    return rules


# --- approved routes, cached per process -----------------------------------------------------------------------


@dataclass(frozen=True)
class RouteShape:
    """An approved route as the rules use it: its line in local metres, corridor, window and validity."""

    id: int
    truck_id: int
    line: shapely.Geometry
    corridor_m: float
    start_min: int
    end_min: int
    valid_from: date
    valid_to: date

    def _valid(self, day: date) -> bool:
        return self.valid_from <= day <= self.valid_to

    def _overnight(self) -> bool:
        return self.start_min > self.end_min

    def applies(self, at: datetime) -> bool:
        """Valid at this China moment: on a day of its validity, or after midnight in a window begun on one."""
        minute = at.hour * 60 + at.minute
        return self._valid(at.date()) or (
            self._overnight() and minute < self.end_min and self._valid(at.date() - timedelta(days=1))
        )

    def in_window(self, at: datetime) -> bool:
        """Inside the daily window at this China moment (a window past midnight belongs to the day it began)."""
        minute = at.hour * 60 + at.minute
        if not self._overnight():
            return self.start_min <= minute < self.end_min and self._valid(at.date())
        return (minute >= self.start_min and self._valid(at.date())) or (
            minute < self.end_min and self._valid(at.date() - timedelta(days=1))
        )

    @property
    def window(self) -> str:
        return format_window(self.start_min, self.end_min)


def format_window(start_min: int, end_min: int) -> str:
    return f"{start_min // 60:02d}:{start_min % 60:02d}-{end_min // 60:02d}:{end_min % 60:02d}"


def _to_local(geoms: np.ndarray, proj: LocalProjection) -> np.ndarray:
    return shapely.transform(geoms, lambda c: np.column_stack(proj.to_m(c[:, 0], c[:, 1])))


class _RouteCache:
    """Routes of every truck, re-read every `muck_route_cache_s`: each batch needs them, and they change rarely.

    No lock: two batches that find the cache stale at once both read it, which costs one extra query.
    """

    def __init__(self) -> None:
        self._by_truck: dict[int, list[RouteShape]] = {}
        self._read_at = -math.inf

    async def get(self) -> dict[int, list[RouteShape]]:
        if time.monotonic() - self._read_at >= get_settings().muck_route_cache_s:
            self._by_truck = await _read_routes()
            self._read_at = time.monotonic()
        return self._by_truck

    def forget(self) -> None:
        self._read_at = -math.inf


async def _read_routes() -> dict[int, list[RouteShape]]:
    # Expired routes are left out; yesterday's still count for the hours after midnight of a night window.
    since = clock.now().date() - timedelta(days=1)
    rows = await MuckRoute.filter(valid_to__gte=since).values_list(
        "id", "truck_id", "geometry", "corridor_m", "window_start_min", "window_end_min", "valid_from", "valid_to"
    )
    if not rows:
        return {}
    lines = _to_local(shapely.from_geojson([r[2] for r in rows]), projection())
    by_truck: dict[int, list[RouteShape]] = defaultdict(list)
    for (rid, truck_id, _, corridor, start, end, valid_from, valid_to), line in zip(rows, lines, strict=True):
        by_truck[truck_id].append(RouteShape(rid, truck_id, line, corridor, start, end, valid_from, valid_to))
    return dict(by_truck)


_routes = _RouteCache()


def forget_routes() -> None:
    """Read the routes again on the next batch (after an import, or between tests on another database)."""
    _routes.forget()


# --- the rules on one truck's points ---------------------------------------------------------------------------


@dataclass
class RunState:
    """Where the off-route rule stands for one truck between batches (kept on its MuckTruck row)."""

    track_at: datetime | None = None  # the newest position seen
    off_since: datetime | None = None  # start of the current run off every corridor
    off_s: float = 0.0  # moving seconds of that run


@dataclass(frozen=True)
class Candidate:
    """A broken rule found in a batch; it becomes an alert unless that truck, rule and day already has one."""

    truck_id: int
    rule: str
    at: datetime  # China time
    lon: float
    lat: float
    detail: dict[str, Any]

    @property
    def day(self) -> date:
        return self.at.date()

    @property
    def key(self) -> str:
        return alert_key(self.truck_id, self.rule, self.day)


def _speed_kmh(point: TrackPoint, previous: TrackPoint | None, max_gap_s: float) -> float:
    """The terminal's speed; without one, the speed from the previous point (unknown after a gap: standing)."""
    if point.speed_kmh is not None:
        return point.speed_kmh
    if previous is None:
        return 0.0
    dt = (point.at - previous.at).total_seconds()
    if not 0 < dt <= max_gap_s:
        return 0.0
    return haversine_m(previous.lon, previous.lat, point.lon, point.lat) / dt * 3.6


def check_track(
    *,
    truck_id: int,
    points: Sequence[TrackPoint],
    routes: Sequence[RouteShape],
    covers: Mapping[date, datetime],
    state: RunState,
    settings: Settings,
    proj: LocalProjection,
) -> list[Candidate]:
    """The rules on a truck's points (WGS-84, any order); `covers` holds the first cover photo time per China day.

    Every point is checked against off_hours and no_cover (a replay finds the same alerts, which exist by then);
    only points newer than `state.track_at` move the off-route run along, which `state` carries to the next batch.
    """
    ordered = sorted(points, key=lambda p: p.at)
    if not ordered:
        return []
    x, y = proj.to_m(np.array([p.lon for p in ordered]), np.array([p.lat for p in ordered]))
    where = shapely.points(x, y)
    distances = np.array([shapely.distance(r.line, where) for r in routes]).reshape(len(routes), len(ordered))
    found: dict[str, Candidate] = {}

    def note(rule: str, point: TrackPoint, at: datetime, detail: dict[str, Any]) -> None:
        candidate = Candidate(truck_id, rule, at, point.lon, point.lat, detail)
        found.setdefault(candidate.key, candidate)  # the first point of the day that broke the rule

    previous: TrackPoint | None = None
    for i, point in enumerate(ordered):
        at = clock.china(point.at)
        moving = _speed_kmh(point, previous, settings.muck_max_gap_s) >= settings.muck_moving_kmh
        previous = point
        active = [k for k, route in enumerate(routes) if route.applies(at)]
        if moving:
            cover = covers.get(at.date())
            if cover is None or cover > at:
                note("no_cover", point, at, {})
            # Without any valid route there is no window to keep: that truck is off route, not off hours.
            if active and not any(routes[k].in_window(at) for k in active):
                windows = sorted({routes[k].window for k in active})
                note("off_hours", point, at, {"time": f"{at:%H:%M}", "windows": windows})
        if state.track_at is not None and at <= state.track_at:
            continue  # seen before (a replay) or late: the run has moved past it
        near = [float(distances[k, i]) for k in active]
        if any(d <= routes[k].corridor_m for d, k in zip(near, active, strict=True)):
            state.off_since, state.off_s = None, 0.0
        elif (
            state.off_since is not None
            and state.track_at is not None
            and ((gap := (at - state.track_at).total_seconds()) <= settings.muck_max_gap_s)
        ):
            if moving:  # standing at a red light off the route neither ends the run nor adds to it
                state.off_s += gap
        else:
            # A run starts with a moving point; a long silence ends the previous one.
            state.off_since, state.off_s = (at, 0.0) if moving else (None, 0.0)
        state.track_at = at
        if state.off_since is not None and state.off_s > settings.muck_off_route_s:
            detail: dict[str, Any] = {
                "reason": "off_corridor" if active else "no_route",
                "since": state.off_since.isoformat(timespec="seconds"),
                "moving_s": round(state.off_s),
            }
            if active:
                detail |= {"distance_m": round(min(near)), "routes": sorted(routes[k].id for k in active)}
            note("off_route", point, at, detail)
    return list(found.values())


# --- positions from the vehicle platform -----------------------------------------------------------------------


@dataclass(frozen=True)
class Position:
    """One position as the platform sent it (validated at the edge); `index` is its place in the batch."""

    index: int
    at: datetime  # timezone-aware
    lon: float
    lat: float
    terminal_id: str | None = None
    plate: str | None = None
    speed_kmh: float | None = None
    datum: str = "wgs84"


@dataclass(frozen=True)
class ItemError:
    index: int
    code: str
    detail: str


@dataclass
class TruckOutcome:
    truck_id: int
    plate: str
    received: int
    accepted: int = 0
    duplicates: int = 0
    spoofed: int = 0
    rejected: int = 0
    alerts: list[MuckAlert] = field(default_factory=list)


@dataclass
class BatchResult:
    received: int
    trucks: list[TruckOutcome]
    errors: list[ItemError]

    @property
    def alerts(self) -> list[MuckAlert]:
        return [a for t in self.trucks for a in t.alerts]


async def receive_positions(*, items: Sequence[Position | ItemError], now: datetime | None = None) -> BatchResult:
    """Store a batch of many trucks' positions and raise the alerts they show; refusals are answered per item.

    A batch over `muck_max_positions` is refused whole (413) before anything is stored.
    """
    settings = get_settings()
    if len(items) > settings.muck_max_positions:
        raise BatchTooLarge(
            "batch_too_large",
            f"{len(items)} positions in one batch; at most {settings.muck_max_positions}, nothing was stored",
        )
    now = clock.china(now or clock.now())
    errors = [item for item in items if isinstance(item, ItemError)]
    positions = [item for item in items if isinstance(item, Position)]
    groups, refused = await _group_by_truck(positions)
    errors += refused
    outcomes: dict[int, TruckOutcome] = {}
    kept: dict[int, list[TrackPoint]] = {}
    trucks: dict[int, MuckTruck] = {}
    for truck, group in groups:
        trucks[truck.id] = truck
        outcome = outcomes[truck.id] = TruckOutcome(truck_id=truck.id, plate=truck.plate, received=len(group))
        points = _track_points(group)
        bad: set[int] = set()
        # The track store takes at most `track_max_points` a call: one truck's long backlog goes in slices.
        for start in range(0, len(points), settings.track_max_points):
            result = await ingest(
                subject_type=SUBJECT_TYPE,
                subject_id=str(truck.id),
                points=points[start : start + settings.track_max_points],
                now=now,
            )
            bad |= {start + i for i in result.spoofed} | {start + e.index for e in result.rejected}
            errors += [ItemError(group[start + e.index].index, e.code, e.detail) for e in result.rejected]
            outcome.accepted += result.accepted
            outcome.duplicates += result.duplicates
            outcome.spoofed += len(result.spoofed)
            outcome.rejected += len(result.rejected)
        kept[truck.id] = [p for k, p in enumerate(points) if k not in bad]
    candidates = await _evaluate(kept, settings)
    for alert in await _raise_alerts(candidates, trucks):
        outcomes[alert.truck_id].alerts.append(alert)
    errors.sort(key=lambda e: e.index)
    return BatchResult(received=len(items), trucks=list(outcomes.values()), errors=errors)


async def _group_by_truck(
    positions: Sequence[Position],
) -> tuple[list[tuple[MuckTruck, list[Position]]], list[ItemError]]:
    """Positions per registered, active truck (by terminal id, else plate); the rest refused per item."""
    terminals = sorted({p.terminal_id for p in positions if p.terminal_id})
    plates = sorted({normalize_plate(p.plate) for p in positions if p.plate})
    rows = (
        await MuckTruck.filter(Q(terminal_id__in=terminals) | Q(plate__in=plates)).select_related("company")
        if positions
        else []
    )
    by_terminal = {t.terminal_id: t for t in rows if t.terminal_id}
    by_plate = {t.plate: t for t in rows}
    groups: dict[int, tuple[MuckTruck, list[Position]]] = {}
    errors = []
    for p in positions:
        truck = by_terminal.get(p.terminal_id or "") or by_plate.get(normalize_plate(p.plate or ""))
        if truck is None:
            errors.append(ItemError(p.index, "truck_unknown", f"no registered truck {p.terminal_id or p.plate!r}"))
        elif not (truck.active and truck.company.active):
            errors.append(ItemError(p.index, "truck_inactive", f"truck {truck.plate} or its company is inactive"))
        else:
            groups.setdefault(truck.id, (truck, []))[1].append(p)
    return list(groups.values()), errors


def _track_points(positions: Sequence[Position]) -> list[TrackPoint]:
    """Track points in WGS-84, in the order of `positions` (ingest's indexes point back into it)."""
    lon = np.array([p.lon for p in positions], dtype=float)
    lat = np.array([p.lat for p in positions], dtype=float)
    for datum in {p.datum for p in positions} - {Datum.WGS84.value}:
        mask = np.array([p.datum == datum for p in positions])
        lon[mask], lat[mask] = to_wgs84_many(lon[mask], lat[mask], datum)
    return [
        TrackPoint(at=p.at, lon=float(x), lat=float(y), speed_kmh=p.speed_kmh)
        for p, x, y in zip(positions, lon, lat, strict=True)
    ]


async def _evaluate(kept: dict[int, list[TrackPoint]], settings: Settings) -> list[Candidate]:
    """The rules on each truck's kept points; the trucks' run states are read and written under a row lock."""
    kept = {truck_id: points for truck_id, points in kept.items() if points}
    if not kept:
        return []
    routes = await _routes.get()
    days = {clock.china(p.at).date() for points in kept.values() for p in points}
    covers = await _first_covers(list(kept), days)
    proj = projection()
    candidates: list[Candidate] = []
    async with in_transaction() as conn:
        query = MuckTruck.filter(id__in=list(kept)).order_by("id").using_db(conn)
        if conn.capabilities.dialect == "postgres":
            # Two batches of one truck in two processes must not both extend the same run (ordered: no deadlock).
            query = query.select_for_update()
        for truck in await query:
            before = RunState(truck.track_at, truck.off_route_since, truck.off_route_s)
            state = RunState(before.track_at, before.off_since, before.off_s)
            candidates += check_track(
                truck_id=truck.id,
                points=kept[truck.id],
                routes=routes.get(truck.id, []),
                covers=covers.get(truck.id, {}),
                state=state,
                settings=settings,
                proj=proj,
            )
            if state != before:
                await (
                    MuckTruck.filter(id=truck.id)
                    .using_db(conn)
                    .update(track_at=state.track_at, off_route_since=state.off_since, off_route_s=state.off_s)
                )
    return candidates


async def _first_covers(truck_ids: list[int], days: set[date]) -> dict[int, dict[date, datetime]]:
    """The earliest cover photo time per truck and China day."""
    rows = await MuckCover.filter(truck_id__in=truck_ids, day__in=sorted(days)).values_list(
        "truck_id", "day", "taken_at"
    )
    first: dict[int, dict[date, datetime]] = defaultdict(dict)
    for truck_id, day, taken_at in rows:
        known = first[truck_id].get(day)
        if known is None or taken_at < known:
            first[truck_id][day] = taken_at
    return first


# --- alerts ------------------------------------------------------------------------------------------------------


async def _raise_alerts(candidates: Sequence[Candidate], trucks: Mapping[int, MuckTruck]) -> list[MuckAlert]:
    """New alerts for the candidates whose truck, rule and day has none yet."""
    if not candidates:
        return []
    known = {a.key: a for a in await MuckAlert.filter(key__in=[c.key for c in candidates])}
    raised = []
    for candidate in candidates:
        truck = trucks[candidate.truck_id]
        alert = known.get(candidate.key)
        if alert is None:
            alert = await _raise(candidate, truck)
            if alert is not None:
                raised.append(alert)
        elif alert.report_id is None and "report_error" not in alert.detail:
            # A process stopped between writing the alert and reporting it: its job will, and so does this.
            await _hand_over(alert, truck)
    return raised


async def _raise(candidate: Candidate, truck: MuckTruck) -> MuckAlert | None:
    """Write the alert, then its sensor report; None when another process wrote this alert first."""
    try:
        # The alert and the job that reports it, together: a process that stops before reporting leaves the job.
        async with in_transaction() as conn:
            alert = await MuckAlert.create(
                key=candidate.key,
                truck_id=truck.id,
                rule=candidate.rule,
                day=candidate.day,
                at=candidate.at,
                lon=round(candidate.lon, 7),
                lat=round(candidate.lat, 7),
                detail=candidate.detail,
                using_db=conn,
            )
            await outbox.add(
                task=REPORT_TASK, args={"alert_id": alert.id}, dedupe_key=f"{REPORT_TASK}:{alert.id}", conn=conn
            )
    except IntegrityError:
        return None
    await _hand_over(alert, truck)
    log.info("muck alert", extra={"fields": {"key": alert.key, "plate": truck.plate, "report_id": alert.report_id}})
    return alert


async def report_alert_job(*, alert_id: int) -> str:
    """The job written with an alert: report it, unless that was done already (so it can run twice)."""
    alert = await MuckAlert.get_or_none(id=alert_id)
    if alert is None or alert.report_id is not None or "report_error" in alert.detail:
        return "done"
    await _hand_over(alert, await MuckTruck.get(id=alert.truck_id).select_related("company"))
    return "reported"


async def _hand_over(alert: MuckAlert, truck: MuckTruck) -> None:
    """Report the alert to the case pipeline and note the report on it; twice gives the same report (its key).

    Not inside the alert's transaction: intake may wait for the process's spatial index, and a job building that
    index waits for the database, which on SQLite is one connection held by an open transaction.
    """
    alert.report_id, error = await _report(alert, truck)
    if error:
        alert.detail = {**alert.detail, "report_error": error}
    await alert.save(update_fields=["report_id", "detail"])


async def _report(alert: MuckAlert, truck: MuckTruck) -> tuple[int | None, str | None]:
    """The alert as a sensor report under the alert's key: (report id, None), or (None, why it was refused)."""
    rule = load_rules()[alert.rule]
    new = NewReport(
        source="sensor",
        reporter_type="system",
        reporter_id=REPORTER_ID,
        lon=alert.lon,
        lat=alert.lat,
        text=alert_text(alert, truck),
        subclass=rule.subclass,
        urgency=rule.urgency,
        idempotency_key=alert.key,
    )
    try:
        report, _ = await submit_report(new)
    except ConflictError:
        # The key was reported with another text (the company was renamed since): that report is this alert's.
        existing = await Report.get_or_none(
            source="sensor", reporter_type="system", reporter_id=REPORTER_ID, idempotency_key=alert.key
        )
        return (existing.id, None) if existing else (None, "idempotency_key_reused")
    except TongguanError as exc:
        # E.g. a disposal site outside every unit grid: the alert stays, for a person to see (`tongguan muck alerts`).
        log.warning("muck alert not reported", extra={"fields": {"key": alert.key, "code": exc.code}})
        return None, exc.code
    return report.id, None


def alert_detail_text(alert: MuckAlert) -> str:
    """The Chinese detail of an alert, as its report and the alert list show it."""
    detail = alert.detail or {}
    if alert.rule == "off_route":
        if detail.get("reason") == "no_route":
            return say.NO_ROUTE_DETAIL
        since = datetime.fromisoformat(detail["since"])
        return say.OFF_ROUTE_DETAIL.format(
            distance=detail.get("distance_m", "?"), since=f"{since:%H:%M}", minutes=detail.get("moving_s", 0) // 60
        )
    if alert.rule == "off_hours":
        return say.OFF_HOURS_DETAIL.format(windows=say.WINDOW_SEPARATOR.join(detail.get("windows", [])))
    return say.NO_COVER_DETAIL


def alert_text(alert: MuckAlert, truck: MuckTruck) -> str:
    """The report text of an alert, from the rule's template (plate, company, time, detail)."""
    return load_rules()[alert.rule].text.format(
        plate=truck.plate,
        company=truck.company.name,
        time=f"{clock.china(alert.at):%H:%M}",
        detail=alert_detail_text(alert),
    )


async def list_alerts(*, day: date) -> list[MuckAlert]:
    """The alerts of a China day, in time order, with their truck and company."""
    return await MuckAlert.filter(day=day).order_by("at", "id").select_related("truck__company")


# --- cover photos -----------------------------------------------------------------------------------------------


async def truck_by_plate(plate: str) -> MuckTruck:
    """A registered, active truck by its plate."""
    truck = await MuckTruck.get_or_none(plate=normalize_plate(plate)).select_related("company")
    if truck is None:
        raise NotFoundError("truck_unknown", f"no registered truck with plate {plate!r}")
    if not (truck.active and truck.company.active):
        raise ConflictError("truck_inactive", f"truck {truck.plate} or its company is inactive")
    return truck


def check_cover_time(taken_at: datetime | None, *, now: datetime | None = None) -> datetime:
    """The photo's EXIF time in China time, if it was taken today (China day) and not ahead of now."""
    if taken_at is None:
        raise ValidationFailed(
            "cover_time_missing", "the photo has no EXIF time (DateTimeOriginal); upload the camera's original"
        )
    taken, now = clock.china(taken_at), clock.china(now or clock.now())
    if taken > now + COVER_CLOCK_SKEW:
        raise ValidationFailed("cover_time_future", f"the photo says {taken:%Y-%m-%d %H:%M}, later than now")
    if taken.date() != now.date():
        raise ValidationFailed(
            "cover_not_today", f"the photo was taken on {taken:%Y-%m-%d}; a cover photo must be from {now:%Y-%m-%d}"
        )
    return taken


async def record_cover(*, truck: MuckTruck, media_id: str, taken_at: datetime) -> tuple[MuckCover, bool]:
    """The cover photo of a truck for the China day it was taken; the same photo again changes nothing."""
    taken = clock.china(taken_at)
    existing = await MuckCover.get_or_none(truck_id=truck.id, media_id=media_id, day=taken.date())
    if existing is not None:
        return existing, False
    return await MuckCover.create(truck_id=truck.id, media_id=media_id, day=taken.date(), taken_at=taken), True


# --- the registry import ----------------------------------------------------------------------------------------


@dataclass
class RegistryImport(ImportReport):
    """An import report with what was written per kind."""

    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Company:
    name: str
    license_no: str
    contact: str
    phone: str
    active: bool


@dataclass(frozen=True)
class _Truck:
    plate: str
    company: str
    terminal_id: str | None
    active: bool


@dataclass(frozen=True)
class _Route:
    plate: str
    name: str
    geometry: str  # GeoJSON, WGS-84
    corridor_m: float
    start_min: int
    end_min: int
    valid_from: date
    valid_to: date


class _Checker:
    """Checks every entry of a registry file, collecting errors; nothing is written while any is found."""

    def __init__(self, report: ImportReport, companies: set[str], terminals: dict[str, str], plates: set[str]):
        self.report = report
        self.db_companies, self.db_terminals, self.db_plates = companies, terminals, plates
        settings = get_settings()
        self.center = (settings.city_center_lon, settings.city_center_lat)
        self.radius_m = settings.city_radius_km * 1000

    def error(self, row: int, code: str, message: str, where: str, value: Any = "") -> None:
        self.report.add(RowError(row, code, message, where, str(value)[:200]))

    def text(self, row: int, entry: dict, key: str, where: str, *, limit: int, required: bool = False) -> str:
        value = entry.get(key)
        if value is None or value == "":
            if required:
                self.error(row, "missing_field", f"{key} is required", f"{where}.{key}")
            return ""
        if not isinstance(value, str) or len(value.strip()) > limit:
            self.error(row, "bad_text", f"{key} must be text of at most {limit} characters", f"{where}.{key}", value)
            return ""
        return value.strip()

    def flag(self, row: int, entry: dict, key: str, where: str) -> bool:
        value = entry.get(key, True)
        if not isinstance(value, bool):
            self.error(row, "bad_flag", f"{key} must be true or false", f"{where}.{key}", value)
            return True
        return value

    def companies(self, entries: list) -> list[_Company]:
        out, seen = [], set()
        for row, entry in enumerate(entries, 1):
            if not isinstance(entry, dict):
                self.error(row, "bad_entry", "a company is an object", "companies")
                continue
            name = self.text(row, entry, "name", "companies", limit=128, required=True)
            if name and name in seen:
                self.error(row, "duplicate_company", f"company {name} is listed twice", "companies.name", name)
            seen.add(name)
            out.append(
                _Company(
                    name=name,
                    license_no=self.text(row, entry, "license_no", "companies", limit=64),
                    contact=self.text(row, entry, "contact", "companies", limit=64),
                    phone=self.text(row, entry, "phone", "companies", limit=20),
                    active=self.flag(row, entry, "active", "companies"),
                )
            )
        return out

    def trucks(self, entries: list, companies: set[str]) -> list[_Truck]:
        out: list[_Truck] = []
        plates: set[str] = set()
        terminals: dict[str, int] = {}
        for row, entry in enumerate(entries, 1):
            if not isinstance(entry, dict):
                self.error(row, "bad_entry", "a truck is an object", "trucks")
                continue
            plate = normalize_plate(self.text(row, entry, "plate", "trucks", limit=32, required=True))
            if plate and not _PLATE.fullmatch(plate):
                self.error(row, "bad_plate", "a plate looks like 辽AD1234 (or 辽AD12345)", "trucks.plate", plate)
            elif plate in plates:
                self.error(row, "duplicate_plate", f"truck {plate} is listed twice", "trucks.plate", plate)
            plates.add(plate)
            company = self.text(row, entry, "company", "trucks", limit=128, required=True)
            if company and company not in companies:
                self.error(row, "unknown_company", f"company {company} is neither in the file nor registered",
                           "trucks.company", company)  # fmt: skip
            terminal = self.text(row, entry, "terminal_id", "trucks", limit=32) or None
            if terminal is not None:
                if terminal in terminals:
                    self.error(row, "duplicate_terminal", f"terminal {terminal} is also on row {terminals[terminal]}",
                               "trucks.terminal_id", terminal)  # fmt: skip
                terminals[terminal] = row
            out.append(_Truck(plate, company, terminal, self.flag(row, entry, "active", "trucks")))
        # A terminal may move from one truck to another only when the file says what the other truck has now.
        for row, truck in enumerate(out, 1):
            owner = self.db_terminals.get(truck.terminal_id or "")
            if owner is not None and owner != truck.plate and owner not in plates:
                self.error(row, "terminal_taken", f"terminal {truck.terminal_id} belongs to truck {owner}",
                           "trucks.terminal_id", truck.terminal_id)  # fmt: skip
        return out

    def routes(self, entries: list, plates: set[str]) -> list[_Route]:
        out = []
        for row, entry in enumerate(entries, 1):
            if not isinstance(entry, dict):
                self.error(row, "bad_entry", "a route is an object", "routes")
                continue
            errors_before = self.report.error_count
            plate = normalize_plate(self.text(row, entry, "plate", "routes", limit=32, required=True))
            if plate and plate not in plates:
                self.error(row, "unknown_truck", f"truck {plate} is neither in the file nor registered",
                           "routes.plate", plate)  # fmt: skip
            name = self.text(row, entry, "name", "routes", limit=128)
            geometry = self.geometry(row, entry)
            corridor = entry.get("corridor_m", 100.0)
            if (
                not isinstance(corridor, int | float)
                or isinstance(corridor, bool)
                or not (CORRIDOR_M[0] <= corridor <= CORRIDOR_M[1])
            ):
                self.error(row, "bad_corridor", f"corridor_m must be {CORRIDOR_M[0]:g} to {CORRIDOR_M[1]:g} metres",
                           "routes.corridor_m", corridor)  # fmt: skip
            window = self.window(row, entry.get("window"))
            valid_from, valid_to = self.day(row, entry, "valid_from"), self.day(row, entry, "valid_to")
            if valid_from and valid_to and valid_to < valid_from:
                self.error(row, "bad_validity", "valid_to is before valid_from", "routes.valid_to", valid_to)
            if self.report.error_count == errors_before and geometry and window and valid_from and valid_to:
                out.append(_Route(plate, name, geometry, float(corridor), *window, valid_from, valid_to))
        return out

    def geometry(self, row: int, entry: dict) -> str | None:
        geometry, datum = entry.get("geometry"), entry.get("datum", "wgs84")
        if datum not in {d.value for d in Datum}:
            self.error(row, "bad_datum", "datum must be wgs84, cgcs2000, gcj02 or bd09", "routes.datum", datum)
            return None
        coords = geometry.get("coordinates") if isinstance(geometry, dict) else None
        if not isinstance(geometry, dict) or geometry.get("type") != "LineString" or not isinstance(coords, list):
            self.error(row, "bad_geometry", "geometry must be a GeoJSON LineString", "routes.geometry")
            return None
        try:
            xy = np.array(coords, dtype=float)
        except (TypeError, ValueError):
            xy = np.empty((0, 0))
        if xy.ndim != 2 or xy.shape[0] < 2 or xy.shape[1] != 2 or not np.isfinite(xy).all():
            self.error(row, "bad_geometry", "a LineString needs at least two [lon, lat] points", "routes.geometry")
            return None
        lon, lat = to_wgs84_many(xy[:, 0], xy[:, 1], datum)
        far = [haversine_m(*self.center, float(a), float(b)) > self.radius_m for a, b in zip(lon, lat, strict=True)]
        if any(far):
            self.error(row, "outside_city", "the route leaves the city's radius (TG_CITY_RADIUS_KM)", "routes.geometry")
            return None
        line = shapely.LineString(np.column_stack([lon, lat]))
        if shapely.length(_to_local(np.array([line]), projection()))[0] < 1.0:
            self.error(row, "bad_geometry", "the route has no length", "routes.geometry")
            return None
        return to_geojson_many([line])[0]

    def window(self, row: int, value: Any) -> tuple[int, int] | None:
        match = _WINDOW.fullmatch(value.strip()) if isinstance(value, str) else None
        if match is not None:
            h1, m1, h2, m2 = (int(g) for g in match.groups())
            start, end = h1 * 60 + m1, h2 * 60 + m2
            if h1 < 24 and h2 <= 24 and m1 < 60 and m2 < 60 and end <= 1440 and start != end:
                return start, end
        self.error(row, "bad_window", "window is HH:MM-HH:MM, e.g. 22:00-05:00 (past midnight) or 00:00-24:00",
                   "routes.window", value)  # fmt: skip
        return None

    def day(self, row: int, entry: dict, key: str) -> date | None:
        value = entry.get(key)
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        self.error(row, "bad_date", f"{key} is a date, e.g. 2026-11-30", f"routes.{key}", value)
        return None


async def import_registry(*, path: Path, progress: Progress | None = None) -> RegistryImport:
    """Import companies, trucks and routes from a JSON file, all or nothing.

    Companies are matched by name and trucks by plate (new ones added, known ones updated); the routes of every
    truck named under "routes" are replaced by the file's.
    """
    report = RegistryImport(kind="muck registry")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        report.add(RowError(0, "bad_file", f"not a readable JSON file: {exc}"))
        raise ImportRejected(report) from exc
    sections: dict[str, list] = {}
    for name in ("companies", "trucks", "routes"):
        entries = data.get(name, []) if isinstance(data, dict) else None
        if isinstance(entries, list):
            sections[name] = entries
        else:
            report.add(RowError(0, "bad_file", f"the file is an object whose {name} is a list", name))
    if not report.ok:
        raise ImportRejected(report)
    report.rows_read = sum(len(v) for v in sections.values())
    db_companies: set[str] = {str(name) for name in await MuckCompany.all().values_list("name", flat=True)}
    db_trucks = await MuckTruck.all().values_list("plate", "terminal_id")
    check = _Checker(report, db_companies, {t: p for p, t in db_trucks if t}, {p for p, _ in db_trucks})
    companies = check.companies(sections["companies"])
    trucks = check.trucks(sections["trucks"], db_companies | {c.name for c in companies})
    routes = check.routes(sections["routes"], check.db_plates | {t.plate for t in trucks})
    if not report.ok:
        raise ImportRejected(report)
    report.counts = await _write_registry(companies, trucks, routes, dict(db_trucks), progress)
    report.rows_written = report.rows_read
    forget_routes()
    return report


async def _write_registry(
    companies: list[_Company],
    trucks: list[_Truck],
    routes: list[_Route],
    db_terminals: dict[str, str | None],
    progress: Progress | None,
) -> dict[str, int]:
    advance = progress or (lambda n: None)
    counts = dict.fromkeys(("companies added", "companies updated", "trucks added", "trucks updated", "routes"), 0)
    async with in_transaction():
        known = {c.name: c for c in await MuckCompany.filter(name__in=[c.name for c in companies])}
        for c in companies:
            values: dict[str, Any] = {
                "license_no": c.license_no,
                "contact": c.contact,
                "phone": c.phone,
                "active": c.active,
            }
            if c.name in known:
                await MuckCompany.filter(id=known[c.name].id).update(**values)
                counts["companies updated"] += 1
            else:
                await MuckCompany.create(name=c.name, **values)
                counts["companies added"] += 1
            advance(1)
        company_ids = dict(await MuckCompany.filter(name__in=[t.company for t in trucks]).values_list("name", "id"))
        # Terminals that move between trucks are let go first, so the unique index never sees one twice.
        moving = [t.plate for t in trucks if t.plate in db_terminals and db_terminals[t.plate] != t.terminal_id]
        if moving:
            await MuckTruck.filter(plate__in=moving).update(terminal_id=None)
        for t in trucks:
            truck_values: dict[str, Any] = {
                "company_id": company_ids[t.company],
                "terminal_id": t.terminal_id,
                "active": t.active,
            }
            if t.plate in db_terminals:
                await MuckTruck.filter(plate=t.plate).update(**truck_values)
                counts["trucks updated"] += 1
            else:
                await MuckTruck.create(plate=t.plate, **truck_values)
                counts["trucks added"] += 1
            advance(1)
        truck_ids = dict(await MuckTruck.filter(plate__in=[r.plate for r in routes]).values_list("plate", "id"))
        await MuckRoute.filter(truck_id__in=list(truck_ids.values())).delete()
        await MuckRoute.bulk_create(
            [
                MuckRoute(
                    truck_id=truck_ids[r.plate],
                    name=r.name,
                    geometry=r.geometry,
                    corridor_m=r.corridor_m,
                    window_start_min=r.start_min,
                    window_end_min=r.end_min,
                    valid_from=r.valid_from,
                    valid_to=r.valid_to,
                )
                for r in routes
            ]
        )
        counts["routes"] = len(routes)
        advance(len(routes))
    return counts
