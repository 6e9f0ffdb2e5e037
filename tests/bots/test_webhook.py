"""The official-account webhook, driven exactly as WeChat drives it: signed (and encrypted) XML, retries."""

import asyncio
import re
import time

import httpx
import pytest
from pydantic import SecretStr
from wechatpy.crypto import WeChatCrypto

from bots.wechat_xml import signature_of
from core.chat.models import ChatInbound
from core.outbox.models import OutboxEntry
from core.settings import Settings
from tests.asgi import serving
from tongguan.app import create_app

TOKEN, AES_KEY, APPID = "tg-callback-token", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wxofficial000001"
OPENID, ACCOUNT = "oOfficialUser000000000000001", "gh_0123456789ab"


@pytest.fixture
async def api(db, tmp_path, redis_url):
    settings = Settings(
        _env_file=None,
        database_url=db,
        var_dir=tmp_path,
        redis_url=redis_url,  # jobs wait in the outbox: the test runs them when it wants
        wechat_token=SecretStr(TOKEN),
        wechat_aes_key=SecretStr(AES_KEY),
        wechat_appid=APPID,
    )
    app = create_app(settings)
    async with serving(app, base_url="http://t") as c:
        yield c


def text_xml(content: str, msg_id: int = 24000000000000001, sent_at: int | None = None) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{OPENID}]]></FromUserName>"
        f"<CreateTime>{sent_at or int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    )


def event_xml(event: str, sent_at: int) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{OPENID}]]></FromUserName>"
        f"<CreateTime>{sent_at}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[{event}]]></Event></xml>"
    )


def signed(timestamp: int | None = None, nonce: str = "n0nce") -> dict[str, str]:
    ts = str(timestamp or int(time.time()))
    return {"timestamp": ts, "nonce": nonce, "signature": signature_of(TOKEN, ts, nonce)}


async def post_plain(api, xml: str, **query) -> httpx.Response:
    return await api.post("/wechat/callback", params={**signed(), **query}, content=xml.encode())


async def post_aes(api, xml: str) -> httpx.Response:
    ts, nonce = str(int(time.time())), "aesnonce"
    sealed = WeChatCrypto(TOKEN, AES_KEY, APPID).encrypt_message(xml, nonce, ts)
    msg_signature = re.search(r"<MsgSignature><!\[CDATA\[(\w+)\]\]>", sealed).group(1)
    query = {**signed(int(ts), nonce), "encrypt_type": "aes", "msg_signature": msg_signature}
    return await api.post("/wechat/callback", params=query, content=sealed.encode())


async def test_wechat_checks_the_server_url_and_gets_echostr_back(api):
    answer = await api.get("/wechat/callback", params={**signed(), "echostr": "1234567890"})
    forged = await api.get("/wechat/callback", params={**signed(), "signature": "0" * 40, "echostr": "x"})

    assert (answer.status_code, answer.text) == (200, "1234567890")
    assert (forged.status_code, forged.json()["code"]) == (403, "bad_signature")


async def test_a_text_message_is_stored_once_with_its_job_and_answered_at_once(api):
    answer = await post_plain(api, text_xml("路口井盖丢了"))

    assert (answer.status_code, answer.text) == (200, "success")
    stored = await ChatInbound.get()
    assert (stored.key, stored.openid, stored.payload["Content"]) == ("msg:24000000000000001", OPENID, "路口井盖丢了")
    assert await OutboxEntry.filter(task="chat_message").count() == 1


async def test_a_retried_message_creates_nothing_twice_even_when_the_retries_arrive_together(api):
    xml = text_xml("垃圾桶满了", msg_id=24000000000000777)

    answers = await asyncio.gather(*(post_plain(api, xml) for _ in range(3)))
    again = await post_plain(api, xml)

    assert {a.status_code for a in [*answers, again]} == {200}
    assert await ChatInbound.all().count() == 1
    assert await OutboxEntry.filter(task="chat_message").count() == 1


async def test_a_retried_event_is_known_by_its_sender_and_time(api):
    sent_at = int(time.time())
    first = await post_plain(api, event_xml("subscribe", sent_at))
    retry = await post_plain(api, event_xml("subscribe", sent_at))
    later = await post_plain(api, event_xml("subscribe", sent_at + 60))

    assert "欢迎关注" in first.text and retry.text == "success"
    assert await ChatInbound.all().count() == 2 and later.status_code == 200


async def test_safe_mode_messages_are_decrypted_and_the_passive_reply_is_encrypted(api):
    answer = await post_aes(api, text_xml("帮助"))

    assert answer.status_code == 200
    assert "<Encrypt>" in answer.text and "使用说明" not in answer.text
    ts = re.search(r"<TimeStamp>(\d+)</TimeStamp>", answer.text).group(1)
    nonce = re.search(r"<Nonce><!\[CDATA\[(\w+)\]\]>", answer.text).group(1)
    signature = re.search(r"<MsgSignature><!\[CDATA\[(\w+)\]\]>", answer.text).group(1)
    opened = WeChatCrypto(TOKEN, AES_KEY, APPID).decrypt_message(answer.text, signature, ts, nonce)
    assert "使用说明" in opened and f"<ToUserName><![CDATA[{OPENID}]]>" in opened


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"signature": "f" * 40}, "bad_signature"),
        ({**signed(int(time.time()) - 3600)}, "stale_timestamp"),
    ],
)
async def test_forged_or_replayed_callbacks_are_refused_and_store_nothing(api, query, code):
    answer = await api.post("/wechat/callback", params={**signed(), **query}, content=text_xml("你好").encode())

    assert (answer.status_code, answer.json()["code"]) == (403, code)
    assert await ChatInbound.all().count() == 0


@pytest.mark.parametrize(
    "body",
    [
        b"<xml><ToUserName>broken",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]><xml><Content>&e;</Content></xml>',
        b"<xml><MsgType>text</MsgType></xml>",
        "不是 XML".encode(),
    ],
)
async def test_malformed_or_entity_laden_xml_is_refused_and_stores_nothing(api, body):
    answer = await api.post("/wechat/callback", params=signed(), content=body)

    assert (answer.status_code, answer.json()["code"]) == (422, "bad_xml")
    assert await ChatInbound.all().count() == 0


async def test_an_oversized_body_is_refused(api):
    answer = await post_plain(api, text_xml("很" * 40_000))

    assert answer.status_code == 413
    assert await ChatInbound.all().count() == 0


async def test_a_broken_encrypted_body_is_a_bad_request_not_a_crash(api):
    query = {**signed(), "encrypt_type": "aes", "msg_signature": "0" * 40}
    answer = await api.post("/wechat/callback", params=query, content=b"<xml><Encrypt>%%%notbase64</Encrypt></xml>")

    assert answer.status_code in (403, 422)
    assert await ChatInbound.all().count() == 0


async def test_the_reply_stays_valid_xml_whatever_the_text_holds(api):
    from bots.wechat_xml import Envelope, Inbound

    envelope = Envelope(token=TOKEN, aes_key="", appid=APPID, window_s=300)
    inbound = Inbound("k", OPENID, ACCOUNT, "text", "", 1, {})
    xml = envelope.reply_text(inbound, "a]]>b<c>&d", encrypted=False, nonce="", timestamp="")

    import xml.etree.ElementTree as ET

    assert ET.fromstring(xml).find("Content").text == "a]]>b<c>&d"
