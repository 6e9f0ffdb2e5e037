"""The staff API of the command centre: queues, case detail with timeline, workflow actions, search, hotline
intake, waiting reports and the evaluation. Handlers validate, call a service and return."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response

from console.deps import CurrentActor
from console.schemas import (
    ActionIn,
    CaseDetail,
    CasePage,
    CaseReportOut,
    CaseSummary,
    ClassifyIn,
    DepartmentOut,
    EventOut,
    HotlineReportIn,
    PhotoLinks,
    ReportAccepted,
    ReportOut,
    RequestOut,
    SubclassOut,
    TaskOut,
    TrendPoint,
)
from core import clock
from core.cases import service as cases
from core.cases import workflow
from core.cases.messages import ACTION_NAMES, STATUS_NAMES
from core.cases.models import Case, CaseRequest, CaseTask
from core.cases.workflow import Actor
from core.catalog.models import Subclass
from core.catalog.service import active_catalog
from core.errors import PermissionDenied
from core.evaluation import export
from core.evaluation import service as evaluation
from core.org.models import Department
from core.regions.models import District, Street
from core.reports import service as reports
from core.reports.models import Report
from core.settings import get_settings
from jobs.embedded import wake
from media import urls
from media.service import Owner
from media.views import add_upload_routes

router = APIRouter(prefix="/staff/v1", tags=["staff"])
DESK_ROLES = frozenset({"dispatcher", "duty_chief"})


async def media_owner(actor: CurrentActor) -> Owner:
    """Photos uploaded through the staff API belong to the signed-in staff member."""
    return Owner(kind="staff", id=actor.id)


add_upload_routes(router, media_owner)


def _summary(case: Case) -> CaseSummary:
    return CaseSummary(**_summary_fields(case))


def _summary_fields(case: Case) -> dict:
    subclass = case.subclass
    now = clock.now()
    return {
        "number": case.number,
        "subclass": f"{subclass.kind}:{subclass.code}",
        "subclass_name": subclass.name,
        "status": case.status,
        "status_name": STATUS_NAMES.get(case.status, case.status),
        "urgency": case.urgency,
        "department": case.department_id,
        "district": case.district,
        "street": case.street,
        "unit_grid": case.unit_grid,
        "address": case.address,
        "lon": case.lon,
        "lat": case.lat,
        "stage": case.stage,
        "stage_deadline": case.stage_deadline,
        "overdue": case.stage_overdue or bool(case.stage_deadline and case.stage_deadline < (case.paused_at or now)),
        "paused": case.paused_at is not None,
        "report_count": case.report_count,
        "opened_at": case.opened_at,
    }


def _require_desk(actor: Actor) -> None:
    if not any(g.role in DESK_ROLES for g in actor.grants):
        raise PermissionDenied("role_not_allowed", "this needs a dispatcher or duty chief role")


async def _visible_case(number: str, actor: Actor) -> Case:
    case = await cases.get_case(number=number)
    await cases.check_visible(case, actor)
    await case.fetch_related("subclass")
    return case


@router.get("/queues")
async def queue_counts(actor: CurrentActor) -> dict[str, int]:
    """How many cases wait in each work queue within your area or department."""
    return await cases.queue_counts(actor=actor)


@router.get("/cases")
async def list_cases(
    actor: CurrentActor,
    queue: str | None = None,
    number: str | None = None,
    status: str | None = None,
    department: str | None = None,
    grid: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> CasePage:
    """A work queue, or a search by number, status, department, grid and time; newest first."""
    total, items = await cases.list_cases(
        actor=actor,
        queue=queue,
        number=number,
        status=status,
        department=department,
        grid=grid,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    return CasePage(total=total, items=[_summary(c) for c in items])


@router.get("/cases/{number}")
async def case_detail(number: str, actor: CurrentActor) -> CaseDetail:
    """One case with its timeline, inspector tasks, approval requests and the actions you may take now."""
    case = await _visible_case(number, actor)
    events = await cases.timeline(case_id=case.id)
    tasks = await CaseTask.filter(case_id=case.id).order_by("id")
    requests = await CaseRequest.filter(case_id=case.id).order_by("id")
    reports_of_case = await Report.filter(case_id=case.id).order_by("id")
    facts = await cases.facts_for(case)
    settings = get_settings()
    media_ids = [m for r in reports_of_case for m in r.photos] + [m for e in events for m in e.media or ()]
    photos = {
        m: PhotoLinks(
            thumb_url=urls.signed_url(m, "thumb", settings=settings),
            display_url=urls.signed_url(m, "display", settings=settings),
        )
        for m in media_ids
    }
    return CaseDetail(
        **_summary_fields(case),
        description=case.description,
        routing_kind=case.routing_kind,
        routing_reason=case.routing_reason,
        community=case.community,
        road_segment=case.road_segment,
        component_code=case.component_code,
        rework_count=case.rework_count,
        extensions=case.extensions,
        satisfaction=case.satisfaction,
        timeline=[
            EventOut(
                action=e.action,
                action_name=ACTION_NAMES.get(e.action, e.action),
                from_status=e.from_status,
                to_status=e.to_status,
                actor_type=e.actor_type,
                actor_name=e.actor_name,
                note=e.note,
                media=e.media,
                detail=e.detail,
                at=e.at,
            )
            for e in events
        ],
        reports=[CaseReportOut.model_validate(r) for r in reports_of_case],
        tasks=[TaskOut.model_validate(t) for t in tasks],
        requests=[RequestOut.model_validate(r) for r in requests],
        allowed_actions=workflow.allowed_actions(facts=facts, actor=actor),
        photos=photos,
        district_name=_name(await District.get_or_none(code=case.district)),
        street_name=_name(await Street.get_or_none(code=case.street)),
        department_name=_name(await Department.get_or_none(code=case.department_id)) if case.department_id else None,
    )


def _name(row: District | Street | Department | None) -> str | None:
    return row.name if row else None


@router.post("/cases/{number}/actions/{action}")
async def act(number: str, action: str, body: ActionIn, actor: CurrentActor) -> CaseSummary:
    """Take one workflow action (受理, 立案, 派遣, 回退, 延期, 核查, 结案, 督办 ...) on a case."""
    case = await _visible_case(number, actor)
    updated = await cases.act(
        case_id=case.id, action=action, actor=actor, note=body.note, media=body.media, detail=body.detail
    )
    await updated.fetch_related("subclass")
    return _summary(updated)


@router.get("/departments")
async def departments(actor: CurrentActor) -> list[DepartmentOut]:
    """The units a case can be dispatched to: city-level ones and those of the districts you cover."""
    _require_desk(actor)
    query = Department.all().order_by("level", "code")
    if (scope := cases.dispatchable_filter(actor)) is not None:
        query = query.filter(scope)
    return [DepartmentOut.model_validate(d) for d in await query]


@router.get("/subclasses")
async def subclasses(actor: CurrentActor) -> list[SubclassOut]:
    """The problem types of the active catalog, by kind and major class, for classifying a waiting report."""
    _require_desk(actor)
    version = await active_catalog()
    rows = await Subclass.filter(catalog=version).order_by("-kind", "code").prefetch_related("major")  # events first
    return [SubclassOut(subclass=f"{s.kind}:{s.code}", kind=s.kind, name=s.name, major_name=s.major.name) for s in rows]


@router.post("/reports", status_code=202)
async def hotline_report(body: HotlineReportIn, actor: CurrentActor) -> ReportAccepted:
    """Enter a hotline call (12319) as a report; it goes through the same pipeline as every other channel."""
    _require_desk(actor)
    report, created = await reports.submit_report(
        reports.NewReport(
            source="hotline",
            reporter_type="staff",
            reporter_id=actor.id,
            lon=body.lon,
            lat=body.lat,
            datum=body.datum,
            text=body.text,
            address=body.address,
            subclass=body.subclass,
            urgency=body.urgency,
            idempotency_key=body.idempotency_key,
        )
    )
    wake()
    return ReportAccepted(
        report_id=report.id, status=report.status, created=created, next="locate, classify, route and open a case"
    )


@router.get("/reports")
async def waiting_reports(
    actor: CurrentActor,
    status: str = "queued",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[ReportOut]:
    """Reports that wait for a person (no subclass could be found, or no place), oldest first."""
    _require_desk(actor)
    query = Report.filter(status=status)
    if (scope := cases.waiting_reports_filter(actor)) is not None:
        query = query.filter(scope)
    rows = await query.order_by("id").offset(offset).limit(limit).prefetch_related("subclass", "case")
    return [
        ReportOut(
            id=r.id,
            source=r.source,
            text=r.text,
            address=r.address,
            status=r.status,
            status_reason=r.status_reason,
            subclass=f"{r.subclass.kind}:{r.subclass.code}" if r.subclass else None,
            case_number=r.case.number if r.case else None,
            created_at=r.created_at,
        )
        for r in rows
    ]


@router.post("/reports/{report_id}/classify", status_code=202)
async def classify_report(report_id: int, body: ClassifyIn, actor: CurrentActor) -> ReportAccepted:
    """Give a waiting report its problem type; it then becomes a case like any other."""
    _require_desk(actor)
    scope = cases.waiting_reports_filter(actor)
    if scope is not None and not await Report.filter(scope, id=report_id).exists():
        if await Report.exists(id=report_id):
            raise PermissionDenied("report_out_of_scope", f"report {report_id} is outside your area")
    report = await reports.classify_queued_report(report_id=report_id, subclass=body.subclass, actor_id=actor.id)
    wake()
    return ReportAccepted(report_id=report.id, status=report.status, created=False, next="open or join a case")


@router.get("/evaluation")
async def evaluate(
    actor: CurrentActor,
    period: str,
    by: str = "department",
) -> list[dict]:
    """The evaluation indicators, composite scores and A–E bands per department, area, inspector or road."""
    _require_desk(actor)
    rows = await evaluation.evaluate(period=evaluation.Period.parse(period), by=by)
    return [row.as_dict() for row in rows]


@router.get("/evaluation/trend")
async def evaluation_trend(
    actor: CurrentActor,
    key: str,
    by: str = "department",
    months: Annotated[int, Query(ge=1, le=36)] = 12,
) -> list[TrendPoint]:
    """One unit's composite score, band and main rates month by month up to this month, for a trend chart."""
    _require_desk(actor)
    points = await evaluation.trend(by=by, key=key, months=months)
    return [
        TrendPoint(
            period=period.label,
            score=row.score if row else None,
            band=row.band if row else None,
            registered=row.registered if row else 0,
            close_rate=row.close_rate if row else None,
            on_time_dispose_rate=row.on_time_dispose_rate if row else None,
        )
        for period, row in points
    ]


@router.get("/evaluation/export", response_class=Response)
async def evaluation_csv(actor: CurrentActor, period: str, by: str = "department") -> Response:
    """The evaluation as a CSV file with Chinese headers (UTF-8 with a byte-order mark, so Excel reads it)."""
    _require_desk(actor)
    parsed = evaluation.Period.parse(period)
    rows = await evaluation.evaluate(period=parsed, by=by)
    lists = evaluation.rank_red_black(rows, period=parsed, size=10, min_cases=3) if by == "road" else None
    name = f"evaluation-{by}-{parsed.label}.csv"
    return Response(
        ("\ufeff" + export.to_csv(by, rows, lists)).encode(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/evaluation/roads")
async def road_red_black_list(
    actor: CurrentActor,
    period: str,
    size: Annotated[int, Query(ge=1, le=100)] = 10,
    min_cases: Annotated[int, Query(ge=1)] = 3,
) -> dict:
    """The red and black lists (红黑榜) of road segments for a period."""
    _require_desk(actor)
    result = await evaluation.red_black_list(period=evaluation.Period.parse(period), size=size, min_cases=min_cases)
    return {
        "period": period,
        "eligible": result.eligible,
        "red": [row.as_dict() for row in result.red],
        "black": [row.as_dict() for row in result.black],
    }
