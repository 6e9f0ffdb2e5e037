"""Open311 GeoReport v2 as another system uses it: services, posting with an API key, following, refusals."""

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import timedelta

import httpx
import pytest
import shapely

from core import clock
from core.accounts.apikeys import create_key, revoke_key
from core.accounts.models import ApiKey
from core.cases.models import Case
from core.catalog.models import Subclass
from core.catalog.service import active_catalog
from core.geo.service import get_spatial_index
from core.outbox.models import OutboxEntry
from core.regions.models import Community, RoadSegment, UnitGrid
from core.reports.models import Report
from core.settings import Settings
from jobs.embedded import EmbeddedRunner
from tests.asgi import serving
from tests.factories import interior_point
from tongguan.app import create_app

BASE = "/open311/v2"
PHONE = "13812345678"


@pytest.fixture
def open311_settings(city, tmp_path, redis_url) -> Settings:
    # With Redis configured no embedded runner works in the background: each test runs the jobs when it wants.
    return Settings(database_url=city, var_dir=tmp_path, redis_url=redis_url, _env_file=None)


@pytest.fixture
async def client(open311_settings):
    app = create_app(open311_settings)
    async with serving(app) as c:
        yield c


@pytest.fixture
async def api_key(client) -> str:
    return await create_key(name="partner-app")


async def a_point() -> tuple[float, float]:
    grid = await UnitGrid.all().order_by("code").first()
    return await interior_point(grid.code)


async def post(client, api_key: str | None, fmt: str = "json", **fields) -> httpx.Response:
    if "lat" not in fields and "address_string" not in fields:
        lon, lat = await a_point()
        fields |= {"lat": str(lat), "long": str(lon)}
    data = {"service_code": "event-0102", "description": "路边有一堆暴露垃圾没人清理", **fields}
    if api_key is not None:
        data["api_key"] = api_key
    return await client.post(f"{BASE}/requests.{fmt}", data=data)


async def run_jobs(settings: Settings) -> None:
    await EmbeddedRunner(settings).run_pending()


def xml_items(response: httpx.Response) -> list[dict[str, str]]:
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    assert response.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    return [{child.tag: child.text or "" for child in item} for item in ET.fromstring(response.content)]


def as_text(items: list[dict]) -> list[dict[str, str]]:
    """JSON values as the XML writes them: no value is empty, booleans are true/false."""

    def text(value) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    return [{k: text(v) for k, v in item.items()} for item in items]


def error_of(response: httpx.Response, status: int) -> str:
    """The description of a spec-format error with this HTTP status and the same code in the body."""
    assert response.status_code == status, response.text
    if response.headers["content-type"].startswith("text/xml"):
        (error,) = xml_items(response)
        assert error["code"] == str(status)
        return error["description"]
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    (error,) = response.json()
    assert error["code"] == status
    return error["description"]


async def nothing_stored() -> bool:
    return await Report.all().count() == 0 and await OutboxEntry.all().count() == 0


async def test_the_services_are_the_active_catalog_grouped_by_major_class(client):
    response = await client.get(f"{BASE}/services.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    services = {s["service_code"]: s for s in response.json()}
    catalog = await Subclass.filter(catalog=await active_catalog()).select_related("major")
    assert set(services) == {f"{s.kind}-{s.code}" for s in catalog}
    garbage = next(s for s in catalog if (s.kind, s.code) == ("event", "0102"))
    assert services["event-0102"] == {
        "service_code": "event-0102",
        "service_name": garbage.name,
        "description": garbage.filing_condition,
        "metadata": False,
        "type": "realtime",
        "keywords": ", ".join(garbage.keywords),
        "group": garbage.major.name,
    }
    # Component problems take the component's code as an attribute, so their definition is worth fetching.
    assert services["component-0101"]["metadata"] is True


async def test_xml_says_what_json_says(client):
    as_json = (await client.get(f"{BASE}/services.json")).json()
    as_xml = xml_items(await client.get(f"{BASE}/services.xml"))
    assert as_xml == as_text(as_json)


async def test_a_service_definition_lists_its_attributes_in_both_formats(client):
    component = (await client.get(f"{BASE}/services/component-0101.json")).json()
    assert component["service_code"] == "component-0101"
    (attribute,) = component["attributes"]
    assert attribute["code"] == "component_code" and attribute["datatype"] == "string"
    assert attribute["required"] is False and attribute["variable"] is True and attribute["order"] == 1

    root = ET.fromstring((await client.get(f"{BASE}/services/component-0101.xml")).content)
    assert root.tag == "service_definition" and root.findtext("service_code") == "component-0101"
    assert root.findtext("attributes/attribute/code") == "component_code"

    event = (await client.get(f"{BASE}/services/event-0102.json")).json()
    assert event == {"service_code": "event-0102", "attributes": []}


async def test_a_posted_request_gets_its_id_and_token_at_once_and_shows_its_agency_once_processed(
    client, api_key, open311_settings
):
    response = await post(client, api_key, media_url="https://img.example.org/p/1.jpg", account_id="u-77")
    assert response.status_code == 200, response.text
    (created,) = response.json()
    request_id, token = created["service_request_id"], created["token"]
    assert request_id.isdigit() and created["account_id"] == "u-77"

    (waiting,) = (await client.get(f"{BASE}/requests/{request_id}.json")).json()
    assert waiting["status"] == "open" and waiting["status_notes"]
    assert waiting["service_code"] == "event-0102" and waiting["agency_responsible"] is None
    assert waiting["media_url"] == "https://img.example.org/p/1.jpg"  # kept as a link, not fetched
    assert waiting["requested_datetime"].endswith("+08:00")

    await run_jobs(open311_settings)

    (handled,) = (await client.get(f"{BASE}/requests/{request_id}.json")).json()
    report = await Report.get(id=int(request_id))
    assert report.source == "open311" and report.case_id is not None
    assert (await ApiKey.get(name="partner-app")).last_used_at is not None
    assert handled["status"] == "open"
    assert handled["agency_responsible"]  # the department the case was routed to
    assert handled["expected_datetime"].endswith("+08:00")
    assert xml_items(await client.get(f"{BASE}/requests/{request_id}.xml")) == as_text([handled])

    resolved = await client.get(f"{BASE}/tokens/{token}.json")
    assert resolved.json() == [{"service_request_id": request_id, "token": token}]
    assert xml_items(await client.get(f"{BASE}/tokens/{token}.xml")) == [
        {"service_request_id": request_id, "token": token}
    ]


async def test_a_closed_case_shows_its_requests_as_closed(client, api_key, open311_settings):
    (created,) = (await post(client, api_key)).json()
    await run_jobs(open311_settings)
    report = await Report.get(id=int(created["service_request_id"]))
    await Case.filter(id=report.case_id).update(status="closed", is_open=False, closed_at=clock.now())

    (request,) = (await client.get(f"{BASE}/requests/{report.id}.json")).json()
    assert request["status"] == "closed" and request["expected_datetime"] is None
    closed = (await client.get(f"{BASE}/requests.json", params={"status": "closed"})).json()
    assert [r["service_request_id"] for r in closed] == [str(report.id)]
    assert (await client.get(f"{BASE}/requests.json", params={"status": "open"})).json() == []


async def test_requests_default_to_the_last_90_days_and_filters_narrow_them(client, api_key, open311_settings):
    (recent,) = (await post(client, api_key)).json()
    (old,) = (await post(client, api_key, service_code="component-0101", description="井盖丢失")).json()
    recent_id, old_id = recent["service_request_id"], old["service_request_id"]
    long_ago = clock.now() - timedelta(days=100)
    await Report.filter(id=int(old_id)).update(created_at=long_ago)

    def ids(response: httpx.Response) -> list[str]:
        assert response.status_code == 200, response.text
        return [r["service_request_id"] for r in response.json()]

    assert ids(await client.get(f"{BASE}/requests.json")) == [recent_id]
    window = {"start_date": (long_ago - timedelta(days=1)).isoformat(), "end_date": long_ago.isoformat()}
    assert ids(await client.get(f"{BASE}/requests.json", params=window)) == [old_id]
    assert ids(await client.get(f"{BASE}/requests.json", params={"start_date": "2020-01-01T00:00:00Z"})) == []
    # service_request_id overrides every other argument, the date window included.
    both = {"service_request_id": f"{old_id},{recent_id}", "status": "closed"}
    assert sorted(ids(await client.get(f"{BASE}/requests.json", params=both))) == sorted([old_id, recent_id])
    assert ids(await client.get(f"{BASE}/requests.json", params={"service_code": "component-0101"})) == []
    assert ids(await client.get(f"{BASE}/requests.json", params={"service_code": "event-0102,component-0101"})) == [
        recent_id
    ]
    assert ids(await client.get(f"{BASE}/requests.json", params={"status": "open"})) == [recent_id]
    await run_jobs(open311_settings)
    assert ids(await client.get(f"{BASE}/requests.json", params={"status": "open,closed"})) == [recent_id]

    too_wide = {"start_date": "2026-01-01T00:00:00+08:00", "end_date": "2026-06-01T00:00:00+08:00"}
    assert "90 days" in error_of(await client.get(f"{BASE}/requests.json", params=too_wide), 400)
    assert "W3C" in error_of(await client.get(f"{BASE}/requests.json", params={"end_date": "yesterday"}), 400)
    assert error_of(await client.get(f"{BASE}/requests.json", params={"status": "pending"}), 400)
    assert error_of(await client.get(f"{BASE}/requests.json", params={"service_request_id": "1,x"}), 400)
    assert error_of(await client.get(f"{BASE}/requests.json", params={"service_code": "event-9999"}), 400)


@pytest.mark.parametrize("which", ["missing", "unknown", "revoked"])
async def test_posting_without_a_valid_api_key_is_refused_with_403_and_stores_nothing(client, api_key, which):
    key = {"missing": None, "unknown": "tg_" + "x" * 43, "revoked": api_key}[which]
    if which == "revoked":
        await revoke_key(name="partner-app")
    response = await post(client, key, fmt="xml")
    assert "api_key" in error_of(response, 403)
    assert await nothing_stored()


async def test_the_key_is_checked_before_anything_else_is_read(client):
    response = await client.post(f"{BASE}/requests.json", data={"lon": "1", "service_code": "nonsense"})
    assert error_of(response, 403) == "api_key was not provided"
    assert await nothing_stored()


async def test_an_unknown_service_code_is_404_as_the_spec_lists_and_a_missing_one_400(client, api_key):
    assert "event-9999" in error_of(await client.get(f"{BASE}/services/event-9999.json"), 404)
    assert error_of(await client.get(f"{BASE}/services/garbage.xml"), 404)
    assert "event-9999" in error_of(await post(client, api_key, service_code="event-9999"), 404)
    assert "not provided" in error_of(await post(client, api_key, service_code=""), 400)
    assert await nothing_stored()


async def test_a_point_outside_the_city_is_refused_and_nothing_stored(client, api_key):
    response = await post(client, api_key, lat="39.9087", long="116.3975")  # Beijing
    assert "outside" in error_of(response, 400)
    assert await nothing_stored()


async def test_an_oversized_description_is_refused_and_nothing_stored(client, api_key):
    response = await post(client, api_key, description="垃圾" * 1001)
    assert "description" in error_of(response, 400)
    assert await nothing_stored()


async def test_an_address_naming_a_known_place_is_located_there(client, api_key):
    community = await Community.all().order_by("code").first()
    (created,) = (await post(client, api_key, address_string=f"{community.name}3号楼门口")).json()
    report = await Report.get(id=int(created["service_request_id"]))
    where = (await get_spatial_index()).locate(report.raw_lon, report.raw_lat, "wgs84")
    assert where.community == community.code and report.address == f"{community.name}3号楼门口"


async def test_an_address_at_two_crossing_roads_is_located_at_their_crossing(client, api_key):
    parts: dict[str, list] = {}
    for name, geometry in await RoadSegment.all().values_list("road_name", "geometry"):
        parts.setdefault(name, []).append(shapely.from_geojson(geometry))
    roads = {name: shapely.union_all(lines) for name, lines in parts.items()}
    first, other = next((a, b) for a in sorted(roads) for b in sorted(roads) if a < b and roads[a].crosses(roads[b]))
    response = await post(client, api_key, address_string=f"{first}与{other}交叉口东北角")
    assert response.status_code == 200, response.text
    report = await Report.get(id=int(response.json()[0]["service_request_id"]))
    point = shapely.Point(report.raw_lon, report.raw_lat)
    assert roads[first].distance(point) < 1e-7 and roads[other].distance(point) < 1e-7


async def test_an_address_naming_nothing_known_is_refused_and_nothing_stored(client, api_key):
    response = await post(client, api_key, address_string="火星基地东门")
    assert error_of(response, 400) == "address_string could not be located; send lat and long"
    assert await nothing_stored()


async def test_contact_details_never_appear_in_any_answer(client, api_key, open311_settings):
    response = await post(
        client,
        api_key,
        description=f"楼下垃圾堆了三天，请回电{PHONE}或写信到zhang.san@example.cn",
        phone=PHONE,
        email="zhang.san@example.cn",
        first_name="三",
        last_name="张",
        device_id="device-0001",
    )
    (created,) = response.json()
    await run_jobs(open311_settings)
    request_id, token = created["service_request_id"], created["token"]
    answers = []
    for fmt in ("json", "xml"):
        for path in (f"requests.{fmt}", f"requests/{request_id}.{fmt}", f"tokens/{token}.{fmt}"):
            answer = await client.get(f"{BASE}/{path}")
            assert answer.status_code == 200
            answers.append(answer.text)
    for text in answers:
        assert PHONE not in text and "zhang.san" not in text and "device-0001" not in text
    (request,) = (await client.get(f"{BASE}/requests/{request_id}.json")).json()
    assert "138****5678" in request["description"] and "z***@example.cn" in request["description"]
    assert set(request) >= {"status", "status_notes", "agency_responsible", "requested_datetime"}
    assert not set(request) & {"phone", "email", "first_name", "last_name", "device_id", "account_id"}


async def test_a_report_held_for_review_is_listed_without_its_words(client, api_key):
    (created,) = (await post(client, api_key, description="不宜公开的内容")).json()
    await Report.filter(id=int(created["service_request_id"])).update(flagged=True)
    (request,) = (await client.get(f"{BASE}/requests/{created['service_request_id']}.json")).json()
    assert request["description"] is None and request["status"] == "open"


async def test_unknown_formats_and_resources_answer_in_the_spec_error_format(client, api_key):
    assert error_of(await client.get(f"{BASE}/requests.yaml"), 404)
    assert error_of(await client.get(f"{BASE}/services.html"), 404)
    assert error_of(await client.get(f"{BASE}/requests/123456789.json"), 404)
    assert error_of(await client.get(f"{BASE}/requests/abc.xml"), 404)
    assert error_of(await client.get(f"{BASE}/tokens/k1-AAAAAAAAAAAAAAAAAAAAAAAA.json"), 404)
    assert error_of(await client.get(f"{BASE}/nothing.json"), 404)
    assert error_of(await client.delete(f"{BASE}/requests.json"), 405)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"lat": "41.8"}, "together"),
        ({"lat": "north", "long": "123.4"}, "lat"),
        ({"lat": "41.8", "long": "999"}, "long"),
        ({"lon": "123.4", "lat": "41.8"}, "unknown field lon"),
        ({"attribute[component_code]": "2101020101000001"}, "no attribute component_code"),
        ({"media_url": "javascript:alert(1)"}, "media_url"),
        ({"address_string": "路" * 257}, "address_string"),
        ({"address_id": "545483", "lat": "", "long": ""}, "address_id"),
    ],
)
async def test_malformed_posts_are_refused_with_400_and_nothing_stored(client, api_key, fields, words):
    assert words in error_of(await post(client, api_key, **fields), 400)
    assert await nothing_stored()


async def test_a_json_post_with_a_component_code_keeps_the_code(client, api_key):
    lon, lat = await a_point()
    body = {
        "api_key": api_key,
        "service_code": "component-0101",
        "lat": lat,
        "long": lon,
        "description": "井盖丢失",
        "attribute": {"component_code": "2101020101000001"},
    }
    response = await client.post(f"{BASE}/requests.json", json=body)
    assert response.status_code == 200, response.text
    report = await Report.get(id=int(response.json()[0]["service_request_id"]))
    assert report.component_code == "2101020101000001" and report.reporter_type == "system"


async def test_a_form_post_answers_in_xml_when_asked(client, api_key):
    response = await post(client, api_key, fmt="xml")
    (created,) = xml_items(response)
    assert created["service_request_id"].isdigit() and created["token"]


async def test_a_client_over_its_rate_limit_hears_429_in_the_spec_format(city, tmp_path, redis_url):
    settings = Settings(database_url=city, var_dir=tmp_path, redis_url=redis_url, rate_ip_per_minute=2, _env_file=None)
    app = create_app(settings)
    async with serving(app) as c:
        answers = [await c.get(f"{BASE}/services.xml") for _ in range(3)]
    assert [a.status_code for a in answers[:2]] == [200, 200]
    assert error_of(answers[2], 429) and int(answers[2].headers["retry-after"]) >= 1


def tongguan(var_dir, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TG_VAR_DIR": str(var_dir), "TG_LOG_JSON": "false", "COLUMNS": "200"}
    env.pop("TG_DATABASE_URL", None)
    env.pop("TG_REDIS_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "tongguan.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_an_operator_adds_lists_and_revokes_api_keys_from_the_command_line(tmp_path):
    assert tongguan(tmp_path, "migrate").returncode == 0
    added = tongguan(tmp_path, "apikeys", "add", "city-hotline")
    assert added.returncode == 0, added.stderr
    key = added.stdout.strip()
    assert key.startswith("tg_") and len(key) > 40 and "not be shown again" in added.stderr

    def listed_row() -> str:
        listed = tongguan(tmp_path, "apikeys", "list")
        assert key not in listed.stderr + listed.stdout  # the key itself is never shown again
        return next(line for line in listed.stderr.splitlines() if "city-hotline" in line)

    year = str(clock.now().year)
    assert key[:10] in listed_row() and listed_row().count(year) == 1  # created, never used, not revoked

    again = tongguan(tmp_path, "apikeys", "add", "city-hotline")
    assert again.returncode == 1 and "api_key_name_taken" in again.stderr

    revoked = tongguan(tmp_path, "apikeys", "revoke", "city-hotline")
    assert revoked.returncode == 0 and "revoked" in revoked.stderr
    assert listed_row().count(year) == 2  # created and revoked

    unknown = tongguan(tmp_path, "apikeys", "revoke", "nobody")
    assert unknown.returncode == 1 and "api_key_not_found" in unknown.stderr
