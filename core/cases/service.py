"""Cases: numbering, applying workflow actions with their effects and clock, tasks, queues and search.

Every change to a case goes through `Work`: the rules in `workflow.decide` are checked, the effects are
applied to the case in memory, and `save` writes the case, its timeline events and its tasks in the caller's
transaction. A refused action raises before anything is written, so it changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from core import clock
from core.accounts.models import StaffAccount
from core.calendar.workdays import WorkingCalendar
from core.cases import sla, workflow
from core.cases.models import Case, CaseCounter, CaseEvent, CaseRequest, CaseTask
from core.cases.workflow import Actor, CaseFacts, InvalidTransition, Status
from core.catalog.models import Subclass
from core.db import on_open
from core.errors import NotFoundError, PermissionDenied, ValidationFailed
from core.org.models import Department
from core.outbox import service as outbox
from core.reports.models import Report
from core.reports.service import check_photos
from core.settings import get_settings

# Reports from the public are verified on the spot (核实) by an inspector before they are registered (立案).
PUBLIC_SOURCES = frozenset({"miniapp", "official_account", "hotline", "open311"})
SATISFACTION = ("satisfied", "basic", "unsatisfied")  # 满意, 基本满意, 不满意
VERIFY_RESULTS = ("confirmed", "not_found")
MAX_EXTENSION = {"working_hour": 80.0, "working_day": 10.0, "natural_hour": 240.0}
INSPECTOR_CACHE_S = 60.0
# Actions that leave the running clock alone: requests and their decisions pause and resume it (a suspension keeps
# it paused), supervision, reminders and ratings do not touch it.
KEEPS_CLOCK = frozenset(
    {
        "request_extension",
        "approve_extension",
        "refuse_extension",
        "request_suspension",
        "approve_suspension",
        "refuse_suspension",
        "resume",
        "supervise",
        "remind",
        "escalate",
        "rate",
    }
)
# Statuses the citizen reporters of a case are told of (受理, 不予立案, 派遣, 办结), by the notifications job;
# a case that no citizen reported (inspectors, sensors) writes no such job.
REPORTERS_HEAR = frozenset({Status.ACCEPTED, Status.REJECTED, Status.DISPATCHED, Status.CLOSED})
CASE_NOTICES_TASK = "case_notices"
# Actions that give the department the full time again although the stage stays the same.
RESTARTS_CLOCK = frozenset({"redispatch", "check_fail", "rework", "reopen"})


def china_day(moment: datetime) -> str:
    return clock.china(moment).strftime("%Y%m%d")


async def next_number(*, conn: BaseDBAsyncClient, now: datetime) -> str:
    """The next readable case number of the day: yyyymmdd + a 6-digit sequence, unique across processes."""
    day = china_day(now)
    # One atomic upsert on both databases; the row lock serialises numbering, not the rest of the work.
    placeholder = "$1" if conn.capabilities.dialect == "postgres" else "?"
    sql = (
        f"INSERT INTO {CaseCounter._meta.db_table} (day, value) VALUES ({placeholder}, 1) "
        "ON CONFLICT (day) DO UPDATE SET value = case_counter.value + 1 RETURNING value"
    )
    rows = await conn.execute_query_dict(sql, [day])
    return f"{day}{int(rows[0]['value']):06d}"


class _Inspectors:
    """Who inspects each responsibility grid, cached briefly: every citizen report asks."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[float, int | None]] = {}

    async def for_grid(self, grid: str | None) -> int | None:
        if not grid:
            return None
        hit = self._cache.get(grid)
        if hit is not None and time.monotonic() - hit[0] < INSPECTOR_CACHE_S:
            return hit[1]
        ids = await StaffAccount.filter(responsibility_grids__code=grid, active=True).order_by("id").limit(1)
        found = ids[0].id if ids else None
        self._cache[grid] = (time.monotonic(), found)
        return found

    def forget(self) -> None:
        self._cache.clear()


inspectors = _Inspectors()
on_open(inspectors.forget)


@dataclass
class Work:
    """One case changing inside one transaction."""

    case: Case
    conn: BaseDBAsyncClient
    now: datetime
    subclass_auto: bool = False
    pending_requests: set[str] = field(default_factory=set)
    open_tasks: list[CaseTask] = field(default_factory=list)
    reporter_ids: set[str] = field(default_factory=set)
    events: list[CaseEvent] = field(default_factory=list)
    new_tasks: list[CaseTask] = field(default_factory=list)
    touched_tasks: list[CaseTask] = field(default_factory=list)
    reached: list[tuple[str, int]] = field(default_factory=list)  # (status, stage_seq) that reporters hear of
    is_new: bool = False  # not inserted yet: events and tasks get the case id when it is

    @classmethod
    async def load(cls, *, case_id: int, conn: BaseDBAsyncClient, lock: bool = True) -> Work:
        """Read a case and what the rules need to know about it, locking its row on PostgreSQL."""
        query = Case.filter(id=case_id).using_db(conn)
        if lock and conn.capabilities.dialect == "postgres":
            query = query.select_for_update()
        case = await query.first()
        if case is None:
            raise NotFoundError("case_not_found", f"case {case_id} does not exist")
        auto = await Subclass.filter(id=case.subclass_id).using_db(conn).values_list("auto_dispatch", flat=True)
        pending = (
            await CaseRequest.filter(case_id=case_id, status="pending").using_db(conn).values_list("kind", flat=True)
        )
        tasks = await CaseTask.filter(case_id=case_id, status="open").using_db(conn)
        reporters = (
            await Report.filter(case_id=case_id, reporter_type="citizen")
            .using_db(conn)
            .values_list("reporter_id", flat=True)
        )
        return cls(
            case=case,
            conn=conn,
            now=clock.now(),
            subclass_auto=bool(auto and auto[0]),
            pending_requests={str(kind) for kind in pending},
            open_tasks=list(tasks),
            reporter_ids={str(r) for r in reporters},
        )

    @property
    def _case_id(self) -> int:
        # 0 stands in until a new case is inserted; `save` sets the real id before anything is written.
        return self.case.id or 0

    def facts(self) -> CaseFacts:
        c = self.case
        closed_days = (self.now - c.closed_at).total_seconds() / 86400 if c.closed_at else None
        return CaseFacts(
            status=c.status,
            district=c.district,
            street=c.street,
            department_code=c.department_id,
            previous_status=c.suspended_from,
            extensions=c.extensions,
            pending_requests=frozenset(self.pending_requests),
            verification_open=self._open_task("verify") is not None,
            verified=c.verified,
            task_inspector_ids=frozenset(str(t.inspector_id) for t in self.open_tasks if t.inspector_id),
            reporter_ids=frozenset(self.reporter_ids),
            closed_days_ago=closed_days,
        )

    def _open_task(self, kind: str) -> CaseTask | None:
        return next((t for t in self.open_tasks if t.kind == kind and t.status == "open"), None)

    async def apply(
        self,
        action: str,
        actor: Actor,
        *,
        note: str = "",
        media: Sequence[str] = (),
        detail: dict[str, Any] | None = None,
    ) -> str:
        """Check and apply one action in memory; raises (changing nothing) when it is not allowed."""
        detail = dict(detail or {})
        c = self.case
        target = workflow.decide(action=action, facts=self.facts(), actor=actor, note=note, detail=detail)
        previous = c.status
        await self._effects(action, actor, note, detail)
        c.status = target
        c.is_open = target not in workflow.TERMINAL
        seq = c.stage_seq
        await self._clock(action, previous)
        if target != previous and target in REPORTERS_HEAR and self.reporter_ids:
            self.reached.append((target, c.stage_seq))
        if c.stage_seq != seq and c.stage_deadline is not None:
            # A new stage's clock started: its deadline is part of the timeline (per-stage deadlines).
            detail.update(stage=c.stage, stage_deadline=c.stage_deadline.isoformat())
        self.events.append(
            CaseEvent(
                case_id=self._case_id,
                action=action,
                from_status=previous,
                to_status=target,
                actor_type=actor.kind,
                actor_id=actor.id,
                actor_name=actor.name,
                note=note,
                media=list(media),
                detail=detail,
                at=self.now,
            )
        )
        return target

    @classmethod
    async def open(cls, case: Case, *, actor: Actor, report: Report, conn: BaseDBAsyncClient, auto: bool) -> Work:
        """A new case with its first timeline event (上报) and its first stage's clock, written by `save`.

        The automatic steps that follow change it in memory, so the case is inserted once, in its final state,
        and numbered only then: the day's number row stays locked for the end of the transaction only.
        """
        work = cls(case=case, conn=conn, now=clock.now(), subclass_auto=auto, is_new=True)
        await work._opened(actor, report)
        return work

    async def _opened(self, actor: Actor, report: Report) -> None:
        c = self.case
        if report.reporter_type == "citizen":
            self.reporter_ids.add(report.reporter_id)
        self.events.append(
            CaseEvent(
                case_id=self._case_id,
                action="report",
                from_status=None,
                to_status=c.status,
                actor_type=actor.kind,
                actor_id=actor.id,
                actor_name=actor.name,
                note=report.text[:500],
                media=list(report.photos),
                detail={"report_id": report.id, "source": report.source, "routing": c.routing_reason},
                at=self.now,
            )
        )
        await self._clock("open", "")

    async def advance_automatically(self) -> None:
        """Take the steps the subclass allows without a person: 受理, 立案 and 派遣 (after 核实 for public reports)."""
        if not self.subclass_auto:
            return
        system = Actor.system()
        c = self.case
        if c.status == Status.PENDING_ACCEPT:
            await self.apply("accept", system, note="自动受理")
        if c.status == Status.ACCEPTED and self._open_task("verify") is None and c.verified is not False:
            await self.apply("register", system, note="自动立案")
        if c.status == Status.REGISTERED and c.department_id:
            await self.apply("dispatch", system, note="自动派遣")

    async def _effects(self, action: str, actor: Actor, note: str, detail: dict[str, Any]) -> None:
        c, now = self.case, self.now
        settings = get_settings()
        match action:
            case "accept":
                c.accepted_at = now
                if c.source in PUBLIC_SOURCES:
                    await self._new_task("verify")
            case "reject" | "void":
                self._cancel_tasks()
            case "verify":
                result = detail.get("result")
                if result not in VERIFY_RESULTS:
                    raise ValidationFailed("bad_verify_result", f"result must be one of {VERIFY_RESULTS}")
                self._finish_task("verify", result)
                c.verified = result == "confirmed"
            case "register":
                c.registered_at = now
            case "dispatch" | "redispatch":
                await self._choose_department(detail, note, actor)
                c.dispatched_at = now
            case "return":
                detail["department_code"] = c.department_id
                c.department_id = None
                c.routing_kind, c.routing_reason = "returned", f"回退: {note}"[:255]
            case "feedback":
                c.fixed_at = now
                if c.stage == "dispose" and sla.is_late(c, now=now):
                    c.dispose_overdue = True
                await self._new_task("check", round_=c.rework_count + 1)
            case "check_pass":
                self._finish_task("check", "passed")
            case "check_fail":
                self._finish_task("check", "failed")
                c.rework_count += 1
            case "rework":
                self._cancel_tasks()
                c.rework_count += 1
            case "close":
                c.closed_at = now
                self._cancel_tasks()
            case "request_extension":
                amount = detail.get("amount")
                unit = c.stage_unit or "working_hour"
                if not isinstance(amount, int | float) or not 0 < amount <= MAX_EXTENSION[unit]:
                    raise ValidationFailed(
                        "bad_extension", f"amount must be more than 0 and at most {MAX_EXTENSION[unit]:g} ({unit})"
                    )
                detail["unit"] = unit
                await self._new_request("extension", actor, note, hours=float(amount))
                sla.pause(c, now=now)
            case "approve_extension":
                request = await self._decide_request("extension", actor, note, "approved")
                c.extensions += 1
                calendar = await sla.limits.calendar()
                self._resume_unless_waiting(calendar)
                sla.extend(
                    c, amount=request.hours or 0, now=now, calendar=calendar, warn_fraction=settings.sla_warn_fraction
                )
                detail["amount"], detail["deadline"] = request.hours, c.stage_deadline and c.stage_deadline.isoformat()
            case "refuse_extension":
                await self._decide_request("extension", actor, note, "refused")
                self._resume_unless_waiting(await sla.limits.calendar())
            case "request_suspension":
                await self._new_request("suspension", actor, note)
                sla.pause(c, now=now)
            case "approve_suspension":
                await self._decide_request("suspension", actor, note, "approved")
                c.suspended_from = c.status
            case "refuse_suspension":
                await self._decide_request("suspension", actor, note, "refused")
                self._resume_unless_waiting(await sla.limits.calendar())
            case "resume":
                c.suspended_from = None
                sla.resume(c, now=now, calendar=await sla.limits.calendar())
            case "supervise":
                detail.setdefault("type", "key")
            case "remind":
                c.stage_warned = True
                detail.update(stage=c.stage, deadline=c.stage_deadline and c.stage_deadline.isoformat())
            case "escalate":
                c.stage_overdue = True
                c.escalation_level += 1
                if c.stage == "dispose":
                    c.dispose_overdue = True
                detail.update(stage=c.stage, level=c.escalation_level, to=await self._superior())
            case "rate":
                satisfaction = detail.get("satisfaction")
                if satisfaction not in SATISFACTION:
                    raise ValidationFailed("bad_satisfaction", f"satisfaction must be one of {SATISFACTION}")
                c.satisfaction, c.rating_comment = satisfaction, str(detail.get("comment", ""))[:255]
            case "reopen":
                c.closed_at = None
                c.rework_count += 1

    def _resume_unless_waiting(self, calendar: WorkingCalendar) -> None:
        """Restart the clock after a decision, unless another request still waits (it keeps the clock stopped)."""
        if not self.pending_requests:
            sla.resume(self.case, now=self.now, calendar=calendar)

    async def _clock(self, action: str, previous: str) -> None:
        """Start the next stage's clock when the stage changes; suspension keeps the paused clock as it is."""
        c = self.case
        if action in KEEPS_CLOCK:
            return
        stage = sla.stage_of(c.status, verification_open=self._open_task("verify") is not None)
        if stage == c.stage and c.status == previous and action not in RESTARTS_CLOCK:
            return
        if stage == c.stage and stage == "dispose" and action == "start":
            return  # accepting the work does not restart the disposal clock
        settings = get_settings()
        limit = None
        if stage is not None:
            limit = await sla.limits.limit(subclass_id=c.subclass_id, urgency=c.urgency, stage=stage)
        sla.start_stage(
            c,
            stage=stage,
            limit=limit,
            now=self.now,
            calendar=await sla.limits.calendar(),
            warn_fraction=settings.sla_warn_fraction,
        )
        if stage is not None:
            for task in self.new_tasks:
                if task.kind == stage and task.due_at is None:
                    task.due_at = c.stage_deadline

    async def _choose_department(self, detail: dict[str, Any], note: str, actor: Actor) -> None:
        c = self.case
        chosen = detail.get("department_code")
        if chosen and chosen != c.department_id:
            if not await Department.filter(code=chosen).using_db(self.conn).exists():
                raise NotFoundError("department_not_found", f"department {chosen!r} does not exist")
            scope = dispatchable_filter(actor)
            if scope is not None and not await Department.filter(scope, code=chosen).using_db(self.conn).exists():
                raise PermissionDenied("department_out_of_scope", f"department {chosen!r} is outside your districts")
            c.department_id = chosen
            c.routing_kind, c.routing_reason = "manual", f"派遣员指定: {note}"[:255] if note else "派遣员指定"
        if not c.department_id:
            raise InvalidTransition("no_department", "no department was routed; choose one to dispatch to")
        detail["department_code"] = c.department_id

    async def _new_task(self, kind: str, *, round_: int = 1) -> None:
        inspector_id = await inspectors.for_grid(self.case.responsibility_grid)
        task = CaseTask(
            case_id=self._case_id,
            kind=kind,
            round=round_,
            inspector_id=inspector_id,
            responsibility_grid=self.case.responsibility_grid,
            status="open",
        )
        task.created_at = self.now
        self.new_tasks.append(task)
        self.open_tasks.append(task)

    def _finish_task(self, kind: str, result: str) -> None:
        task = self._open_task(kind)
        if task is None:
            return
        task.status, task.result, task.done_at = "done", result, self.now
        task.on_time = task.due_at is None or self.now <= task.due_at
        self._touch(task)

    def _cancel_tasks(self) -> None:
        for task in self.open_tasks:
            if task.status == "open":
                task.status, task.done_at = "cancelled", self.now
                self._touch(task)

    def _touch(self, task: CaseTask) -> None:
        if task not in self.new_tasks and task not in self.touched_tasks:
            self.touched_tasks.append(task)

    async def _new_request(self, kind: str, actor: Actor, note: str, *, hours: float | None = None) -> None:
        await CaseRequest.create(
            case_id=self.case.id,
            kind=kind,
            reason=note,
            hours=hours,
            requested_by=f"{actor.kind}:{actor.id}",
            created_at=self.now,
            using_db=self.conn,
        )
        self.pending_requests.add(kind)

    async def _decide_request(self, kind: str, actor: Actor, note: str, outcome: str) -> CaseRequest:
        request = (
            await CaseRequest.filter(case_id=self.case.id, kind=kind, status="pending").using_db(self.conn).first()
        )
        if request is None:
            raise InvalidTransition("no_pending_request", f"no {kind} request is waiting")
        request.status, request.decided_by, request.decision_note = outcome, f"{actor.kind}:{actor.id}", note
        request.decided_at = self.now
        await request.save(using_db=self.conn)
        self.pending_requests.discard(kind)
        return request

    async def _superior(self) -> str | None:
        """提级: the department above the one holding the case (or the district's fallback unit)."""
        code = self.case.department_id
        if code:
            parent = await Department.filter(code=code).using_db(self.conn).first()
            if parent is not None and parent.parent_id:  # type: ignore[attr-defined]
                return str(parent.parent_id)  # type: ignore[attr-defined]
        fallback = await Department.filter(district_id=self.case.district, is_fallback=True).using_db(self.conn)
        return fallback[0].code if fallback and fallback[0].code != code else None

    async def save(self) -> None:
        """Write the case, its new events and its tasks."""
        if self.is_new:
            self.case.number = await next_number(conn=self.conn, now=self.now)
            await self.case.save(using_db=self.conn)
            self.is_new = False
            for row in (*self.events, *self.new_tasks):
                row.case_id = self.case.id
        else:
            await self.case.save(using_db=self.conn)
        if self.events:
            await CaseEvent.bulk_create(self.events, using_db=self.conn)
        for task in self.new_tasks:
            await task.save(using_db=self.conn)
        for task in self.touched_tasks:
            await task.save(using_db=self.conn)
        for status, seq in self.reached:
            # Written with the change: the reporters hear of it even if the process stops right after the commit.
            key = f"{CASE_NOTICES_TASK}:{self.case.id}:{status}:{seq}"
            await outbox.add(
                task=CASE_NOTICES_TASK,
                args={"case_id": self.case.id, "status": status, "key": key},
                dedupe_key=key,
                conn=self.conn,
            )
        self.events, self.new_tasks, self.touched_tasks, self.reached = [], [], [], []


async def act(
    *,
    case_id: int,
    action: str,
    actor: Actor,
    note: str = "",
    media: Sequence[str] = (),
    detail: dict[str, Any] | None = None,
) -> Case:
    """Apply one workflow action to a case (and the automatic steps it unlocks), in one transaction."""
    if media and actor.kind != "system":
        await check_photos(media, owner_type=actor.kind, owner_id=actor.id)
    async with in_transaction() as conn:
        work = await Work.load(case_id=case_id, conn=conn)
        await work.apply(action, actor, note=note, media=media, detail=detail)
        if action == "verify":
            await work.advance_automatically()
        await work.save()
    return work.case


async def get_case(*, case_id: int | None = None, number: str | None = None) -> Case:
    query = Case.filter(id=case_id) if case_id is not None else Case.filter(number=number)
    case = await query.first()
    if case is None:
        raise NotFoundError("case_not_found", f"case {case_id or number} does not exist")
    return case


def visible_filter(actor: Actor) -> Q | None:
    """The cases a staff member may see: their areas (desk roles, inspectors), their departments (crews).

    None means no restriction (a city-wide grant); an empty Q(id=-1) means nothing.
    """
    clauses: list[Q] = []
    for grant in actor.grants:
        if grant.role in ("dispatcher", "duty_chief", "inspector", "admin"):
            if not grant.area_code:
                return None
            clauses.append(area_filter(grant.area_code))
        elif grant.role == "handler" and grant.department_code:
            clauses.append(Q(department_id=grant.department_code))
    return _any_of(clauses)


def waiting_reports_filter(actor: Actor) -> Q | None:
    """The waiting reports (待分类) a desk may see: those in its areas; one with no place only city-wide desks see.

    None means all; Q(id=-1) means none (no desk role).
    """
    clauses: list[Q] = []
    for grant in actor.grants:
        if grant.role in ("dispatcher", "duty_chief"):
            if not grant.area_code:
                return None
            clauses.append(area_filter(grant.area_code))
    return _any_of(clauses)


def _any_of(clauses: list[Q]) -> Q:
    """Rows matching any of the clauses; none at all (Q(id=-1)) without a clause."""
    if not clauses:
        return Q(id=-1)
    combined = clauses[0]
    for clause in clauses[1:]:
        combined |= clause
    return combined


def dispatchable_filter(actor: Actor) -> Q | None:
    """The departments a dispatcher may send cases to: city-level units and the units of the districts they cover.

    None means any (a city-wide desk grant, or the system routing by its own rules).
    """
    if actor.kind != "staff":
        return None
    districts = {g.area_code[:6] for g in actor.grants if g.role in ("dispatcher", "duty_chief")}
    if "" in districts:
        return None
    return Q(district_id__isnull=True) | Q(district_id__in=sorted(districts))


def area_filter(area_code: str) -> Q:
    """Cases in a district (6 digits) or a street (9 digits)."""
    return Q(district=area_code) if len(area_code) == 6 else Q(street=area_code)


async def check_visible(case: Case, actor: Actor) -> None:
    scope = visible_filter(actor)
    if scope is not None and not await Case.filter(scope, id=case.id).exists():
        raise PermissionDenied("out_of_scope", "this case is outside your area or department")


QUEUES = (
    "to_accept",
    "to_verify",
    "to_register",
    "to_dispatch",
    "with_department",
    "to_check",
    "to_close",
    "waiting_approval",
    "overdue",
    "suspended",
)


def queue_filter(name: str, *, now: datetime) -> Q:
    """The cases in one work queue of the command centre."""
    match name:
        case "to_accept":
            return Q(status=Status.PENDING_ACCEPT)
        case "to_verify":
            return Q(status=Status.ACCEPTED, stage="verify")
        case "to_register":
            return Q(status=Status.ACCEPTED, stage="register")
        case "to_dispatch":
            return Q(status=Status.REGISTERED)
        case "with_department":
            return Q(status__in=(Status.DISPATCHED, Status.PROCESSING))
        case "to_check":
            return Q(status=Status.FIXED)
        case "to_close":
            return Q(status=Status.CHECKED)
        case "waiting_approval":
            return Q(is_open=True, requests__status="pending")
        case "overdue":
            return Q(is_open=True, stage_deadline__lt=now, paused_at__isnull=True) | Q(is_open=True, stage_overdue=True)
        case "suspended":
            return Q(status=Status.SUSPENDED)
    raise ValidationFailed("unknown_queue", f"queue must be one of {', '.join(QUEUES)}")


async def list_cases(
    *,
    actor: Actor,
    queue: str | None = None,
    number: str | None = None,
    status: str | None = None,
    department: str | None = None,
    grid: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[int, list[Case]]:
    """Cases the actor may see, filtered by queue and search terms, newest first; with the total count."""
    query = Case.all()
    scope = visible_filter(actor)
    if scope is not None:
        query = query.filter(scope)
    if queue:
        query = query.filter(queue_filter(queue, now=clock.now()))
    if number:
        query = query.filter(number__startswith=number)
    if status:
        if status not in set(Status):
            raise ValidationFailed("unknown_status", f"status must be one of {', '.join(Status)}")
        query = query.filter(status=status)
    if department:
        query = query.filter(department_id=department)
    if grid:
        query = query.filter(unit_grid__startswith=grid)
    if since:
        query = query.filter(opened_at__gte=since)
    if until:
        query = query.filter(opened_at__lt=until)
    query = query.distinct()
    total = await query.count()
    items = await query.order_by("-id").offset(offset).limit(limit).select_related("subclass")
    return total, items


async def queue_counts(*, actor: Actor) -> dict[str, int]:
    """How many cases wait in each queue, within the actor's scope."""
    now = clock.now()
    scope = visible_filter(actor)
    counts = {}
    for name in QUEUES:
        query = Case.filter(queue_filter(name, now=now))
        if scope is not None:
            query = query.filter(scope)
        counts[name] = await query.distinct().count()
    waiting = Report.filter(status="queued")
    if (reports_scope := waiting_reports_filter(actor)) is not None:
        waiting = waiting.filter(reports_scope)
    counts["unclassified_reports"] = await waiting.count()
    return counts


async def timeline(*, case_id: int) -> list[CaseEvent]:
    return await CaseEvent.filter(case_id=case_id).order_by("id")


async def facts_for(case: Case) -> CaseFacts:
    """The rule facts of a case outside a transaction (for showing which actions a person may take)."""
    conn = connections.get("default")
    work = await Work.load(case_id=case.id, conn=conn, lock=False)
    return work.facts()
