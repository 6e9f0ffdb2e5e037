"""What every import reports: rows read, rows written, and a per-row error list (capped, counted in full)."""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import ValidationFailed

MAX_ERROR_DETAILS = 1000

Progress = Callable[[int], None]  # called with the number of newly processed items


@dataclass(frozen=True)
class RowError:
    row: int  # 1-based data row (CSV: line after the header; GeoJSON: feature number)
    code: str  # stable machine code, e.g. "duplicate_code"
    message: str
    field: str = ""
    value: str = ""


@dataclass
class ImportReport:
    kind: str
    rows_read: int = 0
    rows_written: int = 0
    error_count: int = 0
    errors: list[RowError] = field(default_factory=list)

    def add(self, error: RowError) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERROR_DETAILS:
            self.errors.append(error)

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def write_errors_csv(self, path: Path) -> None:
        """Write the detailed errors for an operator to fix the file."""
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["row", "code", "field", "value", "message"])
            for e in self.errors:
                writer.writerow([e.row, e.code, e.field, e.value, e.message])


class ImportRejected(ValidationFailed):
    """An import with any bad row writes nothing; the report says which rows and why."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__(
            "import_rejected",
            f"{report.kind} import rejected: {report.error_count} error(s) in {report.rows_read} row(s);"
            " nothing written",
            errors=[e.__dict__ for e in report.errors],
        )
        self.report = report
