"""Unit-grid GeoJSON import: round trip, and broken input rejected with nothing written."""

import json

import pytest
import shapely

from core.geo.service import get_spatial_index
from core.importing import ImportRejected
from core.regions.models import Community, District, Street, UnitGrid
from core.regions.service import export_grids_geojson, import_grids_geojson
from tests.factories import feature_collection, grid_feature

# A free spot inside the city's extent but east of the small city, ~100 m squares.
BASE_LON, BASE_LAT = 123.60, 41.80
STEP = 0.0012


def square(i: int, j: int = 0, *, size: float = STEP) -> shapely.Polygon:
    x, y = BASE_LON + i * STEP, BASE_LAT + j * STEP
    return shapely.box(x, y, x + size, y + size)


def write(tmp_path, doc) -> object:
    path = tmp_path / "grids.geojson"
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc, encoding="utf-8")
    return path


async def grid_codes() -> set[str]:
    return set(await UnitGrid.all().values_list("code", flat=True))


async def test_export_then_import_into_an_empty_database_round_trips(city, tmp_path):
    exported = tmp_path / "city.geojson"
    assert await export_grids_geojson(path=exported) == 240
    original = json.loads(exported.read_text(encoding="utf-8"))
    districts = dict(await District.all().values_list("code", "name"))
    # Empty the regions (no components or departments refer to them in a fresh database of its own).
    from tortoise import connections

    conn = connections.get("default")
    for table in ("component", "routing_rule", "staff_role", "department", "road_segment", "unit_grid"):
        await conn.execute_query(f"DELETE FROM {table}")
    for table in ("responsibility_grid", "community", "street", "district"):
        await conn.execute_query(f"DELETE FROM {table}")
    report = await import_grids_geojson(path=exported)
    assert report.rows_written == 240
    again = tmp_path / "again.geojson"
    await export_grids_geojson(path=again)
    assert json.loads(again.read_text(encoding="utf-8")) == original
    assert dict(await District.all().values_list("code", "name")) == districts


async def test_new_grids_create_their_community_street_and_district(db, tmp_path):
    features = [
        grid_feature(
            "210199001001001", square(0), district_name="测试区", street_name="一号街道", community_name="甲社区"
        ),
        grid_feature("210199001001002", square(1)),
    ]
    report = await import_grids_geojson(path=write(tmp_path, feature_collection(features)))
    assert report.rows_written == 2
    assert (await District.get(code="210199")).name == "测试区"
    assert (await Street.get(code="210199001")).name == "一号街道"
    community = shapely.from_geojson((await Community.get(code="210199001001")).geometry)
    assert abs(community.area - 2 * STEP * STEP) < 1e-12
    index = await get_spatial_index()
    assert index.locate(BASE_LON + 1.5 * STEP, BASE_LAT + 0.5 * STEP).unit_grid == "210199001001002"


async def rejected(tmp_path, doc) -> dict[int, set[str]]:
    with pytest.raises(ImportRejected) as refused:
        await import_grids_geojson(path=write(tmp_path, doc))
    by_row: dict[int, set[str]] = {}
    for e in refused.value.report.errors:
        by_row.setdefault(e.row, set()).add(e.code)
    return by_row


BOWTIE = shapely.Polygon(
    [(BASE_LON, BASE_LAT), (BASE_LON + STEP, BASE_LAT + STEP), (BASE_LON + STEP, BASE_LAT), (BASE_LON, BASE_LAT + STEP)]
)


@pytest.mark.parametrize(
    ("second", "expected"),
    [
        (grid_feature("21019900100100", square(1)), "bad_code"),
        (grid_feature("210199001001001", square(1)), "duplicate_code"),
        (grid_feature("210199001001002", BOWTIE), "invalid_polygon"),
        (grid_feature("210199001001002", shapely.Point(BASE_LON, BASE_LAT)), "bad_geometry"),
        (
            {"type": "Feature", "properties": {"code": "210199001001002"}, "geometry": {"type": "Polygon"}},
            "bad_geometry",
        ),
        (grid_feature("210199001001002", square(0).buffer(-STEP / 4).union(square(0, 1))), "overlap"),
        (grid_feature("210199001001002", shapely.box(116.4, 39.9, 116.401, 39.901)), "outside_city"),
    ],
)
async def test_a_bad_feature_rejects_the_whole_file(db, tmp_path, second, expected):
    first = grid_feature("210199001001001", square(0))
    errors = await rejected(tmp_path, feature_collection([first, second]))
    assert errors == {2: {expected}}
    assert await grid_codes() == set()
    assert not await District.exists()


async def test_a_grid_overlapping_a_stored_grid_is_rejected(city, tmp_path):
    stored = await UnitGrid.all().order_by("code").first()
    shape = shapely.from_geojson(stored.geometry)
    intruder = grid_feature("210199001001001", shape.centroid.buffer(0.0003))
    before = await grid_codes()
    assert await rejected(tmp_path, feature_collection([intruder])) == {1: {"overlap"}}
    assert await grid_codes() == before


@pytest.mark.parametrize("text", ["{not json", '{"type": "Feature"}', "[]"])
async def test_a_file_that_is_not_a_feature_collection_is_rejected(db, tmp_path, text):
    errors = await rejected(tmp_path, text)
    assert set(errors) == {0}
