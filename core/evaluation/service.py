"""Evaluation (综合评价, GB/T 30428.4 style): indicators, composite scores and A–E bands over a period.

A period is a span of China dates (Asia/Shanghai), start inclusive, end exclusive. Unless said otherwise a case is
"in the period" when its ``registered_at`` falls in it; voided cases (作废, annulled with approval) count nowhere,
suspended ones (挂账) count as registered and not closed.

Area indicators (by department, district, street, unit grid and road segment):

- 上报数 reported: reports created in the period in the area; for a department, cases opened in the period that
  are now assigned to it.
- 立案数 registered: cases registered in the period. 结案数 closed: of those, the ones closed now.
- 结案率 close rate = closed / registered.
- 按期结案率 on-time close rate = closed and not ``dispose_overdue`` / closed.
- 按期处置率 on-time disposal rate = fixed (``fixed_at`` set) and not ``dispose_overdue`` / cases due, that is
  fixed or ``dispose_overdue``.
- 返工率 rework rate = cases with ``rework_count`` > 0 / cases fixed at least once (``fixed_at`` set, or reworked:
  a reworked case was fixed once, whatever its ``fixed_at`` says now).
- 平均处置时长 mean hours from ``dispatched_at`` to ``fixed_at`` (natural hours, not working hours).
- 满意率 satisfaction rate = (satisfied + basic) / rated.

Inspector indicators (监督员):

- 有效上报率 valid report rate = the inspector's field_app reports created in the period whose case was
  registered (at any time) / all their field_app reports created in the period.
- 漏报率 miss rate = cases opened in the period in the inspector's responsibility grids (by the case's unit grid and
  the grid's current responsibility grid) whose first report did not come from an inspector (``Case.source`` is not
  field_app) / all cases opened there; cases refused (不予立案, status rejected) are left out of both.
- 按时核实率 / 按时核查率 = the inspector's verify / check tasks done on time (``on_time`` true) / those due in the
  period; a task counts as due once it is done or its ``due_at`` has passed, so a task still within its time at
  ``now`` counts neither way; cancelled tasks count nowhere.

Composites (rates in percent):

- department, district, street, grid: 立案数分值×10% + 结案率×30% + 按期处置率×30% + (1−返工率)×100×30%, where
  立案数分值 = 100 × registered / the most registered among the rows of that dimension in the period.
- inspector: 有效上报率×40% + (1−漏报率)×100×20% + 按时核实率×20% + 按时核查率×20%.
- road segment: 按期处置率×40% + 结案率×30% + (1−返工率)×100×10% + 密度分值×20%, where
  密度分值 = 100 × (1 − registered / the most registered among roads).

A rate whose denominator is zero is None. A composite uses the terms it has, re-weighted to 100 %, and the row
names the missing ones. A row with none of its rate terms gets no score: a volume term alone does not judge work.
Bands: A ≥ 90, B ≥ 75, C ≥ 60, D ≥ 40, E below (on the score rounded to two decimals).

红黑榜 (road red/black lists): among roads with at least ``min_cases`` registered cases and a score, the red list
is the best ``size`` and the black list the worst ``size`` (worst first); when fewer than ``2 × size`` roads
qualify, each list takes half of them, so no road is on both lists.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from tortoise.expressions import Q, RawSQL
from tortoise.functions import Count
from tortoise.queryset import QuerySet

from core.accounts.models import StaffAccount
from core.bulk import dialect
from core.calendar.workdays import CHINA_TZ
from core.cases.models import Case, CaseTask
from core.errors import ValidationFailed
from core.org.models import Department
from core.regions.models import District, ResponsibilityGrid, RoadSegment, Street, UnitGrid
from core.reports.models import Report

DIMENSIONS = ("department", "district", "street", "grid", "inspector", "road")

# The case column each area dimension groups by, and the report column its 上报数 counts by.
CASE_COLUMNS = {
    "department": "department_id",
    "district": "district",
    "street": "street",
    "grid": "unit_grid",
    "road": "road_segment",
}
REPORT_COLUMNS = {"district": "district", "street": "street", "grid": "unit_grid", "road": "road_segment"}

# Composite terms and weights (percent). A term's value is a percentage; failure rates enter as 100 − rate.
AREA_WEIGHTS = (("registered_score", 10), ("close_rate", 30), ("on_time_dispose_rate", 30), ("rework_rate", 30))
ROAD_WEIGHTS = (("on_time_dispose_rate", 40), ("close_rate", 30), ("rework_rate", 10), ("density_score", 20))
INSPECTOR_WEIGHTS = (
    ("valid_report_rate", 40),
    ("miss_rate", 20),
    ("verify_on_time_rate", 20),
    ("check_on_time_rate", 20),
)
FAILURE_TERMS = frozenset({"rework_rate", "miss_rate"})
VOLUME_TERMS = frozenset({"registered_score", "density_score"})
BANDS = ((90.0, "A"), (75.0, "B"), (60.0, "C"), (40.0, "D"))

_AREA_FIELDS = (
    "reported",
    "registered",
    "closed",
    "closed_on_time",
    "fixed",
    "due",
    "fixed_on_time",
    "reworked",
    "rated",
    "satisfied",
    "close_rate",
    "on_time_close_rate",
    "on_time_dispose_rate",
    "rework_rate",
    "avg_dispose_hours",
    "satisfaction_rate",
)
_INSPECTOR_FIELDS = (
    "field_reports",
    "valid_reports",
    "valid_report_rate",
    "grid_cases",
    "missed_cases",
    "miss_rate",
    "verify_due",
    "verify_on_time",
    "verify_on_time_rate",
    "check_due",
    "check_on_time",
    "check_on_time_rate",
)
_AREA_COLUMNS = ("key", "name", *_AREA_FIELDS, "registered_score", "score", "band", "missing")
# Each dimension's output columns, in order: the contract of CSV and JSON exports.
COLUMNS: dict[str, tuple[str, ...]] = {
    "department": _AREA_COLUMNS,
    "district": _AREA_COLUMNS,
    "street": _AREA_COLUMNS,
    "grid": _AREA_COLUMNS,
    "road": ("key", "name", *_AREA_FIELDS, "density_score", "score", "band", "missing"),
    "inspector": ("key", "name", *_INSPECTOR_FIELDS, "score", "band", "missing"),
}

_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
_DAY = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}$")


@dataclass(frozen=True)
class Period:
    """A span of time in China time: ``start`` inclusive, ``end`` exclusive."""

    start: datetime
    end: datetime
    label: str

    @classmethod
    def parse(cls, text: str) -> Period:
        """A month ("2026-11"), a day ("2026-11-05") or an inclusive range of days ("2026-11-01..2026-11-15")."""
        text = text.strip()
        if month := _MONTH.match(text):
            year, number = int(month[1]), int(month[2])
            if not 1 <= number <= 12:
                raise ValidationFailed("bad_period", f"no month {number} in {text!r}")
            first = date(year, number, 1)
            following = date(year + number // 12, number % 12 + 1, 1)
            return cls(_midnight(first), _midnight(following), f"{year:04d}-{number:02d}")
        first_text, sep, last_text = text.partition("..")
        first_day = _parse_day(first_text.strip(), text)
        last_day = _parse_day(last_text.strip(), text) if sep else first_day
        if last_day < first_day:
            raise ValidationFailed("bad_period", f"period {text!r} ends before it starts")
        label = first_day.isoformat() if last_day == first_day else f"{first_day.isoformat()}..{last_day.isoformat()}"
        return cls(_midnight(first_day), _midnight(last_day + timedelta(days=1)), label)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=CHINA_TZ)


def _parse_day(value: str, text: str) -> date:
    if not _DAY.match(value):
        raise ValidationFailed("bad_period", f"cannot read {text!r}: use 2026-11 or 2026-11-01..2026-11-15")
    year, month, day = (int(part) for part in value.split("-"))
    try:
        return date(year, month, day)
    except ValueError as exc:
        raise ValidationFailed("bad_period", f"no such day {value!r} in {text!r}") from exc


@dataclass
class EvaluationRow:
    """One evaluated unit: its counts, rates (percent, None when the denominator is zero) and composite."""

    dimension: str
    key: str
    name: str
    # Area indicators.
    reported: int = 0
    registered: int = 0
    closed: int = 0
    closed_on_time: int = 0
    fixed: int = 0
    due: int = 0
    fixed_on_time: int = 0
    reworked: int = 0
    rated: int = 0
    satisfied: int = 0  # satisfied or basically satisfied
    close_rate: float | None = None
    on_time_close_rate: float | None = None
    on_time_dispose_rate: float | None = None
    rework_rate: float | None = None
    avg_dispose_hours: float | None = None
    satisfaction_rate: float | None = None
    registered_score: float | None = None
    density_score: float | None = None
    # Inspector indicators.
    field_reports: int = 0
    valid_reports: int = 0
    grid_cases: int = 0
    missed_cases: int = 0
    verify_due: int = 0
    verify_on_time: int = 0
    check_due: int = 0
    check_on_time: int = 0
    valid_report_rate: float | None = None
    miss_rate: float | None = None
    verify_on_time_rate: float | None = None
    check_on_time_rate: float | None = None
    # The composite.
    score: float | None = None
    band: str | None = None
    missing: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        """The row's columns for its dimension (see COLUMNS), with English keys."""
        return {
            name: list(self.missing) if name == "missing" else getattr(self, name) for name in COLUMNS[self.dimension]
        }


@dataclass
class RedBlackList:
    """红黑榜 of road segments: the best (red) and the worst (black, worst first) by composite score."""

    period: Period
    size: int
    min_cases: int
    eligible: int
    red: list[EvaluationRow]
    black: list[EvaluationRow]


def rate(numerator: int, denominator: int) -> float | None:
    """A percentage, or None when there is nothing to divide by."""
    return 100.0 * numerator / denominator if denominator else None


def band_for(score: float | None) -> str | None:
    if score is None:
        return None
    for floor, band in BANDS:
        if score >= floor:
            return band
    return "E"


def composite(row: EvaluationRow, weights: Sequence[tuple[str, int]]) -> None:
    """Set the row's score, band and missing terms from its term values, re-weighting over the terms present."""
    total = weight_sum = 0.0
    missing = []
    judged = False
    for term, weight in weights:
        value = getattr(row, term)
        if value is None:
            missing.append(term)
            continue
        total += (100.0 - value if term in FAILURE_TERMS else value) * weight
        weight_sum += weight
        judged = judged or term not in VOLUME_TERMS
    row.missing = tuple(missing)
    row.score = round(total / weight_sum, 2) if judged else None
    row.band = band_for(row.score)


async def evaluate(*, period: Period, by: str, now: datetime | None = None) -> list[EvaluationRow]:
    """Indicators and composite of every unit of one dimension with figures in the period, best first."""
    if by not in DIMENSIONS:
        raise ValidationFailed("unknown_dimension", f"cannot evaluate by {by!r}; use one of {', '.join(DIMENSIONS)}")
    if by == "inspector":
        rows = await _inspector_rows(period, now or datetime.now(CHINA_TZ))
    else:
        rows = await _area_rows(period, by)
    return sorted(rows, key=lambda r: (r.score is None, -(r.score or 0.0), r.key))


def recent_months(*, count: int, now: datetime | None = None) -> list[Period]:
    """The last ``count`` calendar months in China time, oldest first, the current (partial) month last."""
    today = (now or datetime.now(CHINA_TZ)).astimezone(CHINA_TZ)
    index = today.year * 12 + today.month - 1
    return [Period.parse(f"{i // 12:04d}-{i % 12 + 1:02d}") for i in range(index - count + 1, index + 1)]


async def trend(
    *, by: str, key: str, months: int = 12, now: datetime | None = None
) -> list[tuple[Period, EvaluationRow | None]]:
    """One unit's evaluation month by month, oldest first; None for a month without figures for it."""
    if not 1 <= months <= 36:
        raise ValidationFailed("bad_trend_months", f"a trend covers 1 to 36 months, not {months}")
    result = []
    for period in recent_months(count=months, now=now):
        rows = await evaluate(period=period, by=by, now=now)
        result.append((period, next((row for row in rows if row.key == key), None)))
    return result


async def red_black_list(*, period: Period, size: int = 10, min_cases: int = 3) -> RedBlackList:
    """The road segments' 红黑榜 for the period."""
    return rank_red_black(await evaluate(period=period, by="road"), period=period, size=size, min_cases=min_cases)


def rank_red_black(rows: Iterable[EvaluationRow], *, period: Period, size: int, min_cases: int) -> RedBlackList:
    """The red and black lists from already evaluated road rows."""
    if size < 1 or min_cases < 0:
        raise ValidationFailed("bad_list_size", f"list size must be at least 1 (got {size}), min_cases at least 0")
    eligible = sorted(
        (r for r in rows if r.registered >= min_cases and r.score is not None),
        key=lambda r: (-(r.score or 0.0), r.key),
    )
    take = min(size, len(eligible) // 2)  # fewer than 2 × size roads: half each, none on both lists
    black = sorted(eligible[len(eligible) - take :], key=lambda r: (r.score or 0.0, r.key)) if take else []
    return RedBlackList(period, size, min_cases, len(eligible), eligible[:take], black)


# --- areas -------------------------------------------------------------------------------------------------------


def _avg_hours_sql() -> str:
    """Mean hours from dispatch to fix, in the database's own date arithmetic."""
    if dialect(Case._meta.db) == "sqlite":
        # tortoise stores SQLite datetimes as ISO text with an offset, which julianday() reads.
        return "AVG((julianday(fixed_at) - julianday(dispatched_at)) * 24.0)"
    return "AVG(EXTRACT(EPOCH FROM (fixed_at - dispatched_at)) / 3600.0)"


async def _area_rows(period: Period, by: str) -> list[EvaluationRow]:
    column = CASE_COLUMNS[by]
    figures = await (
        Case.filter(registered_at__gte=period.start, registered_at__lt=period.end, **{f"{column}__isnull": False})
        .exclude(status="voided")
        .annotate(
            n_registered=Count("id"),
            n_closed=Count("id", _filter=Q(status="closed")),
            n_closed_on_time=Count("id", _filter=Q(status="closed", dispose_overdue=False)),
            n_fixed=Count("id", _filter=Q(fixed_at__isnull=False) | Q(rework_count__gt=0)),
            n_due=Count("id", _filter=Q(fixed_at__isnull=False) | Q(dispose_overdue=True)),
            n_fixed_on_time=Count("id", _filter=Q(fixed_at__isnull=False, dispose_overdue=False)),
            n_reworked=Count("id", _filter=Q(rework_count__gt=0)),
            n_rated=Count("id", _filter=Q(satisfaction__isnull=False)),
            n_satisfied=Count("id", _filter=Q(satisfaction__in=["satisfied", "basic"])),
            avg_hours=RawSQL(_avg_hours_sql()),
        )
        .group_by(column)
        .values(
            column,
            "n_registered",
            "n_closed",
            "n_closed_on_time",
            "n_fixed",
            "n_due",
            "n_fixed_on_time",
            "n_reworked",
            "n_rated",
            "n_satisfied",
            "avg_hours",
        )
    )
    reported = await _reported(period, by)
    names = await _names(by)
    rows: dict[str, EvaluationRow] = {}
    for key in set(reported) | {f[column] for f in figures}:
        rows[key] = EvaluationRow(by, key, names.get(key, key), reported=reported.get(key, 0))
    for f in figures:
        row = rows[f[column]]
        for name in ("registered", "closed", "closed_on_time", "fixed", "due", "fixed_on_time", "reworked"):
            setattr(row, name, int(f[f"n_{name}"]))
        row.rated, row.satisfied = int(f["n_rated"]), int(f["n_satisfied"])
        row.avg_dispose_hours = None if f["avg_hours"] is None else float(f["avg_hours"])
    most = max((r.registered for r in rows.values()), default=0)
    for row in rows.values():
        row.close_rate = rate(row.closed, row.registered)
        row.on_time_close_rate = rate(row.closed_on_time, row.closed)
        row.on_time_dispose_rate = rate(row.fixed_on_time, row.due)
        row.rework_rate = rate(row.reworked, row.fixed)
        row.satisfaction_rate = rate(row.satisfied, row.rated)
        if by == "road":
            row.density_score = None if not most else 100.0 * (1 - row.registered / most)
            composite(row, ROAD_WEIGHTS)
        else:
            row.registered_score = rate(row.registered, most)
            composite(row, AREA_WEIGHTS)
    return list(rows.values())


async def _reported(period: Period, by: str) -> dict[str, int]:
    """上报数 per unit: reports in the area, or for a department the cases opened and now assigned to it."""
    query: QuerySet[Any]
    if by == "department":
        column = "department_id"
        query = Case.filter(opened_at__gte=period.start, opened_at__lt=period.end, department_id__isnull=False)
    else:
        column = REPORT_COLUMNS[by]
        query = Report.filter(created_at__gte=period.start, created_at__lt=period.end, **{f"{column}__isnull": False})
    counts = await query.annotate(n=Count("id")).group_by(column).values(column, "n")
    return {c[column]: int(c["n"]) for c in counts}


async def _names(by: str) -> dict[str, str]:
    """Display names of the units of a dimension (reference tables are small: read them whole)."""
    models: dict[str, Any] = {"department": Department, "district": District, "street": Street, "road": RoadSegment}
    if by not in models:
        return {}
    return dict(await models[by].all().values_list("code", "name"))


# --- inspectors --------------------------------------------------------------------------------------------------


async def _inspector_rows(period: Period, now: datetime) -> list[EvaluationRow]:
    rows: dict[str, EvaluationRow] = {}

    def row(key: str) -> EvaluationRow:
        if key not in rows:
            rows[key] = EvaluationRow("inspector", key, key)
        return rows[key]

    field_reports = Report.filter(
        source="field_app", reporter_type="staff", created_at__gte=period.start, created_at__lt=period.end
    ).exclude(reporter_id="")
    for rep in await field_reports.annotate(n=Count("id")).group_by("reporter_id").values("reporter_id", "n"):
        row(rep["reporter_id"]).field_reports = int(rep["n"])
    valid = field_reports.filter(case__registered_at__isnull=False)
    for rep in await valid.annotate(n=Count("id")).group_by("reporter_id").values("reporter_id", "n"):
        row(rep["reporter_id"]).valid_reports = int(rep["n"])

    tasks = await (
        CaseTask.filter(due_at__gte=period.start, due_at__lt=period.end, inspector_id__isnull=False)
        .exclude(status="cancelled")
        .filter(Q(status="done") | Q(due_at__lt=now))
        .annotate(n_due=Count("id"), n_on_time=Count("id", _filter=Q(status="done", on_time=True)))
        .group_by("inspector_id", "kind")
        .values("inspector_id", "kind", "n_due", "n_on_time")
    )
    for t in tasks:
        if t["kind"] in ("verify", "check"):
            target = row(str(t["inspector_id"]))
            setattr(target, f"{t['kind']}_due", int(t["n_due"]))
            setattr(target, f"{t['kind']}_on_time", int(t["n_on_time"]))

    for inspector_id, (total, missed) in (await _grid_cases_by_inspector(period)).items():
        target = row(inspector_id)
        target.grid_cases, target.missed_cases = total, missed

    ids = [int(k) for k in rows if k.isdigit()]
    staff = await StaffAccount.filter(id__in=ids).values_list("id", "display_name", "username") if ids else []
    for staff_id, display_name, username in staff:
        rows[str(staff_id)].name = display_name or username
    for r in rows.values():
        r.valid_report_rate = rate(r.valid_reports, r.field_reports)
        r.miss_rate = rate(r.missed_cases, r.grid_cases)
        r.verify_on_time_rate = rate(r.verify_on_time, r.verify_due)
        r.check_on_time_rate = rate(r.check_on_time, r.check_due)
        composite(r, INSPECTOR_WEIGHTS)
    return list(rows.values())


async def _grid_cases_by_inspector(period: Period) -> dict[str, tuple[int, int]]:
    """Per inspector id: cases opened in the period in their responsibility grids, and those not found by one."""
    per_unit_grid = await (
        Case.filter(opened_at__gte=period.start, opened_at__lt=period.end)
        .exclude(status="rejected")
        .annotate(n=Count("id"), n_missed=Count("id", _filter=~Q(source="field_app")))
        .group_by("unit_grid")
        .values("unit_grid", "n", "n_missed")
    )
    if not per_unit_grid:
        return {}
    # Grouped rows number at most the unit grids, so the mapping to responsibility grids is done here.
    owner = dict(
        await UnitGrid.filter(responsibility_grid_id__isnull=False).values_list("code", "responsibility_grid_id")
    )
    per_grid: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for g in per_unit_grid:
        if (grid := owner.get(g["unit_grid"])) is not None:
            per_grid[grid][0] += int(g["n"])
            per_grid[grid][1] += int(g["n_missed"])
    assignments = await ResponsibilityGrid.filter(code__in=list(per_grid), inspectors__id__isnull=False).values_list(
        "code", "inspectors__id"
    )
    per_inspector: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for grid, inspector_id in assignments:
        per_inspector[str(inspector_id)][0] += per_grid[grid][0]
        per_inspector[str(inspector_id)][1] += per_grid[grid][1]
    return {k: (v[0], v[1]) for k, v in per_inspector.items()}
