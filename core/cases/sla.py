"""The SLA clock (跑表计时): per-stage deadlines in working time, paused while a request waits.

Each stage of a case has a limit: disposal (处置) from the subclass and the urgency, the others (受理, 核实,
立案, 派遣, 核查, 结案) from the catalog version's stage limits. Limits count 工作时 (working hours),
工作日 (working days) or 自然时 (natural hours) on the working calendar. A reminder falls due at a fraction
of the allowed time (80 % by default); past the deadline the case is overdue and escalates (提级).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.calendar.service import working_calendar
from core.calendar.workdays import WorkingCalendar
from core.cases.models import Case
from core.cases.workflow import Status
from core.catalog.models import CatalogVersion, Subclass, TimeLimit
from core.db import on_open

CALENDAR_TTL_S = 300.0


@dataclass(frozen=True)
class Limit:
    value: float
    unit: str  # working_hour / working_day / natural_hour


def stage_of(status: str, *, verification_open: bool = False) -> str | None:
    """The clocked stage a case in this status is in; None when no clock runs (closed, suspended...)."""
    match status:
        case Status.PENDING_ACCEPT:
            return "accept"
        case Status.ACCEPTED:
            return "verify" if verification_open else "register"
        case Status.REGISTERED:
            return "dispatch"
        case Status.DISPATCHED | Status.PROCESSING:
            return "dispose"
        case Status.FIXED:
            return "check"
        case Status.CHECKED:
            return "close"
    return None


def add(calendar: WorkingCalendar, start: datetime, amount: float, unit: str) -> datetime:
    """`start` plus `amount` of time counted in `unit`."""
    if unit == "natural_hour":
        return start + timedelta(hours=amount)
    if unit == "working_day" and float(amount).is_integer():
        return calendar.add_working_days(start, int(amount))
    hours = amount * calendar.hours_per_day if unit == "working_day" else amount
    return calendar.add_working_hours(start, hours)


def span(calendar: WorkingCalendar, a: datetime, b: datetime, unit: str) -> float:
    """Time from `a` to `b` in working hours (working units) or natural hours."""
    if unit == "natural_hour":
        return (b - a).total_seconds() / 3600
    return calendar.working_hours_between(a, b)


def _add_hours(calendar: WorkingCalendar, start: datetime, hours: float, unit: str) -> datetime:
    return start + timedelta(hours=hours) if unit == "natural_hour" else calendar.add_working_hours(start, hours)


def start_stage(
    case: Case,
    *,
    stage: str | None,
    limit: Limit | None,
    now: datetime,
    calendar: WorkingCalendar,
    warn_fraction: float,
) -> None:
    """Start the clock of a new stage (or stop the clock when `stage` is None)."""
    case.stage = stage
    case.stage_started_at = now if stage else None
    case.stage_warned = False
    case.stage_overdue = False
    case.paused_at = None
    if stage is None or limit is None:
        case.stage_unit = case.stage_deadline = case.stage_warn_at = None
        return
    case.stage_seq += 1
    case.stage_unit = limit.unit
    case.stage_deadline = add(calendar, now, limit.value, limit.unit)
    allowed = span(calendar, now, case.stage_deadline, limit.unit)
    case.stage_warn_at = _add_hours(calendar, now, allowed * warn_fraction, limit.unit)


def pause(case: Case, *, now: datetime) -> None:
    """Stop the clock while a request waits for approval."""
    if case.paused_at is None and case.stage is not None:
        case.paused_at = now


def resume(case: Case, *, now: datetime, calendar: WorkingCalendar) -> None:
    """Restart the clock; the deadline and the reminder move on by the time spent paused."""
    if case.paused_at is None:
        return
    unit = case.stage_unit or "working_hour"
    paused = max(0.0, span(calendar, case.paused_at, now, unit))
    if case.stage_deadline is not None:
        case.stage_deadline = _add_hours(calendar, case.stage_deadline, paused, unit)
    if case.stage_warn_at is not None:
        case.stage_warn_at = _add_hours(calendar, case.stage_warn_at, paused, unit)
    case.paused_at = None
    if case.stage_deadline is not None and case.stage_deadline > now:
        case.stage_overdue = False


def extend(case: Case, *, amount: float, now: datetime, calendar: WorkingCalendar, warn_fraction: float) -> None:
    """Move the deadline on by an approved extension (in the stage's own unit)."""
    if case.stage_deadline is None or case.stage_started_at is None:
        return
    unit = case.stage_unit or "working_hour"
    case.stage_deadline = add(calendar, case.stage_deadline, amount, unit)
    if case.stage_deadline > now:
        case.stage_overdue = False
        if not case.stage_warned:
            allowed = span(calendar, case.stage_started_at, case.stage_deadline, unit)
            case.stage_warn_at = _add_hours(calendar, case.stage_started_at, allowed * warn_fraction, unit)


def is_late(case: Case, *, now: datetime) -> bool:
    """Whether the running clock is past its deadline (a paused clock counts up to its pause)."""
    if case.stage_deadline is None:
        return False
    moment = case.paused_at or now
    return moment > case.stage_deadline


class Limits:
    """Time limits per subclass, read once per process: catalog versions never change once installed."""

    def __init__(self) -> None:
        self._by_subclass: dict[int, tuple[dict[str, Limit], dict[str, Limit]]] = {}
        self._calendar: tuple[float, WorkingCalendar] | None = None

    async def limit(self, *, subclass_id: int, urgency: str, stage: str) -> Limit:
        """The limit of one stage for a case of this subclass and urgency."""
        if subclass_id not in self._by_subclass:
            rows = await TimeLimit.filter(subclass_id=subclass_id).values_list("urgency", "value", "unit")
            subclass = await Subclass.get(id=subclass_id)
            version = await CatalogVersion.get(id=subclass.catalog_id)  # type: ignore[attr-defined]
            self._by_subclass[subclass_id] = (
                {u: Limit(float(v), unit) for u, v, unit in rows},
                {s: Limit(float(x["value"]), x["unit"]) for s, x in (version.stage_limits or {}).items()},
            )
        by_urgency, by_stage = self._by_subclass[subclass_id]
        if stage == "dispose":
            return by_urgency.get(urgency) or by_urgency["normal"]
        return by_stage.get(stage) or Limit(1, "working_day")

    async def calendar(self) -> WorkingCalendar:
        """The working calendar, re-read every few minutes so an imported holiday file takes effect."""
        now = time.monotonic()
        if self._calendar is None or now - self._calendar[0] > CALENDAR_TTL_S:
            self._calendar = (now, await working_calendar())
        return self._calendar[1]

    def forget(self) -> None:
        self._by_subclass.clear()
        self._calendar = None


limits = Limits()
on_open(limits.forget)
