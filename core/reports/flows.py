"""The intake pipeline: a received report becomes part of a case (new or existing), or waits for a person.

locate (datum → WGS-84 → unit grid, community, street, district, road segment) → classify when no subclass
was chosen → find a duplicate and attach to its case → otherwise open a case → route → accept, register and
dispatch automatically where the subclass allows → the inspector's 核实 task for a public report. It runs as
a job (it takes the report id), all in one transaction: a crash leaves the report received and the job runs
again; a second run finds the report processed and does nothing.
"""

from __future__ import annotations

import logging
import math
import zlib
from dataclasses import dataclass
from datetime import timedelta

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from core import clock
from core.cases.models import Case, CaseEvent
from core.cases.service import Work
from core.cases.workflow import Actor, Status
from core.catalog.classify import Classifier, load_classifier
from core.catalog.models import Subclass
from core.components.models import Component
from core.db import on_open
from core.errors import NotFoundError
from core.geo.projection import haversine_m
from core.geo.service import get_spatial_index
from core.org.service import route
from core.reports.models import Report
from core.settings import get_settings

log = logging.getLogger("tongguan.intake")
METRES_PER_DEGREE = 111_320.0


@dataclass(frozen=True)
class SubclassInfo:
    id: int
    kind: str
    code: str
    auto_dispatch: bool
    distance_m: int
    window_hours: int


class _Reference:
    """Per-process caches of catalog data the pipeline reads for every report."""

    def __init__(self) -> None:
        self.classifier: Classifier | None = None
        self.subclasses: dict[int, SubclassInfo] = {}

    async def classify(self, text: str):
        if self.classifier is None:
            self.classifier = await load_classifier(min_confidence=get_settings().classify_min_confidence)
        return self.classifier.classify(text)

    async def subclass(self, subclass_id: int) -> SubclassInfo:
        if subclass_id not in self.subclasses:
            s = await Subclass.get(id=subclass_id)
            self.subclasses[subclass_id] = SubclassInfo(
                s.id, s.kind, s.code, s.auto_dispatch, s.check_distance_m, s.duplicate_window_hours
            )
        return self.subclasses[subclass_id]

    def forget(self) -> None:
        self.classifier = None
        self.subclasses.clear()


reference = _Reference()
on_open(reference.forget)


def reporter_actor(report: Report) -> Actor:
    kind = "citizen" if report.reporter_type == "citizen" else report.reporter_type
    return Actor(kind=kind, id=report.reporter_id, name="")


async def process_report(*, report_id: int) -> str:
    """Run the pipeline for one report; returns what happened (cased, merged, queued, rejected or done)."""
    async with in_transaction() as conn:
        query = Report.filter(id=report_id).using_db(conn)
        if _postgres(conn):
            query = query.select_for_update()
        report = await query.first()
        if report is None:
            log.warning("report missing", extra={"fields": {"report_id": report_id}})
            return "missing"
        if report.status != "received":
            return "done"
        outcome = await _process(report, conn)
        report.processed_at = clock.now()
        await report.save(using_db=conn)
    log.info("report processed", extra={"fields": {"report_id": report_id, "outcome": outcome}})
    return outcome


async def _process(report: Report, conn: BaseDBAsyncClient) -> str:
    settings = get_settings()
    index = await get_spatial_index()
    where = index.locate(report.raw_lon, report.raw_lat, report.datum)
    if where is None:
        # The intake refuses such points; the grids may have changed since it was accepted.
        return _set(report, "queued", "outside_city: the point lies outside every unit grid")
    report.lon, report.lat = where.lon, where.lat
    report.unit_grid, report.community, report.street, report.district = (
        where.unit_grid,
        where.community,
        where.street,
        where.district,
    )
    road = index.nearest_road(where.lon, where.lat, max_distance_m=settings.road_match_m)
    report.road_segment = road.code if road else None

    if report.subclass_id is None:
        found = await reference.classify(report.text)
        if found is None:
            return _set(report, "queued", "unclassified: no catalog rule matched the description well enough")
        report.subclass_id = found.subclass_id
        report.classify_rule, report.classify_confidence = found.rule, round(found.confidence, 3)
    subclass = await reference.subclass(report.subclass_id)

    if _postgres(conn):
        # Two reports of one problem processed at once by two workers must not open two cases.
        await conn.execute_query("SELECT pg_advisory_xact_lock($1)", [zlib.crc32(f"dup:{subclass.id}".encode())])
    duplicate = await find_duplicate(
        subclass=subclass, lon=where.lon, lat=where.lat, component_code=report.component_code, conn=conn
    )
    if duplicate is not None:
        await _merge(report, duplicate, conn)
        return _set(report, "merged", f"duplicate of case {duplicate.number}")

    owner = None
    if report.component_code:
        component = await Component.filter(code=report.component_code).using_db(conn).first()
        owner = component.owner_department_id if component else None  # type: ignore[attr-defined]
    try:
        decision = await route(subclass_id=subclass.id, unit_grid=where.unit_grid, component_owner=owner)
        department, routing_kind, reason = decision.department_code, decision.rule_kind, decision.reason
    except NotFoundError as exc:
        # Nothing is dropped: the case waits in the dispatcher's queue with the reason.
        department, routing_kind, reason = None, "none", f"no_route: {exc.detail}"

    case = Case(
        subclass_id=subclass.id,
        urgency=report.urgency,
        source=report.source,
        description=report.text,
        address=report.address,
        lon=where.lon,
        lat=where.lat,
        unit_grid=where.unit_grid,
        community=where.community,
        street=where.street,
        district=where.district,
        responsibility_grid=where.responsibility_grid,
        road_segment=report.road_segment,
        component_code=report.component_code,
        department_id=department,
        routing_kind=routing_kind,
        routing_reason=reason[:255],
        status=Status.PENDING_ACCEPT,
        is_open=True,
        number="",
        opened_at=clock.now(),
    )
    work = await Work.open(case, actor=reporter_actor(report), report=report, conn=conn, auto=subclass.auto_dispatch)
    if department is not None:
        await work.advance_automatically()
    await work.save()
    report.case_id = case.id
    return _set(report, "cased", reason[:255])


async def find_duplicate(
    *, subclass: SubclassInfo, lon: float, lat: float, component_code: str | None, conn: BaseDBAsyncClient
) -> Case | None:
    """An open case of the same problem: the same component, or the same subclass close in space and time."""
    if component_code:
        same = await Case.filter(component_code=component_code, is_open=True).using_db(conn).order_by("id").first()
        if same is not None:
            return same
    since = clock.now() - timedelta(hours=subclass.window_hours)
    dlat = subclass.distance_m / METRES_PER_DEGREE
    dlon = dlat / max(0.1, math.cos(math.radians(lat)))
    near = (
        await Case.filter(
            subclass_id=subclass.id,
            is_open=True,
            lat__gte=lat - dlat,
            lat__lte=lat + dlat,
            lon__gte=lon - dlon,
            lon__lte=lon + dlon,
            opened_at__gte=since,
        )
        .using_db(conn)
        .limit(50)
    )
    best = min(near, key=lambda c: haversine_m(lon, lat, c.lon, c.lat), default=None)
    if best is None or haversine_m(lon, lat, best.lon, best.lat) > subclass.distance_m:
        return None
    return best


async def _merge(report: Report, case: Case, conn: BaseDBAsyncClient) -> None:
    report.case_id = case.id
    await Case.filter(id=case.id).using_db(conn).update(report_count=F("report_count") + 1)
    actor = reporter_actor(report)
    await CaseEvent.create(
        case_id=case.id,
        action="merge",
        from_status=case.status,
        to_status=case.status,
        actor_type=actor.kind,
        actor_id=actor.id,
        note=report.text[:500],
        media=list(report.photos),
        detail={"report_id": report.id, "source": report.source},
        at=clock.now(),
        using_db=conn,
    )


def _set(report: Report, status: str, reason: str) -> str:
    report.status, report.status_reason = status, reason[:255]
    return status


def _postgres(conn: BaseDBAsyncClient) -> bool:
    return conn.capabilities.dialect == "postgres"
