"""Request bodies of the field app. Each operation's body is the same online (its route) and offline (sync)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

Datum = Literal["wgs84", "gcj02", "bd09"]
# A photo is a media id from `POST /field/v1/media`, or `upload:<upload id>` for a resumable upload, which an
# offline device may have finished after queueing the operation.
PhotoRef = str
Photos = list[PhotoRef]


class FixIn(BaseModel):
    """The phone's own fix when the work was done (GPS: WGS-84)."""

    lon: float | None = Field(default=None, ge=-180, le=180)
    lat: float | None = Field(default=None, ge=-90, le=90)
    accuracy: float | None = Field(default=None, ge=0, description="metres")
    datum: Datum = "wgs84"


class Timed(BaseModel):
    at: datetime | None = Field(default=None, description="when the device did it; now when absent")


class ReportIn(Timed):
    """An inspector's own report of a problem found on patrol (自行发现)."""

    subclass: str = Field(description="kind:code, e.g. event:0102 or component:0101")
    text: str = Field(default="", max_length=2000)
    photos: Photos = Field(min_length=1, max_length=9)
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    accuracy: float = Field(ge=0, description="metres")
    datum: Datum = "wgs84"
    address: str = Field(default="", max_length=256)
    component_code: str | None = None
    urgency: Literal["urgent", "normal", "routine"] = "normal"
    idempotency_key: str | None = Field(default=None, max_length=64)


class TaskResultIn(FixIn, Timed):
    """核实: confirmed / not_found; 核查: passed / failed (返工). Photos taken on the spot prove it."""

    result: str
    note: str = Field(default="", max_length=2000)
    photos: Photos = Field(default_factory=list, max_length=9)


TaskId = Annotated[int, Field(ge=1, lt=2**63)]
CaseNumber = Annotated[str, Field(min_length=1, max_length=20)]


class TaskResultOp(TaskResultIn):
    task_id: TaskId


class CaseStepIn(Timed):
    """受理 (accept), 回退 (return: reason required), 申请延期 (extension: amount in the stage's unit)."""

    note: str = Field(default="", max_length=2000)
    photos: Photos = Field(default_factory=list, max_length=9)


class ExtensionIn(CaseStepIn):
    amount: float = Field(gt=0, description="hours or days, in the unit of the case's stage")


class FixReportIn(FixIn, Timed):
    """反馈: the fix, with photos before and after (after: fresh, at the place)."""

    note: str = Field(default="", max_length=2000)
    before: Photos = Field(min_length=1, max_length=9)
    after: Photos = Field(min_length=1, max_length=9)


class CaseStepOp(CaseStepIn):
    number: CaseNumber


class ExtensionOp(ExtensionIn):
    number: CaseNumber


class FixReportOp(FixReportIn):
    number: CaseNumber


class CheckInIn(Timed):
    """巡查打卡 at a road work (by permit number) or a road segment (by code)."""

    site_kind: Literal["road_work", "road_segment"]
    site_code: str = Field(max_length=32)
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    accuracy: float = Field(ge=0)
    datum: Datum = "wgs84"
    photos: Photos = Field(min_length=1, max_length=9)
    note: str = Field(default="", max_length=500)


class SyncItemIn(BaseModel):
    id: str = Field(description="the device's UUID for this operation", max_length=64)
    op: str = Field(max_length=24)
    body: dict[str, Any] = Field(default_factory=dict)


class SyncIn(BaseModel):
    operations: list[SyncItemIn]
