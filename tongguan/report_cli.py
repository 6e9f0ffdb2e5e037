"""The `tongguan report` commands: the evaluation (综合评价) as a table, CSV or JSON on stdout."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from core.evaluation import export
from core.evaluation.messages import (
    COLUMN_LABELS,
    DIMENSION_LABELS,
    EMPTY_NOTE,
    EVALUATION_TITLE,
    LIST_LABELS,
    LIST_TITLE,
)
from core.evaluation.service import DIMENSIONS, EvaluationRow, Period, RedBlackList, evaluate, rank_red_black

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
        typer.echo(json.dumps([export.record(row, lists) for row in rows], ensure_ascii=False, indent=2))
    elif output is OutputFormat.CSV:
        typer.echo(export.to_csv(by, rows, lists), nl=False)
    else:
        # Results go to stdout so they can be redirected; errors stay on tongguan.cli's stderr console. Made per
        # run so a COLUMNS set for a wide table is read.
        _print_tables(Console(), by, parsed, rows, lists)


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
        cells = [export.cell(c, getattr(row, c)) for c in columns]
        table.add_row(*([str(rank)] if ranked else []), *cells)
    return table
