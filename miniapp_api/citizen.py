"""The signed-in citizen: login, phone, photos, reports (submit, follow, rate, reopen), subscriptions, permits,
and merchants' requests. Handlers validate, call a service and answer; WeChat calls run in a thread."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from core import clock
from core.accounts import citizens
from core.accounts.citizens import CitizenPrincipal
from core.accounts.models import Citizen
from core.cases import service as cases
from core.cases.workflow import Actor
from core.errors import NotFoundError, PermissionDenied, ValidationFailed
from core.permits import service as permits
from core.permits.models import AdPermit
from core.places.models import Shop
from core.ratelimit import RateLimited, RateLimiter
from core.reports import messages as words
from core.reports.models import Report
from core.reports.public import ReportView, report_of, reports_of
from core.reports.service import NewReport, submit_report
from core.settings import Settings
from media.views import add_upload_routes
from miniapp_api.deps import AppSettings, CurrentCitizen, Gateway, Limiter, limit_by_address, media_owner
from miniapp_api.schemas import (
    AcceptedOut,
    LoginIn,
    LoginOut,
    MeOut,
    MerchantRequestIn,
    PermitOut,
    PhoneIn,
    RatingIn,
    RenewalIn,
    ReopenIn,
    ReportIn,
    ReportOut,
    ReportPage,
    StepOut,
    SubscriptionsIn,
)
from miniapp_api.wechat import MiniappGateway
from notifications import service as notices

# Signed-in routes count against the address and the citizen in `current_citizen`; login against the address.
router = APIRouter(prefix="/miniapp/v1", tags=["mini-program"])
add_upload_routes(router, media_owner)  # report photos: whole, or resumable chunks on weak networks

SATISFACTION = {"满意": "satisfied", "基本满意": "basic", "不满意": "unsatisfied"}


@router.post("/auth/login", dependencies=[Depends(limit_by_address)])
async def login(body: LoginIn, wechat: Gateway) -> LoginOut:
    """Sign in with a wx.login() code: WeChat vouches for the user, we answer with our own session token."""
    session = await run_in_threadpool(wechat.code_to_session, body.code)
    signed = await citizens.sign_in(openid=session.openid, unionid=session.unionid, session_key=session.session_key)
    return LoginOut(
        token=signed.token,
        expires_at=signed.expires_at,
        citizen_id=signed.citizen.id,
        phone_bound=bool(signed.citizen.phone),
    )


@router.post("/auth/logout", status_code=204)
async def logout(citizen: CurrentCitizen) -> None:
    """End this session; its token no longer works."""
    await citizens.sign_out(session_id=citizen.session_id)


@router.get("/me")
async def me(citizen: CurrentCitizen) -> MeOut:
    """The citizen's own account: their phone (in full: it is theirs) and subscriptions left."""
    record = await Citizen.get(id=citizen.citizen_id)
    return MeOut(
        citizen_id=record.id,
        phone=record.phone or "",
        subscriptions=await notices.subscriptions(openid=citizen.openid),
    )


@router.post("/me/phone")
async def bind_phone(body: PhoneIn, citizen: CurrentCitizen, wechat: Gateway) -> dict[str, str]:
    """Bind the phone number the user shared through the getPhoneNumber button (for SMS notices)."""
    phone = await run_in_threadpool(wechat.phone_number, body.code)
    await citizens.bind_phone(citizen_id=citizen.citizen_id, phone=phone)
    return {"phone": citizens.mask_phone(phone)}


@router.post("/reports", status_code=202)
async def submit(
    body: ReportIn, citizen: CurrentCitizen, wechat: Gateway, settings: AppSettings, limiter: Limiter
) -> AcceptedOut:
    """Report a problem; 202 with the report id. The same idempotency key again returns the same report."""
    if body.notify_sms and not (await Citizen.get(id=citizen.citizen_id)).phone:
        raise ValidationFailed("phone_required", "bind a phone number before asking for SMS notices")
    flagged = await _admit(citizen, body.idempotency_key, body.description, wechat, settings, limiter)
    report, _ = await submit_report(
        NewReport(
            source="miniapp",
            reporter_type="citizen",
            reporter_id=str(citizen.citizen_id),
            lon=body.location.lon,
            lat=body.location.lat,
            datum=body.location.datum,
            accuracy_m=body.location.accuracy_m,
            text=body.description,
            address=body.address,
            photos=body.photos,
            subclass=body.subclass or None,
            component_code=body.component_code or None,
            anonymous=body.anonymous,
            notify_sms=body.notify_sms,
            flagged=flagged,
            idempotency_key=body.idempotency_key,
        )
    )
    return _accepted(report)


@router.get("/reports")
async def my_reports(
    citizen: CurrentCitizen,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    size: Annotated[int, Query(ge=1, le=50)] = 20,
) -> ReportPage:
    """My reports, newest first, with where each stands in plain words."""
    views, total = await reports_of(citizen_id=citizen.citizen_id, page=page, size=size)
    return ReportPage(items=[_report_out(v) for v in views], page=page, size=size, total=total)


@router.get("/reports/{report_id}")
async def my_report(report_id: int, citizen: CurrentCitizen) -> ReportOut:
    """One of my reports with its whole timeline."""
    return _report_out(await report_of(citizen_id=citizen.citizen_id, report_id=report_id))


@router.post("/reports/{report_id}/rating")
async def rate(report_id: int, body: RatingIn, citizen: CurrentCitizen) -> ReportOut:
    """Rate the result once the case is closed: 满意 / 基本满意 / 不满意, with a comment."""
    view = await report_of(citizen_id=citizen.citizen_id, report_id=report_id)
    satisfaction = SATISFACTION.get(body.satisfaction, body.satisfaction)
    await cases.act(
        case_id=_case_id(view),
        action="rate",
        actor=Actor.citizen(citizen.citizen_id),
        detail={"satisfaction": satisfaction, "comment": body.comment},
    )
    return _report_out(await report_of(citizen_id=citizen.citizen_id, report_id=report_id))


@router.post("/reports/{report_id}/reopen")
async def reopen(report_id: int, body: ReopenIn, citizen: CurrentCitizen) -> ReportOut:
    """Not fixed after all: within 7 days of closing, the case goes back to the department."""
    view = await report_of(citizen_id=citizen.citizen_id, report_id=report_id)
    await cases.act(case_id=_case_id(view), action="reopen", actor=Actor.citizen(citizen.citizen_id), note=body.reason)
    return _report_out(await report_of(citizen_id=citizen.citizen_id, report_id=report_id))


@router.post("/subscriptions")
async def subscribe(body: SubscriptionsIn, citizen: CurrentCitizen) -> dict[str, dict[str, int]]:
    """Record the subscribe-message templates the user accepted (each acceptance allows one message)."""
    for template_id in dict.fromkeys(t.strip() for t in body.accepted if t.strip()):
        if len(template_id) > 64:
            raise ValidationFailed("invalid_request", "a template id has at most 64 characters")
        await notices.grant_subscription(openid=citizen.openid, template_id=template_id)
    return {"subscriptions": await notices.subscriptions(openid=citizen.openid)}


@router.get("/subscriptions")
async def my_subscriptions(citizen: CurrentCitizen) -> dict[str, dict[str, int]]:
    return {"subscriptions": await notices.subscriptions(openid=citizen.openid)}


@router.get("/permits")
async def my_permits(citizen: CurrentCitizen) -> dict[str, list[PermitOut]]:
    """The outdoor-ad permits of my company (the mini-program account bound as its contact), soonest expiry first."""
    today = clock.now().date()
    found = await permits.permits_of(openid=citizen.openid)
    return {"items": [_permit_out(p, today) for p in found]}


@router.post("/permits/{number}/renewal")
async def ask_renewal(number: str, body: RenewalIn, citizen: CurrentCitizen) -> PermitOut:
    """Ask for a permit's renewal (延续); asking again changes nothing."""
    permit = await permits.request_renewal(openid=citizen.openid, number=number, note=body.note)
    await permit.fetch_related("company")
    return _permit_out(permit, clock.now().date())


@router.post("/shops/{qr}/requests", status_code=202)
async def merchant_request(
    qr: str, body: MerchantRequestIn, citizen: CurrentCitizen, wechat: Gateway, settings: AppSettings, limiter: Limiter
) -> AcceptedOut:
    """A shop's own request (e.g. about its 门前三包 area) goes in as a report at the shop."""
    shop = await Shop.get_or_none(qr=qr)
    if shop is None:
        raise NotFoundError("shop_not_found", f"no shop has the QR code {qr}")
    if shop.owner_openid != citizen.openid:
        raise PermissionDenied("not_shop_owner", "only the shop's own account may send its requests")
    flagged = await _admit(citizen, body.idempotency_key, body.description, wechat, settings, limiter)
    report, _ = await submit_report(
        NewReport(
            source="miniapp",
            reporter_type="citizen",
            reporter_id=str(citizen.citizen_id),
            lon=shop.lon,
            lat=shop.lat,
            datum="wgs84",
            text=f"{words.MERCHANT_PREFIX}{shop.name}：{body.description}",
            address=shop.address,
            photos=body.photos,
            subclass=body.subclass or None,
            flagged=flagged,
            idempotency_key=body.idempotency_key,
        )
    )
    return _accepted(report)


# --- shaping ---


def _accepted(report: Report) -> AcceptedOut:
    review = report.flagged
    return AcceptedOut(
        report_id=report.id,
        status=words.REPORT_STATUS["received"],
        message=words.ACCEPTED,
        next=words.NEXT_STEP_REVIEW if review else words.NEXT_STEP,
        flagged=review,
    )


async def _admit(
    citizen: CitizenPrincipal, key: str, text: str, wechat: MiniappGateway, settings: Settings, limiter: RateLimiter
) -> bool:
    """The checks before a new report: the hourly count (a retry of an accepted report still gets its answer) and
    WeChat content security (risky: refused). True when a person should look at it (review, or not checked)."""
    try:
        limit = settings.rate_reports_per_hour
        await limiter.hit(f"reports:{citizen.citizen_id}", limit=limit, window_s=3600, code="too_many_reports")
    except RateLimited:
        if not await _submitted_before(citizen.citizen_id, key):
            raise
    if not text.strip():
        return False
    verdict = await run_in_threadpool(wechat.check_text, text, openid=citizen.openid)
    if verdict == "risky":
        raise ValidationFailed("content_risky", "WeChat content security judged the description risky")
    return verdict in ("review", "unchecked")


async def _submitted_before(citizen_id: int, key: str) -> bool:
    return await Report.exists(
        source="miniapp", reporter_type="citizen", reporter_id=str(citizen_id), idempotency_key=key
    )


def _case_id(view: ReportView) -> int:
    if view.report.case_id is None:
        raise ValidationFailed("not_yet_handled", "this report has no case yet")
    return view.report.case_id


def _report_out(view: ReportView) -> ReportOut:
    report = view.report
    return ReportOut(
        report_id=report.id,
        created_at=report.created_at,
        description=report.text,
        address=report.address,
        photos=list(report.photos),
        status=view.status_text,
        is_open=view.is_open,
        case_number=view.case_number,
        subclass=view.subclass_name,
        department=view.department_name,
        expected_at=view.expected_at,
        satisfaction=view.satisfaction,
        can_rate=view.can_rate,
        can_reopen=view.can_reopen,
        timeline=[StepOut(at=s.at, text=s.text, note=s.note) for s in view.steps],
    )


def _permit_out(permit: AdPermit, today: date) -> PermitOut:
    return PermitOut(
        number=permit.number,
        company=permit.company.name,
        site=permit.site,
        valid_to=permit.valid_to.isoformat(),
        days_left=(permit.valid_to - today).days,
        renewal_requested_at=permit.renewal_requested_at,
    )
