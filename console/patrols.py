"""Patrol days and tracks of field workers for the command centre, and road chiefs' time on their own segments.

A worker's track and patrol day are personal data: only desk roles (dispatcher, duty chief) read them, only for
workers of their area, and every read writes an audit entry (with the purpose, when the reader gives one).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel
from tortoise.expressions import Q

from console.deps import CurrentActor
from core.accounts.models import StaffAccount, StaffRole
from core.audit import service as audit
from core.audit.models import AuditEntry
from core.cases.workflow import Actor
from core.errors import NotFoundError, PermissionDenied, ValidationFailed
from core.logs import request_id_var
from core.patrols import summary, tracks
from core.patrols.models import PatrolDay
from core.patrols.schemas import PatrolDayOut
from core.regions.models import RoadSegment

router = APIRouter(prefix="/staff/v1/patrols", tags=["staff"])
DESK_ROLES = frozenset({"dispatcher", "duty_chief", "admin"})
MAX_PERIOD_DAYS = 92
Purpose = Annotated[str, Query(max_length=255, description="why you read it (kept in the audit log)")]


class PatrolDayPage(BaseModel):
    total: int
    items: list[PatrolDayOut]


class RoadChiefOut(BaseModel):
    segment: str
    segment_name: str
    road_name: str
    district: str
    chief_id: int
    chief_name: str
    seconds: int  # the chief's time on this segment in the period
    days_present: int  # days with any time on it
    days: int  # days in the period


def _desk_areas(actor: Actor) -> list[str] | None:
    """The areas of the actor's desk grants (None: city-wide); 403 without a desk role."""
    areas = [g.area_code for g in actor.grants if g.role in DESK_ROLES]
    if not areas:
        raise PermissionDenied("role_not_allowed", "patrol days and tracks are for dispatchers and duty chiefs")
    return None if "" in areas else areas


def _staff_in(areas: list[str]) -> Q:
    """Workers whose role is scoped to one of the areas, or whose department lies in one."""
    clause = Q(id=-1)
    for area in areas:
        clause |= Q(area_code__startswith=area)
        clause |= Q(department__district_id=area) if len(area) == 6 else Q(department__street_id=area)
    return clause


async def _visible_staff(actor: Actor, staff_ids: list[int] | None = None) -> set[int] | None:
    """Which of the workers (all, when None) the actor may read; None: every one (a city-wide grant)."""
    areas = _desk_areas(actor)
    if areas is None:
        return None
    query = StaffRole.filter(_staff_in(areas))
    if staff_ids is not None:
        query = query.filter(staff_id__in=staff_ids)
    return set(await query.distinct().values_list("staff_id", flat=True))


async def _worker(actor: Actor, staff_id: int) -> StaffAccount:
    worker = await StaffAccount.get_or_none(id=staff_id)
    if worker is None:
        raise NotFoundError("staff_not_found", f"staff {staff_id} does not exist")
    visible = await _visible_staff(actor, [staff_id])
    if visible is not None and staff_id not in visible:
        raise PermissionDenied("staff_out_of_scope", f"staff {staff_id} works outside your area")
    return worker


async def _audit_reads(
    actor: Actor, action: str, object_type: str, objects: list[str], purpose: str, detail: dict
) -> None:
    """One audit entry per person read (searchable by object), written in one statement."""
    if len(objects) == 1:
        await audit.record(
            actor_type="staff",
            actor_id=actor.id,
            action=action,
            object_type=object_type,
            object_id=objects[0],
            purpose=purpose,
            detail=detail,
            request_id=request_id_var.get(),
        )
        return
    await AuditEntry.bulk_create(
        [
            AuditEntry(
                actor_type="staff",
                actor_id=actor.id,
                action=action,
                object_type=object_type,
                object_id=obj,
                purpose=purpose,
                detail=detail,
                request_id=request_id_var.get(),
            )
            for obj in objects
        ]
    )


def _out(row: PatrolDay, name: str) -> PatrolDayOut:
    return PatrolDayOut.of(row, staff_name=name)


@router.get("/days")
async def patrol_days(
    actor: CurrentActor,
    day: date,
    staff: int | None = None,
    purpose: Purpose = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> PatrolDayPage:
    """Patrol days of the workers in your area on a day (one worker with `staff`: summarised now if needed)."""
    if staff is not None:
        worker = await _worker(actor, staff)
        row = await summary.patrol_day(staff_id=staff, day=day)
        await _audit_reads(actor, "patrol_day.read", "patrol_day", [f"{staff}:{day}"], purpose, {"staff": staff})
        return PatrolDayPage(total=1, items=[_out(row, worker.display_name or worker.username)])
    visible = await _visible_staff(actor)
    query = PatrolDay.filter(day=day)
    if visible is not None:
        query = query.filter(staff_id__in=sorted(visible))
    total = await query.count()
    rows = await query.order_by("staff_id").offset(offset).limit(limit)
    names = dict(await StaffAccount.filter(id__in=[r.staff_id for r in rows]).values_list("id", "display_name"))
    if rows:
        objects = [f"{r.staff_id}:{day}" for r in rows]
        await _audit_reads(actor, "patrol_day.read", "patrol_day", objects, purpose, {"list": True})
    return PatrolDayPage(total=total, items=[_out(r, names.get(r.staff_id, "")) for r in rows])


@router.get("/tracks")
async def worker_track(actor: CurrentActor, staff: int, day: date, purpose: Purpose = "") -> dict:
    """A worker's GPS points of a day as GeoJSON (credible track as a LineString, spoofed points marked)."""
    await _worker(actor, staff)
    points = await tracks.day_points(subject_type="staff", subject_id=str(staff), day=day)
    await _audit_reads(actor, "track.read", "track", [f"staff:{staff}:{day}"], purpose, {"points": len(points)})
    return tracks.as_geojson(points, properties={"staff_id": staff, "day": day.isoformat()})


@router.get("/road-chiefs")
async def road_chiefs(actor: CurrentActor, since: date, until: date, purpose: Purpose = "") -> list[RoadChiefOut]:
    """For each road segment with a road chief (路长) in your area: the chief's time on it in the period, and on
    how many days they were there (from the patrol days; a day not yet summarised counts nothing)."""
    if until < since or (until - since).days >= MAX_PERIOD_DAYS:
        raise ValidationFailed("bad_patrol_period", f"since {since} .. until {until}: at most {MAX_PERIOD_DAYS} days")
    areas = _desk_areas(actor)
    segments = RoadSegment.filter(chief_id__isnull=False)
    if areas is not None:
        # A district desk sees its district's segments; a street desk those whose chief works in its street.
        chiefs = await _visible_staff(actor) or set()
        clause = Q(chief_id__in=sorted(chiefs)) if chiefs else Q(code="")
        for area in areas:
            if len(area) == 6:
                clause |= Q(district_id=area)
        segments = segments.filter(clause)
    rows = await segments.order_by("code").values_list("code", "name", "road_name", "district_id", "chief_id")
    chief_ids = sorted({r[4] for r in rows})
    days = await PatrolDay.filter(staff_id__in=chief_ids, day__gte=since, day__lte=until).values_list(
        "staff_id", "roads"
    )
    names = dict(await StaffAccount.filter(id__in=chief_ids).values_list("id", "display_name"))
    seconds: dict[tuple[int, str], int] = {}
    present: dict[tuple[int, str], int] = {}
    for staff_id, roads in days:
        for code, s in (roads or {}).items():
            if s > 0:
                seconds[(staff_id, code)] = seconds.get((staff_id, code), 0) + int(s)
                present[(staff_id, code)] = present.get((staff_id, code), 0) + 1
    period = (until - since + timedelta(days=1)).days
    out = [
        RoadChiefOut(
            segment=code,
            segment_name=name,
            road_name=road,
            district=district,
            chief_id=chief,
            chief_name=names.get(chief, ""),
            seconds=seconds.get((chief, code), 0),
            days_present=present.get((chief, code), 0),
            days=period,
        )
        for code, name, road, district, chief in rows
    ]
    if chief_ids:
        detail = {"since": since.isoformat(), "until": until.isoformat()}
        await _audit_reads(actor, "road_chief_presence.read", "staff", [str(c) for c in chief_ids], purpose, detail)
    return out
