"""Reporting by chat: the conversation as a citizen has it, one push after another, and what they are told."""

import time

import pytest
from pydantic import SecretStr

from bots.wechat_xml import signature_of
from core.accounts.models import Citizen
from core.cases.models import Case
from core.chat.models import ChatInbound, ChatState
from core.geo.datum import from_wgs84
from core.media.models import Media
from core.notices.models import Notice
from core.regions.models import RoadSegment, UnitGrid
from core.reports.flows import process_report
from core.reports.models import Report
from core.settings import Settings
from jobs.chat import chat_message
from tests.asgi import serving
from tests.factories import interior_point, jpeg_bytes
from tests.stubs.wechat import WeChatStub
from tongguan.app import create_app

TOKEN, OPENID, ACCOUNT = "tg-callback-token", "oChatCitizen0000000000000001", "gh_0123456789ab"
APPID = "wxofficial000001"


@pytest.fixture
def wechat():
    stub = WeChatStub(appid=APPID, secret="oa-secret").start()
    stub.media["media-1"] = jpeg_bytes()
    yield stub
    stub.stop()


@pytest.fixture
async def api(city, tmp_path, redis_url, wechat):
    settings = Settings(
        _env_file=None,
        database_url=city,
        var_dir=tmp_path,
        redis_url=redis_url,
        wechat_token=SecretStr(TOKEN),
        wechat_appid=APPID,
        wechat_secret=SecretStr("oa-secret"),
        wechat_api_base=wechat.base_url,
        face_detector="none",
    )
    app = create_app(settings)
    async with serving(app, base_url="http://t") as c:
        yield c


class Chat:
    """One citizen chatting: each push goes through the webhook, then its job runs; replies are collected."""

    def __init__(self, api) -> None:
        self.api, self.msg_id, self.replies = api, 25000000000000000, []

    async def push(self, inner: str) -> list[str]:
        self.msg_id += 1
        xml = (
            f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{OPENID}]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime>{inner}<MsgId>{self.msg_id}</MsgId></xml>"
        )
        ts, nonce = str(int(time.time())), "n"
        query = {"timestamp": ts, "nonce": nonce, "signature": signature_of(TOKEN, ts, nonce)}
        answer = await self.api.post("/wechat/callback", params=query, content=xml.encode())
        assert answer.status_code == 200, answer.text
        inbound = await ChatInbound.get(key=f"msg:{self.msg_id}")
        await chat_message(inbound_id=inbound.id)
        notices = await Notice.filter(dedupe_key__startswith=f"chat:{inbound.id}:").order_by("dedupe_key")
        said = [n.params["text"] for n in notices]
        self.replies.extend(said)
        return said

    async def text(self, content: str) -> list[str]:
        return await self.push(f"<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content>")

    async def image(self, media_id: str = "media-1") -> list[str]:
        inner = "<MsgType><![CDATA[image]]></MsgType><PicUrl><![CDATA[http://mmbiz/x.jpg]]></PicUrl>"
        return await self.push(inner + f"<MediaId><![CDATA[{media_id}]]></MediaId>")

    async def location(self, lon: float, lat: float, label: str = "幸福路 12 号") -> list[str]:
        return await self.push(
            f"<MsgType><![CDATA[location]]></MsgType><Location_X>{lat}</Location_X><Location_Y>{lon}</Location_Y>"
            f"<Scale>15</Scale><Label><![CDATA[{label}]]></Label>"
        )


async def place_gcj02() -> tuple[float, float]:
    grid = (await UnitGrid.all().order_by("code").first()).code
    return from_wgs84(*(await interior_point(grid)), "gcj02")


@pytest.mark.parametrize("photo_first", [True, False])
async def test_a_citizen_reports_by_chat_photo_and_place_in_either_order_and_hears_the_number(api, photo_first):
    chat = Chat(api)
    lon, lat = await place_gcj02()

    assert "描述" in (await chat.text("我要上报"))[0]
    assert "照片" in (await chat.text("小区门口垃圾堆了好几天"))[0]
    if photo_first:
        await chat.image()
        last = await chat.location(lon, lat)
    else:
        await chat.location(lon, lat)
        last = await chat.image()
    assert "确认" in last[-1] and "小区门口垃圾堆了好几天" in last[-1]
    done = await chat.text("确认")

    report = await Report.get()
    assert done == [f"上报成功！上报编号：{report.id}。我们将尽快核实处置，进度会通知您；回复“我的上报”可随时查看。"]
    assert (report.source, report.datum, report.text) == ("official_account", "gcj02", "小区门口垃圾堆了好几天")
    photo = await Media.get(id=report.photos[0])  # fetched from WeChat by the job, kept as the citizen's upload
    assert (photo.owner_type, photo.owner_id) == ("citizen", report.reporter_id) and len(report.photos) == 1
    assert report.reporter_id == str((await Citizen.get(openid=OPENID)).id)
    assert (await ChatState.get(openid=OPENID)).state == "idle"


async def test_a_place_outside_the_city_is_refused_with_the_reason_and_the_report_waits(api):
    chat = Chat(api)
    await chat.text("我要上报")
    await chat.text("井盖丢了")

    assert "不在本市" in (await chat.location(116.40, 39.90))[0]
    assert (await ChatState.get(openid=OPENID)).state == "await_details"
    assert await Report.all().count() == 0


async def test_an_address_naming_a_known_road_is_taken_as_the_place(api):
    road = await RoadSegment.all().order_by("code").first()
    chat = Chat(api)
    await chat.text("我要上报")
    await chat.text("路灯不亮")

    answer = await chat.text(f"{road.name}附近")

    assert "已收到位置" in answer[0] and "确认" in answer[-1]


async def test_an_address_naming_nothing_known_asks_for_a_location_instead(api):
    chat = Chat(api)
    await chat.text("我要上报")
    await chat.text("路灯不亮")

    answer = await chat.text("就在那边拐角")

    assert "没有找到这个地址" in answer[0]
    assert (await ChatState.get(openid=OPENID)).state == "await_details"


async def test_cancel_drops_the_draft_and_a_running_job_twice_sends_nothing_twice(api):
    chat = Chat(api)
    await chat.text("我要上报")
    assert "已取消" in (await chat.text("取消"))[0]
    assert (await ChatState.get(openid=OPENID)).draft == {}

    inbound = await ChatInbound.all().order_by("-id").first()
    assert await chat_message(inbound_id=inbound.id) == 1
    assert await Notice.filter(dedupe_key__startswith=f"chat:{inbound.id}:").count() == 1


async def test_query_by_case_number_and_my_reports_answer_in_citizen_words(api):
    chat = Chat(api)
    lon, lat = await place_gcj02()
    for step in ("我要上报", "路口有暴露垃圾"):
        await chat.text(step)
    await chat.location(lon, lat)
    await chat.text("确认")
    report = await Report.get()
    await process_report(report_id=report.id)
    case = await Case.get(id=(await Report.get(id=report.id)).case_id)

    status = await chat.text(f"查询 {case.number}")
    mine = await chat.text("我的上报")
    missing = await chat.text("查询 20200101999999")

    assert status[0].startswith(f"案卷 {case.number}") and "：" in status[0]
    assert f"编号 {report.id}" in mine[0]
    assert "没有找到案卷" in missing[0]


async def test_free_text_is_offered_a_report_voice_counts_as_text_and_other_things_get_a_fallback(api):
    chat = Chat(api)
    offer = await chat.text("你们好，我家楼下井盖丢了")
    voice = await chat.push(
        "<MsgType><![CDATA[voice]]></MsgType><MediaId><![CDATA[v1]]></MediaId><Format><![CDATA[amr]]></Format>"
        "<Recognition><![CDATA[我要上报]]></Recognition>"
    )
    link = await chat.push("<MsgType><![CDATA[link]]></MsgType><Title><![CDATA[t]]></Title>")

    assert "我要上报" in offer[0]
    assert "描述" in voice[0]
    assert "暂不支持" in link[0]


async def test_a_photo_that_is_not_an_image_or_cannot_be_fetched_is_asked_for_again(api, wechat):
    wechat.media["fake"] = b"%PDF-1.4 not a photo"
    chat = Chat(api)
    await chat.text("我要上报")
    await chat.text("井盖丢了")

    fake = await chat.image("fake")
    gone = await chat.image("expired-media")

    assert "不是可识别的照片" in fake[0] and "照片接收失败" in gone[0]
    assert (await ChatState.get(openid=OPENID)).draft.get("photos", []) == []
    assert await Media.all().count() == 0


async def test_a_later_push_handled_first_waits_for_the_earlier_one(api):
    from core.chat.flows import EarlierPushPending

    chat = Chat(api)
    await chat.text("我要上报")
    # Two workers: "确认" and the description arrive together, the later one's job runs first.
    ts, nonce = str(int(time.time())), "n"
    query = {"timestamp": ts, "nonce": nonce, "signature": signature_of(TOKEN, ts, nonce)}
    for msg_id, content in ((26000000000000001, "井盖丢了"), (26000000000000002, "取消")):
        xml = (
            f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{OPENID}]]></FromUserName>"
            f"<CreateTime>{ts}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>"
        )
        assert (await api.post("/wechat/callback", params=query, content=xml.encode())).status_code == 200
    first = await ChatInbound.get(key="msg:26000000000000001")
    second = await ChatInbound.get(key="msg:26000000000000002")

    with pytest.raises(EarlierPushPending):
        await chat_message(inbound_id=second.id)
    await chat_message(inbound_id=first.id)
    await chat_message(inbound_id=second.id)

    assert (await ChatState.get(openid=OPENID)).state == "idle"  # the description, then the cancel: in order
    replies = await Notice.filter(dedupe_key=f"chat:{second.id}:0").values_list("params", flat=True)
    assert "已取消" in replies[0]["text"]
