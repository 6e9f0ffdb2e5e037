"""Public services of the mini-program: places nearby, a shop's QR page, and the public map of open cases."""

import re
from datetime import timedelta

import httpx
import pytest
import shapely

from core import clock
from core.cases.messages import CITIZEN_STATUS
from core.cases.models import Case
from core.cases.service import act
from core.cases.workflow import Actor, RoleGrant
from core.geo.datum import from_wgs84
from core.geo.projection import haversine_m
from core.geo.service import get_spatial_index
from core.messages import DEFAULT_TITLE
from core.places.models import Park, RoadWork, Shop, Toilet
from core.regions.models import UnitGrid
from core.reports.flows import process_report
from core.reports.service import NewReport, submit_report
from core.settings import Settings
from media.faces import NoFaces
from media.public import make_public
from media.service import Owner, store_photo
from media.storage import get_store
from tests.asgi import serving
from tests.factories import interior_point, jpeg_bytes
from tongguan.app import create_app

# The whole small city, with room to spare, as the mini-program's map would send it (GCJ-02).
WHOLE_CITY = "123.33,41.70,123.53,41.90"
CHINESE = re.compile(r"[\u4e00-\u9fff]")
PRIVATE_TEXT = "我家门口垃圾没人清理，电话13912345678，住幸福小区3号楼"
PRIVATE_ADDRESS = "幸福小区3号楼2单元"
REPORTER = "oReporterOpenid000000000000001"


@pytest.fixture
def settings(city, tmp_path) -> Settings:
    return Settings(database_url=city, var_dir=tmp_path, face_detector="none", _env_file=None)


@pytest.fixture
async def api(settings):
    app = create_app(settings)
    async with serving(app) as c:
        yield c


def gcj(lon: float, lat: float) -> tuple[float, float]:
    return from_wgs84(lon, lat, "gcj02")


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code
    assert CHINESE.search(body["title"]) and body["title"] != DEFAULT_TITLE, body["title"]


# --- places nearby ---------------------------------------------------------------------------------------------


async def test_the_nearest_toilet_comes_first_and_its_distance_is_right(api):
    toilet = await Toilet.all().order_by("id").first()
    here = (toilet.lon + 0.0004, toilet.lat + 0.0002)  # about 40 m away
    lon, lat = gcj(*here)

    response = await api.get("/miniapp/v1/toilets", params={"lon": lon, "lat": lat, "radius_m": 3000})

    assert response.status_code == 200, response.text
    body = response.json()
    everyone = sorted(
        (haversine_m(*here, t.lon, t.lat), t.id) for t in await Toilet.all() if haversine_m(*here, t.lon, t.lat) <= 3000
    )
    assert body["total"] == len(everyone) and body["datum"] == "gcj02"
    assert [item["id"] for item in body["items"]] == [toilet_id for _, toilet_id in everyone[:20]]
    first = body["items"][0]
    assert first["id"] == toilet.id and first["name"] == toilet.name
    assert abs(first["distance_m"] - haversine_m(*here, toilet.lon, toilet.lat)) <= 1
    distances = [item["distance_m"] for item in body["items"]]
    assert distances == sorted(distances)


async def test_a_gcj02_point_and_the_same_place_in_wgs84_find_the_same_toilets(api):
    toilet = await Toilet.all().order_by("-id").first()
    lon, lat = gcj(toilet.lon, toilet.lat)

    as_gcj = (await api.get("/miniapp/v1/toilets", params={"lon": lon, "lat": lat, "datum": "gcj02"})).json()
    as_wgs = (
        await api.get("/miniapp/v1/toilets", params={"lon": toilet.lon, "lat": toilet.lat, "datum": "wgs84"})
    ).json()

    assert as_gcj["items"][0]["id"] == toilet.id and as_gcj["items"][0]["distance_m"] == 0
    assert [i["id"] for i in as_gcj["items"]] == [i["id"] for i in as_wgs["items"]]
    assert as_gcj["total"] == as_wgs["total"]
    for a, b in zip(as_gcj["items"], as_wgs["items"], strict=True):
        assert abs(a["distance_m"] - b["distance_m"]) <= 1


@pytest.mark.parametrize("datum", ["gcj02", "bd09", "wgs84"])
async def test_places_come_back_in_the_datum_the_caller_asked_in(api, datum):
    park = await Park.all().order_by("id").first()
    lon, lat = from_wgs84(park.lon, park.lat, datum)

    body = (await api.get("/miniapp/v1/parks", params={"lon": lon, "lat": lat, "datum": datum})).json()

    item = body["items"][0]
    assert item["id"] == park.id and body["datum"] == datum
    assert item["lon"] == pytest.approx(lon, abs=1e-6) and item["lat"] == pytest.approx(lat, abs=1e-6)
    if datum != "wgs84":  # GCJ-02 and BD-09 sit hundreds of metres off the stored WGS-84 point
        assert haversine_m(item["lon"], item["lat"], park.lon, park.lat) > 100


async def test_pocket_parks_are_listed_with_the_name_of_their_kind(api):
    lon, lat = gcj(123.43, 41.80)
    body = (await api.get("/miniapp/v1/parks", params={"lon": lon, "lat": lat, "radius_m": 20000, "limit": 50})).json()

    assert body["total"] == await Park.all().count()
    pocket = [item for item in body["items"] if item["kind"] == "pocket"]
    assert pocket and all(item["kind_name"] == "口袋公园" for item in pocket)


async def test_pages_walk_through_every_toilet_in_range_once(api):
    lon, lat = gcj(123.43, 41.80)
    query = {"lon": lon, "lat": lat, "radius_m": 20000, "limit": 7}
    seen: list[int] = []
    total = None
    for offset in range(0, 100, 7):
        body = (await api.get("/miniapp/v1/toilets", params={**query, "offset": offset})).json()
        total = body["total"]
        seen += [item["id"] for item in body["items"]]
        if offset + 7 >= total:
            break
    assert total == await Toilet.all().count()
    assert len(seen) == len(set(seen)) == total


async def test_nothing_nearby_is_an_empty_list_with_a_hint(api):
    body = (await api.get("/miniapp/v1/toilets", params={"lon": 116.39, "lat": 39.91, "radius_m": 1000})).json()
    assert body["items"] == [] and body["total"] == 0
    assert "公厕" in body["note"]


async def test_road_works_are_listed_only_during_their_period_and_a_few_days_before(api):
    today = clock.now().date()
    spot = await Toilet.all().order_by("id").first()  # any point in the city

    async def works(permit: str, starts: int, ends: int) -> None:
        await RoadWork.create(
            permit_no=permit,
            name=f"{permit} 管道维修",
            lon=spot.lon + 0.0001,
            lat=spot.lat,
            starts_on=today + timedelta(days=starts),
            ends_on=today + timedelta(days=ends),
            detour="请绕行",
        )

    await works("T-UNDERWAY", -5, 5)
    await works("T-LAST-DAY", -30, 0)
    await works("T-SOON", 2, 20)
    await works("T-FINISHED", -30, -1)
    await works("T-NEXT-MONTH", 30, 60)
    lon, lat = gcj(spot.lon, spot.lat)

    body = (await api.get("/miniapp/v1/roadworks", params={"lon": lon, "lat": lat, "radius_m": 200})).json()

    listed = {item["permit_no"]: item for item in body["items"] if item["permit_no"].startswith("T-")}
    assert set(listed) == {"T-UNDERWAY", "T-LAST-DAY", "T-SOON"}
    assert listed["T-UNDERWAY"]["state"] == "underway" and listed["T-UNDERWAY"]["state_name"] == "施工中"
    assert listed["T-SOON"]["state"] == "upcoming" and listed["T-SOON"]["state_name"] == "即将施工"
    assert listed["T-SOON"]["starts_on"] == (today + timedelta(days=2)).isoformat()
    assert listed["T-UNDERWAY"]["detour"] == "请绕行"


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("toilets", {"lon": 123.43, "lat": 41.8, "datum": "mars"}, 422, "unknown_datum"),
        ("parks", {"lon": 123.43, "lat": 41.8, "radius_m": 50000}, 422, "bad_radius"),
        ("parks", {"lon": 123.43, "lat": 41.8, "radius_m": 0}, 422, "bad_radius"),
        ("roadworks", {"lat": 41.8}, 422, "invalid_request"),
        ("toilets", {"lon": "东经123度", "lat": 41.8}, 422, "invalid_request"),
        ("toilets", {"lon": 123.43, "lat": 95}, 422, "bad_point"),
        ("toilets", {"lon": "nan", "lat": 41.8}, 422, "bad_point"),
        ("toilets", {"lon": 123.43, "lat": 41.8, "limit": 0}, 422, "bad_limit"),
        ("toilets", {"lon": 123.43, "lat": 41.8, "limit": 51}, 422, "bad_limit"),
        ("toilets", {"lon": 123.43, "lat": 41.8, "offset": -1}, 422, "bad_offset"),
        ("cases/map", {}, 422, "bad_area"),
        ("cases/map", {"bbox": "123.4,41.7,123.5"}, 422, "bad_bbox"),
        ("cases/map", {"bbox": "123.5,41.7,123.4,41.8"}, 422, "bad_bbox"),
        ("cases/map", {"bbox": "110,30,125,45"}, 422, "bad_bbox"),
        ("cases/map", {"bbox": WHOLE_CITY, "lon": 123.4, "lat": 41.8}, 422, "bad_area"),
        ("cases/map", {"lon": 123.43}, 422, "bad_point"),
        ("cases/map", {"lon": 123.43, "lat": 41.8, "radius_m": 20001}, 422, "bad_radius"),
        ("cases/map", {"bbox": WHOLE_CITY, "limit": 501}, 422, "bad_limit"),
        ("cases/map", {"bbox": WHOLE_CITY, "datum": "baidu"}, 422, "unknown_datum"),
    ],
)
async def test_bad_questions_get_a_problem_with_a_stable_code_and_a_chinese_title(api, path, params, status, code):
    assert_problem(await api.get(f"/miniapp/v1/{path}", params=params), status, code)


# --- shops -----------------------------------------------------------------------------------------------------


async def test_a_shop_qr_code_opens_its_public_page_with_the_duty_area_in_the_callers_datum(api):
    shop = await Shop.all().order_by("id").first()
    await Shop.filter(id=shop.id).update(owner_openid="oShopOwnerOpenid0000000000001")

    response = await api.get(f"/miniapp/v1/shops/{shop.qr}")

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["qr"], body["name"], body["address"]) == (shop.qr, shop.name, shop.address)
    assert body["features"] == shop.features and body["duty_note"] == shop.duty_note
    assert body["datum"] == "gcj02"
    assert (body["lon"], body["lat"]) == pytest.approx(gcj(shop.lon, shop.lat), abs=1e-6)
    ring = body["duty_area"]["coordinates"][0]
    stored = shop.duty_area["coordinates"][0]
    assert len(ring) == len(stored) == 5
    for (lon, lat), (s_lon, s_lat) in zip(ring, stored, strict=True):
        assert (lon, lat) == pytest.approx(gcj(s_lon, s_lat), abs=1e-6)
    assert "openid" not in response.text and "oShopOwnerOpenid" not in response.text


async def test_the_shop_page_speaks_wgs84_when_asked(api):
    shop = await Shop.all().order_by("-id").first()
    body = (await api.get(f"/miniapp/v1/shops/{shop.qr}", params={"datum": "wgs84"})).json()
    assert body["duty_area"] == {"type": "Polygon", "coordinates": shop.duty_area["coordinates"]}


async def test_an_unknown_shop_qr_code_is_a_404_problem_with_a_chinese_title(api):
    assert_problem(await api.get("/miniapp/v1/shops/SHOP-999999"), 404, "shop_not_found")
    assert_problem(await api.get(f"/miniapp/v1/shops/{'X' * 200}"), 404, "shop_not_found")


# --- the public map of open cases ------------------------------------------------------------------------------


async def open_case(grid: str, *, photos: list[str] = (), text: str = "路边有暴露垃圾") -> Case:
    """A citizen's report in the middle of a grid, processed into a case (accepted, waiting for 核实)."""
    lon, lat = await interior_point(grid)
    g_lon, g_lat = gcj(lon, lat)
    report, _ = await submit_report(
        NewReport(
            source="miniapp",
            reporter_type="citizen",
            reporter_id=REPORTER,
            lon=g_lon,
            lat=g_lat,
            datum="gcj02",
            text=text,
            address=PRIVATE_ADDRESS,
            photos=list(photos),
            subclass="event:0102",
        )
    )
    await process_report(report_id=report.id)
    return await Case.get(reports__id=report.id)


async def three_grids() -> list[str]:
    """Grids far enough apart that their reports do not merge into one case."""
    codes = await UnitGrid.all().order_by("code").values_list("code", flat=True)
    return [codes[0], codes[len(codes) // 2], codes[-1]]


async def reject(case: Case) -> None:
    chief = Actor(kind="staff", id="1", name="值班长", grants=(RoleGrant("duty_chief"),))
    await act(case_id=case.id, action="reject", actor=chief, note="经核实不属于城市管理问题")


async def test_the_case_map_shows_open_cases_in_citizen_words_and_leaves_closed_ones_off(api):
    first, second, third = [await open_case(grid) for grid in await three_grids()]
    await reject(third)

    response = await api.get("/miniapp/v1/cases/map", params={"bbox": WHOLE_CITY})

    assert response.status_code == 200, response.text
    body = response.json()
    assert {item["number"] for item in body["items"]} == {first.number, second.number}
    assert body["total"] == 2 and body["capped"] is False and body["datum"] == "gcj02"
    item = next(item for item in body["items"] if item["number"] == first.number)
    assert item["subclass"] == "event:0102" and item["subclass_name"] == "暴露垃圾"
    assert item["status_text"] == CITIZEN_STATUS["accepted"]
    assert (item["lon"], item["lat"]) == pytest.approx(gcj(first.lon, first.lat), abs=1e-6)


def keys_of(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_of(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_of(v)}
    return set()


async def test_the_case_map_holds_no_personal_data(api):
    await open_case((await three_grids())[0], text=PRIVATE_TEXT)

    response = await api.get("/miniapp/v1/cases/map", params={"bbox": WHOLE_CITY})

    assert response.json()["total"] == 1
    for secret in (PRIVATE_TEXT, "13912345678", "幸福小区", REPORTER):
        assert secret not in response.text
    personal = {"phone", "mobile", "openid", "reporter", "reporter_id", "description", "text", "address", "note"}
    assert not keys_of(response.json()["items"]) & personal


async def test_the_case_map_shows_only_thumbnails_whose_faces_were_blurred(api, settings):
    store = get_store(settings)
    owner = Owner(kind="citizen", id=REPORTER)
    blurred = await store_photo(
        data=jpeg_bytes(colour=(10, 90, 200)), owner=owner, file_name="a.jpg", store=store, settings=settings
    )
    raw = await store_photo(
        data=jpeg_bytes(colour=(200, 90, 10)), owner=owner, file_name="b.jpg", store=store, settings=settings
    )
    await make_public(sha256=blurred.blob_id, store=store, detector=NoFaces())
    await open_case((await three_grids())[0], photos=[raw.id, blurred.id])

    body = (await api.get("/miniapp/v1/cases/map", params={"bbox": WHOLE_CITY})).json()

    (item,) = body["items"]
    assert item["thumbnails"] == [f"/media/public/{blurred.id}/thumb"]
    thumbnail = await api.get(item["thumbnails"][0])
    assert thumbnail.status_code == 200 and thumbnail.headers["content-type"] == "image/webp"
    assert raw.id not in str(body)
    assert (await api.get(f"/media/public/{raw.id}/thumb")).status_code == 404


async def test_a_crowded_map_shows_the_newest_cases_and_says_it_left_some_off(api):
    first, *_ = [await open_case(grid) for grid in await three_grids()]
    await Case.filter(id=first.id).update(opened_at=clock.now() - timedelta(hours=2))

    body = (await api.get("/miniapp/v1/cases/map", params={"bbox": WHOLE_CITY, "limit": 2})).json()

    assert body["capped"] is True and body["total"] == 3 and len(body["items"]) == 2
    assert first.number not in {item["number"] for item in body["items"]}
    assert "3" in body["note"] and "2" in body["note"]


async def test_a_circle_around_a_case_finds_it_and_one_elsewhere_does_not(api):
    grids = await three_grids()
    case = await open_case(grids[0])
    lon, lat = gcj(case.lon, case.lat)
    far_lon, far_lat = gcj(*await interior_point(grids[-1]))

    near = (await api.get("/miniapp/v1/cases/map", params={"lon": lon, "lat": lat, "radius_m": 100})).json()
    far = (await api.get("/miniapp/v1/cases/map", params={"lon": far_lon, "lat": far_lat, "radius_m": 100})).json()

    assert [item["number"] for item in near["items"]] == [case.number]
    assert far["items"] == [] and far["total"] == 0 and far["note"]


async def test_cases_opened_before_since_are_left_off(api):
    grids = await three_grids()
    old, new = await open_case(grids[0]), await open_case(grids[1])
    await Case.filter(id=old.id).update(opened_at=clock.now() - timedelta(days=3))
    since = (clock.now() - timedelta(days=1)).isoformat()

    body = (await api.get("/miniapp/v1/cases/map", params={"bbox": WHOLE_CITY, "since": since})).json()

    assert [item["number"] for item in body["items"]] == [new.number]


# --- the synthetic city ----------------------------------------------------------------------------------------


async def test_the_synthetic_city_has_toilets_parks_road_works_and_shops_inside_it(city):
    index = await get_spatial_index()
    today = clock.now().date()
    toilets, shops = await Toilet.all(), await Shop.all()
    assert len(toilets) >= 24 and len(shops) >= 24
    assert await Park.filter(kind="pocket").count() >= 10 and await Park.exclude(kind="pocket").exists()
    assert await RoadWork.filter(starts_on__lte=today, ends_on__gte=today).exists()
    assert await RoadWork.filter(ends_on__lt=today).exists()
    assert await RoadWork.filter(starts_on__gt=today).exists()
    for place in [*toilets, *shops, *await Park.all(), *await RoadWork.all()]:
        assert index.locate(place.lon, place.lat) is not None, place.name
    for shop in shops:
        assert re.fullmatch(r"SHOP-\d{6}", shop.qr) and shop.owner_openid is None
        area = shapely.geometry.shape(shop.duty_area)
        assert area.is_valid and area.exterior.is_ccw
        # A strip of pavement in front of the shop: touching it, a few metres deep, some 6-14 m wide.
        assert area.distance(shapely.Point(shop.lon, shop.lat)) < 1e-6
        assert 6 * 3 * 0.9 <= area.area * (111_195**2) * 0.745 <= 14 * 8 * 1.1
