"""Request and response bodies of the mini-program API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from core.reports.service import MAX_PHOTOS, MAX_TEXT


class LoginIn(BaseModel):
    code: str = Field(min_length=1, max_length=128, description="the code from wx.login()")


class LoginOut(BaseModel):
    token: str
    expires_at: datetime
    citizen_id: int
    phone_bound: bool


class PhoneIn(BaseModel):
    code: str = Field(min_length=1, max_length=128, description="the code from the getPhoneNumber button")


class MeOut(BaseModel):
    citizen_id: int
    phone: str  # the citizen's own number, shown to them in full
    subscriptions: dict[str, int]  # template id -> one-time authorisations left


class Location(BaseModel):
    lon: float
    lat: float
    datum: Literal["gcj02", "wgs84", "bd09"] = "gcj02"  # wx.getLocation type gcj02
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000)


class ReportIn(BaseModel):
    description: str = Field(default="", max_length=MAX_TEXT)
    subclass: str | None = Field(default=None, max_length=20, description='e.g. "event:0102"; empty: we classify')
    photos: list[str] = Field(default_factory=list, max_length=MAX_PHOTOS, description="media ids from /media")
    location: Location
    address: str = Field(default="", max_length=256)
    component_code: str | None = Field(default=None, max_length=16, description="from a component's QR plate")
    anonymous: bool = False
    notify_sms: bool = Field(default=False, description="progress by SMS too (needs a bound phone)")
    idempotency_key: str = Field(min_length=8, max_length=64, description="one per submission; resend it on retry")


class AcceptedOut(BaseModel):
    report_id: int
    status: str
    message: str
    next: str
    flagged: bool


class StepOut(BaseModel):
    at: datetime
    text: str
    note: str = ""


class ReportOut(BaseModel):
    report_id: int
    created_at: datetime
    description: str
    address: str
    photos: list[str]
    status: str  # in citizen words
    is_open: bool
    case_number: str | None
    subclass: str
    department: str
    expected_at: datetime | None
    satisfaction: str | None
    can_rate: bool
    can_reopen: bool
    timeline: list[StepOut]


class ReportPage(BaseModel):
    items: list[ReportOut]
    page: int
    size: int
    total: int


class RatingIn(BaseModel):
    satisfaction: Literal["satisfied", "basic", "unsatisfied", "满意", "基本满意", "不满意"]
    comment: str = Field(default="", max_length=255)


class ReopenIn(BaseModel):
    reason: str = Field(min_length=2, max_length=500, description="what is still wrong")


class SubscriptionsIn(BaseModel):
    """The result of wx.requestSubscribeMessage: the template ids the user accepted this time."""

    accepted: list[str] = Field(max_length=20)


class PermitOut(BaseModel):
    number: str
    company: str
    site: str
    valid_to: str
    days_left: int
    renewal_requested_at: datetime | None


class RenewalIn(BaseModel):
    note: str = Field(default="", max_length=256)


class MerchantRequestIn(BaseModel):
    description: str = Field(min_length=2, max_length=MAX_TEXT)
    subclass: str | None = Field(default=None, max_length=20)
    photos: list[str] = Field(default_factory=list, max_length=MAX_PHOTOS)
    idempotency_key: str = Field(min_length=8, max_length=64)
