"""Open311 GeoReport v2 at /open311/v2: the active catalog as services, reports as service requests.

Every resource answers as .json or .xml. GET is public; POST requests needs an api_key (`tongguan apikeys add`).
A POST becomes a report (source "open311", reporter: the key) like any channel's, and a job turns it into a case.
Everything under /open311/v2 that goes wrong answers in the spec's error format, not problem+json.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Annotated, Any, cast

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from tortoise.expressions import Q, Subquery

from core import clock
from core.accounts import apikeys
from core.cases.models import Case
from core.catalog.models import Subclass
from core.catalog.service import active_catalog
from core.errors import NotFoundError, PermissionDenied, TongguanError, Unauthenticated
from core.regions.geocode import locate_address
from core.reports.models import Report
from core.reports.public import report_views
from core.reports.service import NewReport, submit_report
from jobs.embedded import wake
from miniapp_api import open311_format as wire
from miniapp_api.open311_format import Format, Open311Error

log = logging.getLogger("tongguan.open311")
DEFAULT_WINDOW = timedelta(days=90)  # the spec's default and widest date range of GET requests
MAX_RESULTS = 1000  # the spec's default query limit
_TOKEN = re.compile(r"k(\d{1,12})-[A-Za-z0-9_-]{16,40}")


def _refusal(exc: Exception) -> Open311Error | None:
    """Our exceptions, FastAPI's and Starlette's in the spec's terms: 403 keys, 404 missing things, 400 the rest
    (and 429 with Retry-After for a client over its rate limit)."""
    match exc:
        case Open311Error():
            return exc
        case PermissionDenied() | Unauthenticated():
            return Open311Error(403, exc.detail, code=exc.code)
        case NotFoundError():
            return Open311Error(404, exc.detail, code=exc.code)
        case TongguanError() if exc.status == 429:
            retry_after = getattr(exc, "retry_after", None)
            headers = {"Retry-After": str(retry_after)} if retry_after else None
            return Open311Error(429, exc.detail, code=exc.code, headers=headers)
        case TongguanError():
            return Open311Error(400, exc.detail, code=exc.code)
        case RequestValidationError():
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors())
            return Open311Error(400, problems or "the request is not valid", code="invalid_request")
        case StarletteHTTPException() if 400 <= exc.status_code < 500:
            return Open311Error(exc.status_code, str(exc.detail))
    return None


class Open311Route(APIRoute):
    """A route whose failures answer in the Open311 error format of the asked suffix."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            fmt = wire.format_of(request.url.path)
            try:
                return await handler(request)
            except Exception as exc:
                refusal = _refusal(exc)
                if refusal is None:
                    log.exception("open311 failed", extra={"fields": {"path": request.url.path}})
                    return wire.error_response(fmt, Open311Error(500, "unexpected error; it has been logged"))
                fields = {"status": refusal.status, "code": refusal.code, "path": request.url.path}
                log.info("open311 refused", extra={"fields": {**fields, "description": refusal.description}})
                return wire.error_response(fmt, refusal)

        return guarded


router = APIRouter(prefix="/open311/v2", tags=["open311"], route_class=Open311Route)


def _format(fmt: str) -> Format:
    if fmt not in wire.FORMATS:
        raise Open311Error(404, f"there is no .{fmt} form of this resource; use .json or .xml")
    return cast(Format, fmt)


@router.get("/services.{fmt}")
async def services(fmt: str) -> Response:
    """GET Service List: every problem type (小类) of the active catalog, grouped by its major class (大类)."""
    form = _format(fmt)
    version = await active_catalog()
    rows = await Subclass.filter(catalog=version).order_by("kind", "code").select_related("major")
    return wire.render(form, "services", "service", [wire.service(s, s.major.name) for s in rows])


@router.get("/services/{code}.{fmt}")
async def service_definition(code: str, fmt: str) -> Response:
    """GET Service Definition: the attributes a service takes (a component's code for component services)."""
    form = _format(fmt)
    subclass = await _service(code)
    return wire.render(form, "service_definition", None, wire.definition(subclass))


@router.get("/requests.{fmt}")
async def service_requests(
    fmt: str,
    service_request_id: Annotated[str | None, Query(description="ids, comma separated; overrides the rest")] = None,
    service_code: Annotated[str | None, Query(description="service codes, comma separated")] = None,
    start_date: Annotated[str | None, Query(description="W3C date-time; default: 90 days before end_date")] = None,
    end_date: Annotated[str | None, Query(description="W3C date-time; default: now")] = None,
    status: Annotated[str | None, Query(description="open, closed or both, comma separated")] = None,
    jurisdiction_id: Annotated[str | None, Query(description="ignored: one jurisdiction")] = None,
) -> Response:
    """GET Service Requests: newest first, at most 1000, within 90 days (the last 90 unless dates are given)."""
    form = _format(fmt)
    if service_request_id:
        reports = await _by_ids(service_request_id)
    else:
        start, end = _window(start_date, end_date)
        reports = await _search(start=start, end=end, codes=_listed(service_code), statuses=_statuses(status))
    return await _requests_response(form, reports)


@router.get("/requests/{request_id}.{fmt}")
async def service_request(request_id: str, fmt: str) -> Response:
    """GET Service Request: one request by its service_request_id."""
    form = _format(fmt)
    report = await Report.get_or_none(id=int(request_id)) if request_id.isdigit() and len(request_id) < 19 else None
    if report is None:
        raise Open311Error(404, f"service request {request_id} was not found")
    return await _requests_response(form, [report])


@router.get("/tokens/{token}.{fmt}")
async def request_of_token(token: str, fmt: str) -> Response:
    """GET service_request_id from a token (the token a POST returned)."""
    form = _format(fmt)
    match = _TOKEN.fullmatch(token)
    report = None
    if match:
        report = await Report.get_or_none(
            source="open311", reporter_type="system", reporter_id=match[1], idempotency_key=token
        )
    if report is None:
        raise Open311Error(404, f"token {token} was not found")
    return wire.render(form, "service_requests", "request", [{"service_request_id": str(report.id), "token": token}])


@router.post("/requests.{fmt}")
async def create_service_request(fmt: str, request: Request) -> Response:
    """POST Service Request (form-encoded, or JSON): needs api_key; answers service_request_id and token."""
    form = _format(fmt)
    pairs = await _read_pairs(request)
    # The key first: a caller without one learns nothing about what else is wrong.
    given = next((str(v) for k, v in pairs if k == "api_key" and v), None)
    key = await apikeys.check_key(given or request.query_params.get("api_key"))
    posted = wire.posted(pairs)
    wire.check_lengths(posted)
    code = posted.get("service_code")
    if not code:
        raise Open311Error(400, "service_code was not provided")
    subclass = await _service(code)
    component_code = wire.component_code(posted, subclass)
    lon, lat = await _location(posted)
    # The token is the report's idempotency key: (source, reporter, key) is the report's unique index.
    token = f"k{key.id}-{secrets.token_urlsafe(18)}"
    new = NewReport(
        source="open311",
        reporter_type="system",
        reporter_id=str(key.id),
        lon=lon,
        lat=lat,
        datum="wgs84",
        text=posted.get("description"),
        address=posted.get("address_string"),
        subclass=f"{subclass.kind}:{subclass.code}",
        component_code=component_code,
        idempotency_key=token,
        media_url=posted.get("media_url") or None,
    )
    report, _ = await submit_report(new)
    wake()
    log.info("open311 request stored", extra={"fields": {"report_id": report.id, "api_key": key.name}})
    answer = {"service_request_id": str(report.id), "token": token, "account_id": posted.get("account_id") or None}
    return wire.render(form, "service_requests", "request", [answer])


ANY_METHOD = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@router.api_route("/{rest:path}", methods=ANY_METHOD, include_in_schema=False)
async def unknown_resource(rest: str, request: Request) -> Response:
    """Anything else under /open311/v2: 405 for a known resource with another method, else 404."""
    path = request.scope["path"]
    for route in router.routes:
        if isinstance(route, APIRoute) and route.endpoint is not unknown_resource and route.path_regex.match(path):
            raise Open311Error(405, f"{request.method} is not allowed on this resource")
    raise Open311Error(404, f"there is no resource {rest}; start at /open311/v2/services.xml")


# --- helpers: reading the request and the database ----------------------------------------------------------


async def _read_pairs(request: Request) -> list[tuple[str, Any]]:
    """The (name, value) pairs of a POST body: form-encoded as the spec says, or a JSON object."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        return wire.parse_json_body(await request.body())
    if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            form = await request.form()
        except Exception as exc:  # the multipart parser raises several types on a broken body
            raise Open311Error(400, "the form body could not be read") from exc
        return form.multi_items()
    if not content_type and not await request.body():
        return []
    raise Open311Error(400, "send the fields as application/x-www-form-urlencoded (or application/json)")


async def _service(code: str) -> Subclass:
    """The active catalog's subclass of a service code; 404 when there is none."""
    ref = wire.subclass_ref(code)
    subclass = None
    if ref is not None:
        kind, number = ref.split(":")
        subclass = await Subclass.get_or_none(catalog=await active_catalog(), kind=kind, code=number)
    if subclass is None:
        raise Open311Error(404, f"service_code {code} was not found; see services.json", code="unknown_service_code")
    return subclass


async def _location(posted: wire.PostedRequest) -> tuple[float, float]:
    """The WGS-84 point of a POST: lat and long, else a place the address_string names."""
    lat, lon = posted.get("lat"), posted.get("long")
    if lat or lon:
        if not (lat and lon):
            raise Open311Error(400, "lat and long must be sent together")
        return wire.coordinate(posted, "long", -180, 180), wire.coordinate(posted, "lat", -90, 90)
    address = posted.get("address_string")
    if address:
        found = await locate_address(address)
        if found is None:
            raise Open311Error(400, "address_string could not be located; send lat and long", code="address_unknown")
        return found[0], found[1]
    if posted.get("address_id"):
        raise Open311Error(400, "address_id is not used here; send lat and long, or address_string")
    raise Open311Error(400, "a location is required: lat and long, or address_string")


def _listed(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _statuses(value: str | None) -> set[str]:
    statuses = set(_listed(value))
    if statuses - {"open", "closed"}:
        raise Open311Error(400, "status is open, closed, or both comma separated")
    return statuses


def _moment(name: str, value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Open311Error(400, f"{name} must be a W3C date-time, e.g. 2026-05-01T00:00:00+08:00") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=clock.CHINA)


def _window(start_date: str | None, end_date: str | None) -> tuple[datetime, datetime]:
    """The range of requested_datetime: given dates, else the 90 days before the end (or after the start)."""
    start, end = _moment("start_date", start_date), _moment("end_date", end_date)
    if start is None:
        end = end or clock.now()
        start = end - DEFAULT_WINDOW
    elif end is None:
        end = start + DEFAULT_WINDOW
    if end < start:
        raise Open311Error(400, "end_date is before start_date")
    if end - start > DEFAULT_WINDOW:
        raise Open311Error(400, "start_date and end_date may not span more than 90 days")
    return clock.china(start), clock.china(end)


async def _by_ids(value: str) -> list[Report]:
    ids = _listed(value)
    if len(ids) > MAX_RESULTS or not all(i.isdigit() and len(i) < 19 for i in ids):
        raise Open311Error(400, f"service_request_id is up to {MAX_RESULTS} numbers, comma separated")
    return await Report.filter(id__in=[int(i) for i in ids]).order_by("-created_at", "-id")


async def _search(*, start: datetime, end: datetime, codes: list[str], statuses: set[str]) -> list[Report]:
    query = Report.filter(created_at__gte=start, created_at__lte=end)
    if codes:
        # A service is its kind and code in every catalog version: older reports keep their version's subclass.
        version = await active_catalog()
        wanted: list[Q] = []
        for code in codes:
            kind, _, number = (wire.subclass_ref(code) or "").partition(":")
            if not await Subclass.exists(catalog=version, kind=kind, code=number):
                raise Open311Error(400, f"service_code {code} is not a service; see services.json")
            wanted.append(Q(kind=kind, code=number))
        same = Subclass.filter(Q(*wanted, join_type="OR")).values("id")
        query = query.filter(subclass_id__in=Subquery(same))
    if len(statuses) == 1:
        is_open = statuses == {"open"}
        by_case = Q(case_id__in=Subquery(Case.filter(is_open=is_open).values("id")))
        # Without a case, a report is open until it is rejected.
        without_case = Q(case_id__isnull=True) & (Q(status__not="rejected") if is_open else Q(status="rejected"))
        query = query.filter(by_case | without_case)
    return await query.order_by("-created_at", "-id").limit(MAX_RESULTS)


async def _requests_response(fmt: Format, reports: list[Report]) -> Response:
    views = await report_views(reports)
    ids = {r.subclass_id for r in reports if r.subclass_id}
    subclasses = {s.id: s for s in await Subclass.filter(id__in=list(ids))} if ids else {}
    rows = [wire.service_request(v, subclasses.get(v.report.subclass_id or 0)) for v in views]
    return wire.render(fmt, "service_requests", "request", rows)
