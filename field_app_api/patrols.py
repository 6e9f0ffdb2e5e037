"""Patrol check-ins (巡查打卡) at road works and road segments."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from core import clock
from core.errors import ValidationFailed
from core.patrols import checkins
from field_app_api import operations
from field_app_api.deps import AppSettings, CurrentActor
from field_app_api.messages import SITE_KINDS
from field_app_api.schemas import CheckInIn

router = APIRouter(tags=["field app: patrols"])


@router.post("/check-ins")
async def check_in(body: CheckInIn, actor: CurrentActor, settings: AppSettings) -> JSONResponse:
    """Check in at a site: inside its geofence, with an accurate fix and a fresh photo; refused with the reason."""
    return operations.respond(await operations.perform("check_in", actor, body, settings))


@router.get("/check-ins")
async def my_check_ins(actor: CurrentActor, day: date | None = None) -> dict[str, Any]:
    """My check-ins of a China day (today by default)."""
    day = day or clock.china(clock.now()).date()
    if not date(2000, 1, 1) <= day <= date(2999, 12, 31):
        raise ValidationFailed("invalid_request", "day is a date like 2026-11-30")
    start = datetime.combine(day, time(0), tzinfo=clock.CHINA)
    rows = await checkins.check_ins_of(staff_id=int(actor.id), since=start, until=start + timedelta(days=1))
    return {
        "day": day.isoformat(),
        "items": [
            {
                "id": r.id,
                "site_kind": r.site_kind,
                "site_kind_name": SITE_KINDS.get(r.site_kind, r.site_kind),
                "site_code": r.site_code,
                "at": r.at,
                "distance_m": r.distance_m,
                "photos": r.photos,
            }
            for r in rows
        ],
    }
