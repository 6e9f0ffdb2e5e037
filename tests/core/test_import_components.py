"""Component CSV import: round trip through export, and every kind of bad row rejected with nothing written."""

import pytest

from core.components.models import Component
from core.components.service import export_components_csv, import_components_csv
from core.geo.datum import Datum, from_wgs84
from core.importing import ImportRejected
from core.regions.models import UnitGrid
from tests.factories import component_codes, interior_point, read_csv, write_csv


async def test_export_then_import_reproduces_the_inventory(city, tmp_path):
    first = tmp_path / "first.csv"
    assert await export_components_csv(path=first) == 500
    before = read_csv(first)
    await Component.all().delete()
    report = await import_components_csv(path=first)
    assert (report.rows_read, report.rows_written, report.error_count) == (500, 500, 0)
    second = tmp_path / "second.csv"
    await export_components_csv(path=second)
    assert read_csv(second) == before


async def valid_row(serial: int, *, grid_offset: int = 0, datum: Datum = Datum.WGS84) -> dict:
    """A component row for a manhole cover in a real grid, owned by a real department."""
    grid = await UnitGrid.all().order_by("code").offset(grid_offset).first()
    lon, lat = await interior_point(grid.code)
    lon, lat = from_wgs84(lon, lat, datum)
    owner = (await Component.all().first()).owner_department_id
    return {
        "code": f"{grid.code[:6]}0101{serial:06d}",
        "name": "上水井盖",
        "owner_department": owner,
        "property_department": owner,
        "maintainer_department": owner,
        "state": "完好",
        "lon": repr(lon),
        "lat": repr(lat),
        "datum": datum.value,
    }


def as_csv(tmp_path, rows: list[dict]):
    header = list(rows[0])
    return write_csv(tmp_path / "in.csv", header, [[r[h] for h in header] for r in rows])


async def test_new_components_are_added_with_their_grid_found_from_the_point(city, tmp_path):
    rows = [await valid_row(900001), await valid_row(900002, grid_offset=7, datum=Datum.GCJ02)]
    report = await import_components_csv(path=as_csv(tmp_path, rows))
    assert report.rows_written == 2
    gcj = await Component.get(code=rows[1]["code"])
    expected_grid = (await UnitGrid.all().order_by("code").offset(7).first()).code
    assert gcj.unit_grid_id == expected_grid  # the GCJ-02 point was converted to WGS-84 first
    assert gcj.state == "intact"


async def rejected(path) -> dict[int, set[str]]:
    """Import `path`, expecting rejection; returns row → error codes."""
    with pytest.raises(ImportRejected) as refused:
        await import_components_csv(path=path)
    by_row: dict[int, set[str]] = {}
    for e in refused.value.report.errors:
        by_row.setdefault(e.row, set()).add(e.code)
    return by_row


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"code": "21010201010001"}, "bad_code"),
        ({"code": "9999990101900001"}, "unknown_district"),
        ({"code": "PLACEHOLDER_SUBCLASS"}, "unknown_subclass"),
        ({"owner_department": "NOPE"}, "unknown_department"),
        ({"state": "坏了"}, "bad_state"),
        ({"datum": "mercator"}, "bad_datum"),
        ({"lon": "east"}, "bad_point"),
        ({"lon": "116.40", "lat": "39.90"}, "outside_city"),
    ],
)
async def test_a_bad_row_rejects_the_whole_file(city, tmp_path, change, expected):
    good = await valid_row(900001)
    bad = {**(await valid_row(900002)), **change}
    if change.get("code") == "PLACEHOLDER_SUBCLASS":
        bad["code"] = good["code"][:6] + "0199" + "900002"  # no component subclass 0199
    before = await component_codes()
    errors = await rejected(as_csv(tmp_path, [good, bad]))
    assert errors == {2: {expected}}
    assert await component_codes() == before


async def test_a_component_coded_for_another_district_is_rejected(city, tmp_path):
    row = await valid_row(900001)
    districts = sorted({c[:6] for c in await UnitGrid.all().values_list("code", flat=True)})
    other = next(d for d in districts if d != row["code"][:6])
    row["code"] = other + row["code"][6:]
    assert await rejected(as_csv(tmp_path, [row])) == {1: {"district_mismatch"}}


async def test_duplicate_codes_in_the_file_and_existing_codes_are_both_reported(city, tmp_path):
    existing = next(iter(await component_codes()))
    a, b, c = await valid_row(900001), await valid_row(900001), await valid_row(900003)
    c["code"] = existing[:6] + existing[6:]
    c_grid = await UnitGrid.filter(code__startswith=existing[:6]).first()
    c["lon"], c["lat"] = map(repr, await interior_point(c_grid.code))
    before = await component_codes()
    errors = await rejected(as_csv(tmp_path, [a, b, c]))
    assert errors == {1: {"duplicate_code"}, 2: {"duplicate_code"}, 3: {"code_exists"}}
    assert await component_codes() == before


async def test_a_file_without_the_required_columns_is_rejected(city, tmp_path):
    path = write_csv(tmp_path / "x.csv", ["code", "name"], [["2101020101000001", "井盖"]])
    errors = await rejected(path)
    assert errors == {0: {"missing_columns"}}
