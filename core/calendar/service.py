"""The operative working-day calendar, stored in the database and loaded for the SLA clock."""

from __future__ import annotations

from datetime import date

from tortoise.transactions import in_transaction

from core.calendar.models import CalendarDay
from core.calendar.workdays import WorkingCalendar


async def store_calendar_days(*, days: list[tuple[date, str, str]], official_years: set[int]) -> int:
    """Replace the stored exceptions for the years present in `days`; returns how many rows were written."""
    years = {d.year for d, _, _ in days}
    async with in_transaction():
        for year in years:
            await CalendarDay.filter(day__gte=date(year, 1, 1), day__lte=date(year, 12, 31)).delete()
        await CalendarDay.bulk_create(
            [CalendarDay(day=d, kind=kind, name=name, official=d.year in official_years) for d, kind, name in days]
        )
    return len(days)


async def working_calendar() -> WorkingCalendar:
    """A WorkingCalendar built from the stored days."""
    rows = await CalendarDay.all().values_list("day", "kind")
    return WorkingCalendar(
        holidays=frozenset(d for d, k in rows if k == "holiday"),
        workdays=frozenset(d for d, k in rows if k == "workday"),
    )
