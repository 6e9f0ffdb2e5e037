"""Case work in the field: inspectors' tasks (核实, 核查) and department crews' disposal (处置), with evidence.

The same workflow decides every step (core/cases/workflow.py); what is added here is who sees what in the field
and the evidence rules: a verification, a check and a fix are proved by photos taken there and then
(core/media/evidence.py), marked used in the transaction of the step so that one photo proves one step only.
An inspector sees the tasks of their responsibility grids (and tasks given to them); a crew member sees the
cases of their department.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from core.accounts.models import Citizen
from core.audit import service as audit
from core.cases.models import Case, CaseTask
from core.cases.service import Work
from core.cases.workflow import Actor, Status
from core.catalog.models import Subclass
from core.errors import ConflictError, NotFoundError, PermissionDenied, ValidationFailed
from core.geo.datum import to_wgs84
from core.media import evidence
from core.patrols.checkins import check_time
from core.regions.models import ResponsibilityGrid
from core.reports.models import Report
from core.reports.service import check_photos
from core.settings import Settings

TASK_RESULTS = {"verify": ("confirmed", "not_found"), "check": ("passed", "failed")}
CREW_QUEUES = {
    "todo": (Status.DISPATCHED,),  # 待处置
    "doing": (Status.PROCESSING,),  # 处置中
    "fixed": (Status.FIXED,),  # 已反馈，待核查
    "all": (Status.DISPATCHED, Status.PROCESSING, Status.FIXED),
}


@dataclass(frozen=True)
class FieldFix:
    """Where the phone was when the work was done, in the datum it reports (WGS-84 from GPS)."""

    lon: float
    lat: float
    accuracy_m: float
    datum: str = "wgs84"

    def wgs84(self) -> evidence.Fix:
        lon, lat = to_wgs84(self.lon, self.lat, self.datum)
        return evidence.Fix(lon, lat, self.accuracy_m)


@dataclass(frozen=True)
class FieldStep:
    """One step of field work on a case: the action's note, photos, the time it was done, and the phone's fix."""

    at: datetime
    note: str = ""
    photos: Sequence[str] = ()
    fix: FieldFix | None = None
    detail: dict[str, Any] = field(default_factory=dict)


# --- inspectors ----------------------------------------------------------------------------------------------


async def grid_codes_of(staff_id: int) -> list[str]:
    """The responsibility grids (责任网格) an inspector is assigned to."""
    codes = await ResponsibilityGrid.filter(inspectors__id=staff_id).order_by("code").values_list("code", flat=True)
    return [str(code) for code in codes]


def _tasks_of(staff_id: int, grids: Sequence[str]) -> Q:
    return Q(inspector_id=staff_id) | Q(responsibility_grid__in=list(grids))


async def inspector_tasks(
    *, staff_id: int, status: str = "open", limit: int = 50, offset: int = 0
) -> tuple[int, list[CaseTask]]:
    """The tasks in my responsibility grids or given to me, the earliest deadline first."""
    if status not in ("open", "done", "cancelled"):
        raise ValidationFailed("invalid_request", "status is open, done or cancelled")
    query = CaseTask.filter(_tasks_of(staff_id, await grid_codes_of(staff_id)), status=status)
    total = await query.count()
    order = ("due_at", "id") if status == "open" else ("-done_at", "-id")
    rows = await query.order_by(*order).offset(offset).limit(limit).prefetch_related("case__subclass")
    return total, rows


async def inspector_task(*, staff_id: int, task_id: int) -> CaseTask:
    """One of my tasks; another grid's task is "not found", as if it did not exist."""
    task = (
        await CaseTask.filter(_tasks_of(staff_id, await grid_codes_of(staff_id)), id=task_id)
        .prefetch_related("case__subclass")
        .first()
    )
    if task is None:
        raise NotFoundError("task_not_found", f"task {task_id} is not one of yours")
    return task


async def record_task_result(
    *, actor: Actor, task_id: int, result: str, step: FieldStep, settings: Settings
) -> tuple[CaseTask, Case]:
    """核实 (confirmed / not_found) or 核查 (passed / failed: 返工 to the same department), proved by fresh photos."""
    staff_id = int(actor.id)
    task = await inspector_task(staff_id=staff_id, task_id=task_id)
    if result not in TASK_RESULTS.get(task.kind, ()):
        raise ValidationFailed("bad_task_result", f"a {task.kind} task's result is one of {TASK_RESULTS[task.kind]}")
    if task.status != "open":
        raise ConflictError("task_closed", f"task {task_id} is {task.status}")
    check_time(step.at, settings=settings)
    case: Case = task.case
    subclass: Subclass = case.subclass
    shas = await evidence.check_photos(
        photos=step.photos,
        owner_type="staff",
        owner_id=actor.id,
        at=step.at,
        place=evidence.Place(case.lon, case.lat, float(subclass.check_distance_m)),
        fix=step.fix.wgs84() if step.fix else None,
        settings=settings,
    )
    if task.kind == "verify":
        action, detail = "verify", {"result": result}
    else:
        action, detail = ("check_pass" if result == "passed" else "check_fail"), {}
    detail.update(step.detail, task_id=task.id, done_at=step.at.isoformat())
    async with in_transaction() as conn:
        work = await Work.load(case_id=case.id, conn=conn)
        # Read again under the case's lock: two results at once (two inspectors, or a retry racing the first
        # answer) would both pass the check above, and a 核实 leaves the status as it is.
        if not any(t.id == task.id for t in work.open_tasks):
            raise ConflictError("task_closed", f"task {task_id} was finished meanwhile")
        await work.apply(action, actor, note=step.note, media=step.photos, detail=detail)
        if action == "verify":
            await work.advance_automatically()
        await work.save()
        await evidence.mark_used(shas, used_for=f"case_{task.kind}", ref=case.number, at=step.at, conn=conn)
    return await CaseTask.get(id=task.id), work.case


# --- department crews ----------------------------------------------------------------------------------------


def crew_departments(actor: Actor) -> list[str]:
    """The departments whose cases a crew member works on (处置人员 grants)."""
    return sorted({g.department_code for g in actor.grants if g.role == "handler" and g.department_code})


async def crew_cases(*, actor: Actor, queue: str = "all", limit: int = 50, offset: int = 0) -> tuple[int, list[Case]]:
    """My department's cases in one queue, the nearest deadline first."""
    statuses = CREW_QUEUES.get(queue)
    if statuses is None:
        raise ValidationFailed("unknown_queue", f"queue is one of {', '.join(CREW_QUEUES)}")
    departments = crew_departments(actor)
    if not departments:
        raise PermissionDenied("role_not_allowed", "this needs a department crew (handler) role")
    query = Case.filter(department_id__in=departments, status__in=list(statuses))
    total = await query.count()
    rows = await query.order_by("stage_deadline", "id").offset(offset).limit(limit).select_related("subclass")
    return total, rows


async def crew_case(*, actor: Actor, number: str) -> Case:
    """A case of my department; any other case is "not found" to me."""
    departments = crew_departments(actor)
    case = await Case.filter(number=number, department_id__in=departments).select_related("subclass").first()
    if case is None:
        raise NotFoundError("case_not_found", f"case {number} is not with your department")
    return case


async def crew_step(*, actor: Actor, number: str, action: str, step: FieldStep, settings: Settings) -> Case:
    """受理 (start), 回退 (return), 申请延期 (request_extension) on a case of my department."""
    if action not in ("start", "return", "request_extension"):
        raise ValidationFailed("unknown_action", f"a crew cannot {action} from the field")
    case = await crew_case(actor=actor, number=number)
    check_time(step.at, settings=settings)
    if step.photos:
        await _own_photos(step.photos, actor)
    return await _apply(case.id, action, actor, step, detail={**step.detail, "done_at": step.at.isoformat()})


async def report_fix(
    *, actor: Actor, number: str, before: Sequence[str], after: Sequence[str], step: FieldStep, settings: Settings
) -> Case:
    """反馈: the fix, with photos before and after; the after photos are fresh, taken at the place, used once."""
    case = await crew_case(actor=actor, number=number)
    if not before or not after:
        raise ValidationFailed("before_after_required", "a fix is reported with photos before and after")
    check_time(step.at, settings=settings)
    await _own_photos(before, actor)
    shas = await evidence.check_photos(
        photos=after,
        owner_type="staff",
        owner_id=actor.id,
        at=step.at,
        place=evidence.Place(case.lon, case.lat, float(case.subclass.check_distance_m)),
        fix=step.fix.wgs84() if step.fix else None,
        settings=settings,
    )
    detail = {**step.detail, "before": list(before), "after": list(after), "done_at": step.at.isoformat()}
    return await _apply(
        case.id, "feedback", actor, FieldStep(at=step.at, note=step.note, photos=[*before, *after]), detail, shas
    )


async def _own_photos(photos: Sequence[str], actor: Actor) -> None:
    await check_photos(photos, owner_type="staff", owner_id=actor.id)


async def _apply(
    case_id: int, action: str, actor: Actor, step: FieldStep, detail: dict[str, Any], used: Sequence[str] = ()
) -> Case:
    async with in_transaction() as conn:
        work = await Work.load(case_id=case_id, conn=conn)
        await work.apply(action, actor, note=step.note, media=step.photos, detail=detail)
        await work.save()
        if used:
            await evidence.mark_used(used, used_for="case_fix", ref=work.case.number, at=step.at, conn=conn)
    return work.case


# --- personal data -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Contact:
    report_id: int
    name: str
    phone: str


async def reporter_contacts(*, actor: Actor, number: str, purpose: str, request_id: str = "") -> list[Contact]:
    """The phone numbers of a case's citizen reporters who did not report anonymously, for a crew that must call.

    Personal data: a purpose is required and every read is audited, whether or not a number was found.
    """
    if not purpose.strip():
        raise ValidationFailed("purpose_required", "say why you need the reporters' phone numbers")
    case = await crew_case(actor=actor, number=number)
    reports = await Report.filter(case_id=case.id, reporter_type="citizen", anonymous=False).order_by("id")
    citizens = {
        str(c.id): c for c in await Citizen.filter(id__in=[int(r.reporter_id) for r in reports if r.reporter_id])
    }
    contacts = [
        Contact(r.id, citizens[r.reporter_id].nickname, citizens[r.reporter_id].phone or "")
        for r in reports
        if r.reporter_id in citizens and citizens[r.reporter_id].phone
    ]
    await audit.record(
        actor_type="staff",
        actor_id=actor.id,
        action="case.reporter_contacts.read",
        object_type="case",
        object_id=case.number,
        purpose=purpose.strip()[:255],
        detail={"reports": [c.report_id for c in contacts]},
        request_id=request_id,
    )
    return contacts
