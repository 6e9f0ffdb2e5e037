"""Component inventory: CSV import (streamed, all-or-nothing) and export.

The import streams the file in chunks into a temporary staging table inside one transaction, so memory does
not grow with the file; duplicates are found by SQL on the staging table; any bad row rolls everything back.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import numpy as np
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from core.bulk import insert_rows
from core.catalog.service import subclass_ids_by_code
from core.components.models import Component
from core.geo.datum import Datum, to_wgs84_many
from core.geo.index import SpatialIndex
from core.geo.service import get_spatial_index
from core.importing import ImportRejected, ImportReport, Progress, RowError
from core.org.models import Department
from core.regions.models import District

CSV_COLUMNS = [
    "code",
    "name",
    "owner_department",
    "property_department",
    "maintainer_department",
    "state",
    "lon",
    "lat",
    "datum",
]
REQUIRED_COLUMNS = {"code", "owner_department", "property_department", "maintainer_department", "lon", "lat"}
EXPORT_COLUMNS = [*CSV_COLUMNS, "unit_grid"]
# Operators' files use the Chinese words; we store the English keys.
STATES = {"intact": "intact", "damaged": "damaged", "lost": "lost", "occupied": "occupied"}
STATES |= {"完好": "intact", "破损": "damaged", "丢失": "lost", "占用": "occupied"}
DB_COLUMNS = [
    "code",
    "subclass_code",
    "name",
    "owner_department_id",
    "property_department_id",
    "maintainer_department_id",
    "state",
    "lon",
    "lat",
    "unit_grid_id",
]
DATUMS = frozenset(d.value for d in Datum)
CHUNK_ROWS = 20_000
STAGING = "component_staging"


def component_code_parts(code: str) -> tuple[str, str, str]:
    """16-digit code → (district 6, subclass 4, serial 6)."""
    return code[:6], code[6:10], code[10:]


def _chunks(reader: csv.DictReader, size: int) -> Iterator[list[tuple[int, dict[str, str]]]]:
    chunk: list[tuple[int, dict[str, str]]] = []
    for n, row in enumerate(reader, start=1):
        chunk.append((n, row))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class _RowChecker:
    """Per-row checks against reference data that fits in memory (districts, subclasses, departments)."""

    def __init__(self, districts: set[str], subclasses: set[str], departments: set[str]) -> None:
        self.districts, self.subclasses, self.departments = districts, subclasses, departments

    def check(self, n: int, row: dict[str, str], report: ImportReport) -> tuple | None:
        """A parsed row, or None after recording its errors."""
        before = report.error_count
        code = (row.get("code") or "").strip()
        if len(code) != 16 or not code.isdigit():
            report.add(RowError(n, "bad_code", "component code must be 16 digits", "code", code))
        else:
            district, subclass, _ = component_code_parts(code)
            if district not in self.districts:
                report.add(RowError(n, "unknown_district", f"district {district} does not exist", "code", code))
            if subclass not in self.subclasses:
                report.add(
                    RowError(
                        n, "unknown_subclass", f"component subclass {subclass} is not in the catalog", "code", code
                    )
                )
        depts = []
        for col in ("owner_department", "property_department", "maintainer_department"):
            value = (row.get(col) or "").strip()
            if value not in self.departments:
                report.add(RowError(n, "unknown_department", f"department {value!r} does not exist", col, value))
            depts.append(value)
        state = STATES.get((row.get("state") or "intact").strip())
        if state is None:
            report.add(RowError(n, "bad_state", "state must be 完好/破损/丢失/占用", "state", row.get("state", "")))
        datum = (row.get("datum") or "wgs84").strip().lower()
        if datum not in DATUMS:
            report.add(RowError(n, "bad_datum", "datum must be wgs84, gcj02, bd09 or cgcs2000", "datum", datum))
        try:
            lon, lat = float(row.get("lon") or "nan"), float(row.get("lat") or "nan")
            if not (np.isfinite(lon) and np.isfinite(lat)):
                raise ValueError
        except ValueError:
            report.add(
                RowError(
                    n, "bad_point", "lon and lat must be decimal degrees", "lon", f"{row.get('lon')},{row.get('lat')}"
                )
            )
            lon = lat = float("nan")
        if report.error_count > before:
            return None
        return (n, code, (row.get("name") or "").strip()[:64], *depts, state, lon, lat, datum)


async def import_components_csv(*, path: Path, progress: Progress | None = None) -> ImportReport:
    """Import a components CSV; raises ImportRejected (nothing written) when any row is bad."""
    report = ImportReport(kind="components")
    index = await get_spatial_index()
    checker = _RowChecker(
        districts={str(c) for c in await District.all().values_list("code", flat=True)},
        subclasses={code for kind, code in await subclass_ids_by_code(kind="component")},
        departments={str(c) for c in await Department.all().values_list("code", flat=True)},
    )
    async with in_transaction() as conn:
        is_pg = conn.capabilities.dialect == "postgres"
        await conn.execute_script(
            f"CREATE TEMP TABLE {STAGING} (line INTEGER, code VARCHAR(16), subclass_code VARCHAR(4),"
            " name VARCHAR(64), owner_department_id VARCHAR(20), property_department_id VARCHAR(20),"
            " maintainer_department_id VARCHAR(20), state VARCHAR(16), lon DOUBLE PRECISION, lat DOUBLE PRECISION,"
            " unit_grid_id VARCHAR(15))" + (" ON COMMIT DROP" if is_pg else "")
        )
        try:
            with path.open(newline="", encoding="utf-8-sig") as fh:
                await _stage(fh, conn, checker, index, report, progress)
            if report.ok:
                await _check_duplicates(conn, report)
            if not report.ok:
                raise ImportRejected(report)
            cols = ", ".join(DB_COLUMNS)
            now = "CURRENT_TIMESTAMP"
            await conn.execute_query(
                f"INSERT INTO component ({cols}, updated_at) SELECT {cols}, {now} FROM {STAGING} ORDER BY code"
            )
            report.rows_written = report.rows_read
        finally:
            if not is_pg:
                await conn.execute_script(f"DROP TABLE IF EXISTS temp.{STAGING}")
    return report


async def _stage(
    fh: TextIO,
    conn: BaseDBAsyncClient,
    checker: _RowChecker,
    index: SpatialIndex,
    report: ImportReport,
    progress: Progress | None,
) -> None:
    reader = csv.DictReader(fh)
    missing = REQUIRED_COLUMNS - set(reader.fieldnames or [])
    if missing:
        report.add(RowError(0, "missing_columns", f"missing columns: {', '.join(sorted(missing))}"))
        return
    for chunk in _chunks(reader, CHUNK_ROWS):
        report.rows_read += len(chunk)
        parsed = [p for n, row in chunk if (p := checker.check(n, row, report)) is not None]
        if progress:
            progress(len(chunk))
        if not parsed:
            continue
        lons = np.fromiter((p[7] for p in parsed), float, len(parsed))
        lats = np.fromiter((p[8] for p in parsed), float, len(parsed))
        datums = np.asarray([p[9] for p in parsed], dtype=object)
        for datum in set(datums):
            mask = datums == datum
            lons[mask], lats[mask] = to_wgs84_many(lons[mask], lats[mask], datum)
        grid_idx = index.locate_many(lons, lats)
        rows = []
        for p, lon, lat, gi in zip(parsed, lons, lats, grid_idx, strict=True):
            n, code = p[0], p[1]
            if gi < 0:
                report.add(RowError(n, "outside_city", "point is outside every unit grid", "lon", f"{p[7]},{p[8]}"))
                continue
            grid = str(index.grid_codes[gi])
            if grid[:6] != code[:6]:
                report.add(
                    RowError(
                        n, "district_mismatch", f"code says district {code[:6]}, point lies in {grid[:6]}", "code", code
                    )
                )
                continue
            rows.append((n, code, code[6:10], p[2], p[3], p[4], p[5], p[6], float(lon), float(lat), grid))
        if report.ok:  # once a row is bad nothing will be written; keep validating only
            await insert_rows(conn, STAGING, ["line", *DB_COLUMNS], rows)


async def _check_duplicates(conn: BaseDBAsyncClient, report: ImportReport) -> None:
    _, dup_rows = await conn.execute_query(
        f"SELECT line, code FROM {STAGING} WHERE code IN"
        f" (SELECT code FROM {STAGING} GROUP BY code HAVING COUNT(*) > 1) ORDER BY line"
    )
    for r in dup_rows:
        report.add(RowError(r["line"], "duplicate_code", "code appears more than once in the file", "code", r["code"]))
    _, existing = await conn.execute_query(
        f"SELECT s.line, s.code FROM {STAGING} s JOIN component c ON c.code = s.code ORDER BY s.line"
    )
    for r in existing:
        report.add(RowError(r["line"], "code_exists", "a component with this code already exists", "code", r["code"]))


async def export_components_csv(*, path: Path, progress: Progress | None = None) -> int:
    """Write every component as CSV (WGS-84), in the import format plus its unit grid; returns the row count."""
    written = 0
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(EXPORT_COLUMNS)
        last = ""
        # Keyset pagination keeps memory flat on millions of rows.
        while True:
            batch = await Component.filter(code__gt=last).order_by("code").limit(CHUNK_ROWS).values_list(*DB_COLUMNS)
            if not batch:
                break
            for code, _subclass, name, o, p, m, state, lon, lat, grid in batch:
                writer.writerow([code, name, o, p, m, state, repr(lon), repr(lat), "wgs84", grid])
            written += len(batch)
            last = batch[-1][0]
            if progress:
                progress(len(batch))
    return written
