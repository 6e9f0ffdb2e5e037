"""Muck trucks (控渣土): positions and cover photos from the vehicle platform, authenticated by an API key.

The platform (`tongguan apikeys add NAME`) sends its key in the `X-Api-Key` header or the `api_key` query, as
Open311 clients do. A batch holds positions of many trucks; each position is answered on its own (unknown truck,
bad point …), so one bad position never loses the others.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Header, Query, UploadFile
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from core import clock
from core.accounts import apikeys
from core.accounts.models import ApiKey
from core.geo.datum import Datum
from core.messages import error_title
from core.muck import service as muck
from core.muck.messages import RULE_NAMES
from core.muck.models import MuckAlert
from jobs.embedded import wake
from media import images
from media.service import Owner, store_photo
from media.views import AppSettings, Store

router = APIRouter(prefix="/muck", tags=["muck trucks"])
_MAX_MS = 1 << 50  # epoch milliseconds beyond this are no time at all


async def platform_key(
    x_api_key: Annotated[str | None, Header(description="the vehicle platform's API key")] = None,
    api_key: Annotated[str | None, Query(description="the key, for platforms that cannot set headers")] = None,
) -> ApiKey:
    """The calling platform's key; a missing, unknown or revoked key is refused (403) before the body is used."""
    return await apikeys.check_key(x_api_key or api_key)


PlatformKey = Annotated[ApiKey, Depends(platform_key)]


class PositionIn(BaseModel):
    """One position of one truck, as vehicle platforms (JT/T 808) forward them."""

    model_config = ConfigDict(extra="ignore")

    terminal_id: str | None = Field(default=None, max_length=32, description="the GPS terminal's id")
    plate: str | None = Field(default=None, max_length=32, description="the plate, when the terminal id is not sent")
    t: int | str = Field(description="epoch milliseconds, or ISO 8601 (without a zone: China time, as JT/T 808)")
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    speed: float | None = Field(default=None, ge=0, le=300, allow_inf_nan=False, description="km/h")
    datum: Datum = Field(default=Datum.WGS84, description="wgs84 (the terminal's GNSS), gcj02, bd09 or cgcs2000")

    @model_validator(mode="after")
    def _names_a_truck(self) -> PositionIn:
        if not (self.terminal_id or self.plate):
            raise ValueError("terminal_id or plate is required")
        return self

    def moment(self) -> datetime:
        if isinstance(self.t, int):
            if not 0 <= self.t < _MAX_MS:
                raise ValueError("t in epoch milliseconds is out of range")
            return datetime.fromtimestamp(self.t / 1000, clock.CHINA)
        return clock.china_of(datetime.fromisoformat(self.t))


class PositionsIn(BaseModel):
    positions: list[Any] = Field(description="positions of any number of trucks (objects as PositionIn)")


class ItemOut(BaseModel):
    index: int
    code: str
    title: str
    detail: str


class AlertOut(BaseModel):
    key: str
    rule: str
    rule_name: str
    plate: str
    at: datetime
    lon: float
    lat: float
    report_id: int | None


class TruckOut(BaseModel):
    plate: str
    received: int
    accepted: int
    duplicates: int
    spoofed: int
    rejected: int
    alerts: list[AlertOut]


class PositionsOut(BaseModel):
    received: int
    accepted: int
    trucks: list[TruckOut]
    errors: list[ItemOut]
    alerts: list[AlertOut]


class CoverOut(BaseModel):
    plate: str
    day: str
    taken_at: datetime
    media_id: str
    created: bool


def _position(index: int, raw: Any) -> muck.Position | muck.ItemError:
    try:
        item = PositionIn.model_validate(raw)
        at = item.moment()
    except (ValidationError, ValueError, OverflowError) as exc:
        problems = (
            "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'position'}: {e['msg']}" for e in exc.errors())
            if isinstance(exc, ValidationError)
            else f"t: {exc}"
        )
        return muck.ItemError(index, "bad_position", problems)
    return muck.Position(
        index=index,
        at=at,
        lon=item.lon,
        lat=item.lat,
        terminal_id=item.terminal_id,
        plate=item.plate,
        speed_kmh=item.speed,
        datum=item.datum.value,
    )


def _alert_out(alert: MuckAlert, plate: str) -> AlertOut:
    return AlertOut(
        key=alert.key,
        rule=alert.rule,
        rule_name=RULE_NAMES[alert.rule],
        plate=plate,
        at=alert.at,
        lon=alert.lon,
        lat=alert.lat,
        report_id=alert.report_id,
    )


@router.post("/positions")
async def positions(key: PlatformKey, body: PositionsIn) -> PositionsOut:
    """Positions of many trucks from the vehicle platform: stored per truck, checked against the rules.

    Answers per item (refused positions with a code) and per truck (counts, new alerts). A batch larger than
    `TG_MUCK_MAX_POSITIONS` is refused whole (413 `batch_too_large`). Sending a batch again is safe.
    """
    result = await muck.receive_positions(items=[_position(i, raw) for i, raw in enumerate(body.positions)])
    if result.alerts:
        wake()  # the alerts' reports wait in the outbox for the case pipeline
    trucks = [
        TruckOut(
            plate=t.plate,
            received=t.received,
            accepted=t.accepted,
            duplicates=t.duplicates,
            spoofed=t.spoofed,
            rejected=t.rejected,
            alerts=[_alert_out(a, t.plate) for a in t.alerts],
        )
        for t in result.trucks
    ]
    return PositionsOut(
        received=result.received,
        accepted=sum(t.accepted for t in result.trucks),
        trucks=trucks,
        errors=[ItemOut(index=e.index, code=e.code, title=error_title(e.code), detail=e.detail) for e in result.errors],
        alerts=[a for t in trucks for a in t.alerts],
    )


@router.post("/covers", status_code=201)
async def covers(
    key: PlatformKey,
    settings: AppSettings,
    store: Store,
    plate: Annotated[str, Form(description="the truck's plate")],
    photo: Annotated[UploadFile, File(description="the closed cover, as the camera took it (EXIF time kept)")],
) -> CoverOut:
    """A photo of a truck's closed cover (密闭), taken today: the truck may drive loaded for the rest of the day."""
    truck = await muck.truck_by_plate(plate)
    data = await photo.read(settings.media_max_bytes + 1)
    # The EXIF time decides before anything is stored, so a refused photo leaves nothing behind; decoding twice
    # (here and in store_photo) costs milliseconds for a few thousand photos a day.
    limits = images.Limits(max_bytes=settings.media_max_bytes, max_pixels=settings.media_max_pixels)
    cleaned = await asyncio.to_thread(images.clean, data, limits=limits)
    taken_at = muck.check_cover_time(cleaned.meta.taken_at)
    media = await store_photo(
        data=data,
        owner=Owner(kind="system", id=key.name),
        file_name=photo.filename or "",
        store=store,
        settings=settings,
    )
    cover, created = await muck.record_cover(truck=truck, media_id=media.id, taken_at=taken_at)
    return CoverOut(
        plate=truck.plate, day=cover.day.isoformat(), taken_at=cover.taken_at, media_id=media.id, created=created
    )
