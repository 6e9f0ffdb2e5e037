"""Patrol check-ins (巡查打卡) at excavation sites and road segments.

A check-in says "I was here, at this time, and here is the photo". It is accepted only when the device fix is
accurate enough, lies inside the site's geofence (the works' radius, or a corridor along the road), and the photo
is fresh, taken there and never used before. Anything else is refused with the reason, and nothing is stored.
The time is the phone's: a check-in made offline and synced a day later is judged as of when it was made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import shapely
from tortoise.transactions import in_transaction

from core import clock
from core.errors import NotFoundError, ValidationFailed
from core.geo.datum import to_wgs84
from core.geo.projection import LocalProjection, haversine_m
from core.media import evidence
from core.patrols.models import CheckIn
from core.places.models import RoadWork
from core.regions.models import RoadSegment
from core.settings import Settings

SITE_KINDS = ("road_work", "road_segment")


@dataclass(frozen=True)
class NewCheckIn:
    staff_id: int
    site_kind: str  # road_work (by permit number) / road_segment (by code)
    site_code: str
    at: datetime
    lon: float
    lat: float
    accuracy_m: float
    datum: str = "wgs84"
    photos: Sequence[str] = ()
    note: str = ""


@dataclass(frozen=True)
class Site:
    kind: str
    code: str
    name: str
    place: evidence.Place  # for a road: the nearest point of the line, with the corridor as radius
    distance_m: float  # of the device fix from the site


def check_time(at: datetime, *, settings: Settings, now: datetime | None = None) -> None:
    """Work reported from the phone: not from the future, and not older than offline work may be."""
    now = now or clock.now()
    if at.tzinfo is None:
        raise ValidationFailed("invalid_request", "times carry their offset, e.g. 2026-11-30T09:15:00+08:00")
    if at > now + timedelta(seconds=settings.field_clock_skew_s):
        raise ValidationFailed("time_in_future", f"{at.isoformat()} is ahead of the server clock")
    if at < now - timedelta(hours=settings.field_max_age_hours):
        raise ValidationFailed("time_too_old", f"{at.isoformat()} is more than {settings.field_max_age_hours} h ago")


async def locate_site(kind: str, code: str, *, lon: float, lat: float, day_of: datetime, settings: Settings) -> Site:
    """The site and how far the WGS-84 point is from it; refused when it is not a site open that day."""
    if kind == "road_work":
        work = await RoadWork.get_or_none(permit_no=code)
        if work is None:
            raise NotFoundError("site_not_found", f"there is no road work {code!r}")
        day = clock.china(day_of).date()
        if not work.starts_on <= day <= work.ends_on:
            raise ValidationFailed("site_closed", f"road work {code} runs {work.starts_on}..{work.ends_on}")
        place = evidence.Place(work.lon, work.lat, work.radius_m)
        return Site(kind, code, work.name, place, haversine_m(lon, lat, work.lon, work.lat))
    if kind == "road_segment":
        road = await RoadSegment.get_or_none(code=code)
        if road is None:
            raise NotFoundError("site_not_found", f"there is no road segment {code!r}")
        # Metres, not degrees: the corridor is measured in a local projection around the city centre.
        projection = LocalProjection(settings.city_center_lon, settings.city_center_lat)
        line = shapely.transform(
            shapely.from_geojson(road.geometry), lambda c: np.column_stack(projection.to_m(c[:, 0], c[:, 1]))
        )
        x, y = projection.to_m(lon, lat)
        point = shapely.Point(float(x), float(y))
        nearest = shapely.line_interpolate_point(line, shapely.line_locate_point(line, point))
        nlon, nlat = projection.to_deg(nearest.x, nearest.y)
        place = evidence.Place(float(nlon), float(nlat), settings.checkin_road_radius_m)
        return Site(kind, code, road.name, place, float(shapely.distance(line, point)))
    raise ValidationFailed("unknown_site_kind", f"site kind must be one of {', '.join(SITE_KINDS)}")


async def check_in(new: NewCheckIn, *, settings: Settings) -> CheckIn:
    """Accept a check-in that meets every rule, with its photos marked used; refuse it with the reason otherwise."""
    check_time(new.at, settings=settings)
    if new.accuracy_m is None or not 0 <= new.accuracy_m <= settings.field_gps_accuracy_m:
        raise ValidationFailed(
            "gps_inaccurate", f"device fix ±{new.accuracy_m} m; at most ±{settings.field_gps_accuracy_m:.0f} m"
        )
    lon, lat = to_wgs84(new.lon, new.lat, new.datum)
    site = await locate_site(new.site_kind, new.site_code, lon=lon, lat=lat, day_of=new.at, settings=settings)
    if site.distance_m > site.place.radius_m:
        raise ValidationFailed(
            "outside_geofence", f"{site.distance_m:.0f} m from {site.name}; the geofence is {site.place.radius_m:.0f} m"
        )
    shas = await evidence.check_photos(
        photos=new.photos,
        owner_type="staff",
        owner_id=str(new.staff_id),
        at=new.at,
        place=site.place,
        fix=evidence.Fix(lon, lat, new.accuracy_m),
        settings=settings,
    )
    async with in_transaction() as conn:
        row = await CheckIn.create(
            staff_id=new.staff_id,
            site_kind=site.kind,
            site_code=site.code,
            day=clock.china(new.at).date(),
            at=new.at,
            lon=lon,
            lat=lat,
            accuracy_m=new.accuracy_m,
            distance_m=round(site.distance_m, 1),
            photos=list(new.photos),
            note=new.note[:500],
            using_db=conn,
        )
        await evidence.mark_used(shas, used_for="check_in", ref=str(row.id), at=new.at, conn=conn)
    return row


async def check_ins_of(*, staff_id: int, since: datetime, until: datetime) -> list[CheckIn]:
    return await CheckIn.filter(staff_id=staff_id, at__gte=since, at__lt=until).order_by("at")
