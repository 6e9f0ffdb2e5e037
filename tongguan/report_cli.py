"""The `tongguan report` commands: the evaluation (综合评价) as a table, CSV or JSON on stdout."""

from __future__ import annotations

import csv
import io
import json
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from core.evaluation.messages import (
    COLUMN_LABELS,
    DIMENSION_LABELS,
    EMPTY_NOTE,
    EVALUATION_TITLE,
    LIST_LABELS,
    LIST_TITLE,
    MISSING_SEPARATOR,
    NO_VALUE,
    TERM_LABELS,
)
from core.evaluation.service import COLUMNS, DIMENSIONS, EvaluationRow, Period, RedBlackList, evaluate, rank_red_black

report_app = typer.Typer(help="Reports: evaluation of departments, areas, inspectors and roads.", no_args_is_help=True)


class OutputFormat(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


_AREA_TABLE = (
    "key",
    "name",
    "reported",
    "registered",
    "closed",
    "close_rate",
    "on_time_close_rate",
    "on_time_dispose_rate",
    "rework_rate",
    "avg_dispose_hours",
    "satisfaction_rate",
)
# The terminal table shows the main figures; CSV and JSON carry every column of service.COLUMNS.
TABLE_COLUMNS = {
    **dict.fromkeys(
        ("department", "district", "street", "grid"), (*_AREA_TABLE, "registered_score", "score", "band", "missing")
    ),
    "road": (*_AREA_TABLE, "density_score", "score", "band", "missing"),
    "inspector": (
        "key",
        "name",
        "field_reports",
        "valid_report_rate",
        "grid_cases",
        "missed_cases",
        "miss_rate",
        "verify_on_time_rate",
        "check_on_time_rate",
        "score",
        "band",
        "missing",
    ),
}
LIST_COLUMNS = ("key", "name", "registered", "close_rate", "on_time_dispose_rate", "density_score", "score", "band")


@report_app.command("evaluation")
def evaluation(
    period: Annotated[str, typer.Option(help="A month (2026-11), a day, or days 2026-11-01..2026-11-15.")],
    by: Annotated[str, typer.Option(help=f"One of {', '.join(DIMENSIONS)}.")] = "department",
    output: Annotated[OutputFormat, typer.Option("--format", help="table, csv or json.")] = OutputFormat.TABLE,
    size: Annotated[int, typer.Option(min=1, help="Roads on each of the red and black lists (--by road).")] = 10,
    min_cases: Annotated[int, typer.Option(min=0, help="Registered cases a road needs to be listed.")] = 3,
) -> None:
    """Indicators, composite scores and A–E bands over a period (GB/T 30428.4 style); roads add 红黑榜."""
    # Imported here: tongguan.cli imports this module to register the command group.
    from tongguan.cli import _run

    async def work() -> tuple[Period, list[EvaluationRow], RedBlackList | None]:
        parsed = Period.parse(period)
        rows = await evaluate(period=parsed, by=by)
        lists = rank_red_black(rows, period=parsed, size=size, min_cases=min_cases) if by == "road" else None
        return parsed, rows, lists

    parsed, rows, lists = _run(work)
    if output is OutputFormat.JSON:
        typer.echo(json.dumps([_record(row, lists) for row in rows], ensure_ascii=False, indent=2))
    elif output is OutputFormat.CSV:
        typer.echo(_csv(by, rows, lists), nl=False)
    else:
        # Results go to stdout so they can be redirected; errors stay on tongguan.cli's stderr console. Made per
        # run so a COLUMNS set for a wide table is read.
        _print_tables(Console(), by, parsed, rows, lists)


def _columns(by: str, lists: RedBlackList | None) -> tuple[str, ...]:
    return (*COLUMNS[by], "red_black", "red_black_rank") if lists is not None else COLUMNS[by]


def _places(lists: RedBlackList | None) -> dict[str, tuple[str, int]]:
    """Road key → (list, rank) for the roads on the red or black list."""
    if lists is None:
        return {}
    places = {row.key: ("black", rank) for rank, row in enumerate(lists.black, 1)}
    places.update({row.key: ("red", rank) for rank, row in enumerate(lists.red, 1)})
    return places


def _record(row: EvaluationRow, lists: RedBlackList | None) -> dict[str, Any]:
    """A row for JSON: English keys, numbers rounded to two decimals, None as null."""
    record = {k: round(v, 2) if isinstance(v, float) else v for k, v in row.as_dict().items()}
    if lists is not None:
        which, rank = _places(lists).get(row.key, (None, None))
        record.update(red_black=which, red_black_rank=rank)
    return record


def _csv(by: str, rows: list[EvaluationRow], lists: RedBlackList | None) -> str:
    """Rows as CSV with Chinese headers for spreadsheet users; an empty cell where a rate has no value."""
    columns = _columns(by, lists)
    places = _places(lists)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([COLUMN_LABELS[c] for c in columns])
    for row in rows:
        values = row.as_dict()
        which, rank = places.get(row.key, (None, None))
        values.update(red_black=LIST_LABELS[which] if which else None, red_black_rank=rank)
        writer.writerow([_cell(c, values[c], empty="") for c in columns])
    return buffer.getvalue()


def _cell(column: str, value: Any, *, empty: str = NO_VALUE) -> str:
    if value is None:
        return empty
    if column == "missing":
        return MISSING_SEPARATOR.join(TERM_LABELS.get(term, term) for term in value)
    if isinstance(value, float):
        return f"{value:.1f}" if column == "avg_dispose_hours" else f"{value:.2f}"
    return str(value)


def _print_tables(out: Console, by: str, period: Period, rows: list[EvaluationRow], lists: RedBlackList | None) -> None:
    title = EVALUATION_TITLE.format(dimension=DIMENSION_LABELS[by], period=period.label)
    if not rows:
        out.print(f"{title}\n{EMPTY_NOTE}")
        return
    out.print(_table(title, TABLE_COLUMNS[by], rows))
    if lists is None:
        return
    for which, listed in (("red", lists.red), ("black", lists.black)):
        list_title = LIST_TITLE.format(
            list=LIST_LABELS[which], period=period.label, min_cases=lists.min_cases, eligible=lists.eligible
        )
        out.print(_table(list_title, LIST_COLUMNS, listed, ranked=True))


def _table(title: str, columns: tuple[str, ...], rows: list[EvaluationRow], *, ranked: bool = False) -> Table:
    table = Table(title=title)
    if ranked:
        table.add_column(COLUMN_LABELS["red_black_rank"], justify="right")
    for c in columns:
        table.add_column(COLUMN_LABELS[c], justify="left" if c in ("key", "name", "band", "missing") else "right")
    for rank, row in enumerate(rows, 1):
        cells = [_cell(c, getattr(row, c)) for c in columns]
        table.add_row(*([str(rank)] if ranked else []), *cells)
    return table
