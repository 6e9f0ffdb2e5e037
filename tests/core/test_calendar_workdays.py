"""Tests for the China working-day calendar and its working-time arithmetic."""

import json
import random
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from core.calendar.workdays import (
    DEFAULT_DATA_PATH,
    CalendarDataError,
    WorkingCalendar,
    calendar_days,
    load_cn_calendar,
)

YEARS = ("2025", "2026", "2027")

# The statutory days themselves (全国年节及纪念日放假办法, 2024 revision); the lunar and solar-term dates are
# 除夕/春节 初一-初三, 清明, 端午, 中秋 as computed for each year.
STATUTORY_DAYS = {
    2025: "01-01 01-28 01-29 01-30 01-31 04-04 05-01 05-02 05-31 10-06 10-01 10-02 10-03".split(),
    2026: "01-01 02-16 02-17 02-18 02-19 04-05 05-01 05-02 06-19 09-25 10-01 10-02 10-03".split(),
    2027: "01-01 02-05 02-06 02-07 02-08 04-05 05-01 05-02 06-09 09-15 10-01 10-02 10-03".split(),
}


@pytest.fixture(scope="module")
def cn() -> WorkingCalendar:
    """The shipped China calendar with default office hours."""
    return load_cn_calendar()


@pytest.fixture(scope="module")
def raw() -> dict:
    """The shipped calendar JSON as parsed data."""
    return json.loads(DEFAULT_DATA_PATH.read_text(encoding="utf-8"))


def days(first: str, last: str) -> list[date]:
    """Every date from first to last inclusive."""
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [start + timedelta(n) for n in range((end - start).days + 1)]


def test_national_day_2025_is_off_from_the_first_to_the_eighth_of_october(cn: WorkingCalendar) -> None:
    assert not any(cn.is_working_day(d) for d in days("2025-10-01", "2025-10-08"))
    assert cn.is_working_day(date(2025, 10, 9))


def test_sunday_28_september_and_saturday_11_october_2025_are_make_up_workdays(cn: WorkingCalendar) -> None:
    assert date(2025, 9, 28).weekday() == 6
    assert date(2025, 10, 11).weekday() == 5
    assert cn.is_working_day(date(2025, 9, 28))
    assert cn.is_working_day(date(2025, 10, 11))
    assert not cn.is_working_day(date(2025, 9, 27))
    assert not cn.is_working_day(date(2025, 10, 12))


def test_an_ordinary_weekend_is_off_and_the_days_around_it_are_working_days(cn: WorkingCalendar) -> None:
    assert cn.is_working_day(date(2025, 3, 14))
    assert not cn.is_working_day(date(2025, 3, 15))
    assert not cn.is_working_day(date(2025, 3, 16))
    assert cn.is_working_day(date(2025, 3, 17))


def test_spring_festival_2025_runs_from_new_years_eve_to_the_seventh_day_with_two_make_up_days(
    cn: WorkingCalendar,
) -> None:
    assert not any(cn.is_working_day(d) for d in days("2025-01-28", "2025-02-04"))
    assert cn.is_working_day(date(2025, 1, 27))
    assert cn.is_working_day(date(2025, 2, 5))
    assert cn.is_working_day(date(2025, 1, 26))
    assert cn.is_working_day(date(2025, 2, 8))


def test_spring_festival_2026_is_nine_days_with_saturdays_14_and_28_february_worked(cn: WorkingCalendar) -> None:
    assert not any(cn.is_working_day(d) for d in days("2026-02-15", "2026-02-23"))
    assert cn.is_working_day(date(2026, 2, 14))
    assert cn.is_working_day(date(2026, 2, 28))
    assert cn.is_working_day(date(2026, 2, 24))


def test_next_working_day_jumps_over_the_whole_spring_festival(cn: WorkingCalendar) -> None:
    assert cn.next_working_day(date(2025, 1, 27)) == date(2025, 2, 5)
    assert cn.next_working_day(date(2025, 3, 14)) == date(2025, 3, 17)
    assert cn.next_working_day(date(2025, 9, 27)) == date(2025, 9, 28)


def test_eight_working_hours_from_friday_16_00_end_at_16_00_on_the_next_working_day(cn: WorkingCalendar) -> None:
    assert cn.add_working_hours(datetime(2025, 3, 14, 16), 8) == datetime(2025, 3, 17, 16)
    # Before National Day 2025 the next working day is the make-up Sunday.
    assert cn.add_working_hours(datetime(2025, 9, 26, 16), 8) == datetime(2025, 9, 28, 16)


def test_adding_working_days_across_national_day_skips_it_and_counts_the_make_up_saturday(
    cn: WorkingCalendar,
) -> None:
    start = datetime(2025, 9, 30, 10)
    assert cn.add_working_days(start, 1) == datetime(2025, 10, 9, 10)
    assert cn.add_working_days(start, 2) == datetime(2025, 10, 10, 10)
    assert cn.add_working_days(start, 3) == datetime(2025, 10, 11, 10)
    assert cn.add_working_days(start, 4) == datetime(2025, 10, 13, 10)


def test_a_start_outside_working_time_begins_at_the_next_working_period(cn: WorkingCalendar) -> None:
    assert cn.add_working_hours(datetime(2025, 3, 14, 12, 15), 1) == datetime(2025, 3, 14, 14)
    assert cn.add_working_hours(datetime(2025, 3, 14, 20), 1) == datetime(2025, 3, 17, 9, 30)
    assert cn.add_working_hours(datetime(2025, 10, 3, 9), 0.5) == datetime(2025, 10, 9, 9)
    assert cn.add_working_hours(datetime(2025, 3, 15, 7), 0) == datetime(2025, 3, 17, 8, 30)
    assert cn.add_working_days(datetime(2025, 3, 15, 10), 1) == datetime(2025, 3, 18, 8, 30)


def test_a_limit_that_fills_the_working_day_exactly_ends_at_close_of_business(cn: WorkingCalendar) -> None:
    assert cn.add_working_hours(datetime(2025, 3, 14, 8, 30), 8) == datetime(2025, 3, 14, 17, 30)
    assert cn.add_working_hours(datetime(2025, 3, 14, 8, 30), 16) == datetime(2025, 3, 17, 17, 30)
    assert cn.add_working_hours(datetime(2025, 3, 14, 9), 3) == datetime(2025, 3, 14, 12)


def test_working_hours_between_counts_only_office_hours_of_working_days(cn: WorkingCalendar) -> None:
    assert cn.working_hours_between(datetime(2025, 3, 14, 16), datetime(2025, 3, 17, 16)) == 8
    assert cn.working_hours_between(datetime(2025, 9, 30, 17), datetime(2025, 10, 9, 9)) == 1
    assert cn.working_hours_between(datetime(2025, 3, 14, 12, 10), datetime(2025, 3, 14, 12, 50)) == 0
    assert cn.working_hours_between(datetime(2025, 3, 17, 16), datetime(2025, 3, 14, 16)) == -8


def test_working_hours_between_is_the_inverse_of_add_working_hours_on_random_samples(cn: WorkingCalendar) -> None:
    rng = random.Random(20251001)
    origin = datetime(2024, 12, 1)
    for _ in range(2000):
        start = origin + timedelta(minutes=rng.randrange(3 * 366 * 24 * 60))
        hours = rng.choice([rng.uniform(0, 8), rng.uniform(0, 400), float(rng.randrange(0, 200))])
        end = cn.add_working_hours(start, hours)
        assert end >= start
        assert cn.working_hours_between(start, end) == pytest.approx(hours, abs=1e-6)


def test_add_working_days_matches_whole_days_of_working_hours_from_a_working_instant(cn: WorkingCalendar) -> None:
    rng = random.Random(7)
    for _ in range(500):
        start = cn.add_working_hours(datetime(2025, 1, 1) + timedelta(minutes=rng.randrange(1_500_000)), 0)
        n = rng.randrange(1, 60)
        assert cn.working_hours_between(start, cn.add_working_days(start, n)) == pytest.approx(8 * n)


def test_aware_datetimes_are_counted_in_china_time_and_returned_in_their_own_zone(cn: WorkingCalendar) -> None:
    # Friday 16:00 UTC is Saturday 00:00 in China, so work starts on the make-up Sunday 28 September.
    start = datetime(2025, 9, 26, 16, tzinfo=UTC)
    end = cn.add_working_hours(start, 8)
    assert end == datetime(2025, 9, 28, 9, 30, tzinfo=UTC)
    assert end.tzinfo is UTC
    assert cn.working_hours_between(start, end) == pytest.approx(8)


def test_natural_hours_ignore_the_calendar(cn: WorkingCalendar) -> None:
    assert cn.add_natural_hours(datetime(2025, 10, 1, 10), 24) == datetime(2025, 10, 2, 10)


def test_office_hours_are_configurable() -> None:
    summer = WorkingCalendar(working_hours=((time(9), time(12)), (time(14, 30), time(18))))
    assert summer.hours_per_day == 6.5
    assert summer.add_working_hours(datetime(2025, 7, 4, 17), 2) == datetime(2025, 7, 7, 10)


def test_overlapping_office_hours_are_rejected() -> None:
    with pytest.raises(CalendarDataError):
        WorkingCalendar(working_hours=((time(9), time(13)), (time(12), time(17))))


def test_negative_amounts_are_rejected(cn: WorkingCalendar) -> None:
    with pytest.raises(ValueError):
        cn.add_working_hours(datetime(2025, 3, 14, 9), -1)
    with pytest.raises(ValueError):
        cn.add_working_days(datetime(2025, 3, 14, 9), -1)


def test_loading_rejects_a_day_listed_both_as_holiday_and_as_workday(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    year = {"holidays": [{"name": "x", "days": ["2025-10-11"]}], "workdays": [{"name": "y", "days": ["2025-10-11"]}]}
    path.write_text(json.dumps({"source": "test", "years": {"2025": year}}), encoding="utf-8")
    with pytest.raises(CalendarDataError):
        load_cn_calendar(path)


def test_calendar_days_are_rows_of_date_kind_and_name_in_date_order() -> None:
    rows = calendar_days()
    assert rows == sorted(rows)
    assert (date(2025, 9, 28), "workday", "国庆节、中秋节调休") in rows
    assert (date(2026, 2, 17), "holiday", "春节") in rows
    assert {kind for _, kind, _ in rows} == {"holiday", "workday"}


def test_2025_and_2026_are_official_and_2027_is_provisional_with_an_import_note(raw: dict) -> None:
    assert sorted(raw["years"]) == list(YEARS)
    assert raw["years"]["2025"]["status"] == "official"
    assert raw["years"]["2025"]["notice"] == "国办发明电〔2024〕12号"
    assert raw["years"]["2026"]["status"] == "official"
    assert raw["years"]["2027"]["status"] == "provisional"
    assert "import" in raw["years"]["2027"]["note"]


@pytest.mark.parametrize("year", YEARS)
def test_every_year_takes_off_the_13_statutory_days_net_of_make_up_workdays(raw: dict, year: str) -> None:
    # Bridged weekdays are paid back by make-up days and statutory days on a weekend are made up on a weekday,
    # so weekday holidays minus make-up days is always the statutory 13 (2024 revision, from 2025 on).
    entry = raw["years"][year]
    off = {date.fromisoformat(d) for block in entry["holidays"] for d in block["days"]}
    worked = {date.fromisoformat(d) for block in entry["workdays"] for d in block["days"]}
    assert len({d for d in off if d.weekday() < 5}) - len(worked) == 13


@pytest.mark.parametrize("year", [2025, 2026, 2027])
def test_every_statutory_day_is_a_listed_holiday(cn: WorkingCalendar, year: int) -> None:
    statutory = {date.fromisoformat(f"{year}-{md}") for md in STATUTORY_DAYS[year]}
    assert len(statutory) == 13
    assert statutory <= cn.holidays


def test_no_day_is_both_holiday_and_workday() -> None:
    rows = calendar_days()
    holidays = {d for d, kind, _ in rows if kind == "holiday"}
    workdays = {d for d, kind, _ in rows if kind == "workday"}
    assert not holidays & workdays
    assert len(rows) == len(holidays) + len(workdays)


def test_every_make_up_workday_is_a_saturday_or_sunday(cn: WorkingCalendar) -> None:
    assert cn.workdays
    assert all(d.weekday() >= 5 for d in cn.workdays)


@pytest.mark.parametrize("year", YEARS)
def test_every_listed_day_lies_within_its_year(raw: dict, year: str) -> None:
    entry = raw["years"][year]
    for key in ("holidays", "workdays"):
        for block in entry[key]:
            assert block["days"], block["name"]
            assert all(d.startswith(f"{year}-") for d in block["days"]), block["name"]


def test_no_one_works_more_than_six_days_in_a_row(cn: WorkingCalendar) -> None:
    # The State Council's 调休 rule since 2025; it also guards the provisional year's guessed make-up days.
    run = longest = 0
    for d in days("2025-01-01", "2027-12-31"):
        run = run + 1 if cn.is_working_day(d) else 0
        longest = max(longest, run)
    assert longest <= 6
