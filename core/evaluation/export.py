"""The evaluation as records and CSV, shared by `tongguan report evaluation` and the console's download."""

from __future__ import annotations

import csv
import io
from typing import Any

from core.evaluation.messages import COLUMN_LABELS, LIST_LABELS, MISSING_SEPARATOR, NO_VALUE, TERM_LABELS
from core.evaluation.service import COLUMNS, EvaluationRow, RedBlackList


def columns(by: str, lists: RedBlackList | None) -> tuple[str, ...]:
    """The output columns of a dimension; roads evaluated with their lists add the list and rank."""
    return (*COLUMNS[by], "red_black", "red_black_rank") if lists is not None else COLUMNS[by]


def places(lists: RedBlackList | None) -> dict[str, tuple[str, int]]:
    """Road key → (list, rank) for the roads on the red or black list."""
    if lists is None:
        return {}
    found = {row.key: ("black", rank) for rank, row in enumerate(lists.black, 1)}
    found.update({row.key: ("red", rank) for rank, row in enumerate(lists.red, 1)})
    return found


def record(row: EvaluationRow, lists: RedBlackList | None) -> dict[str, Any]:
    """A row for JSON: English keys, numbers rounded to two decimals, None as null."""
    result = {k: round(v, 2) if isinstance(v, float) else v for k, v in row.as_dict().items()}
    if lists is not None:
        which, rank = places(lists).get(row.key, (None, None))
        result.update(red_black=which, red_black_rank=rank)
    return result


def to_csv(by: str, rows: list[EvaluationRow], lists: RedBlackList | None) -> str:
    """Rows as CSV with Chinese headers for spreadsheet users; an empty cell where a rate has no value."""
    names = columns(by, lists)
    listed = places(lists)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([COLUMN_LABELS[c] for c in names])
    for row in rows:
        values = row.as_dict()
        which, rank = listed.get(row.key, (None, None))
        values.update(red_black=LIST_LABELS[which] if which else None, red_black_rank=rank)
        writer.writerow([cell(c, values[c], empty="") for c in names])
    return buffer.getvalue()


def cell(column: str, value: Any, *, empty: str = NO_VALUE) -> str:
    """One value as text: rates with two decimals, hours with one, missing terms by their Chinese names."""
    if value is None:
        return empty
    if column == "missing":
        return MISSING_SEPARATOR.join(TERM_LABELS.get(term, term) for term in value)
    if isinstance(value, float):
        return f"{value:.1f}" if column == "avg_dispose_hours" else f"{value:.2f}"
    text = str(value)
    # Names come from imports and administrators; a spreadsheet would run one starting like a formula.
    return "'" + text if column == "name" and text[:1] in FORMULA_STARTS else text


FORMULA_STARTS = frozenset("=+-@\t\r")
