"""The staff API drives a case around the whole closed loop, and refuses what a role may not do."""

import asyncio

import httpx
import pytest

from core import clock
from core.accounts.models import StaffAccount
from core.regions.models import UnitGrid
from core.reports.models import Report
from core.seed import DEMO_PASSWORD
from tests.factories import interior_point, jpeg_bytes


async def bearer(api, username: str) -> dict[str, str]:
    response = await api.post("/auth/token", data={"username": username, "password": DEMO_PASSWORD})
    assert response.status_code == 200, response.text
    return {"authorization": f"Bearer {response.json()['access_token']}"}


async def hotline_report(api, desk: dict, **overrides) -> dict:
    grid = (await UnitGrid.all().order_by("code").first()).code
    lon, lat = await interior_point(grid)
    body = {"text": "路口有暴露垃圾", "lon": lon, "lat": lat, "subclass": "event:0102", **overrides}
    response = await api.post("/staff/v1/reports", json=body, headers=desk)
    assert response.status_code == 202, response.text
    return response.json()


async def wait_for_case(api, desk: dict, queue: str) -> dict:
    """The embedded runner turns the report into a case in the background."""
    for _ in range(100):
        page = (await api.get("/staff/v1/cases", params={"queue": queue}, headers=desk)).json()
        if page["total"]:
            return page["items"][0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no case appeared in queue {queue}")


async def act(api, headers: dict, number: str, action: str, **body) -> httpx.Response:
    return await api.post(f"/staff/v1/cases/{number}/actions/{action}", json=body, headers=headers)


async def test_a_hotline_report_goes_around_the_closed_loop(api):
    desk = await bearer(api, "dispatcher")
    await hotline_report(api, desk)
    case = await wait_for_case(api, desk, "to_verify")
    number = case["number"]

    detail = (await api.get(f"/staff/v1/cases/{number}", headers=desk)).json()
    inspector = await StaffAccount.get(id=detail["tasks"][0]["inspector_id"])
    patrol = await bearer(api, inspector.username)
    response = await act(api, patrol, number, "verify", detail={"result": "confirmed"})
    assert response.status_code == 200, response.text
    # 暴露垃圾 is registered and dispatched by the system once confirmed.
    assert response.json()["status"] == "dispatched"
    department = response.json()["department"]

    crew = await bearer(api, f"handler-{department}")
    assert (await act(api, crew, number, "start")).status_code == 200
    upload = await api.post("/staff/v1/media", files={"file": ("after.jpg", jpeg_bytes(), "image/jpeg")}, headers=crew)
    after = upload.json()["media_id"]
    fixed = await act(api, crew, number, "feedback", note="已清运", media=[after])
    assert fixed.json()["status"] == "fixed"
    assert (await act(api, patrol, number, "check_pass")).json()["status"] == "checked"
    assert (await act(api, desk, number, "close")).json()["status"] == "closed"

    detail = (await api.get(f"/staff/v1/cases/{number}", headers=desk)).json()
    assert [e["action"] for e in detail["timeline"]] == [
        "report",
        "accept",
        "verify",
        "register",
        "dispatch",
        "start",
        "feedback",
        "check_pass",
        "close",
    ]
    assert detail["timeline"][6]["media"] == [after]
    assert detail["stage"] is None and detail["allowed_actions"] == ["reopen"]
    assert [r["text"] for r in detail["reports"]] == ["路口有暴露垃圾"]

    # The closed case counts in its department's evaluation of this month.
    period = clock.now().strftime("%Y-%m")  # China time, as the evaluation counts months
    rows = (await api.get("/staff/v1/evaluation", params={"period": period}, headers=desk)).json()
    row = next(r for r in rows if r["key"] == department)
    assert (row["registered"], row["closed"], row["close_rate"]) == (1, 1, 100.0)


async def test_a_crew_of_another_department_cannot_touch_the_case(api):
    desk = await bearer(api, "dispatcher")
    await hotline_report(api, desk, subclass="event:0201")  # not auto-dispatched: waits for a person
    number = (await wait_for_case(api, desk, "to_accept"))["number"]
    other = await StaffAccount.filter(username__startswith="handler-").order_by("id").first()
    crew = await bearer(api, other.username)

    response = await act(api, crew, number, "accept")
    assert response.status_code == 403
    assert response.json()["code"] in ("role_not_allowed", "out_of_scope")
    assert response.json()["title"]  # a Chinese sentence for the person


async def test_an_action_from_the_wrong_state_is_refused_and_changes_nothing(api):
    desk = await bearer(api, "dispatcher")
    await hotline_report(api, desk, subclass="event:0201")
    number = (await wait_for_case(api, desk, "to_accept"))["number"]
    before = (await api.get(f"/staff/v1/cases/{number}", headers=desk)).json()

    response = await act(api, desk, number, "close")
    assert response.status_code == 409 and response.json()["code"] == "illegal_transition"
    after = (await api.get(f"/staff/v1/cases/{number}", headers=desk)).json()
    assert after == before


async def test_a_district_dispatcher_does_not_see_another_districts_case(api):
    desk = await bearer(api, "dispatcher")
    await hotline_report(api, desk, subclass="event:0201")
    case = await wait_for_case(api, desk, "to_accept")
    other = (
        await StaffAccount.filter(username__startswith="dispatcher-")
        .exclude(username=f"dispatcher-{case['district']}")
        .first()
    )
    outsider = await bearer(api, other.username)
    assert (await api.get(f"/staff/v1/cases/{case['number']}", headers=outsider)).status_code == 403
    assert (await api.get("/staff/v1/cases", params={"queue": "to_accept"}, headers=outsider)).json()["total"] == 0


async def test_a_second_extension_needs_the_duty_chief(api):
    desk = await bearer(api, "dispatcher")
    await hotline_report(api, desk, subclass="event:0201")
    number = (await wait_for_case(api, desk, "to_accept"))["number"]
    # A hotline report needs 核实 before 立案: let the dispatcher record the inspector's confirmation path.
    assert (await act(api, desk, number, "accept")).status_code == 200
    detail = (await api.get(f"/staff/v1/cases/{number}", headers=desk)).json()
    inspector = await StaffAccount.get(id=detail["tasks"][0]["inspector_id"])
    patrol = await bearer(api, inspector.username)
    assert (await act(api, patrol, number, "verify", detail={"result": "confirmed"})).status_code == 200
    assert (await act(api, desk, number, "register")).status_code == 200
    response = await act(api, desk, number, "dispatch")
    assert response.status_code == 200, response.text
    crew = await bearer(api, f"handler-{response.json()['department']}")
    deadline = response.json()["stage_deadline"]

    assert (await act(api, crew, number, "request_extension", note="材料未到", detail={"amount": 8})).status_code == 200
    paused = (await api.get(f"/staff/v1/cases/{number}", headers=desk)).json()
    assert paused["paused"] is True
    approved = await act(api, desk, number, "approve_extension")
    assert approved.status_code == 200, approved.text
    extended = (await api.get(f"/staff/v1/cases/{number}", headers=desk)).json()
    assert extended["stage_deadline"] > deadline and not extended["paused"]

    assert (await act(api, crew, number, "request_extension", note="仍需时间", detail={"amount": 8})).status_code == 200
    refused = await act(api, desk, number, "approve_extension")
    assert refused.status_code == 403 and refused.json()["code"] == "duty_chief_required"
    chief = await bearer(api, "chief")
    assert (await act(api, chief, number, "approve_extension")).status_code == 200


async def test_the_queues_count_what_waits(api):
    desk = await bearer(api, "dispatcher")
    await hotline_report(api, desk, subclass="event:0201")
    await wait_for_case(api, desk, "to_accept")
    counts = (await api.get("/staff/v1/queues", headers=desk)).json()
    assert counts["to_accept"] == 1 and counts["to_dispatch"] == 0


async def test_the_staff_api_needs_a_signed_in_user(api):
    response = await api.get("/staff/v1/queues")
    assert response.status_code == 401 and response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({"datum": "mars"}, 422, "unknown_datum"),
        ({"lon": 116.39, "lat": 39.9}, 422, "outside_city"),
        ({"subclass": "event:9999"}, 404, "unknown_subclass"),
        ({"urgency": "yesterday"}, 422, "unknown_urgency"),
    ],
)
async def test_a_bad_hotline_report_gets_a_problem_in_chinese_and_stores_nothing(api, overrides, status, code):
    desk = await bearer(api, "dispatcher")
    grid = (await UnitGrid.all().order_by("code").first()).code
    lon, lat = await interior_point(grid)
    body = {"text": "路口有暴露垃圾", "lon": lon, "lat": lat, "subclass": "event:0102", **overrides}
    response = await api.post("/staff/v1/reports", json=body, headers=desk)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code and response.json()["title"]
    assert await Report.all().count() == 0


async def test_a_replayed_key_returns_the_first_report_and_other_content_is_a_conflict(api):
    desk = await bearer(api, "dispatcher")
    first = await hotline_report(api, desk, idempotency_key="call-20261130-0001")
    again = await hotline_report(api, desk, idempotency_key="call-20261130-0001")
    assert again["report_id"] == first["report_id"] and again["created"] is False
    grid = (await UnitGrid.all().order_by("code").first()).code
    lon, lat = await interior_point(grid)
    body = {"text": "另一个问题", "lon": lon, "lat": lat, "idempotency_key": "call-20261130-0001"}
    response = await api.post("/staff/v1/reports", json=body, headers=desk)
    assert response.status_code == 409 and response.json()["code"] == "idempotency_key_reused"
    assert await Report.all().count() == 1


async def test_a_crew_cannot_enter_hotline_reports(api):
    crew = await bearer(api, (await StaffAccount.filter(username__startswith="handler-").first()).username)
    response = await api.post("/staff/v1/reports", json={"text": "x", "lon": 123.4, "lat": 41.8}, headers=crew)
    assert response.status_code == 403 and response.json()["code"] == "role_not_allowed"


async def test_a_photo_of_someone_else_cannot_be_attached_to_an_action(api):
    desk = await bearer(api, "dispatcher")
    upload = await api.post("/staff/v1/media", files={"file": ("x.jpg", jpeg_bytes(), "image/jpeg")}, headers=desk)
    await hotline_report(api, desk, subclass="event:0201")
    number = (await wait_for_case(api, desk, "to_accept"))["number"]
    chief = await bearer(api, "chief")
    response = await act(api, chief, number, "accept", media=[upload.json()["media_id"]])
    assert response.status_code == 422 and response.json()["code"] == "unknown_photo"
    assert (await api.get(f"/staff/v1/cases/{number}", headers=desk)).json()["status"] == "pending_accept"
