"""Inspectors verify and check with photos taken there and then; crews work their department's cases."""

import asyncio
from datetime import timedelta

from core import clock
from core.accounts.models import Citizen, StaffAccount
from core.audit.models import AuditEntry
from core.cases.models import Case, CaseTask
from core.media.models import Blob, Media
from core.regions.models import UnitGrid
from core.reports.models import Report
from tests.factories import interior_point
from tests.field.conftest import bearer
from tests.field.helpers import hotline_case, inspector_of, other_inspector, upload_photo


async def _verify(api, patrol, task_id, photo, *, result="confirmed", **extra):
    body = {"result": result, "photos": [photo], "note": "现场核实", **extra}
    return await api.post(f"/field/v1/tasks/{task_id}/result", json=body, headers=patrol)


async def test_an_inspector_sees_the_tasks_of_their_grids_only(api):
    desk = await bearer(api, "dispatcher")
    case = await hotline_case(api, desk)
    mine = await bearer(api, await inspector_of(case))
    other = await bearer(api, await other_inspector(case))

    tasks = (await api.get("/field/v1/tasks", headers=mine)).json()
    assert [t["case"]["number"] for t in tasks["items"]] == [case.number]
    assert tasks["items"][0]["kind"] == "verify" and tasks["items"][0]["kind_name"] == "核实"
    assert tasks["items"][0]["due_at"] is not None

    assert (await api.get("/field/v1/tasks", headers=other)).json()["total"] == 0
    task_id = tasks["items"][0]["id"]
    response = await api.get(f"/field/v1/tasks/{task_id}", headers=other)
    assert response.status_code == 404 and response.json()["code"] == "task_not_found"
    photo = await upload_photo(api, other, lon=case.lon, lat=case.lat)
    assert (await _verify(api, other, task_id, photo)).status_code == 404
    assert (await CaseTask.get(id=task_id)).status == "open"


async def test_a_fresh_photo_taken_at_the_place_confirms_the_report_and_the_case_goes_on(api):
    desk = await bearer(api, "dispatcher")
    case = await hotline_case(api, desk)
    patrol = await bearer(api, await inspector_of(case))
    task_id = (await api.get("/field/v1/tasks", headers=patrol)).json()["items"][0]["id"]
    photo = await upload_photo(api, patrol, lon=case.lon + 0.0001, lat=case.lat)

    response = await _verify(api, patrol, task_id, photo)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["result"] == "confirmed"
    # 暴露垃圾 is registered and dispatched by the system once confirmed.
    assert body["case"]["status"] == "dispatched"
    assert (await CaseTask.get(id=task_id)).status == "done"


async def test_a_stale_far_or_reused_photo_proves_nothing_and_changes_nothing(api):
    desk = await bearer(api, "dispatcher")
    case = await hotline_case(api, desk)
    patrol = await bearer(api, await inspector_of(case))
    task_id = (await api.get("/field/v1/tasks", headers=patrol)).json()["items"][0]["id"]

    old = await upload_photo(api, patrol, taken=clock.now() - timedelta(hours=3), lon=case.lon, lat=case.lat)
    far = await upload_photo(api, patrol, lon=case.lon + 0.02, lat=case.lat)
    nowhere = await upload_photo(api, patrol)  # no EXIF GPS, and no device fix sent
    undated = await upload_photo(api, patrol, lon=case.lon, lat=case.lat)
    blob = (await Media.get(id=undated)).blob_id
    await Blob.filter(sha256=blob).update(taken_at=None)

    for photo, code in [
        (old, "photo_stale"),
        (far, "photo_too_far"),
        (nowhere, "photo_no_location"),
        (undated, "photo_no_time"),
    ]:
        response = await _verify(api, patrol, task_id, photo)
        assert response.status_code == 422, response.text
        assert response.json()["code"] == code
        assert response.json()["title"]

    # A device fix stands in for a photo without EXIF GPS, if it is accurate and near.
    inaccurate = await _verify(api, patrol, task_id, nowhere, lon=case.lon, lat=case.lat, accuracy=300)
    assert inaccurate.json()["code"] == "gps_inaccurate"
    assert (await Case.get(id=case.id)).status == "accepted"
    assert (await CaseTask.get(id=task_id)).status == "open"

    good = await _verify(api, patrol, task_id, nowhere, lon=case.lon, lat=case.lat, accuracy=8)
    assert good.status_code == 200, good.text

    # The same photo cannot prove the next case's verification.
    second = await hotline_case(api, desk, grid_index=0, subclass="event:0104")
    task2 = await CaseTask.get(case_id=second.id, kind="verify")
    again = await _verify(api, patrol, task2.id, nowhere, lon=second.lon, lat=second.lat, accuracy=8)
    assert again.status_code == 422 and again.json()["code"] == "photo_reused"


async def test_a_photo_from_the_future_or_a_time_without_offset_is_refused(api):
    desk = await bearer(api, "dispatcher")
    case = await hotline_case(api, desk)
    patrol = await bearer(api, await inspector_of(case))
    task_id = (await api.get("/field/v1/tasks", headers=patrol)).json()["items"][0]["id"]
    photo = await upload_photo(api, patrol, lon=case.lon, lat=case.lat)

    future = (clock.now() + timedelta(hours=2)).isoformat()
    response = await _verify(api, patrol, task_id, photo, at=future)
    assert response.json()["code"] == "time_in_future"
    naive = await _verify(api, patrol, task_id, photo, at="2026-11-30T09:00:00")
    assert naive.status_code == 422


async def _dispatched_case(api):
    desk = await bearer(api, "dispatcher")
    case = await hotline_case(api, desk)
    patrol = await bearer(api, await inspector_of(case))
    task_id = (await api.get("/field/v1/tasks", headers=patrol)).json()["items"][0]["id"]
    photo = await upload_photo(api, patrol, lon=case.lon, lat=case.lat)
    assert (await _verify(api, patrol, task_id, photo)).status_code == 200
    case = await Case.get(id=case.id)
    crew = await bearer(api, f"handler-{case.department_id}")
    return case, patrol, crew


async def test_a_crew_fixes_its_case_and_a_failed_check_sends_it_back(api):
    case, patrol, crew = await _dispatched_case(api)

    todo = (await api.get("/field/v1/cases", params={"queue": "todo"}, headers=crew)).json()
    assert [c["number"] for c in todo["items"]] == [case.number]
    accepted = await api.post(f"/field/v1/cases/{case.number}/accept", json={}, headers=crew)
    assert accepted.status_code == 200 and accepted.json()["status"] == "processing"

    before = await upload_photo(api, crew, lon=case.lon, lat=case.lat)
    after = await upload_photo(api, crew, lon=case.lon, lat=case.lat)
    missing = await api.post(f"/field/v1/cases/{case.number}/fix", json={"before": [], "after": [after]}, headers=crew)
    assert missing.status_code == 422
    fixed = await api.post(
        f"/field/v1/cases/{case.number}/fix",
        json={"before": [before], "after": [after], "note": "已清运"},
        headers=crew,
    )
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["status"] == "fixed"

    check = await CaseTask.get(case_id=case.id, kind="check")
    tasks = (await api.get("/field/v1/tasks", headers=patrol)).json()["items"]
    assert [t["id"] for t in tasks] == [check.id] and tasks[0]["kind_name"] == "核查"
    look = await upload_photo(api, patrol, lon=case.lon, lat=case.lat)
    failed = await _verify(api, patrol, check.id, look, result="failed", note="仍有垃圾")
    assert failed.status_code == 200, failed.text
    assert failed.json()["case"]["status"] == "dispatched"  # 返工: back to the same department
    reworked = await Case.get(id=case.id)
    assert (reworked.rework_count, reworked.department_id) == (1, case.department_id)


async def test_a_crew_asks_for_time_or_returns_a_case_with_a_reason(api):
    case, _, crew = await _dispatched_case(api)
    asked = await api.post(
        f"/field/v1/cases/{case.number}/extension", json={"amount": 4, "note": "需要调派吊车"}, headers=crew
    )
    assert asked.status_code == 200, asked.text
    assert (await Case.get(id=case.id)).paused_at is not None

    no_reason = await api.post(f"/field/v1/cases/{case.number}/return", json={}, headers=crew)
    assert no_reason.status_code == 409 and no_reason.json()["code"] == "note_required"
    returned = await api.post(f"/field/v1/cases/{case.number}/return", json={"note": "不属于本单位"}, headers=crew)
    assert returned.status_code == 200 and returned.json()["status"] == "registered"


async def test_roles_and_departments_keep_to_their_own(api):
    case, patrol, crew = await _dispatched_case(api)
    assert (await api.get("/field/v1/cases", headers=patrol)).status_code == 403
    assert (await api.get("/field/v1/tasks", headers=crew)).status_code == 403
    others = await bearer(api, "handler-" + await _another_department(case.department_id))
    response = await api.get(f"/field/v1/cases/{case.number}", headers=others)
    assert response.status_code == 404
    assert (await api.post(f"/field/v1/cases/{case.number}/accept", json={}, headers=others)).status_code == 404
    assert (await Case.get(id=case.id)).status == "dispatched"


async def _another_department(code: str) -> str:
    from core.org.models import Department

    return (await Department.exclude(code=code).order_by("code").first()).code


async def test_reading_a_reporters_phone_needs_a_purpose_and_is_audited(api):
    case, _, crew = await _dispatched_case(api)
    citizen = await Citizen.create(openid="o-field-1", phone="13812345678", nickname="张先生")
    await Report.filter(case_id=case.id).update(reporter_type="citizen", reporter_id=str(citizen.id))

    nopurpose = await api.get(f"/field/v1/cases/{case.number}/contacts", params={"purpose": " "}, headers=crew)
    assert nopurpose.status_code == 422 and nopurpose.json()["code"] == "purpose_required"
    assert not await AuditEntry.filter(action="case.reporter_contacts.read").exists()

    response = await api.get(
        f"/field/v1/cases/{case.number}/contacts", params={"purpose": "联系确认位置"}, headers=crew
    )
    assert response.json()["contacts"][0]["phone"] == "13812345678"
    entry = await AuditEntry.get(action="case.reporter_contacts.read")
    assert (entry.object_id, entry.purpose) == (case.number, "联系确认位置")


async def test_tampered_and_revoked_tokens_are_refused(api):
    patrol = await bearer(api, "dispatcher")
    token = patrol["authorization"].removeprefix("Bearer ")
    tampered = {"authorization": "Bearer " + token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")}
    response = await api.get("/field/v1/me", headers=tampered)
    assert response.status_code == 401 and response.json()["code"] == "token_invalid"

    headers = await bearer(api, "chief")
    assert (await api.get("/field/v1/me", headers=headers)).status_code == 200
    assert (await api.post("/auth/revoke", headers=headers)).status_code == 204
    revoked = await api.get("/field/v1/me", headers=headers)
    assert revoked.status_code == 401 and revoked.json()["code"] == "session_revoked"


async def test_an_inspectors_own_report_becomes_a_case_without_a_verification(api):
    grid = await UnitGrid.filter(responsibility_grid_id__isnull=False).order_by("code").first()
    inspector = await StaffAccount.filter(responsibility_grids__code=grid.responsibility_grid_id).first()
    patrol = await bearer(api, inspector.username)
    lon, lat = await interior_point(grid.code)
    photo = await upload_photo(api, patrol, lon=lon, lat=lat)
    body = {
        "subclass": "event:0102",
        "text": "巡查发现暴露垃圾",
        "photos": [photo],
        "lon": lon,
        "lat": lat,
        "accuracy": 6,
        "idempotency_key": "patrol-report-0001",
    }

    first = await api.post("/field/v1/reports", json=body, headers=patrol)
    again = await api.post("/field/v1/reports", json=body, headers=patrol)

    assert first.status_code == 202, first.text
    assert again.status_code == 200 and again.json()["report_id"] == first.json()["report_id"]
    for _ in range(200):
        report = await Report.get(id=first.json()["report_id"])
        if report.case_id:
            break
        await asyncio.sleep(0.05)
    case = await Case.get(id=report.case_id)
    assert (case.source, report.reporter_type, report.accuracy_m) == ("field_app", "staff", 6)
    assert not await CaseTask.filter(case_id=case.id, kind="verify").exists()

    inaccurate = await api.post(
        "/field/v1/reports", json={**body, "accuracy": 400, "idempotency_key": "patrol-report-0002"}, headers=patrol
    )
    assert inaccurate.status_code == 422 and inaccurate.json()["code"] == "gps_inaccurate"
    crew = await bearer(api, "handler-" + (await _another_department("")))
    assert (await api.post("/field/v1/reports", json=body, headers=crew)).status_code == 403
