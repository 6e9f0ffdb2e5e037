"""Patrol check-ins: inside the geofence, with an accurate fix and a fresh photo never used before."""

import io
import json
from datetime import timedelta

import pytest
from PIL import Image

from core import clock
from core.accounts.models import StaffAccount
from core.geo.projection import LocalProjection
from core.media.models import Blob, Media
from core.patrols.models import CheckIn
from core.places.models import RoadWork
from core.regions.models import RoadSegment
from core.settings import get_settings
from tests.factories import field_photo
from tests.field.conftest import bearer
from tests.field.helpers import upload_photo


async def _open_work() -> RoadWork:
    today = clock.china(clock.now()).date()
    return await RoadWork.filter(starts_on__lte=today, ends_on__gte=today).order_by("id").first()


def _east_of(lon: float, lat: float, metres: float) -> tuple[float, float]:
    projection = LocalProjection(lon, lat)
    east, north = projection.to_deg(metres, 0.0)
    return float(east), float(north)


@pytest.fixture
async def patrol(api):
    inspector = await StaffAccount.filter(username__startswith="inspector-").order_by("id").first()
    return await bearer(api, inspector.username)


async def _check_in(api, headers, work, *, lon=None, lat=None, accuracy=10.0, photos=None, **extra):
    lon = work.lon if lon is None else lon
    lat = work.lat if lat is None else lat
    if photos is None:
        photos = [await upload_photo(api, headers, lon=lon, lat=lat)]
    body = {
        "site_kind": "road_work",
        "site_code": work.permit_no,
        "lon": lon,
        "lat": lat,
        "accuracy": accuracy,
        "photos": photos,
        **extra,
    }
    return await api.post("/field/v1/check-ins", json=body, headers=headers)


async def test_a_check_in_inside_the_geofence_with_a_fresh_photo_is_accepted(api, patrol):
    work = await _open_work()
    lon, lat = _east_of(work.lon, work.lat, work.radius_m * 0.5)

    response = await _check_in(api, patrol, work, lon=lon, lat=lat)

    assert response.status_code == 201, response.text
    assert response.json()["distance_m"] == pytest.approx(work.radius_m * 0.5, abs=1.0)
    mine = (await api.get("/field/v1/check-ins", headers=patrol)).json()["items"]
    assert [c["site_code"] for c in mine] == [work.permit_no]
    assert mine[0]["site_kind_name"] == "施工工地"


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("outside", "outside_geofence"),
        ("inaccurate", "gps_inaccurate"),
        ("stale", "photo_stale"),
        ("future", "time_in_future"),
        ("too_old", "time_too_old"),
        ("unknown_site", "site_not_found"),
    ],
)
async def test_a_check_in_that_breaks_a_rule_is_refused_with_the_reason_and_stores_nothing(api, patrol, case, code):
    work = await _open_work()
    now = clock.now()
    kwargs: dict = {}
    if case == "outside":
        kwargs["lon"], kwargs["lat"] = _east_of(work.lon, work.lat, work.radius_m + 80)
    elif case == "inaccurate":
        kwargs["accuracy"] = get_settings().field_gps_accuracy_m + 1
    elif case == "stale":
        kwargs["photos"] = [await upload_photo(api, patrol, taken=now - timedelta(hours=2), lon=work.lon, lat=work.lat)]
    elif case == "future":
        kwargs["at"] = (now + timedelta(hours=1)).isoformat()
    elif case == "too_old":
        kwargs["at"] = (now - timedelta(days=5)).isoformat()
    elif case == "unknown_site":
        work = RoadWork(permit_no="NO-SUCH-PERMIT", lon=work.lon, lat=work.lat, radius_m=100)

    response = await _check_in(api, patrol, work, **kwargs)

    assert response.status_code in (404, 422), response.text
    assert response.json()["code"] == code
    assert response.json()["title"]
    assert await CheckIn.all().count() == 0


async def test_a_photo_proves_one_check_in_only_even_as_a_near_copy(api, patrol):
    work = await _open_work()
    first = await _check_in(api, patrol, work)
    assert first.status_code == 201
    photo = (await CheckIn.get(id=first.json()["check_in_id"])).photos[0]

    again = await _check_in(api, patrol, work, photos=[photo])
    assert again.status_code == 422 and again.json()["code"] == "photo_reused"

    # The same scene saved again (re-encoded: other bytes, another upload) is a near copy.
    seed_photo = field_photo(4242, taken=clock.now(), lon=work.lon, lat=work.lat)
    up = await api.post("/field/v1/media", files={"file": ("a.jpg", seed_photo, "image/jpeg")}, headers=patrol)
    assert (await _check_in(api, patrol, work, photos=[up.json()["media_id"]])).status_code == 201
    image = Image.open(io.BytesIO(seed_photo))
    copy = io.BytesIO()
    image.save(copy, "JPEG", quality=70, exif=image.getexif())
    up2 = await api.post("/field/v1/media", files={"file": ("b.jpg", copy.getvalue(), "image/jpeg")}, headers=patrol)
    media = await Media.get(id=up2.json()["media_id"])
    assert media.blob_id != (await Media.get(id=up.json()["media_id"])).blob_id
    assert await Blob.filter(sha256=media.blob_id).exists()
    copied = await _check_in(api, patrol, work, photos=[media.id])
    assert copied.status_code == 422 and copied.json()["code"] == "photo_reused"
    assert await CheckIn.all().count() == 2


async def test_a_closed_work_takes_no_check_ins(api, patrol):
    today = clock.china(clock.now()).date()
    work = await RoadWork.filter(ends_on__lt=today).first()
    response = await _check_in(api, patrol, work)
    assert response.status_code == 422 and response.json()["code"] == "site_closed"


async def test_a_road_segment_check_in_lies_in_the_corridor_along_the_road(api, patrol):
    road = await RoadSegment.all().order_by("code").first()
    coords = json.loads(road.geometry)["coordinates"]
    (lon0, lat0), (lon1, lat1) = coords[0], coords[1]
    mid_lon, mid_lat = (lon0 + lon1) / 2, (lat0 + lat1) / 2
    photo = await upload_photo(api, patrol, lon=mid_lon, lat=mid_lat)
    body = {"site_kind": "road_segment", "site_code": road.code, "lon": mid_lon, "lat": mid_lat, "accuracy": 8}
    near = await api.post("/field/v1/check-ins", json={**body, "photos": [photo]}, headers=patrol)
    assert near.status_code == 201, near.text
    assert near.json()["distance_m"] < 5

    # 400 m square to the road from its middle.
    projection = LocalProjection(mid_lon, mid_lat)
    (x0, x1), (y0, y1) = projection.to_m([lon0, lon1], [lat0, lat1])
    length = ((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5
    far = projection.to_deg(-(y1 - y0) / length * 400, (x1 - x0) / length * 400)
    far_lon, far_lat = float(far[0]), float(far[1])
    photo = await upload_photo(api, patrol, lon=far_lon, lat=far_lat)
    body.update(lon=far_lon, lat=far_lat, photos=[photo])
    far = await api.post("/field/v1/check-ins", json=body, headers=patrol)
    assert far.status_code == 422 and far.json()["code"] == "outside_geofence"
