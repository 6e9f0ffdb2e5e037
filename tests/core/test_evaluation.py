"""Evaluation (综合评价): hand-computed indicators, composites, bands and road red/black lists over a period."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import json
from datetime import UTC, datetime, timedelta

import pytest
from tortoise import Tortoise
from typer.testing import CliRunner

from core.accounts.models import StaffAccount
from core.calendar.workdays import CHINA_TZ
from core.cases.models import Case, CaseTask
from core.catalog.models import Subclass
from core.errors import ValidationFailed
from core.evaluation.service import Period, evaluate, red_black_list
from core.regions.models import ResponsibilityGrid, RoadSegment, UnitGrid
from core.reports.models import Report
from core.settings import reset_settings

NOVEMBER = Period.parse("2026-11")
_numbers = itertools.count(1)


def at(day: int, hour: int = 10, minute: int = 0, *, month: int = 11) -> datetime:
    """A China time in 2026."""
    return datetime(2026, month, day, hour, minute, tzinfo=CHINA_TZ)


async def a_grid(*, other_than: str | None = None) -> UnitGrid:
    """A unit grid in a responsibility grid (in another district than `other_than`, when given)."""
    query = UnitGrid.filter(responsibility_grid_id__isnull=False).order_by("code")
    if other_than:
        query = query.exclude(code__startswith=other_than[:6])
    return await query.first()


async def a_case(
    grid: UnitGrid,
    *,
    status: str = "registered",
    department: str | None = None,
    registered: datetime | None = None,
    opened: datetime | None = None,
    dispatched: datetime | None = None,
    fixed: datetime | None = None,
    closed: datetime | None = None,
    overdue: bool = False,
    reworks: int = 0,
    satisfaction: str | None = None,
    road: str | None = None,
    source: str = "hotline",
) -> Case:
    """A case in `grid`, opened an hour before it was registered unless told otherwise."""
    subclass = await Subclass.filter(kind="event").first()
    opened = opened or (registered - timedelta(hours=1) if registered else at(1))
    return await Case.create(
        number=f"T{next(_numbers):08d}",
        subclass=subclass,
        source=source,
        lon=123.4,
        lat=41.8,
        unit_grid=grid.code,
        community=grid.code[:12],
        street=grid.code[:9],
        district=grid.code[:6],
        responsibility_grid=grid.responsibility_grid_id,
        road_segment=road,
        department_id=department,
        status=status,
        is_open=status not in ("closed", "rejected", "voided"),
        opened_at=opened,
        registered_at=registered,
        dispatched_at=dispatched,
        fixed_at=fixed,
        closed_at=closed,
        dispose_overdue=overdue,
        rework_count=reworks,
        satisfaction=satisfaction,
    )


async def a_report(
    grid: UnitGrid,
    *,
    created: datetime,
    case: Case | None = None,
    source: str = "miniapp",
    staff: StaffAccount | None = None,
    status: str = "cased",
) -> Report:
    return await Report.create(
        source=source,
        reporter_type="staff" if staff else "citizen",
        reporter_id=str(staff.id) if staff else "citizen-1",
        content_hash=f"h{next(_numbers)}",
        datum="wgs84",
        raw_lon=123.4,
        raw_lat=41.8,
        unit_grid=grid.code,
        street=grid.code[:9],
        district=grid.code[:6],
        case=case,
        status=status if case else "rejected",
        created_at=created,
    )


async def a_task(case: Case, inspector: StaffAccount, *, kind: str, due: datetime, **fields) -> CaseTask:
    return await CaseTask.create(case=case, kind=kind, inspector=inspector, due_at=due, **fields)


async def closed_on_time(grid: UnitGrid, day: int, **fields) -> Case:
    return await a_case(
        grid,
        status="closed",
        registered=at(day),
        dispatched=at(day, 11),
        fixed=at(day, 15),
        closed=at(day, 17),
        **fields,
    )


async def department_world() -> UnitGrid:
    """C01: 4 cases registered in November, 3 closed (1 of them overdue and reworked); C02: 2 still in hand."""
    grid = await a_grid()
    common = {"department": "C01", "status": "closed"}
    await a_case(
        grid,
        registered=at(3, 9),
        dispatched=at(3, 10),
        fixed=at(3, 12),
        closed=at(4),
        satisfaction="satisfied",
        **common,
    )
    await a_case(
        grid,
        registered=at(5, 7),
        dispatched=at(5, 8),
        fixed=at(5, 18),
        closed=at(6),
        overdue=True,
        reworks=1,
        satisfaction="unsatisfied",
        **common,
    )
    await a_case(
        grid, registered=at(7, 8), dispatched=at(7, 9), fixed=at(7, 12), closed=at(8), satisfaction="basic", **common
    )
    await a_case(grid, department="C01", status="processing", registered=at(9, 8), dispatched=at(9, 9))
    await a_case(grid, department="C02", status="dispatched", registered=at(10), dispatched=at(10, 11))
    await a_case(grid, department="C02", status="processing", registered=at(11), dispatched=at(11, 11))
    return grid


def by_key(rows):
    return {row.key: row for row in rows}


# --- periods -----------------------------------------------------------------------------------------------------


def test_a_month_runs_from_its_first_midnight_to_the_next_months_in_china_time():
    period = Period.parse("2026-12")
    assert (period.start, period.end, period.label) == (
        at(1, 0, month=12),
        datetime(2027, 1, 1, tzinfo=CHINA_TZ),
        "2026-12",
    )
    assert period.start.utcoffset() == timedelta(hours=8)


def test_a_day_range_includes_its_last_day():
    period = Period.parse("2026-11-01..2026-11-15")
    assert (period.start, period.end) == (at(1, 0), at(16, 0))
    assert period.label == "2026-11-01..2026-11-15"
    assert (Period.parse("2026-11-05").start, Period.parse("2026-11-05").end) == (at(5, 0), at(6, 0))


@pytest.mark.parametrize("text", ["2026-13", "2026/11", "2026-11-31", "2026-11-15..2026-11-01", "", "last month"])
def test_an_unreadable_period_is_refused_as_bad_period(text):
    with pytest.raises(ValidationFailed) as refused:
        Period.parse(text)
    assert refused.value.code == "bad_period"


async def test_an_unknown_dimension_is_refused():
    with pytest.raises(ValidationFailed) as refused:
        await evaluate(period=NOVEMBER, by="weather")
    assert refused.value.code == "unknown_dimension"


# --- departments and areas ---------------------------------------------------------------------------------------


async def test_a_departments_rates_score_and_band_are_computed_from_its_cases(city):
    await department_world()
    rows = await evaluate(period=NOVEMBER, by="department")
    assert [row.key for row in rows] == ["C01", "C02"]
    c01 = rows[0]
    assert c01.name == "沈阳市城市管理局"
    assert (c01.reported, c01.registered, c01.closed, c01.fixed, c01.due, c01.reworked) == (4, 4, 3, 3, 3, 1)
    assert c01.close_rate == pytest.approx(75.0)  # 3 of 4
    assert c01.on_time_close_rate == pytest.approx(200 / 3)  # 2 of the 3 closed were not overdue
    assert c01.on_time_dispose_rate == pytest.approx(200 / 3)  # 2 of the 3 due
    assert c01.rework_rate == pytest.approx(100 / 3)  # 1 of the 3 fixed
    assert c01.satisfaction_rate == pytest.approx(200 / 3)  # satisfied + basic of 3 rated
    assert c01.avg_dispose_hours == pytest.approx((2 + 10 + 3) / 3, abs=1e-3)
    assert c01.registered_score == pytest.approx(100.0)  # the most registered of the departments
    # 100×10% + 75×30% + 66.67×30% + (100 − 33.33)×30% = 10 + 22.5 + 20 + 20
    assert (c01.score, c01.band, c01.missing) == (72.5, "C", ())


async def test_missing_denominators_give_none_and_the_composite_reweights_the_rest(city):
    await department_world()
    c02 = by_key(await evaluate(period=NOVEMBER, by="department"))["C02"]
    assert (c02.registered, c02.closed, c02.close_rate) == (2, 0, 0.0)
    assert c02.on_time_close_rate is None and c02.satisfaction_rate is None and c02.avg_dispose_hours is None
    assert c02.on_time_dispose_rate is None and c02.rework_rate is None
    assert c02.missing == ("on_time_dispose_rate", "rework_rate")
    # 立案数分值 50 (2 of the most, 4) weighs 10 and 结案率 0 weighs 30: (50×10 + 0×30) / 40
    assert (c02.registered_score, c02.score, c02.band) == (50.0, 12.5, "E")


async def test_cases_outside_the_period_or_voided_are_not_counted(city):
    grid = await a_grid()
    inside = [at(1, 0), at(30, 23, 59) + timedelta(seconds=59)]
    outside = [
        at(31, 23, 59, month=10) + timedelta(seconds=59),
        at(1, 0, month=12),
        datetime(2026, 11, 30, 16, 0, tzinfo=UTC),  # 2026-12-01 00:00 in China
    ]
    for registered in [*inside, *outside]:
        await a_case(grid, department="C03", registered=registered)
    await a_case(grid, department="C03", status="voided", registered=at(12))
    await a_case(grid, department="C03", status="accepted", opened=at(12))  # not registered yet
    rows = await evaluate(period=NOVEMBER, by="department")
    assert [(row.key, row.registered) for row in rows] == [("C03", 2)]
    first_half = await evaluate(period=Period.parse("2026-11-01..2026-11-15"), by="department")
    assert [(row.key, row.registered) for row in first_half] == [("C03", 1)]


async def test_an_area_level_scores_against_its_own_peers(city):
    grid = await department_world()
    other = await a_grid(other_than=grid.code)
    for day in (3, 4, 5):
        await a_case(other, department="C05", status="dispatched", registered=at(day), dispatched=at(day, 11))
    await a_report(grid, created=at(2))
    await a_report(grid, created=at(20))
    await a_report(grid, created=at(31, month=10))
    grids = by_key(await evaluate(period=NOVEMBER, by="grid"))
    mine = grids[grid.code]
    assert (mine.name, mine.reported, mine.registered, mine.closed) == (grid.code, 2, 6, 3)
    assert mine.registered_score == pytest.approx(100.0) and grids[other.code].registered_score == pytest.approx(50.0)
    # 100×10% + 50×30% + 66.67×30% + 66.67×30%
    assert (mine.score, mine.band) == (65.0, "C")
    districts = by_key(await evaluate(period=NOVEMBER, by="district"))
    assert districts[grid.code[:6]].registered == 6 and districts[other.code[:6]].registered == 3
    assert districts[grid.code[:6]].name
    streets = by_key(await evaluate(period=NOVEMBER, by="street"))
    assert streets[grid.code[:9]].score == 65.0


# --- inspectors --------------------------------------------------------------------------------------------------


async def test_an_inspectors_rates_come_from_reports_tasks_and_cases_in_their_grids(city):
    grid = await a_grid()
    wang = await StaffAccount.create(username="wang", display_name="王巡查", password_hash="x")
    patrol = await ResponsibilityGrid.get(code=grid.responsibility_grid_id)
    await patrol.inspectors.clear()  # the seeded city's inspector of this grid would share its cases
    await patrol.inspectors.add(wang)
    found = [await a_case(grid, source="field_app", registered=at(day)) for day in (3, 4)]
    pending = await a_case(grid, source="field_app", status="pending_accept", opened=at(5))
    missed = await a_case(grid, source="hotline", registered=at(6))
    await a_case(grid, source="hotline", status="rejected", opened=at(7))  # refused: not a miss
    await a_case(grid, source="hotline", registered=at(20, month=10))  # opened in October

    # 3 field reports in November: 2 became registered cases, 1 waits; October's does not count.
    for case in [*found, pending]:
        await a_report(grid, created=case.opened_at, case=case, source="field_app", staff=wang)
    await a_report(grid, created=at(20, month=10), case=found[0], source="field_app", staff=wang)
    await a_report(grid, created=at(8), case=missed)  # a citizen's

    await a_task(found[0], wang, kind="verify", due=at(10), status="done", on_time=True, done_at=at(9))
    await a_task(found[1], wang, kind="verify", due=at(12), status="done", on_time=False, done_at=at(13))
    await a_task(pending, wang, kind="verify", due=at(15))  # open and overdue by the 20th
    await a_task(missed, wang, kind="verify", due=at(29))  # still within its time on the 20th
    await a_task(found[0], wang, kind="verify", due=at(11), status="cancelled", round=2)

    rows = await evaluate(period=NOVEMBER, by="inspector", now=at(20))
    assert [row.key for row in rows] == [str(wang.id)]
    row = rows[0]
    assert row.name == "王巡查"
    assert (row.field_reports, row.valid_reports, row.valid_report_rate) == (3, 2, pytest.approx(200 / 3))
    assert (row.grid_cases, row.missed_cases, row.miss_rate) == (4, 1, 25.0)
    assert (row.verify_due, row.verify_on_time, row.verify_on_time_rate) == (3, 1, pytest.approx(100 / 3))
    assert (row.check_due, row.check_on_time_rate) == (0, None)
    # (66.67×40 + (100 − 25)×20 + 33.33×20) / 80: no check was due, so its 20 % is left out
    assert (row.score, row.band, row.missing) == (60.42, "C", ("check_on_time_rate",))


# --- roads -------------------------------------------------------------------------------------------------------


async def road_world() -> list[str]:
    """Six roads; the busiest (R1) has 4 cases, R6 only 2."""
    grid = await a_grid()
    roads = list(await RoadSegment.all().order_by("code").limit(6).values_list("code", flat=True))
    r1, r2, r3, r4, r5, r6 = roads
    for day in (2, 3, 4, 5):
        await closed_on_time(grid, day, road=r1)
    for day in (2, 3, 4):
        await closed_on_time(grid, day, road=r2)
    for day in (2, 3):
        await closed_on_time(grid, day, road=r3)
    await a_case(grid, status="dispatched", registered=at(4), dispatched=at(4, 11), road=r3)
    await closed_on_time(grid, 2, road=r4)
    await a_case(grid, status="closed", registered=at(3), fixed=at(6), closed=at(7), overdue=True, road=r4)
    await a_case(grid, status="fixed", registered=at(4), fixed=at(8), overdue=True, road=r4)
    for day in (2, 3, 4):
        await a_case(grid, status="dispatched", registered=at(day), dispatched=at(day, 11), road=r5)
    for day in (2, 3):
        await closed_on_time(grid, day, road=r6)
    return roads


async def test_road_scores_weigh_disposal_closing_rework_and_density(city):
    r1, r2, r3, r4, r5, r6 = await road_world()
    roads = by_key(await evaluate(period=NOVEMBER, by="road"))
    assert roads[r1].name == (await RoadSegment.get(code=r1)).name
    # density = 100 × (1 − registered / 4); score = dispose×40% + close×30% + (100 − rework)×10% + density×20%
    expected = {
        r1: (0.0, 80.0),
        r2: (25.0, 85.0),
        r3: (25.0, 75.0),
        r4: (25.0, 48.33),
        r5: (25.0, 10.0),
        r6: (50.0, 90.0),
    }
    assert {code: (roads[code].density_score, roads[code].score) for code in expected} == expected
    assert roads[r5].missing == ("on_time_dispose_rate", "rework_rate")
    assert [roads[code].band for code in (r6, r2, r1, r3, r4, r5)] == ["A", "B", "B", "B", "D", "E"]


async def test_the_red_and_black_lists_rank_roads_with_enough_cases(city):
    r1, r2, r3, r4, r5, r6 = await road_world()
    lists = await red_black_list(period=NOVEMBER, size=2)
    assert lists.eligible == 5  # R6 has 2 cases, fewer than min_cases
    assert [row.key for row in lists.red] == [r2, r1]
    assert [row.key for row in lists.black] == [r5, r4]  # worst first
    lowered = await red_black_list(period=NOVEMBER, size=10, min_cases=2)
    # Six roads for two lists of ten: each list takes half, so no road is on both.
    assert [row.key for row in lowered.red] == [r6, r2, r1]
    assert [row.key for row in lowered.black] == [r5, r4, r3]


# --- the command -------------------------------------------------------------------------------------------------


async def run_cli(city: str, monkeypatch, *args: str):
    """`tongguan report evaluation …` in-process, on the test database, as an operator would run it."""
    from tongguan.cli import app

    # The command opens and closes the database in its own event loop (a worker thread): hand it over.
    await Tortoise.close_connections()
    monkeypatch.setenv("TG_DATABASE_URL", city)
    reset_settings()
    try:
        runner = CliRunner(env={"COLUMNS": "240"})  # rich folds a wide table at its default 80 columns
        return await asyncio.to_thread(runner.invoke, app, ["report", "evaluation", *args])
    finally:
        reset_settings()


async def test_the_command_prints_the_figures_as_json(city, monkeypatch):
    await department_world()
    result = await run_cli(city, monkeypatch, "--period", "2026-11", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = {row["key"]: row for row in json.loads(result.stdout)}
    assert list(rows) == ["C01", "C02"]
    assert rows["C01"]["name"] == "沈阳市城市管理局"
    assert (rows["C01"]["registered"], rows["C01"]["closed"], rows["C01"]["close_rate"]) == (4, 3, 75.0)
    assert (rows["C01"]["on_time_dispose_rate"], rows["C01"]["rework_rate"]) == (66.67, 33.33)
    assert (rows["C01"]["score"], rows["C01"]["band"], rows["C01"]["missing"]) == (72.5, "C", [])
    assert rows["C02"]["on_time_dispose_rate"] is None
    assert (rows["C02"]["score"], rows["C02"]["missing"]) == (12.5, ["on_time_dispose_rate", "rework_rate"])


async def test_the_command_prints_the_figures_as_csv_with_chinese_headers(city, monkeypatch):
    await department_world()
    result = await run_cli(city, monkeypatch, "--period", "2026-11", "--by", "department", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = {row["编码"]: row for row in csv.DictReader(io.StringIO(result.stdout))}
    assert (rows["C01"]["立案数"], rows["C01"]["结案率(%)"], rows["C01"]["按期结案率(%)"]) == ("4", "75.00", "66.67")
    assert (rows["C01"]["综合得分"], rows["C01"]["等级"], rows["C01"]["缺项"]) == ("72.50", "C", "")
    assert (rows["C02"]["按期处置率(%)"], rows["C02"]["缺项"]) == ("", "按期处置率、返工率")


async def test_the_command_lists_roads_and_their_red_and_black_places(city, monkeypatch):
    _, r2, _, _, r5, r6 = await road_world()
    result = await run_cli(city, monkeypatch, "--period", "2026-11", "--by", "road", "--format", "json", "--size", "2")
    assert result.exit_code == 0, result.output
    places = {row["key"]: (row["red_black"], row["red_black_rank"]) for row in json.loads(result.stdout)}
    assert places[r2] == ("red", 1) and places[r5] == ("black", 1) and places[r6] == (None, None)
    table = await run_cli(city, monkeypatch, "--period", "2026-11", "--by", "road")
    assert table.exit_code == 0, table.output
    assert "红榜" in table.stdout and "黑榜" in table.stdout and "综合得分" in table.stdout


async def test_the_command_refuses_a_bad_period(city, monkeypatch):
    result = await run_cli(city, monkeypatch, "--period", "2026-13")
    assert result.exit_code == 1
    assert "bad_period" in result.output
