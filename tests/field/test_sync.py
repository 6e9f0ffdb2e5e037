"""Offline sync: operations applied in order, each once; a replay answers the same; nothing is half-applied."""

import asyncio
import uuid
from datetime import timedelta

from core import clock
from core.accounts.models import StaffAccount
from core.geo import service as geo_service
from core.geo.service import forget_spatial_index
from core.media.models import UsedPhoto
from core.patrols.models import CheckIn
from core.places.models import RoadWork
from core.regions.models import UnitGrid
from core.reports.models import Report
from core.settings import get_settings
from core.sync.models import SyncOp
from tests.factories import field_photo, interior_point
from tests.field.conftest import bearer
from tests.field.helpers import upload_photo


async def _setup(api):
    inspector = await StaffAccount.filter(username__startswith="inspector-").order_by("id").first()
    headers = await bearer(api, inspector.username)
    today = clock.china(clock.now()).date()
    work = await RoadWork.filter(starts_on__lte=today - timedelta(days=1), ends_on__gte=today).order_by("id").first()
    return headers, work


def _check_in_op(work, photo, *, at=None, op_id=None, note=""):
    body = {
        "site_kind": "road_work",
        "site_code": work.permit_no,
        "lon": work.lon,
        "lat": work.lat,
        "accuracy": 10,
        "photos": [photo],
        "note": note,
    }
    if at is not None:
        body["at"] = at.isoformat()
    return {"id": op_id or str(uuid.uuid4()), "op": "check_in", "body": body}


async def _report_op(api, headers, *, op_id=None):
    grid = await UnitGrid.all().order_by("code").first()
    lon, lat = await interior_point(grid.code)
    photo = await upload_photo(api, headers, lon=lon, lat=lat)
    body = {
        "subclass": "event:0102",
        "text": "巡查发现暴露垃圾",
        "photos": [photo],
        "lon": lon,
        "lat": lat,
        "accuracy": 6,
    }
    return {"id": op_id or str(uuid.uuid4()), "op": "report", "body": body}


async def test_a_batch_is_applied_in_order_and_a_replay_answers_the_same_without_doubling(api):
    headers, work = await _setup(api)
    photo = await upload_photo(api, headers, lon=work.lon, lat=work.lat)
    ops = [
        _check_in_op(work, photo),
        await _report_op(api, headers),
        {"id": str(uuid.uuid4()), "op": "teleport", "body": {}},
        _check_in_op(work, photo),  # the same photo again: refused, the rest goes on
    ]

    first = await api.post("/field/v1/sync", json={"operations": ops}, headers=headers)

    assert first.status_code == 200, first.text
    answer = first.json()
    assert [r["status"] for r in answer["results"]] == [201, 202, 422, 422]
    assert [r["error"]["code"] for r in answer["results"][2:]] == ["unknown_operation", "photo_reused"]
    assert answer["results"][2]["error"]["title"]
    assert (answer["applied"], answer["refused"], answer["replayed"]) == (2, 2, 0)

    again = await api.post("/field/v1/sync", json={"operations": ops}, headers=headers)
    replay = again.json()
    assert replay["replayed"] == 4
    assert [(r["status"], r["result"], r["error"]) for r in replay["results"]] == [
        (r["status"], r["result"], r["error"]) for r in answer["results"]
    ]
    assert await CheckIn.all().count() == 1
    assert await Report.filter(source="field_app").count() == 1
    assert await UsedPhoto.all().count() == 2


async def test_the_same_operation_id_with_other_content_is_a_conflict_for_that_item(api):
    headers, work = await _setup(api)
    op_id = str(uuid.uuid4())
    photo = await upload_photo(api, headers, lon=work.lon, lat=work.lat)
    assert (
        await api.post("/field/v1/sync", json={"operations": [_check_in_op(work, photo, op_id=op_id)]}, headers=headers)
    ).json()["applied"] == 1

    other = _check_in_op(work, photo, op_id=op_id, note="改过的内容")
    response = await api.post("/field/v1/sync", json={"operations": [other]}, headers=headers)
    item = response.json()["results"][0]
    assert item["status"] == 409 and item["error"]["code"] == "op_id_reused"
    assert await CheckIn.all().count() == 1
    assert (await CheckIn.first()).note == ""


async def test_a_device_offline_for_a_day_replays_its_queue_safely(api):
    headers, work = await _setup(api)
    yesterday = clock.now() - timedelta(hours=22)
    photo = await upload_photo(api, headers, taken=yesterday, lon=work.lon, lat=work.lat)
    ops = [_check_in_op(work, photo, at=yesterday)]

    response = await api.post("/field/v1/sync", json={"operations": ops}, headers=headers)

    assert response.json()["results"][0]["status"] == 201, response.text
    row = await CheckIn.get()
    assert row.at == yesterday.replace(microsecond=row.at.microsecond)
    assert row.day == clock.china(yesterday).date()
    assert (await SyncOp.get()).done_at is not None


async def test_an_unfinished_upload_defers_the_rest_of_the_batch_until_it_is_complete(api):
    headers, work = await _setup(api)
    data = field_photo(777, taken=clock.now(), lon=work.lon, lat=work.lat)
    chunk = 64 * 1024
    started = await api.post(
        "/field/v1/uploads",
        json={"upload_id": "offline-cam-0001", "total_size": len(data), "chunk_size": chunk},
        headers=headers,
    )
    assert started.status_code == 201, started.text
    ops = [_check_in_op(work, "upload:offline-cam-0001"), await _report_op(api, headers)]

    waiting = (await api.post("/field/v1/sync", json={"operations": ops}, headers=headers)).json()

    assert [(r["status"], r["retry"]) for r in waiting["results"]] == [(503, True), (503, True)]
    assert waiting["results"][0]["error"]["code"] == "upload_incomplete"
    assert waiting["deferred"] == 2
    assert not await SyncOp.exists() and not await CheckIn.exists() and not await Report.exists()

    for index in range(-(-len(data) // chunk)):
        part = data[index * chunk : (index + 1) * chunk]
        put = await api.put(f"/field/v1/uploads/offline-cam-0001/chunks/{index}", content=part, headers=headers)
        assert put.status_code == 200, put.text
    assert (await api.post("/field/v1/uploads/offline-cam-0001/complete", headers=headers)).status_code == 200

    done = (await api.post("/field/v1/sync", json={"operations": ops}, headers=headers)).json()
    assert [r["status"] for r in done["results"]] == [201, 202]
    assert await CheckIn.all().count() == 1 and await Report.all().count() == 1


async def test_bad_items_get_their_own_errors_and_an_oversized_batch_applies_nothing(api):
    headers, work = await _setup(api)
    photo = await upload_photo(api, headers, lon=work.lon, lat=work.lat)
    bad = [
        {"id": "not-a-uuid", "op": "check_in", "body": {}},
        {"id": str(uuid.uuid4()), "op": "check_in", "body": {"site_kind": "road_work"}},
        _check_in_op(work, photo, at=clock.now() + timedelta(hours=3)),
    ]
    results = (await api.post("/field/v1/sync", json={"operations": bad}, headers=headers)).json()["results"]
    assert [r["error"]["code"] for r in results] == ["bad_op_id", "invalid_request", "time_in_future"]
    assert results[1]["error"]["errors"]  # which fields are wrong

    limit = get_settings().sync_max_ops
    huge = [_check_in_op(work, photo) for _ in range(limit + 1)]
    response = await api.post("/field/v1/sync", json={"operations": huge}, headers=headers)
    assert response.status_code == 413 and response.json()["code"] == "batch_too_large"
    assert not await CheckIn.exists()
    assert await SyncOp.all().count() == 2  # the two permanent refusals above, nothing of the big batch


async def test_sync_needs_a_valid_token(api):
    response = await api.post("/field/v1/sync", json={"operations": []}, headers={"authorization": "Bearer x.y.z"})
    assert response.status_code == 401


async def test_each_operation_needs_its_role_and_odd_values_are_refused_per_item(api):
    headers, work = await _setup(api)
    crew = await bearer(
        api, (await StaffAccount.filter(username__startswith="handler-").order_by("id").first()).username
    )
    report = await _report_op(api, crew)
    ancient = _check_in_op(work, "whatever")
    ancient["body"]["at"] = "0001-01-01T00:00:00+14:00"
    huge = {"id": str(uuid.uuid4()), "op": "task_result", "body": {"task_id": 10**30, "result": "confirmed"}}

    response = await api.post("/field/v1/sync", json={"operations": [report, ancient, huge]}, headers=crew)

    assert response.status_code == 200, response.text
    codes = [r["error"]["code"] for r in response.json()["results"]]
    assert codes == ["role_not_allowed", "time_too_old", "invalid_request"]
    assert not await Report.exists() and not await CheckIn.exists()
    assert (await api.get("/field/v1/tasks/100000000000000000000000", headers=headers)).status_code == 422


async def test_a_field_report_while_the_spatial_index_is_being_built_does_not_hang(api):
    headers, _ = await _setup(api)
    op = await _report_op(api, headers)
    forget_spatial_index()
    async with geo_service._lock:  # another request is building the index, and will read the database
        sending = asyncio.create_task(api.post("/field/v1/sync", json={"operations": [op]}, headers=headers))
        await asyncio.sleep(0.5)  # the sync request reaches the index and waits for it
        # On SQLite the database is one connection: the waiting request must not hold it in its transaction.
        assert await asyncio.wait_for(UnitGrid.all().count(), 5)
    sent = await asyncio.wait_for(sending, 30)
    assert sent.json()["results"][0]["status"] == 202, sent.text
