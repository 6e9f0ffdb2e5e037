"""Reports as their reporters and other systems see them: status in citizen words, case, department, timeline.

Nothing here names staff or other reporters; notes are shown only where they are the answer to the citizen (the
reason a case was not registered).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from core import clock
from core.cases.messages import CITIZEN_STATUS
from core.cases.models import Case, CaseEvent
from core.cases.workflow import REOPEN_DAYS
from core.catalog.models import Subclass
from core.errors import NotFoundError
from core.org.models import Department
from core.reports.messages import CITIZEN_STEPS, REPORT_STATUS, SATISFACTION_NAMES
from core.reports.models import Report

NOTE_SHOWN = frozenset({"reject"})  # steps whose note is the answer to the citizen


@dataclass(frozen=True)
class Step:
    at: datetime
    action: str
    text: str
    note: str = ""


@dataclass
class ReportView:
    report: Report
    status_text: str  # where it stands, in citizen words
    is_open: bool
    case_number: str | None = None
    case_status: str | None = None
    subclass_name: str = ""
    department_name: str = ""
    expected_at: datetime | None = None  # the deadline of the stage under way
    updated_at: datetime | None = None
    satisfaction: str | None = None
    can_rate: bool = False
    can_reopen: bool = False
    steps: list[Step] = field(default_factory=list)


async def report_views(reports: list[Report], *, with_steps: bool = True) -> list[ReportView]:
    """The public view of each report, read in a few queries for the whole list."""
    case_ids = {r.case_id for r in reports if r.case_id}
    cases = {c.id: c for c in await Case.filter(id__in=list(case_ids))} if case_ids else {}
    subclass_ids = {c.subclass_id for c in cases.values()} | {r.subclass_id for r in reports if r.subclass_id}
    subclasses = dict(await Subclass.filter(id__in=list(subclass_ids)).values_list("id", "name"))
    department_ids = {c.department_id for c in cases.values() if c.department_id}
    departments = dict(await Department.filter(code__in=list(department_ids)).values_list("code", "name"))
    events: dict[int, list[CaseEvent]] = {}
    if with_steps and cases:
        for event in await CaseEvent.filter(case_id__in=list(cases), action__in=list(CITIZEN_STEPS)).order_by("id"):
            events.setdefault(event.case_id, []).append(event)
    now = clock.now()
    views = []
    for report in reports:
        case = cases.get(report.case_id) if report.case_id else None
        if case is None:
            views.append(
                ReportView(
                    report=report,
                    status_text=REPORT_STATUS.get(report.status, REPORT_STATUS["received"]),
                    is_open=report.status != "rejected",
                    subclass_name=subclasses.get(report.subclass_id, "") if report.subclass_id else "",
                    updated_at=report.processed_at or report.created_at,
                    steps=[Step(report.created_at, "report", CITIZEN_STEPS["report"])] if with_steps else [],
                )
            )
            continue
        closed_recently = case.closed_at is not None and now - case.closed_at <= timedelta(days=REOPEN_DAYS)
        steps = [Step(report.created_at, "report", CITIZEN_STEPS["report"])] if with_steps else []
        for event in events.get(case.id, []):
            if event.action in ("report", "merge"):
                continue  # this citizen's own report is the first step; other people's are not theirs
            note = event.note if event.action in NOTE_SHOWN else ""
            steps.append(Step(event.at, event.action, CITIZEN_STEPS[event.action], note))
        views.append(
            ReportView(
                report=report,
                status_text=CITIZEN_STATUS.get(case.status, ""),
                is_open=case.is_open,
                case_number=case.number,
                case_status=case.status,
                subclass_name=subclasses.get(case.subclass_id, ""),
                department_name=departments.get(case.department_id, "") if case.department_id else "",
                expected_at=case.stage_deadline if case.is_open else None,
                updated_at=case.updated_at,
                satisfaction=SATISFACTION_NAMES.get(case.satisfaction or ""),
                can_rate=case.status == "closed" and case.satisfaction is None,
                can_reopen=case.status == "closed" and closed_recently,
                steps=steps,
            )
        )
    return views


async def reports_of(*, citizen_id: int, page: int = 1, size: int = 20) -> tuple[list[ReportView], int]:
    """A citizen's own reports, newest first, one page at a time; and how many they have in all."""
    query = Report.filter(reporter_type="citizen", reporter_id=str(citizen_id))
    total = await query.count()
    reports = await query.order_by("-id").offset((page - 1) * size).limit(size)
    return await report_views(reports), total


async def report_of(*, citizen_id: int, report_id: int) -> ReportView:
    """One of the citizen's own reports; anyone else's is "not found" (its existence is not theirs to learn)."""
    report = await Report.get_or_none(id=report_id, reporter_type="citizen", reporter_id=str(citizen_id))
    if report is None:
        raise NotFoundError("report_not_found", f"report {report_id} is not one of yours")
    return (await report_views([report]))[0]
