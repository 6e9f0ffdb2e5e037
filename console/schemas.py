"""Request and response bodies of the staff API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ActionIn(BaseModel):
    note: str = Field(default="", max_length=2000)
    media: list[str] = Field(default_factory=list, max_length=9)
    detail: dict[str, Any] = Field(default_factory=dict)


class CaseSummary(BaseModel):
    number: str
    subclass: str
    subclass_name: str
    status: str
    status_name: str
    urgency: str
    department: str | None
    district: str
    street: str
    unit_grid: str
    address: str
    lon: float
    lat: float
    stage: str | None
    stage_deadline: datetime | None
    overdue: bool
    paused: bool
    report_count: int
    opened_at: datetime


class CasePage(BaseModel):
    total: int
    items: list[CaseSummary]


class EventOut(BaseModel):
    action: str
    action_name: str
    from_status: str | None
    to_status: str
    actor_type: str
    actor_name: str
    note: str
    media: list[str]
    detail: dict[str, Any]
    at: datetime


class TaskOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: str
    round: int
    inspector_id: int | None
    status: str
    due_at: datetime | None
    result: str | None
    on_time: bool | None


class RequestOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: str
    status: str
    reason: str
    hours: float | None
    requested_by: str
    decided_by: str | None
    created_at: datetime


class CaseReportOut(BaseModel):
    """One report that is part of the case (the first, and every one merged into it since)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    source: str
    reporter_type: str
    anonymous: bool
    text: str
    address: str
    photos: list[str]
    classify_rule: str
    classify_confidence: float | None
    created_at: datetime


class PhotoLinks(BaseModel):
    """Signed, expiring links to two sizes of one photo."""

    thumb_url: str
    display_url: str


class DepartmentOut(BaseModel):
    """A unit a case can be dispatched to."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    level: str
    district_id: str | None


class TrendPoint(BaseModel):
    """One month of a unit's evaluation; score and band are null in a month without figures."""

    period: str
    score: float | None
    band: str | None
    registered: int
    close_rate: float | None
    on_time_dispose_rate: float | None


class CaseDetail(CaseSummary):
    description: str
    routing_kind: str
    routing_reason: str
    community: str
    road_segment: str | None
    component_code: str | None
    rework_count: int
    extensions: int
    satisfaction: str | None
    timeline: list[EventOut]
    reports: list[CaseReportOut]
    tasks: list[TaskOut]
    requests: list[RequestOut]
    allowed_actions: list[str]
    photos: dict[str, PhotoLinks]
    district_name: str | None
    street_name: str | None
    department_name: str | None


class HotlineReportIn(BaseModel):
    """A call to the hotline (12319) entered by a dispatcher: the caller's words and the place."""

    text: str = Field(min_length=1, max_length=2000)
    lon: float
    lat: float
    datum: str = "wgs84"
    address: str = Field(default="", max_length=256)
    subclass: str | None = None
    urgency: str = "normal"
    idempotency_key: str | None = Field(default=None, min_length=8, max_length=64)


class ReportAccepted(BaseModel):
    report_id: int
    status: str
    created: bool
    next: str


class ReportOut(BaseModel):
    id: int
    source: str
    text: str
    address: str
    status: str
    status_reason: str
    subclass: str | None
    case_number: str | None
    created_at: datetime


class SubclassOut(BaseModel):
    """A problem type (小类) with its major class, as a dispatcher picks it."""

    subclass: str
    kind: str
    name: str
    major_name: str


class ClassifyIn(BaseModel):
    subclass: str
