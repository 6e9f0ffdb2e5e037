"""GPS tracks of field workers: upload, replays and late batches, per-point refusals, spoofing, patrol days, reads."""

from __future__ import annotations

import asyncio
import itertools
import math
from datetime import datetime, timedelta

import numpy as np
import pytest
import shapely

from core import clock
from core.accounts.models import StaffAccount
from core.audit.models import AuditEntry
from core.geo.projection import haversine_m
from core.outbox.models import OutboxEntry
from core.patrols import summary, tracks
from core.patrols.models import CheckIn, PatrolDay, TrackChunk, TrackHead
from core.patrols.tracks import TrackPoint
from core.regions.models import ResponsibilityGrid, RoadSegment, UnitGrid
from core.settings import get_settings
from jobs.relay import SweepSchedule
from tests.factories import interior_point
from tests.field.conftest import bearer

# Yesterday 10:00 China time: always 14-38 h ago, inside the 72 h an offline phone may be late, never over midnight.
YESTERDAY = (clock.now() - timedelta(days=1)).date()
MORNING = datetime(YESTERDAY.year, YESTERDAY.month, YESTERDAY.day, 10, 0, tzinfo=clock.CHINA)


async def inspectors(n: int = 2) -> list[tuple[str, int]]:
    """(username, staff id) of the first n inspectors of the small city."""
    codes = await ResponsibilityGrid.all().order_by("code").limit(n).values_list("code", flat=True)
    out = []
    for code in codes:
        staff = await StaffAccount.get(username=f"inspector-{code}")
        out.append((staff.username, staff.id))
    return out


def walk(start: tuple[float, float], at: datetime, n: int, *, step_s: int = 10, dlon: float = 2e-5, dlat: float = 1e-5):
    """n points from `start`, one every step_s seconds, ~2 m a step (a walk)."""
    return [
        {
            "t": (at + timedelta(seconds=i * step_s)).isoformat(),
            "lon": round(start[0] + i * dlon, 6),
            "lat": round(start[1] + i * dlat, 6),
            "accuracy": 5.0,
            "speed": 4.5,
        }
        for i in range(n)
    ]


async def upload(api, headers, points, datum="wgs84"):
    return await api.post("/field/v1/tracks", json={"datum": datum, "points": points}, headers=headers)


async def grid_point(i: int = 0) -> tuple[float, float]:
    code = (await UnitGrid.all().order_by("code").offset(i).first()).code
    return await interior_point(code)


def test_the_packed_format_round_trips_negative_deltas_and_missing_values():
    rng = np.random.default_rng(3)
    n = 300
    at = 1_790_000_000_000 + np.cumsum(rng.integers(-20_000, 30_000, n))  # out of order too
    lon = np.round(123.43 + np.cumsum(rng.normal(0, 3e-5, n)), 6)  # west and east
    lat = np.round(41.80 + np.cumsum(rng.normal(0, 3e-5, n)), 6)  # south and north
    acc = np.round(rng.uniform(0, 80, n), 1)
    speed = np.round(rng.uniform(0, 60, n), 1)
    acc[::7], speed[::5] = np.nan, np.nan
    spoofed = rng.random(n) < 0.1
    back = tracks.unpack(tracks.pack(at, lon, lat, acc, speed, spoofed))
    assert (back["at_ms"] == at).all()
    assert (back["lon"] == lon).all() and (back["lat"] == lat).all()
    assert np.array_equal(back["accuracy_m"], acc, equal_nan=True)
    assert np.array_equal(back["speed_kmh"], speed, equal_nan=True)
    assert (back["spoofed"] == spoofed).all()
    assert len(tracks.pack(at, lon, lat, acc, speed, spoofed)) < 12 * n  # against ~110 bytes a row


async def test_a_batch_is_stored_and_read_back_exactly(api):
    (user, staff_id), _ = await inspectors()
    headers = await bearer(api, user)
    lon, lat = await grid_point()
    # Westward and southward: negative coordinate deltas; uneven times; one point without accuracy and speed.
    points = walk((lon, lat), MORNING, 40, step_s=7, dlon=-1.3e-5, dlat=-0.7e-5)
    points[5] = {"t": points[5]["t"], "lon": points[5]["lon"], "lat": points[5]["lat"]}
    points[9]["t"] = int(datetime.fromisoformat(points[9]["t"]).timestamp() * 1000) + 1  # epoch ms works too
    response = await upload(api, headers, points)
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 40, "spoofed": [], "duplicates": 0, "rejected": []}

    stored = await tracks.day_points(subject_type="staff", subject_id=str(staff_id), day=YESTERDAY)
    assert len(stored) == 40
    for p, s in zip(points, stored, strict=True):
        t = p["t"] if isinstance(p["t"], int) else int(datetime.fromisoformat(p["t"]).timestamp() * 1000)
        assert int(s["at_ms"]) == t
        assert float(s["lon"]) == p["lon"] and float(s["lat"]) == p["lat"]
        assert (math.isnan(s["accuracy_m"]) and "accuracy" not in p) or float(s["accuracy_m"]) == p["accuracy"]
        assert not s["spoofed"]
    chunk = await TrackChunk.get(subject_type="staff", subject_id=str(staff_id))
    assert (chunk.day, chunk.n, chunk.spoofed) == (YESTERDAY, 40, 0)
    head = await TrackHead.get(subject_type="staff", subject_id=str(staff_id))
    assert head.points == 40 and (head.last_lon, head.last_lat) == (points[-1]["lon"], points[-1]["lat"])

    geojson = (await api.get(f"/field/v1/tracks/{YESTERDAY}", headers=headers)).json()
    line = geojson["features"][0]
    assert line["geometry"]["type"] == "LineString" and len(line["geometry"]["coordinates"]) == 40


async def test_a_replayed_batch_stores_nothing_twice(api):
    (user, staff_id), _ = await inspectors()
    headers = await bearer(api, user)
    points = walk(await grid_point(), MORNING, 30)
    assert (await upload(api, headers, points)).json()["accepted"] == 30
    again = (await upload(api, headers, points)).json()
    assert again == {"accepted": 0, "spoofed": [], "duplicates": 30, "rejected": []}
    assert await TrackChunk.filter(subject_id=str(staff_id)).count() == 1
    assert (await TrackHead.get(subject_id=str(staff_id))).points == 30


async def test_two_copies_of_a_batch_sent_at_once_are_stored_once(api):
    (_, staff_id), _ = await inspectors()
    columns = tracks.TrackColumns.from_points(
        [TrackPoint(MORNING + timedelta(seconds=10 * i), 123.43 + i * 1e-5, 41.80, 5.0, 3.0) for i in range(200)]
    )
    results = await asyncio.gather(
        *(tracks.ingest_columns(subject_type="staff", subject_id=str(staff_id), columns=columns) for _ in range(2))
    )
    assert sorted(r.accepted for r in results) == [0, 200]
    assert sorted(r.duplicates for r in results) == [0, 200]
    assert len(await tracks.day_points(subject_type="staff", subject_id=str(staff_id), day=YESTERDAY)) == 200


async def test_a_late_batch_from_an_offline_queue_is_stored(api):
    (user, staff_id), _ = await inspectors()
    headers = await bearer(api, user)
    points = walk(await grid_point(), MORNING, 60)
    assert (await upload(api, headers, points[30:])).json()["accepted"] == 30
    late = (await upload(api, headers, points[:30])).json()
    assert late == {"accepted": 30, "spoofed": [], "duplicates": 0, "rejected": []}
    stored = await tracks.day_points(subject_type="staff", subject_id=str(staff_id), day=YESTERDAY)
    assert len(stored) == 60 and (np.diff(stored["at_ms"]) > 0).all()
    # The head stays at the latest point; the late points of a finished day ask for its summary again.
    head = await TrackHead.get(subject_id=str(staff_id))
    assert head.last_lon == points[-1]["lon"]
    entries = await OutboxEntry.filter(task="patrol_days")
    assert {"day": YESTERDAY.isoformat(), "staff_ids": [staff_id]} in [e.args for e in entries]


async def test_bad_points_are_refused_one_by_one_and_the_good_ones_stored(api):
    (user, staff_id), _ = await inspectors()
    headers = await bearer(api, user)
    now = clock.now()
    lon, lat = await grid_point()
    good = walk((lon, lat), MORNING, 4)
    bad = [
        {"t": (now + timedelta(minutes=20)).isoformat(), "lon": lon, "lat": lat},  # from the future
        {"t": (now - timedelta(hours=80)).isoformat(), "lon": lon, "lat": lat},  # older than 72 h
        {"t": MORNING.isoformat(), "lon": 116.40, "lat": 39.90},  # Beijing: outside the city
        {"t": (MORNING + timedelta(seconds=5)).isoformat(), "lon": lon, "lat": lat, "accuracy": -3},
        {"t": "2026-11-30T10:00:00", "lon": lon, "lat": lat},  # no zone
    ]
    response = await upload(api, headers, [good[0], *bad, *good[1:]])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 4
    codes = {r["index"]: r["code"] for r in body["rejected"]}
    assert codes == {
        1: "point_in_future",
        2: "point_too_old",
        3: "point_outside_city",
        4: "bad_accuracy",
        5: "bad_time",
    }
    assert all(r["title"] and "请求无法完成" not in r["title"] for r in body["rejected"])
    stored = await tracks.day_points(subject_type="staff", subject_id=str(staff_id), day=YESTERDAY)
    assert len(stored) == 4


async def test_a_point_a_day_late_is_still_accepted(db):
    result_day = (clock.now() - timedelta(hours=30)).date()
    result = await tracks.ingest(
        subject_type="vehicle",
        subject_id="muck-7",
        points=[TrackPoint(clock.now() - timedelta(hours=30), 123.43, 41.80, 8.0, 20.0)],
    )
    assert (result.accepted, result.rejected) == (1, [])
    assert len(await tracks.day_points(subject_type="vehicle", subject_id="muck-7", day=result_day)) == 1


async def test_a_gcj02_batch_is_stored_in_wgs84(api):
    from core.geo.datum import from_wgs84

    (user, staff_id), _ = await inspectors()
    headers = await bearer(api, user)
    lon, lat = await grid_point()
    glon, glat = from_wgs84(lon, lat, "gcj02")
    response = await upload(api, headers, [{"t": MORNING.isoformat(), "lon": glon, "lat": glat}], datum="gcj02")
    assert response.json()["accepted"] == 1
    stored = await tracks.day_points(subject_type="staff", subject_id=str(staff_id), day=YESTERDAY)
    assert haversine_m(float(stored["lon"][0]), float(stored["lat"][0]), lon, lat) < 0.5


async def test_a_250_kmh_jump_is_flagged_and_left_out_of_the_distance(api):
    (user, staff_id), _ = await inspectors()
    headers = await bearer(api, user)
    lon, lat = await grid_point()
    points = walk((lon, lat), MORNING, 10)
    # 10 s after the last point, 694 m further east: 250 km/h. Then the walk goes on from where it was.
    last = points[-1]
    jump_at = datetime.fromisoformat(last["t"]) + timedelta(seconds=10)
    jump_lon = last["lon"] + 694.4 / (111_195 * math.cos(math.radians(last["lat"])))
    points.append({"t": jump_at.isoformat(), "lon": round(jump_lon, 6), "lat": last["lat"]})
    points += walk((last["lon"] + 2e-5, last["lat"] + 1e-5), jump_at + timedelta(seconds=10), 5)
    body = (await upload(api, headers, points)).json()
    assert body["spoofed"] == [10] and body["accepted"] == 16
    head = await TrackHead.get(subject_id=str(staff_id))
    assert head.last_lon == points[-1]["lon"]  # the flagged point did not move the head

    day = await summary.summarize(staff_id=staff_id, day=YESTERDAY)
    honest = [p for i, p in enumerate(points) if i != 10]
    expected = sum(haversine_m(a["lon"], a["lat"], b["lon"], b["lat"]) for a, b in itertools.pairwise(honest))
    assert (day.points, day.spoofed) == (16, 1)
    assert day.distance_m == pytest.approx(expected, abs=0.5)
    assert day.distance_m < 100  # the jump there and back would add ~1.4 km

    geojson = (await api.get(f"/field/v1/tracks/{YESTERDAY}", headers=headers)).json()
    marked = [f for f in geojson["features"] if f["properties"].get("spoofed")]
    assert len(marked) == 1 and len(geojson["features"][0]["geometry"]["coordinates"]) == 15


async def test_a_jump_against_the_head_of_an_earlier_batch_is_flagged(db):
    lon, lat = 123.43, 41.80
    first = [TrackPoint(MORNING, lon, lat, 5.0)]
    await tracks.ingest(subject_type="vehicle", subject_id="v1", points=first)
    later = [TrackPoint(MORNING + timedelta(seconds=60), lon + 0.1, lat, 5.0)]  # 8.3 km in a minute
    result = await tracks.ingest(subject_type="vehicle", subject_id="v1", points=later)
    assert result.spoofed == [0] and result.accepted == 1


async def test_an_oversized_batch_is_refused_whole_and_nothing_is_stored(api):
    (user, staff_id), _ = await inspectors()
    headers = await bearer(api, user)
    limit = get_settings().track_max_points
    points = walk(await grid_point(), MORNING, limit + 1, step_s=1)
    response = await upload(api, headers, points)
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "batch_too_large"
    assert not await TrackChunk.filter(subject_id=str(staff_id)).exists()
    assert not await TrackHead.filter(subject_id=str(staff_id)).exists()


async def test_a_malformed_body_is_a_422_problem(api):
    (user, _), _ = await inspectors()
    headers = await bearer(api, user)
    response = await api.post("/field/v1/tracks", json={"datum": "mars", "points": [{"t": 1}]}, headers=headers)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"


async def two_grids_close_together() -> tuple[str, str, tuple[float, float], tuple[float, float]]:
    """Two unit grids whose interior points lie 200-1,500 m apart (a minute's walk or ride between them)."""
    codes = await UnitGrid.all().order_by("code").values_list("code", flat=True)
    points = {c: await interior_point(c) for c in codes[:40]}
    for a in codes[:40]:
        for b in codes[:40]:
            d = haversine_m(*points[a], *points[b])
            if a != b and 200 < d < 1500:
                return a, b, points[a], points[b]
    raise AssertionError("no two grids 200-1,500 m apart")


async def test_the_patrol_day_counts_distance_and_time_per_grid_on_a_walk_across_two_grids(api):
    (user, staff_id), _ = await inspectors()
    headers = await bearer(api, user)
    a, b, pa, pb = await two_grids_close_together()
    # 5 points in grid A a minute apart, then 4 in grid B a minute apart; a 3-minute silence (over the 120 s gap)
    # before one more point in B, which adds neither time nor distance.
    at = [MORNING + timedelta(minutes=i) for i in range(9)] + [MORNING + timedelta(minutes=12)]
    where = [pa] * 5 + [pb] * 5
    points = [
        {"t": t.isoformat(), "lon": round(p[0], 6), "lat": round(p[1], 6), "accuracy": 5}
        for t, p in zip(at, where, strict=True)
    ]
    assert (await upload(api, headers, points)).json()["accepted"] == 10

    day = await summary.summarize(staff_id=staff_id, day=YESTERDAY)
    a_to_b = haversine_m(points[4]["lon"], points[4]["lat"], points[5]["lon"], points[5]["lat"])
    assert day.distance_m == pytest.approx(a_to_b, abs=0.5)
    assert day.active_s == 8 * 60
    assert day.grids == {a: 5 * 60, b: 3 * 60}  # the interval from A to B belongs to A, its earlier point
    assert day.first_at == MORNING and day.last_at == MORNING + timedelta(minutes=12)

    shown = (await api.get(f"/field/v1/patrols/days/{YESTERDAY}", headers=headers)).json()
    assert shown["grids"] == {a: 300, b: 180} and shown["distance_m"] == pytest.approx(a_to_b, abs=0.5)


async def test_the_summary_job_can_run_twice(api):
    (user1, id1), (user2, id2) = await inspectors()
    for user, i in ((user1, 0), (user2, 1)):
        await upload(api, await bearer(api, user), walk(await grid_point(i), MORNING, 20, step_s=30))
    first = await summary.patrol_days_job(YESTERDAY.isoformat())
    rows = {r.staff_id: (r.distance_m, r.active_s, r.grids) for r in await PatrolDay.filter(day=YESTERDAY)}
    second = await summary.patrol_days_job(YESTERDAY.isoformat())
    assert first == second == {"staff": 2, "summarised": 2, "failed": 0}
    assert await PatrolDay.filter(day=YESTERDAY).count() == 2
    again = {r.staff_id: (r.distance_m, r.active_s, r.grids) for r in await PatrolDay.filter(day=YESTERDAY)}
    assert again == rows and set(rows) == {id1, id2}
    assert rows[id1][1] == 19 * 30


async def test_the_patrol_day_counts_the_days_check_ins(api):
    (user1, id1), (_, id2) = await inspectors()
    await upload(api, await bearer(api, user1), walk(await grid_point(), MORNING, 5))
    lon, lat = await grid_point()
    for staff_id, n in ((id1, 2), (id2, 1)):  # the second worker checked in without a track
        for k in range(n):
            await CheckIn.create(
                staff_id=staff_id, site_kind="road_segment", site_code=f"R{k}", day=YESTERDAY,
                at=MORNING + timedelta(minutes=k), lon=lon, lat=lat, accuracy_m=5, distance_m=3,
            )  # fmt: skip
    run = await summary.summarize_day(day=YESTERDAY)
    assert run.staff == 2 and not run.failed
    days = dict(await PatrolDay.filter(day=YESTERDAY).values_list("staff_id", "check_ins"))
    assert days == {id1: 2, id2: 1}


async def test_one_broken_worker_does_not_sink_the_summary_job(api):
    (user, staff_id), _ = await inspectors()
    await upload(api, await bearer(api, user), walk(await grid_point(), MORNING, 5))
    await TrackChunk.create(
        subject_type="staff", subject_id="999999", day=YESTERDAY, t0=MORNING, t1=MORNING, n=1, data=b"\x09junk",
        received_at=MORNING,
    )  # fmt: skip
    run = await summary.summarize_day(day=YESTERDAY)
    assert run.summarised == 1 and set(run.failed) == {999999}
    assert await PatrolDay.filter(staff_id=staff_id, day=YESTERDAY).exists()


async def test_a_dispatchers_read_of_a_workers_day_is_audited(api):
    (user, staff_id), _ = await inspectors()
    await upload(api, await bearer(api, user), walk(await grid_point(), MORNING, 10))
    desk = await bearer(api, "dispatcher")
    response = await api.get(
        "/staff/v1/patrols/days", params={"day": str(YESTERDAY), "staff": staff_id, "purpose": "考勤核对"}, headers=desk
    )
    assert response.status_code == 200, response.text
    assert response.json()["items"][0]["points"] == 10
    entry = await AuditEntry.get(action="patrol_day.read")
    assert (entry.object_type, entry.object_id, entry.purpose) == ("patrol_day", f"{staff_id}:{YESTERDAY}", "考勤核对")
    dispatcher = await StaffAccount.get(username="dispatcher")
    assert entry.actor_id == str(dispatcher.id)

    track = await api.get("/staff/v1/patrols/tracks", params={"day": str(YESTERDAY), "staff": staff_id}, headers=desk)
    assert (
        track.status_code == 200
        and await AuditEntry.filter(action="track.read", object_id__contains=str(staff_id)).exists()
    )

    listed = await api.get("/staff/v1/patrols/days", params={"day": str(YESTERDAY)}, headers=desk)
    assert [d["staff_id"] for d in listed.json()["items"]] == [staff_id]
    assert await AuditEntry.filter(action="patrol_day.read").count() == 2


async def test_a_district_dispatcher_cannot_read_a_worker_of_another_district(api):
    (user, staff_id), _ = await inspectors()
    await upload(api, await bearer(api, user), walk(await grid_point(), MORNING, 3))
    grid = await ResponsibilityGrid.get(code=user.removeprefix("inspector-"))
    own_district = (await grid.street).district_id
    other = (
        await StaffAccount.filter(username__startswith="dispatcher-")
        .exclude(username=f"dispatcher-{own_district}")
        .first()
    )
    params = {"day": str(YESTERDAY), "staff": staff_id}
    refused = await api.get("/staff/v1/patrols/days", params=params, headers=await bearer(api, other.username))
    assert refused.status_code == 403 and refused.json()["code"] == "staff_out_of_scope"
    allowed = await api.get(
        "/staff/v1/patrols/days", params=params, headers=await bearer(api, f"dispatcher-{own_district}")
    )
    assert allowed.status_code == 200
    assert await AuditEntry.filter(action="patrol_day.read").count() == 1  # the refused read read nothing


async def test_a_worker_cannot_read_another_workers_day(api):
    (user1, id1), (user2, _) = await inspectors()
    await upload(api, await bearer(api, user1), walk(await grid_point(), MORNING, 10))
    other = await bearer(api, user2)
    own = (await api.get(f"/field/v1/patrols/days/{YESTERDAY}", headers=other)).json()
    assert own["points"] == 0 and own["staff_id"] != id1  # the field API answers only about the caller
    track = (await api.get(f"/field/v1/tracks/{YESTERDAY}", headers=other)).json()
    assert track["features"][0]["geometry"]["coordinates"] == []
    staff_api = await api.get("/staff/v1/patrols/days", params={"day": str(YESTERDAY), "staff": id1}, headers=other)
    assert staff_api.status_code == 403 and staff_api.json()["code"] == "role_not_allowed"
    assert not await AuditEntry.filter(action="patrol_day.read").exists()


async def test_unauthenticated_requests_are_refused_with_401(api):
    for method, path in (
        ("POST", "/field/v1/tracks"),
        ("GET", f"/field/v1/patrols/days/{YESTERDAY}"),
        ("GET", f"/field/v1/tracks/{YESTERDAY}"),
        ("GET", f"/staff/v1/patrols/days?day={YESTERDAY}"),
        ("GET", f"/staff/v1/patrols/road-chiefs?since={YESTERDAY}&until={YESTERDAY}"),
    ):
        response = await api.request(method, path, json={"datum": "wgs84", "points": []} if method == "POST" else None)
        assert response.status_code == 401, (path, response.text)
        assert response.headers["www-authenticate"] == "Bearer"


async def test_the_road_chief_view_counts_a_chiefs_time_on_their_own_segment(api):
    (user, staff_id), _ = await inspectors()
    segment = await RoadSegment.all().order_by("code").first()
    segment.chief_id = staff_id
    await segment.save(update_fields=["chief_id"])
    line = shapely.from_geojson(segment.geometry)
    # Along the road's own line, every 30 s for 10 minutes.
    along = [line.interpolate(f, normalized=True) for f in np.linspace(0.2, 0.4, 21)]
    points = [
        {"t": (MORNING + timedelta(seconds=30 * i)).isoformat(), "lon": round(p.x, 6), "lat": round(p.y, 6)}
        for i, p in enumerate(along)
    ]
    assert (await upload(api, await bearer(api, user), points)).json()["accepted"] == 21
    await summary.patrol_days_job(YESTERDAY.isoformat())

    desk = await bearer(api, "chief")
    since, until = YESTERDAY - timedelta(days=6), YESTERDAY
    response = await api.get(
        "/staff/v1/patrols/road-chiefs", params={"since": str(since), "until": str(until)}, headers=desk
    )
    assert response.status_code == 200, response.text
    row = next(r for r in response.json() if r["segment"] == segment.code)
    assert (row["chief_id"], row["seconds"], row["days_present"], row["days"]) == (staff_id, 600, 1, 7)
    assert await AuditEntry.filter(action="road_chief_presence.read", object_id=str(staff_id)).exists()

    too_long = await api.get(
        "/staff/v1/patrols/road-chiefs", params={"since": "2026-01-01", "until": "2026-12-31"}, headers=desk
    )
    assert too_long.status_code == 422 and too_long.json()["code"] == "bad_patrol_period"


async def test_a_batch_over_midnight_is_split_into_two_chunks(db):
    midnight = datetime.combine(YESTERDAY, datetime.min.time(), tzinfo=clock.CHINA)
    points = [TrackPoint(midnight + timedelta(seconds=s), 123.43 + s * 1e-6, 41.8) for s in range(-50, 50, 10)]
    assert (await tracks.ingest(subject_type="vehicle", subject_id="v9", points=points)).accepted == 10
    days = sorted(await TrackChunk.filter(subject_id="v9").values_list("day", "n"))
    assert days == [(YESTERDAY - timedelta(days=1), 5), (YESTERDAY, 5)]


async def test_the_relay_schedules_yesterdays_patrol_days_once_a_day(db):
    schedule = SweepSchedule(get_settings())
    night = datetime(2026, 11, 30, 0, 30, tzinfo=clock.CHINA)
    await schedule.tick(now=night)  # before 01:00: not yet
    assert not await OutboxEntry.filter(task="patrol_days").exists()
    for minutes in (60, 61, 600):
        await schedule.tick(now=night + timedelta(minutes=minutes))
    await SweepSchedule(get_settings()).tick(now=night + timedelta(hours=2))  # another relay
    entries = await OutboxEntry.filter(task="patrol_days")
    assert [e.args for e in entries] == [{"day": "2026-11-29"}]


async def test_unknown_subject_types_are_refused():
    from core.errors import ValidationFailed

    with pytest.raises(ValidationFailed):
        await tracks.ingest(subject_type="bike", subject_id="1", points=[])
