"""Working-day calendar (工作日历) for the SLA clock: weekends, public holidays and make-up working days (调休).

Time convention: a naive datetime is wall-clock time in China (Asia/Shanghai, UTC+08:00). An aware datetime is
converted to China time for the calculation and the result is returned in the caller's time zone, so naive in gives
naive out and aware in gives aware out. Dates (``date``) are always China dates.

The engine is pure (no database): ``load_cn_calendar`` reads the shipped JSON, and ``calendar_days`` yields its rows
for loading into a table. Every operation costs O(log n) in the number of listed days, whatever the span, so SLA
clocks of many cases can be recomputed in bulk.
"""

import json
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any

__all__ = [
    "CHINA_TZ",
    "DEFAULT_DATA_PATH",
    "DEFAULT_WORKING_HOURS",
    "CalendarDataError",
    "WorkingCalendar",
    "calendar_days",
    "load_cn_calendar",
]

DEFAULT_DATA_PATH = Path(__file__).parent / "data" / "cn_holidays.json"

# China has kept no daylight saving time since 1991, so a fixed offset is exact and needs no tz database.
CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")

# Office hours differ between cities and departments (many switch to a later afternoon start in summer, and
# hotlines work longer days), so the periods are data passed in from settings, not constants of the engine.
DEFAULT_WORKING_HOURS: tuple[tuple[time, time], ...] = ((time(8, 30), time(12, 0)), (time(13, 0), time(17, 30)))

_US_PER_HOUR = 3_600_000_000
_US_PER_DAY = 24 * _US_PER_HOUR


class CalendarDataError(ValueError):
    """The calendar data or the working hours are inconsistent."""

    code = "calendar_data_invalid"


def _us_of_day(t: time) -> int:
    """Microseconds since midnight of a wall-clock time."""
    return ((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000 + t.microsecond


def _to_china(moment: datetime) -> tuple[datetime, tzinfo | None]:
    """Naive China wall-clock time of a datetime, and the time zone to give the result back in."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        return moment, None
    return moment.astimezone(CHINA_TZ).replace(tzinfo=None), moment.tzinfo


def _from_china(local: datetime, tz: tzinfo | None) -> datetime:
    """Turn a naive China wall-clock time back into the caller's convention."""
    if tz is None:
        return local
    return local.replace(tzinfo=CHINA_TZ).astimezone(tz)


def _weekdays_before(ordinal: int) -> int:
    """Number of Mondays to Fridays with a proleptic ordinal in [1, ordinal)."""
    # Ordinal 1 (0001-01-01) is a Monday, so weeks line up with multiples of seven.
    weeks, rest = divmod(ordinal - 1, 7)
    return weeks * 5 + min(rest, 5)


@dataclass(frozen=True)
class WorkingCalendar:
    """Days off, make-up working days and office hours; answers working-time questions."""

    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()
    working_hours: tuple[tuple[time, time], ...] = DEFAULT_WORKING_HOURS
    _periods: tuple[tuple[int, int], ...] = field(init=False, repr=False, compare=False)
    _day_us: int = field(init=False, repr=False, compare=False)
    _off_weekdays: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _extra_weekend_days: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Validate the data and precompute sorted ordinals for counting working days by bisection."""
        holidays = frozenset(self.holidays)
        workdays = frozenset(self.workdays)
        both = holidays & workdays
        if both:
            raise CalendarDataError(f"days listed both as holiday and as workday: {sorted(both)}")
        periods = tuple((_us_of_day(start), _us_of_day(end)) for start, end in self.working_hours)
        if not periods:
            raise CalendarDataError("working_hours must hold at least one period")
        previous_end = 0
        for start, end in periods:
            if not previous_end <= start < end:
                raise CalendarDataError(
                    f"working_hours must be ascending, non-overlapping periods: {self.working_hours}"
                )
            previous_end = end
        object.__setattr__(self, "holidays", holidays)
        object.__setattr__(self, "workdays", workdays)
        object.__setattr__(self, "_periods", periods)
        object.__setattr__(self, "_day_us", sum(end - start for start, end in periods))
        # Only holidays on Monday-Friday and make-up days on weekends change the plain weekday count.
        object.__setattr__(self, "_off_weekdays", tuple(sorted(d.toordinal() for d in holidays if d.weekday() < 5)))
        object.__setattr__(
            self, "_extra_weekend_days", tuple(sorted(d.toordinal() for d in workdays if d.weekday() >= 5))
        )

    @property
    def hours_per_day(self) -> float:
        """Working hours in one working day."""
        return self._day_us / _US_PER_HOUR

    def is_working_day(self, d: date) -> bool:
        """Whether a China date is a working day (make-up days count, holidays and plain weekends do not)."""
        if isinstance(d, datetime):
            d = _to_china(d)[0].date()
        if d in self.workdays:
            return True
        if d in self.holidays:
            return False
        return d.weekday() < 5

    def next_working_day(self, d: date) -> date:
        """The first working day strictly after a date."""
        if isinstance(d, datetime):
            d = _to_china(d)[0].date()
        return date.fromordinal(self._nth_working_ordinal_after(d.toordinal(), 1))

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """The same working clock time ``days`` working days later; a start outside working time first moves on."""
        if days < 0:
            raise ValueError("days must not be negative")
        local, tz = _to_china(start)
        ordinal, offset = self._normalise(local.date().toordinal(), _us_of_day(local.time()))
        if days:
            ordinal = self._nth_working_ordinal_after(ordinal, days)
        return _from_china(self._moment(ordinal, offset), tz)

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        """The moment after ``hours`` of working time from ``start``; a start outside working time first moves on."""
        if hours < 0:
            raise ValueError("hours must not be negative")
        local, tz = _to_china(start)
        remaining = round(hours * _US_PER_HOUR)
        ordinal = local.date().toordinal()
        if self._is_working_ordinal(ordinal):
            tod = _us_of_day(local.time())
            for begin, end in self._periods:
                begin = max(begin, tod)
                if begin >= end:
                    continue
                if remaining <= end - begin:
                    return _from_china(self._moment(ordinal, begin + remaining), tz)
                remaining -= end - begin
        # Whole days are skipped by counting; a deadline that fills a day exactly ends at its close, not next morning.
        full_days = max(0, (remaining - 1) // self._day_us)
        remaining -= full_days * self._day_us
        ordinal = self._nth_working_ordinal_after(ordinal, full_days + 1)
        for begin, end in self._periods:
            if remaining <= end - begin:
                return _from_china(self._moment(ordinal, begin + remaining), tz)
            remaining -= end - begin
        raise AssertionError("unreachable: the remainder never exceeds one working day")

    def working_hours_between(self, a: datetime, b: datetime) -> float:
        """Working hours from ``a`` to ``b``; negative when ``b`` is before ``a``."""
        return (self._working_us_until(b) - self._working_us_until(a)) / _US_PER_HOUR

    def add_natural_hours(self, start: datetime, hours: float) -> datetime:
        """The moment ``hours`` of calendar time after ``start`` (for limits counted in natural hours, 自然时)."""
        return start + timedelta(hours=hours)

    def _is_working_ordinal(self, ordinal: int) -> bool:
        """Whether the day with this proleptic ordinal is a working day."""
        return self.is_working_day(date.fromordinal(ordinal))

    def _working_days_before(self, ordinal: int) -> int:
        """Number of working days with an ordinal in [1, ordinal)."""
        return (
            _weekdays_before(ordinal)
            - bisect_left(self._off_weekdays, ordinal)
            + bisect_left(self._extra_weekend_days, ordinal)
        )

    def _nth_working_ordinal_after(self, ordinal: int, n: int) -> int:
        """Ordinal of the n-th working day after the given day (n >= 1)."""
        target = self._working_days_before(ordinal + 1) + n
        low, high = ordinal + 1, ordinal + n + 7
        while self._working_days_before(high + 1) < target:
            low, high = high, ordinal + 2 * (high - ordinal)
        # Smallest day whose running count reaches the target; that day is itself a working day.
        while low < high:
            middle = (low + high) // 2
            if self._working_days_before(middle + 1) >= target:
                high = middle
            else:
                low = middle + 1
        return low

    def _normalise(self, ordinal: int, tod: int) -> tuple[int, int]:
        """The first working instant at or after a moment, as (day ordinal, microseconds of day)."""
        if self._is_working_ordinal(ordinal):
            for begin, end in self._periods:
                if tod < end:
                    return ordinal, max(begin, tod)
        return self._nth_working_ordinal_after(ordinal, 1), self._periods[0][0]

    def _working_us_until(self, moment: datetime) -> int:
        """Working microseconds from the start of the proleptic calendar up to a moment."""
        local, _ = _to_china(moment)
        ordinal = local.date().toordinal()
        total = self._working_days_before(ordinal) * self._day_us
        if self._is_working_ordinal(ordinal):
            tod = _us_of_day(local.time())
            total += sum(max(0, min(end, tod) - begin) for begin, end in self._periods)
        return total

    @staticmethod
    def _moment(ordinal: int, offset: int) -> datetime:
        """Naive datetime for a day ordinal and microseconds since its midnight."""
        return datetime.combine(date.fromordinal(ordinal), time()) + timedelta(microseconds=offset)


def _read(path: Path | str | None) -> dict[str, Any]:
    """Parsed calendar JSON from a path, or the shipped China calendar."""
    with open(path or DEFAULT_DATA_PATH, encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


def _rows(data: dict[str, Any]) -> Iterator[tuple[date, str, str]]:
    """(date, kind, name) for every listed day, checking that each falls in its year."""
    for year, entry in data["years"].items():
        for key, kind in (("holidays", "holiday"), ("workdays", "workday")):
            for block in entry.get(key, []):
                for text in block["days"]:
                    day = date.fromisoformat(text)
                    if str(day.year) != year:
                        raise CalendarDataError(f"{text} is listed under year {year}")
                    yield day, kind, block["name"]


def calendar_days(path: Path | str | None = None) -> list[tuple[date, str, str]]:
    """Every listed day as (date, "holiday" | "workday", name), sorted by date, for loading into a table."""
    return sorted(_rows(_read(path)))


def load_cn_calendar(
    path: Path | str | None = None, working_hours: tuple[tuple[time, time], ...] = DEFAULT_WORKING_HOURS
) -> WorkingCalendar:
    """The China working-day calendar from the shipped JSON (or another file of the same shape)."""
    rows = calendar_days(path)
    return WorkingCalendar(
        holidays=frozenset(day for day, kind, _ in rows if kind == "holiday"),
        workdays=frozenset(day for day, kind, _ in rows if kind == "workday"),
        working_hours=working_hours,
    )


def official_years(path: Path | str | None = None) -> set[int]:
    """Years whose schedule in the file is the published State Council notice, not a provisional one."""
    return {int(year) for year, entry in _read(path)["years"].items() if entry.get("status") == "official"}
