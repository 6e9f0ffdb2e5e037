"""What the console page needs from the server: the page and its files, departments to dispatch to, trends, CSV and
the case page's photos and names."""

import asyncio
import json
import re

from core import clock
from core.accounts.models import StaffAccount
from core.org.models import Department
from core.regions.models import District, Street
from core.reports.models import Report
from tests.console.test_staff_api import act, bearer, hotline_report, wait_for_case
from tests.factories import jpeg_bytes


async def close_a_case(api) -> dict:
    """A hotline report of 暴露垃圾 around the whole loop, with a photo of the fix; the closed case's detail."""
    desk = await bearer(api, "dispatcher")
    await hotline_report(api, desk)
    number = (await wait_for_case(api, desk, "to_verify"))["number"]
    detail = (await api.get(f"/staff/v1/cases/{number}", headers=desk)).json()
    patrol = await bearer(api, (await StaffAccount.get(id=detail["tasks"][0]["inspector_id"])).username)
    department = (await act(api, patrol, number, "verify", detail={"result": "confirmed"})).json()["department"]
    crew = await bearer(api, f"handler-{department}")
    await act(api, crew, number, "start")
    upload = await api.post("/staff/v1/media", files={"file": ("after.jpg", jpeg_bytes(), "image/jpeg")}, headers=crew)
    await act(api, crew, number, "feedback", note="已清运", media=[upload.json()["media_id"]])
    await act(api, patrol, number, "check_pass")
    assert (await act(api, desk, number, "close")).json()["status"] == "closed"
    return (await api.get(f"/staff/v1/cases/{number}", headers=desk)).json()


async def test_the_case_page_gets_working_photo_links_and_the_names_of_its_places(api):
    case = await close_a_case(api)
    photo = case["timeline"][6]["media"][0]
    links = case["photos"][photo]
    thumb = await api.get(links["thumb_url"].removeprefix("http://test"))
    assert thumb.status_code == 200 and thumb.headers["content-type"].startswith("image/")
    assert case["district_name"] == (await District.get(code=case["district"])).name
    assert case["street_name"] == (await Street.get(code=case["street"])).name
    assert case["department_name"] == (await Department.get(code=case["department"])).name


async def test_a_trend_ends_with_this_month_and_matches_the_evaluation(api):
    case = await close_a_case(api)
    desk = await bearer(api, "dispatcher")
    month = clock.now().strftime("%Y-%m")
    params = {"by": "department", "key": case["department"], "months": 3}
    points = (await api.get("/staff/v1/evaluation/trend", params=params, headers=desk)).json()
    assert len(points) == 3 and points[-1]["period"] == month
    assert [p["period"] for p in points] == sorted(p["period"] for p in points)
    rows = (await api.get("/staff/v1/evaluation", params={"period": month}, headers=desk)).json()
    row = next(r for r in rows if r["key"] == case["department"])
    assert (points[-1]["score"], points[-1]["band"], points[-1]["registered"]) == (row["score"], row["band"], 1)
    assert points[0]["score"] is None and points[0]["registered"] == 0


async def test_the_evaluation_downloads_as_csv_that_excel_reads(api):
    case = await close_a_case(api)
    desk = await bearer(api, "dispatcher")
    month = clock.now().strftime("%Y-%m")
    response = await api.get("/staff/v1/evaluation/export", params={"period": month}, headers=desk)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert f'filename="evaluation-department-{month}.csv"' in response.headers["content-disposition"]
    assert response.content.startswith("\ufeff".encode())  # Excel needs the byte-order mark to read UTF-8
    lines = response.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("编码,名称,上报数,立案数,结案数")
    row = next(line.split(",") for line in lines[1:] if line.startswith(case["department"]))
    assert row[3:5] == ["1", "1"]  # registered, closed


async def test_bad_trend_and_export_requests_are_refused_with_a_reason(api):
    desk = await bearer(api, "dispatcher")
    too_long = await api.get("/staff/v1/evaluation/trend", params={"key": "x", "months": 37}, headers=desk)
    assert too_long.status_code == 422
    unknown = await api.get("/staff/v1/evaluation/export", params={"period": "2026-11", "by": "planet"}, headers=desk)
    assert (unknown.status_code, unknown.json()["code"]) == (422, "unknown_dimension")
    bad_period = await api.get("/staff/v1/evaluation/export", params={"period": "2026-13"}, headers=desk)
    assert bad_period.json()["code"] == "bad_period" and bad_period.json()["title"]
    crew = await bearer(api, (await StaffAccount.filter(username__startswith="handler-").first()).username)
    refused = await api.get("/staff/v1/evaluation/export", params={"period": "2026-11"}, headers=crew)
    assert (refused.status_code, refused.json()["code"]) == (403, "role_not_allowed")


async def test_a_district_dispatcher_dispatches_to_city_units_and_their_own_districts(api):
    district = await District.all().order_by("code").first()
    desk = await bearer(api, f"dispatcher-{district.code}")
    listed = (await api.get("/staff/v1/departments", headers=desk)).json()
    assert listed
    assert {d["district_id"] for d in listed} <= {None, district.code}
    everything = (await api.get("/staff/v1/departments", headers=await bearer(api, "dispatcher"))).json()
    assert len(everything) == await Department.all().count()
    crew = await bearer(api, (await StaffAccount.filter(username__startswith="handler-").first()).username)
    assert (await api.get("/staff/v1/departments", headers=crew)).status_code == 403


async def test_the_console_page_comes_with_its_labels_files_and_a_strict_content_policy(api):
    page = await api.get("/console")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    data = json.loads(re.search(r'<script type="application/json" id="tg-data">(.*?)</script>', page.text, re.S)[1])
    assert data["messages"]["ui"]["sign_in"] == "登录"
    assert data["messages"]["statuses"]["registered"] == "待派遣"
    assert "reject" in data["config"]["note_actions"]

    script = await api.get("/console/static/app.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    again = await api.get("/console/static/app.js", headers={"if-none-match": script.headers["etag"]})
    assert again.status_code == 304 and not again.content
    for name in ("views.py", "..%2Fapi.py", "missing.js"):
        missing = await api.get(f"/console/static/{name}")
        assert missing.status_code == 404, name


async def test_a_district_dispatcher_cannot_dispatch_to_another_districts_department(api):
    case_district = (await District.all().order_by("code").first()).code
    desk = await bearer(api, f"dispatcher-{case_district}")
    await hotline_report(api, desk, subclass="event:0201")  # waits for a person at every step
    number = (await wait_for_case(api, desk, "to_accept"))["number"]
    assert (await act(api, desk, number, "accept")).status_code == 200
    detail = (await api.get(f"/staff/v1/cases/{number}", headers=desk)).json()
    patrol = await bearer(api, (await StaffAccount.get(id=detail["tasks"][0]["inspector_id"])).username)
    await act(api, patrol, number, "verify", detail={"result": "confirmed"})
    assert (await act(api, desk, number, "register")).json()["status"] == "registered"
    elsewhere = await Department.exclude(district_id=case_district).filter(district_id__isnull=False).first()

    refused = await act(api, desk, number, "dispatch", detail={"department_code": elsewhere.code})
    assert (refused.status_code, refused.json()["code"]) == (403, "department_out_of_scope")
    assert refused.json()["title"] == "只能派遣至市级部门或您负责区域内的部门。"
    assert (await api.get(f"/staff/v1/cases/{number}", headers=desk)).json()["status"] == "registered"

    city_unit = await Department.filter(district_id__isnull=True).order_by("code").first()
    sent = await act(api, desk, number, "dispatch", detail={"department_code": city_unit.code}, note="市级部门处置")
    assert (sent.json()["status"], sent.json()["department"]) == ("dispatched", city_unit.code)


async def test_reports_waiting_for_a_type_are_shown_to_the_desks_of_their_district_only(api):
    city_desk = await bearer(api, "dispatcher")
    await hotline_report(api, city_desk, subclass=None, text="这里有点问题，请来看看")
    waiting = []
    for _ in range(100):
        waiting = (await api.get("/staff/v1/reports", headers=city_desk)).json()
        if waiting:
            break
        await asyncio.sleep(0.05)
    assert [r["text"] for r in waiting] == ["这里有点问题，请来看看"]
    report = await Report.get(id=waiting[0]["id"])
    here = await bearer(api, f"dispatcher-{report.district}")
    other = await District.exclude(code=report.district).first()
    there = await bearer(api, f"dispatcher-{other.code}")

    assert [r["id"] for r in (await api.get("/staff/v1/reports", headers=here)).json()] == [report.id]
    assert (await api.get("/staff/v1/reports", headers=there)).json() == []
    assert (await api.get("/staff/v1/queues", headers=there)).json()["unclassified_reports"] == 0
    assert (await api.get("/staff/v1/queues", headers=here)).json()["unclassified_reports"] == 1
    refused = await api.post(f"/staff/v1/reports/{report.id}/classify", json={"subclass": "event:0102"}, headers=there)
    assert (refused.status_code, refused.json()["code"]) == (403, "report_out_of_scope")
    assert (await Report.get(id=report.id)).status == "queued"
    accepted = await api.post(f"/staff/v1/reports/{report.id}/classify", json={"subclass": "event:0102"}, headers=here)
    assert accepted.status_code == 202
