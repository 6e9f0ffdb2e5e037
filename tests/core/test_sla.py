"""The SLA clock (跑表计时): deadlines counted on the Chinese working calendar, reminders, escalation (提级), pauses.

The clock tests are pure and use the shipped calendar; the sweep tests build cases in the seeded city the way a
citizen's report does and move the sweep's moment instead of the wall clock.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from core.accounts.models import StaffAccount, StaffRole
from core.calendar.workdays import CHINA_TZ, WorkingCalendar, load_cn_calendar
from core.cases import sla
from core.cases.flows import sla_sweep
from core.cases.models import Case, CaseEvent
from core.cases.service import act
from core.cases.workflow import Actor, RoleGrant
from core.org.models import Department
from core.regions.models import UnitGrid
from core.reports.flows import process_report
from core.reports.service import submit_report
from tests.core.test_intake import citizen_report


@pytest.fixture(scope="module")
def cn() -> WorkingCalendar:
    return load_cn_calendar()


def china(text: str) -> datetime:
    """A China wall-clock moment, timezone-aware."""
    return datetime.fromisoformat(text).replace(tzinfo=CHINA_TZ)


def started(cn: WorkingCalendar, at: str, value: float, unit: str) -> Case:
    """A case (in memory) whose disposal clock started at `at` with the given limit, reminding at 80 %."""
    case = Case(status="dispatched")
    sla.start_stage(case, stage="dispose", limit=sla.Limit(value, unit), now=china(at), calendar=cn, warn_fraction=0.8)
    return case


# ---------------------------------------------------------------------------------------------------------------
# Deadlines on the working calendar (office hours 08:30-12:00 and 13:00-17:30: 8 working hours a day).


@pytest.mark.parametrize(
    ("start", "amount", "unit", "deadline"),
    [
        pytest.param("2026-03-13 16:00", 8, "working_hour", "2026-03-16 16:00", id="Friday 16:00 + 8 h → Monday"),
        pytest.param("2026-03-13 11:00", 2, "working_hour", "2026-03-13 14:00", id="the lunch break does not count"),
        pytest.param("2026-03-14 10:00", 2, "working_hour", "2026-03-16 10:30", id="a weekend start waits for Monday"),
        pytest.param("2026-09-30 16:00", 8, "working_hour", "2026-10-08 16:00", id="National Day 10-01..07 skipped"),
        pytest.param(
            "2026-09-30 16:00", 3, "working_day", "2026-10-10 16:00", id="3 days over National Day end on 调休 Saturday"
        ),
        pytest.param("2026-10-09 16:00", 8, "working_hour", "2026-10-10 16:00", id="调休 Saturday 10-10 is worked"),
        pytest.param("2026-09-18 16:00", 8, "working_hour", "2026-09-20 16:00", id="调休 Sunday 09-20 is worked"),
        pytest.param("2026-05-08 16:00", 8, "working_hour", "2026-05-09 16:00", id="调休 Saturday 05-09 is worked"),
        pytest.param("2026-03-13 16:00", 2, "working_day", "2026-03-17 16:00", id="working days keep the clock time"),
        pytest.param("2026-03-13 16:00", 0.5, "working_day", "2026-03-16 11:00", id="half a working day is 4 h"),
        pytest.param("2026-03-13 16:00", 24, "natural_hour", "2026-03-14 16:00", id="natural hours ignore weekends"),
        pytest.param("2026-09-30 16:00", 48, "natural_hour", "2026-10-02 16:00", id="natural hours ignore holidays"),
    ],
)
def test_a_limit_ends_where_the_working_calendar_says(cn, start, amount, unit, deadline):
    assert sla.add(cn, china(start), amount, unit) == china(deadline)


def test_a_deadline_is_the_same_moment_whatever_zone_the_start_is_given_in(cn):
    friday_4pm_in_utc = datetime.fromisoformat("2026-03-13T08:00:00+00:00")
    assert sla.add(cn, friday_4pm_in_utc, 8, "working_hour") == china("2026-03-16 16:00")


def test_working_time_over_a_weekend_counts_only_office_hours_and_natural_time_counts_all(cn):
    friday, monday = china("2026-03-13 16:00"), china("2026-03-16 16:00")
    assert sla.span(cn, friday, monday, "working_hour") == 8
    assert sla.span(cn, friday, monday, "natural_hour") == 72


@pytest.mark.parametrize(
    ("stage_status", "verification_open", "stage"),
    [
        ("pending_accept", False, "accept"),
        ("accepted", True, "verify"),
        ("accepted", False, "register"),
        ("registered", False, "dispatch"),
        ("dispatched", False, "dispose"),
        ("processing", False, "dispose"),
        ("fixed", False, "check"),
        ("checked", False, "close"),
        ("suspended", False, None),
        ("closed", False, None),
        ("rejected", False, None),
        ("voided", False, None),
    ],
)
def test_each_status_runs_the_clock_of_its_stage_or_none(stage_status, verification_open, stage):
    assert sla.stage_of(stage_status, verification_open=verification_open) == stage


# ---------------------------------------------------------------------------------------------------------------
# The reminder point, pauses and extensions.


@pytest.mark.parametrize(
    ("start", "value", "unit", "deadline", "warn_at"),
    [
        # 80 % of 8 working hours is 6.4 h: 1.5 h on Friday, 4.9 h on Monday.
        ("2026-03-13 16:00", 8, "working_hour", "2026-03-16 16:00", "2026-03-16 14:24"),
        # 80 % of 2 working days (16 h) is 12.8 h of working time, not 80 % of the calendar time.
        ("2026-03-16 09:00", 2, "working_day", "2026-03-18 09:00", "2026-03-17 14:48"),
        ("2026-03-13 16:00", 10, "natural_hour", "2026-03-14 02:00", "2026-03-14 00:00"),
    ],
)
def test_the_reminder_falls_due_at_80_percent_of_the_allowed_time(cn, start, value, unit, deadline, warn_at):
    case = started(cn, start, value, unit)
    assert (case.stage_deadline, case.stage_warn_at) == (china(deadline), china(warn_at))
    assert sla.span(cn, case.stage_started_at, case.stage_warn_at, unit) == pytest.approx(
        0.8 * sla.span(cn, case.stage_started_at, case.stage_deadline, unit)
    )


def test_a_new_stage_gets_a_fresh_clock_and_no_stage_stops_it(cn):
    case = started(cn, "2026-03-13 16:00", 8, "working_hour")
    case.stage_warned = case.stage_overdue = True
    sla.start_stage(
        case,
        stage="check",
        limit=sla.Limit(4, "working_hour"),
        now=china("2026-03-16 09:00"),
        calendar=cn,
        warn_fraction=0.8,
    )
    assert (case.stage, case.stage_seq, case.stage_warned, case.stage_overdue) == ("check", 2, False, False)
    assert case.stage_deadline == china("2026-03-16 14:00")
    sla.start_stage(case, stage=None, limit=None, now=china("2026-03-16 10:00"), calendar=cn, warn_fraction=0.8)
    assert (case.stage, case.stage_deadline, case.stage_warn_at) == (None, None, None)
    assert not sla.is_late(case, now=china("2026-12-31 12:00"))


def test_pausing_over_a_weekend_moves_the_deadline_on_by_the_paused_working_time_only(cn):
    case = started(cn, "2026-03-13 16:00", 8, "working_hour")
    sla.pause(case, now=china("2026-03-13 17:00"))
    # Paused Friday 17:00 to Monday 09:30: 0.5 h on Friday and 1 h on Monday; the weekend is not working time.
    sla.resume(case, now=china("2026-03-16 09:30"), calendar=cn)
    assert case.paused_at is None
    assert case.stage_deadline == china("2026-03-16 17:30")
    assert case.stage_warn_at == china("2026-03-16 15:54")


def test_a_paused_clock_is_late_only_if_it_was_late_when_it_stopped(cn):
    case = started(cn, "2026-03-13 16:00", 8, "working_hour")
    sla.pause(case, now=china("2026-03-16 15:00"))
    assert not sla.is_late(case, now=china("2026-03-20 12:00"))
    late = started(cn, "2026-03-13 16:00", 8, "working_hour")
    sla.pause(late, now=china("2026-03-16 16:30"))
    assert sla.is_late(late, now=china("2026-03-20 12:00"))


def test_pausing_twice_keeps_the_first_moment(cn):
    case = started(cn, "2026-03-13 16:00", 8, "working_hour")
    sla.pause(case, now=china("2026-03-16 09:00"))
    sla.pause(case, now=china("2026-03-16 11:00"))
    sla.resume(case, now=china("2026-03-16 11:00"), calendar=cn)
    assert case.stage_deadline == china("2026-03-17 09:00")  # moved by 2 h, not by 0


@pytest.mark.parametrize(
    ("value", "unit", "extension", "deadline"),
    [
        # Monday 16:00 + 4 working hours = 1.5 h on Monday + 2.5 h on Tuesday.
        pytest.param(8, "working_hour", 4, "2026-03-17 11:00", id="hours: +4 working hours"),
        pytest.param(2, "working_day", 1, "2026-03-18 16:00", id="days: Tuesday 16:00 + 1 working day"),
        pytest.param(24, "natural_hour", 24, "2026-03-15 16:00", id="natural: Saturday + 24 h is Sunday"),
    ],
)
def test_an_approved_extension_moves_the_deadline_in_the_stage_unit(cn, value, unit, extension, deadline):
    case = started(cn, "2026-03-13 16:00", value, unit)
    sla.extend(case, amount=extension, now=china("2026-03-13 16:30"), calendar=cn, warn_fraction=0.8)
    assert case.stage_deadline == china(deadline)
    # The reminder moves too, to 80 % of the new allowed time.
    assert sla.span(cn, case.stage_started_at, case.stage_warn_at, unit) == pytest.approx(
        0.8 * sla.span(cn, case.stage_started_at, case.stage_deadline, unit)
    )


def test_an_extension_granted_after_the_deadline_makes_the_case_on_time_again(cn):
    case = started(cn, "2026-03-13 16:00", 8, "working_hour")
    case.stage_overdue = True
    sla.extend(case, amount=8, now=china("2026-03-17 09:00"), calendar=cn, warn_fraction=0.8)
    assert case.stage_deadline == china("2026-03-17 16:00")
    assert not case.stage_overdue and not sla.is_late(case, now=china("2026-03-17 09:00"))


# ---------------------------------------------------------------------------------------------------------------
# The sweep on a real database.


async def grids(n: int) -> list[str]:
    """n unit grids far enough apart that their reports are not duplicates of each other."""
    codes = await UnitGrid.all().order_by("code").values_list("code", flat=True)
    step = len(codes) // n
    return [codes[i * step] for i in range(n)]


async def a_reported_case(grid: str, **overrides) -> Case:
    """A citizen's report (暴露垃圾 unless told) made into a case: accepted, waiting for the inspector's 核实."""
    report, _ = await submit_report(await citizen_report(grid, **overrides))
    assert await process_report(report_id=report.id) == "cased"
    await report.refresh_from_db()
    return await Case.get(id=report.case_id)


async def staff(username: str) -> Actor:
    """A seeded staff member as a workflow actor, with the grants of their role rows."""
    account = await StaffAccount.get(username=username)
    roles = await StaffRole.filter(staff_id=account.id)
    grants = tuple(RoleGrant(r.role, r.department_id, r.area_code) for r in roles)  # type: ignore[attr-defined]
    return Actor(kind="staff", id=str(account.id), name=account.display_name, grants=grants)


async def a_dispatched_case(grid: str) -> Case:
    """A case the inspector verified, so that it was registered and dispatched automatically."""
    case = await a_reported_case(grid)
    inspector = await staff(f"inspector-{case.responsibility_grid}")
    case = await act(case_id=case.id, action="verify", actor=inspector, detail={"result": "confirmed"})
    assert case.status == "dispatched" and case.stage == "dispose"
    return case


async def actions_after_intake(case_id: int) -> list[str]:
    events = await CaseEvent.filter(case_id=case_id).order_by("id").values_list("action", flat=True)
    return [a for a in events if a not in ("report", "accept", "verify", "register", "dispatch")]


def iso(moment: datetime) -> str:
    return moment.isoformat()


async def test_a_case_past_its_reminder_point_is_reminded_once(city):
    case = await a_reported_case((await grids(1))[0])
    assert case.stage == "verify" and case.stage_warn_at < case.stage_deadline
    moment = iso(case.stage_warn_at + timedelta(seconds=1))

    first = await sla_sweep(now=moment)
    again = await sla_sweep(now=moment)

    assert (first["reminded"], again["reminded"]) == (1, 0)
    assert await actions_after_intake(case.id) == ["remind"]
    case = await Case.get(id=case.id)
    assert case.stage_warned and not case.stage_overdue
    remind = await CaseEvent.get(case_id=case.id, action="remind")
    assert (remind.actor_type, remind.detail["stage"]) == ("system", "verify")


async def test_a_case_before_its_reminder_point_is_left_alone(city):
    case = await a_reported_case((await grids(1))[0])
    assert await sla_sweep(now=iso(case.stage_warn_at - timedelta(seconds=1))) == {
        "reminded": 0,
        "escalated": 0,
        "skipped": 0,
        "failed": 0,
    }
    assert await actions_after_intake(case.id) == []


@pytest.mark.parametrize(
    ("subclass", "stage"),
    [
        # 暴露垃圾 goes to the district's sanitation centre, which has no city-level parent: 提级 to 属地兜底.
        pytest.param("event:0102", "verify", id="district bureau without a parent"),
        # 非法小广告 goes to the street office, whose parent is the district's 城市管理局; no auto 受理.
        pytest.param("event:0201", "accept", id="street office"),
    ],
)
async def test_an_overdue_case_is_escalated_to_the_superior_department_and_supervised_once(city, subclass, stage):
    case = await a_reported_case((await grids(1))[0], subclass=subclass)
    assert case.stage == stage
    superior = await Department.get(district_id=case.district, is_fallback=True)
    assert superior.code != case.department_id
    moment = iso(case.stage_deadline + timedelta(minutes=1))

    first = await sla_sweep(now=moment)
    again = await sla_sweep(now=moment)

    assert (first["escalated"], again["escalated"]) == (1, 0)
    assert await actions_after_intake(case.id) == ["escalate", "supervise"]
    escalate = await CaseEvent.get(case_id=case.id, action="escalate")
    supervise = await CaseEvent.get(case_id=case.id, action="supervise")
    assert (escalate.detail["to"], escalate.detail["stage"], escalate.detail["level"]) == (superior.code, stage, 1)
    assert (supervise.actor_type, supervise.detail["type"]) == ("system", "overdue")
    case = await Case.get(id=case.id)
    assert case.stage_overdue and case.escalation_level == 1


async def test_a_case_waiting_for_an_extension_is_neither_reminded_nor_escalated_until_the_request_is_decided(city):
    case = await a_dispatched_case((await grids(1))[0])
    handler = await staff(f"handler-{case.department_id}")
    case = await act(
        case_id=case.id, action="request_extension", actor=handler, note="清运车辆检修", detail={"amount": 2}
    )
    assert case.paused_at is not None
    past_the_deadline = iso(case.stage_deadline + timedelta(hours=1))
    past_the_reminder = iso(case.stage_warn_at + timedelta(seconds=1))

    for moment in (past_the_reminder, past_the_deadline):
        done = await sla_sweep(now=moment)
        assert (done["reminded"], done["escalated"]) == (0, 0)
    assert await actions_after_intake(case.id) == ["request_extension"]

    # Refused: the clock runs again, and the same sweep now finds the case overdue.
    dispatcher = await staff(f"dispatcher-{case.district}")
    await act(case_id=case.id, action="refuse_extension", actor=dispatcher, note="按期完成")
    assert (await sla_sweep(now=past_the_deadline))["escalated"] == 1
    assert await actions_after_intake(case.id) == ["request_extension", "refuse_extension", "escalate", "supervise"]


async def test_two_sweeps_at_once_remind_each_case_exactly_once(city):
    # On PostgreSQL the two sweeps' transactions really overlap and the row lock decides; SQLite serialises them.
    cases = [await a_reported_case(grid) for grid in await grids(3)]
    moment = max(c.stage_warn_at for c in cases) + timedelta(seconds=1)
    assert moment < min(c.stage_deadline for c in cases)

    results = await asyncio.gather(sla_sweep(now=iso(moment)), sla_sweep(now=iso(moment)))

    assert sum(r["reminded"] for r in results) == len(cases)
    assert sum(r["failed"] for r in results) == 0
    for case in cases:
        assert await CaseEvent.filter(case_id=case.id, action="remind").count() == 1


async def test_refusing_a_suspension_does_not_restart_a_clock_still_waiting_for_an_extension(city):
    case = await a_dispatched_case((await grids(1))[0])
    handler = await staff(f"handler-{case.department_id}")
    await act(case_id=case.id, action="request_extension", actor=handler, note="清运车辆检修", detail={"amount": 2})
    await act(case_id=case.id, action="request_suspension", actor=handler, note="需立项解决")
    await act(case_id=case.id, action="refuse_suspension", actor=await staff("chief"), note="不予挂账")

    case = await Case.get(id=case.id)
    done = await sla_sweep(now=iso(case.stage_deadline + timedelta(hours=1)))

    # The extension request still waits, so the clock must still be stopped and the case not escalated.
    assert (case.paused_at is not None, done["escalated"]) == (True, 0)
