"""The citizen's mini-program API: sign in through WeChat, report, follow, rate, reopen; refuse what is wrong."""

from datetime import timedelta

import httpx
import pytest
from pydantic import SecretStr

from core import clock
from core.accounts.models import Citizen, CitizenSession
from core.cases.models import Case
from core.geo.datum import from_wgs84
from core.permits.models import AdCompany, AdPermit
from core.places.models import Shop
from core.regions.models import UnitGrid
from core.reports.flows import process_report
from core.reports.models import Report
from core.settings import Settings
from tests.asgi import serving
from tests.factories import interior_point, jpeg_bytes
from tests.stubs.wechat import WeChatStub
from tongguan.app import create_app

APPID, SECRET = "wxminiapp0000001", "mini-secret"


@pytest.fixture
def wechat():
    stub = WeChatStub(appid=APPID, secret=SECRET).start()
    yield stub
    stub.stop()


def app_settings(city: str, tmp_path, redis_url: str, base_url: str, **overrides) -> Settings:
    values = {
        "database_url": city,
        "var_dir": tmp_path,
        "redis_url": redis_url,
        "miniapp_appid": APPID,
        "miniapp_secret": SecretStr(SECRET),
        "miniapp_api_base": base_url,
        "face_detector": "none",
        **overrides,
    }
    return Settings(_env_file=None, **values)


@pytest.fixture
async def api(city, tmp_path, redis_url, wechat):
    app = create_app(app_settings(city, tmp_path, redis_url, wechat.base_url))
    async with serving(app) as c:
        yield c


async def login(api, wechat, openid: str = "oCitizenA000000000000000001", **kwargs) -> dict[str, str]:
    response = await api.post("/miniapp/v1/auth/login", json={"code": wechat.login_code(openid, **kwargs)})
    assert response.status_code == 200, response.text
    return {"authorization": f"Bearer {response.json()['token']}"}


async def place() -> dict:
    """A point inside the city as wx.getLocation gives it (GCJ-02)."""
    grid = (await UnitGrid.all().order_by("code").first()).code
    lon, lat = await interior_point(grid)
    gcj_lon, gcj_lat = from_wgs84(lon, lat, "gcj02")
    return {"lon": gcj_lon, "lat": gcj_lat, "datum": "gcj02", "wgs84": (lon, lat)}


async def report(api, headers, key: str = "mini-key-0001", **overrides) -> httpx.Response:
    where = await place()
    body = {
        "description": "小区门口有暴露垃圾",
        "subclass": "event:0102",
        "location": {"lon": where["lon"], "lat": where["lat"], "datum": "gcj02"},
        "address": "幸福路 12 号",
        "idempotency_key": key,
        **overrides,
    }
    return await api.post("/miniapp/v1/reports", json=body, headers=headers)


async def test_a_citizen_signs_in_with_a_wechat_code_and_the_session_key_stays_on_the_server(api, wechat):
    response = await api.post("/miniapp/v1/auth/login", json={"code": wechat.login_code("oUser1", unionid="uUnion1")})

    assert response.status_code == 200
    body = response.json()
    assert body["token"].startswith("tgc_") and "session_key" not in response.text
    citizen = await Citizen.get(openid="oUser1")
    assert citizen.unionid == "uUnion1" and body["citizen_id"] == citizen.id
    session = await CitizenSession.get(citizen_id=citizen.id)
    assert session.session_key.startswith("sk-") and session.token_hash != body["token"]
    me = await api.get("/miniapp/v1/me", headers={"authorization": f"Bearer {body['token']}"})
    assert me.json()["citizen_id"] == citizen.id


async def test_a_reused_or_unknown_login_code_is_refused_and_signs_nobody_in(api, wechat):
    code = wechat.login_code("oUser2")
    assert (await api.post("/miniapp/v1/auth/login", json={"code": code})).status_code == 200
    citizens = await Citizen.all().count()

    reused = await api.post("/miniapp/v1/auth/login", json={"code": code})
    forged = await api.post("/miniapp/v1/auth/login", json={"code": "code-made-up"})

    assert (reused.status_code, reused.json()["code"]) == (401, "login_code_used")
    assert reused.json()["title"] == "登录凭证已使用，请重新进入小程序登录。"
    assert (forged.status_code, forged.json()["code"]) == (401, "login_code_invalid")
    assert await Citizen.all().count() == citizens and await CitizenSession.all().count() == 1


async def test_forged_expired_and_signed_out_tokens_are_refused(api, wechat):
    headers = await login(api, wechat)
    assert (await api.get("/miniapp/v1/reports", headers=headers)).status_code == 200

    forged = await api.get("/miniapp/v1/reports", headers={"authorization": "Bearer tgc_not-a-real-token"})
    assert (forged.status_code, forged.json()["code"]) == (401, "token_invalid")
    assert forged.headers["www-authenticate"] == "Bearer"
    missing = await api.get("/miniapp/v1/reports")
    assert missing.json()["code"] == "not_authenticated"

    await CitizenSession.all().update(expires_at=clock.now() - timedelta(seconds=1))
    expired = await api.get("/miniapp/v1/reports", headers=headers)
    assert (expired.status_code, expired.json()["code"]) == (401, "token_expired")

    fresh = await login(api, wechat, "oCitizenB")
    assert (await api.post("/miniapp/v1/auth/logout", headers=fresh)).status_code == 204
    assert (await api.get("/miniapp/v1/reports", headers=fresh)).json()["code"] == "session_revoked"


async def test_a_report_with_a_photo_and_a_gcj02_location_becomes_a_case_i_can_follow(api, wechat):
    headers = await login(api, wechat)
    upload = await api.post("/miniapp/v1/media", files={"file": ("a.jpg", jpeg_bytes(), "image/jpeg")}, headers=headers)
    assert upload.status_code == 201, upload.text
    photo = upload.json()["media_id"]

    response = await report(api, headers, photos=[photo])

    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["message"].startswith("已收到您的反映") and accepted["flagged"] is False
    stored = await Report.get(id=accepted["report_id"])
    where = await place()
    assert (stored.source, stored.datum, stored.photos) == ("miniapp", "gcj02", [photo])
    # WeChat checked the text, with the v2 fields.
    assert wechat.checked[-1]["version"] == 2 and wechat.checked[-1]["content"] == "小区门口有暴露垃圾"

    before = (await api.get("/miniapp/v1/reports", headers=headers)).json()
    assert before["items"][0]["status"] == "已收到您的反映，正在处理" and before["items"][0]["case_number"] is None

    await process_report(report_id=stored.id)
    stored = await Report.get(id=stored.id)
    assert abs(stored.lon - where["wgs84"][0]) < 1e-5 and abs(stored.lat - where["wgs84"][1]) < 1e-5
    mine = (await api.get("/miniapp/v1/reports", headers=headers)).json()
    item = mine["items"][0]
    case = await Case.get(id=stored.case_id)
    assert mine["total"] == 1 and item["case_number"] == case.number
    assert item["subclass"] == "暴露垃圾" and item["status"] and item["timeline"][0]["text"] == "您提交了反映"
    assert item["expected_at"] is not None and item["can_rate"] is False


async def test_a_retried_submission_returns_the_same_report_and_other_content_under_its_key_is_refused(api, wechat):
    headers = await login(api, wechat)
    first = await report(api, headers)
    again = await report(api, headers)
    other = await report(api, headers, description="另一件事")

    assert first.status_code == again.status_code == 202
    assert first.json()["report_id"] == again.json()["report_id"]
    assert (other.status_code, other.json()["code"]) == (409, "idempotency_key_reused")
    assert await Report.all().count() == 1


async def test_risky_text_is_refused_and_text_for_review_is_accepted_but_flagged(api, wechat):
    wechat.verdicts = {"违禁": ("risky", 20001), "待审": ("review", 10001)}
    headers = await login(api, wechat)

    risky = await report(api, headers, key="mini-key-risky", description="这里有违禁内容")
    review = await report(api, headers, key="mini-key-review", description="这段话待审一下")

    assert (risky.status_code, risky.json()["code"]) == (422, "content_risky")
    assert "不适宜公开" in risky.json()["title"]
    assert review.status_code == 202 and review.json()["flagged"] is True
    assert [r.flagged for r in await Report.all()] == [True]


async def test_wechat_down_does_not_lose_the_report_it_is_flagged_for_a_person(api, wechat, tmp_path, city, redis_url):
    headers = await login(api, wechat)
    wechat.stop()  # msg_sec_check cannot be reached

    response = await report(api, headers)

    assert response.status_code == 202 and response.json()["flagged"] is True
    assert await Report.all().count() == 1


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({"location": {"lon": 116.40, "lat": 39.90, "datum": "gcj02"}}, 422, "outside_city"),
        ({"description": "很" * 2001}, 422, "invalid_request"),
        ({"subclass": "event:9999"}, 404, "unknown_subclass"),
        ({"location": {"lon": 123.4, "lat": 41.8, "datum": "mars"}}, 422, "invalid_request"),
        ({"idempotency_key": "short"}, 422, "invalid_request"),
    ],
)
async def test_bad_reports_get_a_clear_answer_in_chinese_and_store_nothing(api, wechat, overrides, status, code):
    headers = await login(api, wechat)

    response = await report(api, headers, **overrides)

    assert (response.status_code, response.json()["code"]) == (status, code)
    assert response.headers["content-type"] == "application/problem+json"
    assert any("\u4e00" <= ch <= "\u9fff" for ch in response.json()["title"])
    assert await Report.all().count() == 0


async def test_a_photo_someone_else_uploaded_cannot_be_attached(api, wechat):
    other = await login(api, wechat, "oSomeoneElse")
    upload = await api.post("/miniapp/v1/media", files={"file": ("b.jpg", jpeg_bytes(), "image/jpeg")}, headers=other)
    headers = await login(api, wechat)

    response = await report(api, headers, photos=[upload.json()["media_id"]])

    assert (response.status_code, response.json()["code"]) == (422, "unknown_photo")
    assert await Report.all().count() == 0


async def test_a_citizen_sees_only_their_own_reports(api, wechat):
    mine = (await report(api, await login(api, wechat))).json()["report_id"]
    other = await login(api, wechat, "oNeighbour")

    assert (await api.get(f"/miniapp/v1/reports/{mine}", headers=other)).status_code == 404
    assert (await api.get("/miniapp/v1/reports", headers=other)).json()["total"] == 0
    rated = await api.post(f"/miniapp/v1/reports/{mine}/rating", json={"satisfaction": "满意"}, headers=other)
    assert rated.status_code == 404


async def test_after_closing_i_can_rate_once_and_reopen_within_seven_days(api, wechat):
    headers = await login(api, wechat)
    report_id = (await report(api, headers)).json()["report_id"]
    early = await api.post(f"/miniapp/v1/reports/{report_id}/rating", json={"satisfaction": "满意"}, headers=headers)
    assert (early.status_code, early.json()["code"]) == (422, "not_yet_handled")
    await process_report(report_id=report_id)
    case_id = (await Report.get(id=report_id)).case_id
    not_closed = await api.post(
        f"/miniapp/v1/reports/{report_id}/rating", json={"satisfaction": "满意"}, headers=headers
    )
    assert not_closed.status_code == 409
    await Case.filter(id=case_id).update(status="closed", is_open=False, closed_at=clock.now(), stage=None)

    item = (await api.get(f"/miniapp/v1/reports/{report_id}", headers=headers)).json()
    assert item["can_rate"] and item["can_reopen"]
    rated = await api.post(
        f"/miniapp/v1/reports/{report_id}/rating",
        json={"satisfaction": "不满意", "comment": "还有垃圾"},
        headers=headers,
    )
    assert rated.status_code == 200, rated.text
    assert rated.json()["satisfaction"] == "不满意" and rated.json()["can_rate"] is False
    assert (await Case.get(id=case_id)).rating_comment == "还有垃圾"

    reopened = await api.post(
        f"/miniapp/v1/reports/{report_id}/reopen", json={"reason": "垃圾又堆起来了"}, headers=headers
    )
    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["is_open"] and reopened.json()["timeline"][-1]["text"] == "问题未解决，已重新办理"
    assert (await Case.get(id=case_id)).status == "dispatched"

    await Case.filter(id=case_id).update(status="closed", is_open=False, closed_at=clock.now() - timedelta(days=8))
    late = await api.post(f"/miniapp/v1/reports/{report_id}/reopen", json={"reason": "还是没好"}, headers=headers)
    assert (late.status_code, late.json()["code"]) == (409, "reopen_window_passed")


async def test_accepted_subscribe_templates_add_up_one_message_each(api, wechat):
    headers = await login(api, wechat)
    await api.post("/miniapp/v1/subscriptions", json={"accepted": ["case-progress"]}, headers=headers)
    answer = await api.post(
        "/miniapp/v1/subscriptions", json={"accepted": ["case-progress", "ad-permit-expiring"]}, headers=headers
    )

    assert answer.json()["subscriptions"] == {"case-progress": 2, "ad-permit-expiring": 1}
    assert (await api.get("/miniapp/v1/me", headers=headers)).json()["subscriptions"]["case-progress"] == 2


async def test_a_phone_number_is_bound_through_wechat_and_sms_notices_need_it(api, wechat):
    headers = await login(api, wechat)
    without = await report(api, headers, notify_sms=True)
    assert (without.status_code, without.json()["code"]) == (422, "phone_required")

    code = wechat.phone_code("13812345678")
    bound = await api.post("/miniapp/v1/me/phone", json={"code": code}, headers=headers)
    again = await api.post("/miniapp/v1/me/phone", json={"code": code}, headers=headers)

    assert bound.json() == {"phone": "138****5678"}
    assert (again.status_code, again.json()["code"]) == (422, "phone_code_invalid")
    assert (await api.get("/miniapp/v1/me", headers=headers)).json()["phone"] == "13812345678"
    assert (await report(api, headers, notify_sms=True)).status_code == 202
    assert (await Report.get()).notify_sms is True


async def test_an_ad_company_sees_its_permits_and_asks_for_renewal_once(api, wechat):
    headers = await login(api, wechat, "oAdCompany")
    company = await AdCompany.create(name="星光广告", contact_phone="13900000000", openid="oAdCompany")
    today = clock.now().date()
    await AdPermit.create(number="GG-001", company=company, site="中山路 1 号", valid_to=today + timedelta(days=20))
    await AdPermit.create(number="GG-002", company=company, site="中山路 9 号", valid_to=today + timedelta(days=200))

    permits = (await api.get("/miniapp/v1/permits", headers=headers)).json()["items"]
    first = await api.post("/miniapp/v1/permits/GG-001/renewal", json={"note": "请办理延续"}, headers=headers)
    second = await api.post("/miniapp/v1/permits/GG-001/renewal", json={"note": "再问一次"}, headers=headers)
    stranger = await api.post("/miniapp/v1/permits/GG-001/renewal", json={}, headers=await login(api, wechat, "oX"))

    assert [(p["number"], p["days_left"]) for p in permits] == [("GG-001", 20), ("GG-002", 200)]
    assert first.json()["renewal_requested_at"] == second.json()["renewal_requested_at"] is not None
    assert (await AdPermit.get(number="GG-001")).renewal_note == "请办理延续"
    assert (stranger.status_code, stranger.json()["code"]) == (404, "permit_not_found")


async def test_a_merchant_request_goes_in_as_a_report_at_the_shop_and_only_from_its_owner(api, wechat):
    where = await place()
    lon, lat = where["wgs84"]
    await Shop.create(qr="SHOP-T1", name="老王面馆", address="幸福路 3 号", lon=lon, lat=lat, owner_openid="oShopOwner")
    body = {"description": "门前人行道破损，影响顾客通行", "idempotency_key": "shop-req-0001"}

    owner = await api.post(
        "/miniapp/v1/shops/SHOP-T1/requests", json=body, headers=await login(api, wechat, "oShopOwner")
    )
    stranger = await api.post("/miniapp/v1/shops/SHOP-T1/requests", json=body, headers=await login(api, wechat, "oX"))

    assert owner.status_code == 202, owner.text
    stored = await Report.get(id=owner.json()["report_id"])
    assert stored.text.startswith("【商户诉求】老王面馆") and stored.address == "幸福路 3 号"
    assert (stranger.status_code, stranger.json()["code"]) == (403, "not_shop_owner")
    assert await Report.all().count() == 1


async def test_too_many_reports_from_one_citizen_are_held_back_but_a_retry_still_gets_its_answer(
    city, tmp_path, redis_url, wechat
):
    app = create_app(app_settings(city, tmp_path, redis_url, wechat.base_url, rate_reports_per_hour=2))
    async with serving(app, base_url="http://t") as api:
        headers = await login(api, wechat)
        answers = [await report(api, headers, key=f"mini-key-{i:04d}") for i in range(3)]
        retry = await report(api, headers, key="mini-key-0000")
        stored = await Report.all().count()

    assert [a.status_code for a in answers] == [202, 202, 429]
    assert answers[2].json()["code"] == "too_many_reports" and int(answers[2].headers["retry-after"]) > 0
    assert retry.status_code == 202 and retry.json()["report_id"] == answers[0].json()["report_id"]
    assert stored == 2


async def test_without_a_wechat_appid_the_demo_sign_in_works(city, tmp_path):
    app = create_app(Settings(_env_file=None, database_url=city, var_dir=tmp_path))
    async with serving(app, base_url="http://t") as api:
        first = await api.post("/miniapp/v1/auth/login", json={"code": "demo-alice"})
        again = await api.post("/miniapp/v1/auth/login", json={"code": "demo-alice"})
        wrong = await api.post("/miniapp/v1/auth/login", json={"code": "anything"})

    assert first.status_code == again.status_code == 200
    assert first.json()["citizen_id"] == again.json()["citizen_id"]
    assert wrong.status_code == 401


async def test_one_client_address_is_held_back_after_its_limit(city, tmp_path, redis_url, wechat):
    app = create_app(app_settings(city, tmp_path, redis_url, wechat.base_url, rate_ip_per_minute=3))
    async with serving(app, base_url="http://t") as api:
        answers = [await api.post("/miniapp/v1/auth/login", json={"code": "made-up"}) for _ in range(4)]

    assert [a.status_code for a in answers] == [401, 401, 401, 429]
    assert answers[3].json()["title"] == "操作太频繁，请稍后再试。"
