"""GPS tracks and patrol days of field workers: upload batches of points, read your own day back."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

import numpy as np
from fastapi import APIRouter
from pydantic import BaseModel, Field

from core.geo.datum import to_wgs84_many
from core.messages import error_title
from core.patrols import summary, tracks
from core.patrols.models import PatrolDay
from core.patrols.schemas import PatrolDayOut
from field_app_api.deps import CurrentStaff

router = APIRouter()
# Epoch milliseconds beyond this are no time at all (and would overflow int64 below).
_MAX_MS = 1 << 50


class PointIn(BaseModel):
    t: int | str = Field(description="ISO 8601 with a zone (2026-11-30T09:15:02+08:00), or epoch milliseconds")
    lat: float
    lon: float
    accuracy: float | None = Field(default=None, description="metres (the fix's horizontal accuracy)")
    speed: float | None = Field(default=None, description="km/h, as the phone measured it")


class TrackIn(BaseModel):
    datum: Literal["wgs84", "gcj02", "bd09"] = Field(description="the phone's GPS gives wgs84; map SDKs gcj02/bd09")
    points: list[PointIn]


class RejectedOut(BaseModel):
    index: int
    code: str
    title: str
    detail: str


class TrackOut(BaseModel):
    accepted: int
    spoofed: list[int]
    duplicates: int
    rejected: list[RejectedOut]


def patrol_day_out(row: PatrolDay) -> PatrolDayOut:
    return PatrolDayOut.of(row)


def _ms(t: int | str) -> int:
    if isinstance(t, int):
        return t if -_MAX_MS < t < _MAX_MS else int(tracks.BAD_TIME)
    try:
        moment = datetime.fromisoformat(t)
    except ValueError:
        return int(tracks.BAD_TIME)
    if moment.tzinfo is None:
        return int(tracks.BAD_TIME)
    return round(moment.timestamp() * 1000)


def _columns(body: TrackIn) -> tracks.TrackColumns:
    points = body.points
    n = len(points)
    lon = np.fromiter((p.lon for p in points), dtype=np.float64, count=n)
    lat = np.fromiter((p.lat for p in points), dtype=np.float64, count=n)
    if body.datum != "wgs84" and n:
        ok = np.isfinite(lon) & np.isfinite(lat)
        lon[ok], lat[ok] = to_wgs84_many(lon[ok], lat[ok], body.datum)
    return tracks.TrackColumns(
        at_ms=np.fromiter((_ms(p.t) for p in points), dtype=np.int64, count=n),
        lon=lon,
        lat=lat,
        accuracy_m=np.fromiter((tracks.optional_value(p.accuracy) for p in points), dtype=np.float64, count=n),
        speed_kmh=np.fromiter((tracks.optional_value(p.speed) for p in points), dtype=np.float64, count=n),
    )


@router.post("/tracks")
async def upload_track(body: TrackIn, staff: CurrentStaff) -> TrackOut:
    """Upload a batch of your GPS points (at most TG_TRACK_MAX_POINTS; send the offline queue in such batches).

    Bad points are refused one by one (`rejected`, with the reason) and the rest stored; points sent before are
    counted as `duplicates`, so a batch may be sent again when our answer was lost. Points reached at an impossible
    speed are stored but flagged (`spoofed`). A batch over the limit is refused whole with 413.
    """
    result = await tracks.ingest_columns(subject_type="staff", subject_id=str(staff.staff_id), columns=_columns(body))
    return TrackOut(
        accepted=result.accepted,
        spoofed=result.spoofed,
        duplicates=result.duplicates,
        rejected=[
            RejectedOut(index=e.index, code=e.code, title=error_title(e.code), detail=e.detail) for e in result.rejected
        ],
    )


@router.get("/patrols/days/{day}")
async def my_patrol_day(day: date, staff: CurrentStaff) -> PatrolDayOut:
    """Your patrol day: distance, active time, time per unit grid and road segment, check-ins (today: up to now)."""
    return patrol_day_out(await summary.patrol_day(staff_id=staff.staff_id, day=day))


@router.get("/tracks/{day}")
async def my_track(day: date, staff: CurrentStaff) -> dict:
    """Your points of a day as GeoJSON: the credible track as a LineString, spoofed points marked."""
    points = await tracks.day_points(subject_type="staff", subject_id=str(staff.staff_id), day=day)
    return tracks.as_geojson(points, properties={"staff_id": staff.staff_id, "day": day.isoformat()})
