"""Muck trucks (控渣土): the vehicle platform's positions against the rules, cover photos, the registry import."""

import asyncio
import io
import json
from datetime import date, datetime, timedelta

import httpx
import numpy as np
import pytest
import shapely
from PIL import ExifTags, Image
from tortoise import Tortoise
from typer.testing import CliRunner

from core import clock
from core.accounts.apikeys import create_key
from core.geo.projection import LocalProjection
from core.geo.service import get_spatial_index
from core.importing import ImportRejected
from core.media.models import Media
from core.muck.models import MuckAlert, MuckCompany, MuckCover, MuckRoute, MuckTruck
from core.muck.service import RouteShape, forget_routes, import_registry, report_alert_job
from core.outbox.models import OutboxEntry
from core.patrols.models import TrackChunk
from core.regions.models import RoadSegment, UnitGrid
from core.reports.models import Report
from core.settings import Settings, reset_settings
from tests.asgi import serving
from tests.factories import jpeg_bytes
from tongguan.app import create_app

DAY = date(2026, 11, 30)
PROJ = LocalProjection(123.43, 41.80)
ON_SPEED = 30.0  # km/h: 250 m every 30 s


def at(hour: int, minute: int = 0, second: int = 0, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=clock.CHINA)


@pytest.fixture
async def app_client(city, tmp_path):
    forget_routes()
    clock.simulate(at(10, 30))
    settings = Settings(
        database_url=city,
        var_dir=tmp_path,
        face_detector="none",
        muck_max_positions=60,
        track_max_points=5,  # a truck's 12 positions go to the track store in three slices
        _env_file=None,
    )
    app = create_app(settings)
    try:
        async with serving(app, base_url="http://t") as c:
            yield c
    finally:
        clock.simulate(None)
        forget_routes()


class World:
    """Two trucks of one company with the same approved route along a road of the small city, 06:00-20:00."""

    def __init__(self, client: httpx.AsyncClient, key: str, route: shapely.LineString, off: tuple[float, float]):
        self.client, self.key, self.route, self.off = client, key, route, off

    def on_route(self, k: int) -> tuple[float, float]:
        """The k-th point driving to and fro along the route (local metres → WGS-84)."""
        length = self.route.length
        s = (k * 250.0) % (2 * length)
        point = self.route.interpolate(s if s <= length else 2 * length - s)
        lon, lat = PROJ.to_deg(point.x, point.y)
        return float(lon), float(lat)

    def off_route(self, k: int) -> tuple[float, float]:
        """Points around a place well away from the route (inside the city), a few metres apart."""
        return self.off[0] + 0.00005 * k, self.off[1]

    async def send(self, items: list[dict], *, key: str | None = None) -> httpx.Response:
        return await self.client.post(
            "/field/v1/muck/positions", json={"positions": items}, headers={"X-Api-Key": key or self.key}
        )

    async def cover(self, plate: str, photo: bytes) -> httpx.Response:
        return await self.client.post(
            "/field/v1/muck/covers",
            data={"plate": plate},
            files={"photo": ("cover.jpg", photo, "image/jpeg")},
            params={"api_key": self.key},
        )


def position(where: tuple[float, float], moment: datetime, *, terminal: str = "T0001", speed: float = ON_SPEED):
    return {"terminal_id": terminal, "t": moment.isoformat(), "lon": where[0], "lat": where[1], "speed": speed}


def cover_photo(taken: str | None, colour: tuple[int, int, int] = (80, 90, 100)) -> bytes:
    """A camera JPEG with DateTimeOriginal `taken` ("2026:11:30 07:00:00"), or without any EXIF time."""
    image = Image.open(io.BytesIO(jpeg_bytes(320, 240, colour=colour)))
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "HIKVISION"
    if taken is not None:
        exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = taken
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


async def route_and_elsewhere() -> tuple[shapely.LineString, tuple[float, float]]:
    """The longest road segment of the small city (local metres), and a grid's point 300-700 m from it."""
    roads = await RoadSegment.all().values_list("geometry", flat=True)
    lines = [shapely.from_geojson(g) for g in roads]
    longest = max(lines, key=lambda g: shapely.length(g))
    xy = shapely.get_coordinates(longest)
    route = shapely.LineString(np.column_stack(PROJ.to_m(xy[:, 0], xy[:, 1])))
    for geometry in await UnitGrid.all().order_by("code").values_list("geometry", flat=True):
        inside = shapely.from_geojson(geometry).point_on_surface()
        x, y = PROJ.to_m(inside.x, inside.y)
        if 300 <= route.distance(shapely.Point(float(x), float(y))) <= 700:
            return route, (inside.x, inside.y)
    raise AssertionError("no grid 300-700 m from the longest road")


def registry(route: shapely.LineString, *, window: str = "06:00-20:00", valid_to: str = "2026-12-31") -> dict:
    xy = shapely.get_coordinates(route)
    lon, lat = PROJ.to_deg(xy[:, 0], xy[:, 1])
    line = {"type": "LineString", "coordinates": np.column_stack([lon, lat]).tolist()}
    return {
        "companies": [{"name": "测试渣土运输有限公司", "license_no": "ZT-TEST-1", "phone": "024-12345678"}],
        "trucks": [
            {"plate": "辽A·T0001", "company": "测试渣土运输有限公司", "terminal_id": "T0001"},
            {"plate": "辽AT0002", "company": "测试渣土运输有限公司", "terminal_id": "T0002"},
        ],
        "routes": [
            {"plate": plate, "name": "测试线路", "geometry": line, "corridor_m": 100, "window": window,
             "valid_from": "2026-11-01", "valid_to": valid_to}
            for plate in ("辽AT0001", "辽AT0002")
        ],
    }  # fmt: skip


async def build_world(client, tmp_path, **route_options) -> World:
    route, elsewhere = await route_and_elsewhere()
    path = tmp_path / "muck.json"
    path.write_text(json.dumps(registry(route, **route_options), ensure_ascii=False), encoding="utf-8")
    await import_registry(path=path)
    key = await create_key(name="vehicle-platform")
    return World(client, key, route, elsewhere)


@pytest.fixture
async def world(app_client, tmp_path) -> World:
    return await build_world(app_client, tmp_path)


async def sensor_reports() -> list[Report]:
    return await Report.filter(source="sensor").order_by("id")


async def test_a_truck_on_its_route_in_its_window_with_a_cover_photo_raises_nothing(world):
    assert (await world.cover("辽AT0001", cover_photo("2026:11:30 07:00:00"))).status_code == 201
    response = await world.send([position(world.on_route(k), at(10, 0) + timedelta(seconds=30 * k)) for k in range(12)])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["received"] == 12 and body["accepted"] == 12 and body["errors"] == []
    assert body["trucks"][0]["plate"] == "辽AT0001" and body["alerts"] == []
    assert await MuckAlert.all().count() == 0
    assert await sensor_reports() == []


async def test_driving_off_the_corridor_longer_than_the_threshold_raises_one_alert_and_one_report(world):
    await world.cover("辽AT0001", cover_photo("2026:11:30 07:00:00"))
    on = [position(world.on_route(k), at(10, 0) + timedelta(seconds=30 * k)) for k in range(3)]
    # Off the corridor from 10:01:30 on, every 30 s; the batches come a few positions at a time.
    off = [position(world.off_route(k), at(10, 1, 30) + timedelta(seconds=30 * k)) for k in range(7)]
    first = (await world.send(on + off[:3])).json()
    assert first["alerts"] == []  # a minute off the route is not yet more than two
    second = (await world.send(off[3:])).json()
    assert [a["rule"] for a in second["alerts"]] == ["off_route"]

    alert = await MuckAlert.get()
    assert (alert.rule, alert.day, alert.key) == ("off_route", DAY, f"muck:{alert.truck_id}:off_route:20261130")
    assert alert.detail["reason"] == "off_corridor" and alert.detail["distance_m"] > 100
    assert alert.detail["since"].startswith("2026-11-30T10:01:30")
    (report,) = await sensor_reports()
    assert report.id == alert.report_id and report.idempotency_key == alert.key
    assert (report.reporter_type, report.reporter_id) == ("system", "muck")
    assert "辽AT0001" in report.text and "测试渣土运输有限公司" in report.text and "偏离核准路线" in report.text
    assert (await report.subclass).code == "0303"

    # The platform sends both batches again (it did not see the answers): nothing new.
    for batch in (on + off[:3], off[3:]):
        again = (await world.send(batch)).json()
        assert again["alerts"] == [] and again["accepted"] == 0
    assert await MuckAlert.all().count() == 1
    assert len(await sensor_reports()) == 1


async def test_an_alert_left_unreported_by_a_stopped_process_is_reported_by_its_job_once(world):
    await world.cover("辽AT0001", cover_photo("2026:11:30 07:00:00"))
    off = [position(world.off_route(k), at(10, 1, 30) + timedelta(seconds=30 * k)) for k in range(7)]
    await world.send(off)
    alert = await MuckAlert.get()
    entry = await OutboxEntry.get(task="muck_report")
    assert entry.args == {"alert_id": alert.id}
    # The embedded runner runs that job soon (and finds it done); wait for it, so it cannot run in the middle below.
    for _ in range(200):
        if (await OutboxEntry.get(id=entry.id)).status not in ("pending", "queued"):
            break
        await asyncio.sleep(0.05)
    # As if the process had stopped after writing the alert and its job, before noting the report.
    await MuckAlert.filter(id=alert.id).update(report_id=None)

    assert await report_alert_job(alert_id=alert.id) == "reported"
    assert await report_alert_job(alert_id=alert.id) == "done"

    (report,) = await sensor_reports()
    assert (await MuckAlert.get(id=alert.id)).report_id == report.id


async def test_the_same_batch_twice_at_once_makes_one_alert_and_one_report(world):
    batch = [position(world.on_route(k), at(10, 0) + timedelta(seconds=30 * k)) for k in range(6)]
    answers = await asyncio.gather(world.send(batch), world.send(batch))
    assert sorted(len(a.json()["alerts"]) for a in answers) == [0, 1]
    assert await MuckAlert.filter(rule="no_cover").count() == 1
    assert len(await sensor_reports()) == 1


async def test_a_short_gps_jump_off_the_route_raises_nothing(world):
    await world.cover("辽AT0001", cover_photo("2026:11:30 07:00:00"))
    track = [world.on_route(k) for k in range(12)]
    track[4], track[5] = world.off_route(0), world.off_route(1)  # 30 s off the road, then back
    response = await world.send(
        [position(where, at(10, 0) + timedelta(seconds=30 * k)) for k, where in enumerate(track)]
    )
    assert response.json()["alerts"] == []
    assert await MuckAlert.all().count() == 0


async def test_standing_off_the_route_raises_nothing(world):
    await world.cover("辽AT0001", cover_photo("2026:11:30 07:00:00"))
    parked = [position(world.off_route(0), at(10, 0) + timedelta(seconds=30 * k), speed=0.0) for k in range(12)]
    assert (await world.send(parked)).json()["alerts"] == []


async def test_moving_at_two_in_the_night_with_a_day_window_raises_off_hours(world):
    clock.simulate(at(2, 10))
    await world.cover("辽AT0001", cover_photo("2026:11:30 01:30:00"))
    response = await world.send([position(world.on_route(k), at(2, 0) + timedelta(seconds=30 * k)) for k in range(6)])
    alerts = response.json()["alerts"]
    assert [a["rule"] for a in alerts] == ["off_hours"]
    assert alerts[0]["at"].startswith("2026-11-30T02:00:00")
    alert = await MuckAlert.get()
    assert alert.detail == {"time": "02:00", "windows": ["06:00-20:00"]}
    (report,) = await sensor_reports()
    assert "核准运输时段为06:00-20:00" in report.text


async def test_moving_without_a_cover_photo_raises_no_cover(world):
    response = await world.send([position(world.on_route(k), at(10, 0) + timedelta(seconds=30 * k)) for k in range(4)])
    assert [a["rule"] for a in response.json()["alerts"]] == ["no_cover"]
    (report,) = await sensor_reports()
    assert (await report.subclass).code == "0308"
    # A photo taken later that day covers what comes after it, not what came before.
    await world.cover("辽AT0001", cover_photo("2026:11:30 10:05:00"))
    later = await world.send([position(world.on_route(k), at(10, 6) + timedelta(seconds=30 * k)) for k in range(4)])
    assert later.json()["alerts"] == []


async def test_a_truck_without_a_valid_route_that_moves_is_off_route(app_client, tmp_path):
    world = await build_world(app_client, tmp_path, valid_to="2026-11-29")
    await world.cover("辽AT0001", cover_photo("2026:11:30 07:00:00"))
    response = await world.send([position(world.on_route(k), at(10, 0) + timedelta(seconds=30 * k)) for k in range(8)])
    assert [a["rule"] for a in response.json()["alerts"]] == ["off_route"]
    alert = await MuckAlert.get()
    assert alert.detail["reason"] == "no_route"
    assert "没有有效的核准路线" in (await sensor_reports())[0].text


async def test_a_cover_photo_without_exif_time_or_from_yesterday_is_refused(world):
    before = await Media.all().count()
    missing = await world.cover("辽AT0001", cover_photo(None))
    assert missing.status_code == 422
    assert missing.json()["code"] == "cover_time_missing" and "拍摄时间" in missing.json()["title"]
    yesterday = await world.cover("辽AT0001", cover_photo("2026:11:29 18:00:00", colour=(1, 2, 3)))
    assert yesterday.status_code == 422 and yesterday.json()["code"] == "cover_not_today"
    unknown = await world.cover("辽AZ9999", cover_photo("2026:11:30 07:00:00"))
    assert unknown.status_code == 404 and unknown.json()["code"] == "truck_unknown"
    assert await MuckCover.all().count() == 0
    assert await Media.all().count() == before


async def test_a_cover_photo_of_today_is_kept_for_that_day(world):
    response = await world.cover("辽at0001", cover_photo("2026:11:30 07:00:00"))
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["plate"], body["day"], body["created"]) == ("辽AT0001", "2026-11-30", True)
    assert (await world.cover("辽AT0001", cover_photo("2026:11:30 07:00:00"))).json()["created"] is False
    cover = await MuckCover.get()
    assert cover.taken_at == at(7) and cover.media_id == body["media_id"]
    assert (await Media.get(id=body["media_id"])).owner_type == "system"


async def test_a_camera_sized_cover_photo_is_taken_whole(world):
    noise = Image.effect_noise((2400, 1800), 60).convert("RGB")
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "2026:11:30 07:00:00"
    out = io.BytesIO()
    noise.save(out, "JPEG", quality=95, exif=exif)
    assert len(out.getvalue()) > 2 * 1024 * 1024  # above the API's 1 MiB default body limit
    response = await world.cover("辽AT0001", out.getvalue())
    assert response.status_code == 201, response.text


async def test_an_unknown_plate_is_refused_per_item_while_the_other_trucks_positions_are_stored(world):
    items = [position(world.on_route(k), at(10, 0) + timedelta(seconds=30 * k)) for k in range(3)]
    items.insert(1, {"plate": "辽AZ9999", "t": at(10).isoformat(), "lon": 123.43, "lat": 41.8, "speed": 20})
    items.append({"terminal_id": "T0002", "t": at(10).isoformat(), "lon": 123.43, "lat": 999, "speed": 20})
    items.append(position(world.on_route(0), at(10), terminal="T0002"))
    items.append({"terminal_id": "T0002", "t": "yesterday", "lon": 123.43, "lat": 41.8})
    response = await world.send(items)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [(e["index"], e["code"]) for e in body["errors"]] == [
        (1, "truck_unknown"),
        (4, "bad_position"),
        (6, "bad_position"),
    ]
    assert body["errors"][0]["title"] == "车辆未登记，请核对车牌号或终端号。"
    assert {t["plate"]: t["accepted"] for t in body["trucks"]} == {"辽AT0001": 3, "辽AT0002": 1}
    ids = {str(t.id) for t in await MuckTruck.all()}
    stored = await TrackChunk.filter(subject_type="vehicle").values_list("subject_id", "n")
    assert sorted(n for subject, n in stored if subject in ids) == [1, 3]


async def test_positions_of_an_inactive_truck_are_refused_per_item(world):
    await MuckTruck.filter(plate="辽AT0002").update(active=False)
    response = await world.send([position(world.on_route(0), at(10), terminal="T0002")])
    assert [e["code"] for e in response.json()["errors"]] == ["truck_inactive"]
    assert await TrackChunk.all().count() == 0


async def test_a_wrong_api_key_is_refused_and_nothing_is_stored(world):
    items = [position(world.on_route(k), at(10, 0) + timedelta(seconds=30 * k)) for k in range(3)]
    wrong = await world.send(items, key="tg_not-a-key")
    assert wrong.status_code == 403
    assert wrong.headers["content-type"].startswith("application/problem+json")
    assert wrong.json()["code"] == "api_key_invalid"
    missing = await world.client.post("/field/v1/muck/positions", json={"positions": items})
    assert missing.status_code == 403 and missing.json()["code"] == "api_key_missing"
    assert await TrackChunk.all().count() == 0


async def test_an_oversized_batch_is_refused_whole(world):
    items = [
        position(world.on_route(k), at(10, 0) + timedelta(seconds=5 * k)) for k in range(61)
    ]  # the limit is 60 here
    response = await world.send(items)
    assert response.status_code == 413
    assert response.json()["code"] == "batch_too_large"
    assert await TrackChunk.all().count() == 0


async def test_the_alert_reports_become_cases_through_the_embedded_runner(world):
    response = await world.send([position(world.on_route(k), at(10, 0) + timedelta(seconds=30 * k)) for k in range(4)])
    (alert,) = response.json()["alerts"]
    for _ in range(100):
        report = await Report.get(id=alert["report_id"])
        if report.case_id is not None:
            break
        await asyncio.sleep(0.05)
    assert report.status in ("cased", "merged") and report.case_id is not None


# --- the registry import ------------------------------------------------------------------------------------------


async def test_the_import_refuses_a_file_with_errors_and_writes_nothing(app_client, tmp_path):
    route, _ = await route_and_elsewhere()
    data = registry(route)
    data["trucks"].append({"plate": "ABC", "company": "无此公司"})
    data["routes"][0]["window"] = "25:00-05:00"
    data["routes"][1]["geometry"] = {"type": "LineString", "coordinates": [[100.0, 30.0], [100.1, 30.1]]}
    data["routes"].append({**data["routes"][0], "plate": "辽AX0000", "window": "22:00-05:00"})
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    counts = [await MuckCompany.all().count(), await MuckTruck.all().count(), await MuckRoute.all().count()]
    with pytest.raises(ImportRejected) as refused:
        await import_registry(path=path)
    codes = {(e.field, e.code) for e in refused.value.report.errors}
    assert codes == {
        ("trucks.plate", "bad_plate"),
        ("trucks.company", "unknown_company"),
        ("routes.window", "bad_window"),
        ("routes.geometry", "outside_city"),
        ("routes.plate", "unknown_truck"),
    }
    assert [await MuckCompany.all().count(), await MuckTruck.all().count(), await MuckRoute.all().count()] == counts


async def test_importing_again_updates_trucks_and_replaces_their_routes(app_client, tmp_path):
    route, _ = await route_and_elsewhere()
    path = tmp_path / "muck.json"
    path.write_text(json.dumps(registry(route), ensure_ascii=False), encoding="utf-8")
    first = await import_registry(path=path)
    assert first.counts["trucks added"] == 2 and first.counts["routes"] == 2
    data = registry(route, window="22:00-05:00")
    # The two trucks swap their terminals.
    data["trucks"][0]["terminal_id"], data["trucks"][1]["terminal_id"] = "T0002", "T0001"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    second = await import_registry(path=path)
    assert second.counts["trucks updated"] == 2 and second.counts["companies updated"] == 1
    truck = await MuckTruck.get(plate="辽AT0001")
    assert truck.terminal_id == "T0002"
    windows = await MuckRoute.filter(truck_id=truck.id).values_list("window_start_min", "window_end_min")
    assert windows == [(22 * 60, 5 * 60)]


async def run_cli(city: str, monkeypatch, *args: str):
    """`tongguan …` in-process on the test database; the command opens the database in its own event loop."""
    from tongguan.cli import app

    await Tortoise.close_connections()
    monkeypatch.setenv("TG_DATABASE_URL", city)
    reset_settings()
    try:
        return await asyncio.to_thread(CliRunner(env={"COLUMNS": "200"}).invoke, app, list(args))
    finally:
        reset_settings()


async def test_the_command_refuses_a_bad_file_with_a_list_of_errors(city, tmp_path, monkeypatch):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"trucks": [{"plate": "辽AT0009", "company": "无此公司"}]}), encoding="utf-8")
    result = await run_cli(city, monkeypatch, "muck", "import", str(path))
    assert result.exit_code == 1
    assert "unknown_company" in result.output and "nothing was written" in result.output


async def test_the_command_lists_a_days_alerts(city, monkeypatch):
    truck = await MuckTruck.all().order_by("id").first().select_related("company")
    await MuckAlert.create(
        key=f"muck:{truck.id}:off_hours:20261130", truck_id=truck.id, rule="off_hours", day=DAY, at=at(2, 5),
        lon=123.43, lat=41.8, detail={"time": "02:05", "windows": ["06:00-20:00"]}, report_id=77,
    )  # fmt: skip
    result = await run_cli(city, monkeypatch, "muck", "alerts", "--day", "2026-11-30")
    assert result.exit_code == 0, result.output
    assert truck.plate in result.output and truck.company.name in result.output
    assert "非核准时段行驶" in result.output and "06:00-20:00" in result.output and "77" in result.output


# --- the seeded city and the rules' pieces ------------------------------------------------------------------------


async def test_the_seeded_city_has_muck_trucks_on_routes_along_its_roads(city):
    assert await MuckCompany.all().count() == 3
    assert await MuckTruck.all().count() == 12
    roads = shapely.union_all(
        [shapely.from_geojson(g) for g in await RoadSegment.all().values_list("geometry", flat=True)]
    )
    index = await get_spatial_index()
    for geometry in await MuckRoute.all().values_list("geometry", flat=True):
        line = shapely.from_geojson(geometry)
        assert shapely.hausdorff_distance(line, shapely.intersection(line, roads.buffer(1e-5))) < 1e-5
        assert index.locate(*shapely.get_coordinates(line.interpolate(0.5, normalized=True))[0]) is not None


def test_a_night_window_runs_past_midnight_and_belongs_to_the_day_it_began():
    route = RouteShape(1, 1, shapely.LineString([(0, 0), (1, 0)]), 100, 22 * 60, 5 * 60, DAY, DAY)
    assert route.in_window(at(23, 30)) and route.in_window(at(4, 59, day=DAY + timedelta(days=1)))
    assert not route.in_window(at(5, 0, day=DAY + timedelta(days=1)))
    assert not route.in_window(at(3, 0))  # that window began the day before its validity
    assert not route.in_window(at(12, 0))
    assert route.applies(at(4, 0, day=DAY + timedelta(days=1))) and not route.applies(at(6, 0, day=DAY + timedelta(1)))
