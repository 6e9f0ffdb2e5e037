"""The command centre's city map: boundary layers, open cases and the heat map, each within the reader's scope."""

import asyncio
import gzip
import itertools
import json
from datetime import timedelta

import numpy as np
import pytest
import shapely
from shapely import affinity
from shapely.geometry import shape

from core import clock
from core.accounts.models import StaffAccount
from core.cases.models import Case
from core.catalog.models import CatalogVersion, Subclass
from core.regions import mapdata
from core.regions.models import District, Street, UnitGrid
from tests.console.test_staff_api import bearer, hotline_report, wait_for_case
from tests.factories import interior_point

_numbers = itertools.count(1)


async def subclass_id(ref: str) -> int:
    kind, code = ref.split(":")
    catalog = await CatalogVersion.get(active=True)
    return (await Subclass.get(catalog=catalog, kind=kind, code=code)).id


async def open_case(grid: str, *, subclass: str = "event:0102", status: str = "dispatched", **fields) -> Case:
    """A case in a unit grid, written straight to the table: the map reads cases, it does not make them."""
    lon, lat = await interior_point(grid)
    return await Case.create(
        number=f"M{next(_numbers):010d}",
        subclass_id=await subclass_id(subclass),
        source="field_app",
        lon=lon,
        lat=lat,
        unit_grid=grid,
        community=grid[:12],
        street=grid[:9],
        district=grid[:6],
        status=status,
        is_open=status not in ("closed", "rejected", "voided"),
        **fields,
    )


async def grids_of_two_districts() -> tuple[str, str]:
    first, second = await District.all().order_by("code").limit(2).values_list("code", flat=True)
    a = await UnitGrid.filter(code__startswith=first).order_by("code").first()
    b = await UnitGrid.filter(code__startswith=second).order_by("code").first()
    return a.code, b.code


async def map_cases(api, headers) -> dict:
    response = await api.get("/staff/v1/map/cases", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["fields"] == ["number", "lon", "lat", "status", "overdue", "subclass", "urgency"]
    return body


def as_dicts(body: dict) -> dict[str, dict]:
    return {row[0]: dict(zip(body["fields"], row, strict=True)) for row in body["rows"]}


@pytest.mark.parametrize(("level", "model"), [("district", District), ("street", Street), ("grid", UnitGrid)])
async def test_each_boundary_level_holds_every_region_with_its_parent(api, level, model):
    desk = await bearer(api, "dispatcher")
    response = await api.get(f"/staff/v1/map/boundaries/{level}", headers=desk)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/geo+json"
    doc = response.json()
    assert doc["type"] == "FeatureCollection"
    features = doc["features"]
    assert len(features) == await model.all().count()
    assert {f["id"] for f in features} == set(await model.all().values_list("code", flat=True))
    for feature in features:
        assert feature["type"] == "Feature" and feature["properties"]["code"] == feature["id"]
        assert feature["geometry"]["type"] in ("Polygon", "MultiPolygon")
    if level == "street":
        parents = dict(await Street.all().values_list("code", "district_id"))
        assert all(f["properties"]["parent"] == parents[f["id"]] for f in features)
        assert all(f["properties"]["name"] for f in features)
    if level == "grid":
        assert all(f["properties"]["parent"] == f["id"][:9] for f in features)


async def test_simplified_grids_stay_valid_and_close_to_the_stored_ones(api):
    desk = await bearer(api, "dispatcher")
    features = (await api.get("/staff/v1/map/boundaries/grid", headers=desk)).json()["features"]
    shown = {f["id"]: shape(f["geometry"]) for f in features}
    stored = dict(await UnitGrid.all().values_list("code", "geometry"))
    codes = sorted(stored)
    drawn = np.asarray([shown[c] for c in codes], dtype=object)
    original = shapely.from_geojson(np.asarray([stored[c] for c in codes], dtype=object))
    assert shapely.is_valid(drawn).all()
    assert np.abs(shapely.area(drawn) / shapely.area(original) - 1).max() < 0.05
    # Overlap over union: the drawn grid covers the same ground, not merely as much of it.
    overlap = shapely.area(shapely.intersection(drawn, original)) / shapely.area(shapely.union(drawn, original))
    assert overlap.min() > 0.93
    # 5 decimals (about 1 m) are enough for a 120 m grid.
    first = json.dumps(features[0]["geometry"]["coordinates"])
    assert all(len(n.split(".")[1]) <= 5 for n in first.replace("[", "").replace("]", "").split(", "))


async def test_a_layer_the_browser_already_has_is_not_sent_again(api):
    desk = await bearer(api, "dispatcher")
    plain = {**desk, "accept-encoding": "identity"}
    first = await api.get("/staff/v1/map/boundaries/street", headers=plain)
    assert first.status_code == 200
    assert first.headers["cache-control"] == "private, max-age=300"
    etag = first.headers["etag"]

    again = await api.get("/staff/v1/map/boundaries/street", headers={**plain, "if-none-match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    # The gzip representation's tag is as good: both carry the same layer.
    zipped = await api.get("/staff/v1/map/boundaries/street", headers={**desk, "accept-encoding": "gzip"})
    assert zipped.headers["etag"] != etag
    assert (
        await api.get("/staff/v1/map/boundaries/street", headers={**plain, "if-none-match": zipped.headers["etag"]})
    ).status_code == 304
    stale = await api.get("/staff/v1/map/boundaries/street", headers={**plain, "if-none-match": '"something-else"'})
    assert stale.status_code == 200 and stale.content == first.content


async def test_the_layer_is_sent_gzipped_when_the_browser_accepts_it(api):
    desk = await bearer(api, "dispatcher")
    zipped = await api.get("/staff/v1/map/boundaries/grid", headers={**desk, "accept-encoding": "gzip, deflate, br"})
    assert zipped.status_code == 200
    assert zipped.headers["content-encoding"] == "gzip" and zipped.headers["vary"] == "Accept-Encoding"
    plain = await api.get("/staff/v1/map/boundaries/grid", headers={**desk, "accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers
    # httpx unpacks the gzip; the wire carried far fewer bytes than the GeoJSON it unpacks to.
    assert zipped.content == plain.content
    assert int(zipped.headers["content-length"]) < len(plain.content) / 3
    refused = await api.get("/staff/v1/map/boundaries/grid", headers={**desk, "accept-encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers
    assert gzip.decompress((await mapdata.boundary_layer(level="grid")).gzipped) == plain.content


async def test_the_open_cases_are_sent_gzipped_when_the_browser_accepts_it(api):
    desk = await bearer(api, "dispatcher")
    await hotline_report(api, desk)
    await wait_for_case(api, desk, "to_verify")
    zipped = await api.get("/staff/v1/map/cases", headers={**desk, "accept-encoding": "gzip"})
    plain = await api.get("/staff/v1/map/cases", headers={**desk, "accept-encoding": "identity"})
    assert zipped.headers["content-encoding"] == "gzip" and "content-encoding" not in plain.headers
    assert zipped.json() == plain.json() and plain.json()["total"] == 1


async def test_a_district_dispatcher_sees_only_their_districts_open_cases(api):
    a, b = await grids_of_two_districts()
    in_a = await open_case(a)
    in_b = await open_case(b, subclass="event:0201", urgency="urgent")
    await open_case(a, status="closed")

    city_wide = await map_cases(api, await bearer(api, "dispatcher"))
    assert city_wide["total"] == 2 and city_wide["truncated"] is False
    rows = as_dicts(city_wide)
    assert set(rows) == {in_a.number, in_b.number}
    assert rows[in_b.number] == {
        "number": in_b.number,
        "lon": round(in_b.lon, 6),
        "lat": round(in_b.lat, 6),
        "status": "dispatched",
        "overdue": 0,
        "subclass": "event:0201",
        "urgency": "urgent",
    }

    district = await map_cases(api, await bearer(api, f"dispatcher-{a[:6]}"))
    assert set(as_dicts(district)) == {in_a.number} and district["total"] == 1


async def test_a_crew_sees_the_open_cases_of_its_department(api):
    a, b = await grids_of_two_districts()
    crew = await StaffAccount.filter(username__startswith="handler-").order_by("username").first()
    department = crew.username.removeprefix("handler-")
    theirs = await open_case(a, department_id=department)
    await open_case(b)
    body = await map_cases(api, await bearer(api, crew.username))
    assert set(as_dicts(body)) == {theirs.number}


async def test_the_map_caps_the_rows_and_says_so(api, monkeypatch):
    grid = (await UnitGrid.all().order_by("code").first()).code
    cases = [await open_case(grid) for _ in range(3)]
    monkeypatch.setattr(mapdata, "MAX_CASE_ROWS", 2)
    body = await map_cases(api, await bearer(api, "dispatcher"))
    assert body["total"] == 3 and body["truncated"] is True
    assert [row[0] for row in body["rows"]] == [cases[2].number, cases[1].number]  # the newest


async def test_a_case_turns_overdue_when_its_stage_deadline_passes(api):
    desk = await bearer(api, "dispatcher")
    await hotline_report(api, desk, subclass="event:0201")
    number = (await wait_for_case(api, desk, "to_accept"))["number"]
    case = await Case.get(number=number)
    assert case.stage_deadline is not None
    assert as_dicts(await map_cases(api, desk))[number]["overdue"] == 0

    clock.simulate(case.stage_deadline + timedelta(minutes=1))
    try:
        assert as_dicts(await map_cases(api, desk))[number]["overdue"] == 1
        # A clock paused before the deadline (a request waits for approval) stops it from running out.
        await Case.filter(id=case.id).update(paused_at=case.stage_deadline - timedelta(minutes=1))
        assert as_dicts(await map_cases(api, desk))[number]["overdue"] == 0
        await Case.filter(id=case.id).update(paused_at=None, stage_overdue=True)
        assert as_dicts(await map_cases(api, desk))[number]["overdue"] == 1
    finally:
        clock.simulate(None)


async def test_the_heat_map_counts_the_cases_of_each_grid_at_its_point(api):
    grids = await UnitGrid.all().order_by("code").limit(3).values_list("code", flat=True)
    for grid, n in zip(grids, (3, 1, 0), strict=True):
        for _ in range(n):
            await open_case(grid)
    await open_case(grids[1], subclass="event:0201")
    await open_case(grids[2], subclass="event:0201", status="closed")  # closed still counts: it was reported
    await open_case(grids[2], status="voided")
    old = await open_case(grids[2])
    await Case.filter(id=old.id).update(opened_at=clock.now() - timedelta(days=40))
    desk = await bearer(api, "dispatcher")

    response = await api.get("/staff/v1/map/heat", headers=desk)
    assert response.status_code == 200, response.text
    body = response.json()
    where = {g: await interior_point(g) for g in grids}
    counted = {grid_at(where, lon, lat): n for lon, lat, n in body["points"]}
    assert counted == {grids[0]: 3, grids[1]: 2, grids[2]: 1}
    assert body["max"] == 3 and body["days"] == 30 and body["subclass"] is None
    assert body["subclasses"] == [
        {"subclass": "event:0102", "name": await subclass_name("event:0102"), "count": 4},
        {"subclass": "event:0201", "name": await subclass_name("event:0201"), "count": 2},
    ]

    one = (await api.get("/staff/v1/map/heat", params={"subclass": "event:0201"}, headers=desk)).json()
    assert {grid_at(where, lon, lat): n for lon, lat, n in one["points"]} == {grids[1]: 1, grids[2]: 1}
    assert one["subclass"] == "event:0201" and one["subclasses"] == body["subclasses"]

    longer = (await api.get("/staff/v1/map/heat", params={"days": 60}, headers=desk)).json()
    assert sum(n for _, _, n in longer["points"]) == 7


def grid_at(where: dict[str, tuple[float, float]], lon: float, lat: float) -> str:
    """The grid whose representative point (rounded to 5 decimals on the map) this is."""
    return next(g for g, (x, y) in where.items() if abs(x - lon) <= 6e-6 and abs(y - lat) <= 6e-6)


async def subclass_name(ref: str) -> str:
    return (await Subclass.get(id=await subclass_id(ref))).name


async def test_the_heat_map_keeps_to_the_readers_district(api):
    a, b = await grids_of_two_districts()
    await open_case(a)
    await open_case(b)
    body = (await api.get("/staff/v1/map/heat", headers=await bearer(api, f"dispatcher-{a[:6]}"))).json()
    assert [n for _, _, n in body["points"]] == [1]
    assert body["subclasses"][0]["count"] == 1


async def test_an_inspector_sees_the_boundaries_but_not_the_case_map(api):
    inspector = await StaffAccount.filter(roles__role="inspector").order_by("id").first()
    patrol = await bearer(api, inspector.username)
    assert (await api.get("/staff/v1/map/boundaries/district", headers=patrol)).status_code == 200
    for path in ("/staff/v1/map/cases", "/staff/v1/map/heat"):
        response = await api.get(path, headers=patrol)
        assert response.status_code == 403 and response.json()["code"] == "role_not_allowed"


@pytest.mark.parametrize(
    ("path", "signed_in", "status", "code"),
    [
        ("/staff/v1/map/boundaries/community", True, 404, "unknown_map_level"),
        ("/staff/v1/map/heat?subclass=event:9999", True, 404, "unknown_subclass"),
        ("/staff/v1/map/heat?subclass=garbage", True, 422, "unknown_subclass"),
        ("/staff/v1/map/heat?days=0", True, 422, "invalid_request"),
        ("/staff/v1/map/boundaries/grid", False, 401, "not_authenticated"),
        ("/staff/v1/map/cases", False, 401, "not_authenticated"),
        ("/staff/v1/map/heat", False, 401, "not_authenticated"),
    ],
)
async def test_a_bad_map_request_gets_a_problem_in_chinese(api, path, signed_in, status, code):
    headers = await bearer(api, "dispatcher") if signed_in else {}
    response = await api.get(path, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert any("\u4e00" <= ch <= "\u9fff" for ch in response.json()["title"])


async def test_an_old_layer_is_rebuilt_so_another_processes_import_shows_up(api, monkeypatch):
    desk = await bearer(api, "dispatcher")
    before = await api.get("/staff/v1/map/boundaries/grid", headers=desk)
    grid = await UnitGrid.all().order_by("code").first()
    moved = affinity.translate(shapely.from_geojson(grid.geometry), xoff=0.001)
    # Another process imports: this process's cache does not hear of it.
    await UnitGrid.filter(code=grid.code).update(geometry=shapely.to_geojson(moved))
    assert (await api.get("/staff/v1/map/boundaries/grid", headers=desk)).headers["etag"] == before.headers["etag"]

    monkeypatch.setattr(mapdata, "MAX_AGE_S", 0.0)
    # The old layer is served while the new one is built in the background.
    for _ in range(200):
        response = await api.get("/staff/v1/map/boundaries/grid", headers=desk)
        if response.headers["etag"] != before.headers["etag"]:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the layer was not rebuilt")
    shown = next(f for f in response.json()["features"] if f["id"] == grid.code)
    assert shape(shown["geometry"]).centroid.x == pytest.approx(moved.centroid.x, abs=1e-4)


async def test_forgetting_the_cache_rebuilds_the_layer_at_once(api):
    desk = await bearer(api, "dispatcher")
    before = (await api.get("/staff/v1/map/boundaries/district", headers=desk)).headers["etag"]
    district = await District.all().order_by("code").first()
    await District.filter(code=district.code).update(name="改名区")
    mapdata.forget_map_cache()
    after = await api.get("/staff/v1/map/boundaries/district", headers=desk)
    assert after.headers["etag"] != before
    assert next(f for f in after.json()["features"] if f["id"] == district.code)["properties"]["name"] == "改名区"


async def test_a_warmed_cache_answers_the_first_request_without_building(api, monkeypatch):
    await mapdata.warm_map_cache()

    async def no_build(*, level: str) -> mapdata.Layer:
        raise AssertionError(f"the {level} layer was built on a request")

    monkeypatch.setattr(mapdata, "build_layer", no_build)
    desk = await bearer(api, "dispatcher")
    for level in ("district", "street", "grid"):
        assert (await api.get(f"/staff/v1/map/boundaries/{level}", headers=desk)).status_code == 200
    assert (await api.get("/staff/v1/map/heat", headers=desk)).status_code == 200


async def test_a_restarted_process_serves_the_layer_saved_on_disk_until_the_boundaries_change(api, monkeypatch):
    desk = await bearer(api, "dispatcher")
    first = await api.get("/staff/v1/map/boundaries/grid", headers=desk)
    mapdata.forget_map_cache()  # as after a restart: nothing in memory

    async def no_reading(level: str):
        raise AssertionError(f"the {level} boundaries were read from the database again")

    monkeypatch.setattr(mapdata, "_read", no_reading)
    again = await api.get("/staff/v1/map/boundaries/grid", headers=desk)
    assert again.content == first.content and again.headers["etag"] == first.headers["etag"]

    # Another process imported new boundaries: the saved copy no longer fits them and is not used.
    monkeypatch.undo()
    grid = await UnitGrid.all().order_by("code").first()
    moved = affinity.translate(shapely.from_geojson(grid.geometry), xoff=0.0005)
    await UnitGrid.filter(code=grid.code).update(geometry=shapely.to_geojson(moved), area_m2=grid.area_m2 + 1)
    mapdata.forget_map_cache()
    changed = await api.get("/staff/v1/map/boundaries/grid", headers=desk)
    assert changed.headers["etag"] != first.headers["etag"]
