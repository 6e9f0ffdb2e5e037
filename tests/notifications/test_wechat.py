"""WeChat tokens shared through Redis and the three message sends, with the real wechatpy against a stub."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from notifications.wechat_send import WeChatSender
from notifications.wechat_token import TokenStore, WeChatApp, WeChatTokenError
from tests.stubs.wechat import CUSTOM, SUBSCRIBE, TEMPLATE, WeChatStub

pytestmark = pytest.mark.redis

APPID = "wx-test-app"
SECRET = "s3cret"
OPENID = "o-citizen-1"


@pytest.fixture(autouse=True)
def no_real_wechat(monkeypatch) -> list[str]:
    """Any lookup of WeChat's real host fails the request and is remembered."""
    looked_up: list[str] = []
    real = socket.getaddrinfo

    def guarded(host, *args, **kwargs):
        if isinstance(host, bytes):
            host = host.decode()
        if host and "weixin.qq.com" in host:
            looked_up.append(host)
            raise socket.gaierror(f"blocked in tests: {host}")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    return looked_up


@pytest.fixture
def stub() -> Iterator[WeChatStub]:
    server = WeChatStub(appid=APPID, secret=SECRET).start()
    yield server
    server.stop()


@pytest.fixture
def redis_client(redis_url) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def make_tokens(redis_client: redis.Redis, stub: WeChatStub, **kwargs) -> TokenStore:
    kwargs.setdefault("timeout_s", 2.0)
    kwargs.setdefault("backoff_s", 0.05)
    return TokenStore(redis_client, [WeChatApp(APPID, SECRET, stub.base_url)], **kwargs)


def make_sender(tokens: TokenStore, stub: WeChatStub, timeout_s: float = 2.0) -> WeChatSender:
    return WeChatSender(appid=APPID, secret=SECRET, api_base=stub.base_url, tokens=tokens, timeout_s=timeout_s)


# --- tokens ---


def test_two_processes_share_one_token(redis_url, stub):
    first = make_tokens(redis.Redis.from_url(redis_url), stub)
    second = make_tokens(redis.Redis.from_url(redis_url), stub)

    assert first.get(APPID) == second.get(APPID)
    assert stub.stable_token_calls == 1


def test_token_is_cached_with_ttl_five_minutes_short_of_expiry(redis_client, stub):
    make_tokens(redis_client, stub).get(APPID)

    ttl = redis_client.ttl(f"tg:wechat:token:{APPID}")
    assert 7200 - 300 - 5 <= ttl <= 7200 - 300


def test_eight_threads_asking_at_once_fetch_once(redis_url, stub):
    stub.token_delay_s = 0.3  # long enough that all eight find the cache empty
    stores = [make_tokens(redis.Redis.from_url(redis_url), stub) for _ in range(8)]
    barrier = threading.Barrier(8)
    results: list[str] = []

    def ask(store: TokenStore) -> None:
        barrier.wait()
        results.append(store.get(APPID))

    threads = [threading.Thread(target=ask, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)

    assert len(results) == 8 and len(set(results)) == 1
    assert stub.stable_token_calls == 1


def test_invalidate_drops_only_the_bad_token(redis_client, stub):
    tokens = make_tokens(redis_client, stub)
    good = tokens.get(APPID)

    assert tokens.invalidate(APPID, "some-older-token") is False
    assert tokens.get(APPID) == good
    assert tokens.invalidate(APPID, good) is True
    assert redis_client.get(f"tg:wechat:token:{APPID}") is None


def test_replace_force_refreshes(redis_client, stub):
    tokens = make_tokens(redis_client, stub)
    bad = tokens.get(APPID)

    fresh = tokens.replace(APPID, bad)

    # Without force_refresh the stub, like WeChat, would hand back the same still-valid token.
    assert fresh != bad
    assert tokens.get(APPID) == fresh


def test_wrong_secret_is_an_error_with_errcode(redis_client, stub):
    tokens = TokenStore(redis_client, [WeChatApp(APPID, "wrong", stub.base_url)], timeout_s=1.0)

    with pytest.raises(WeChatTokenError) as caught:
        tokens.get(APPID)

    assert caught.value.errcode == 40125
    assert stub.stable_token_calls == 1  # not retried: another try cannot fix a wrong secret


def test_hanging_token_server_is_retried_a_bounded_number_of_times(redis_client, stub):
    stub.token_delay_s = 1.0
    tokens = make_tokens(redis_client, stub, timeout_s=0.2, attempts=3, backoff_s=0.05)

    started = time.monotonic()
    with pytest.raises(WeChatTokenError) as caught:
        tokens.get(APPID)

    assert caught.value.errcode is None
    assert stub.stable_token_calls == 3
    assert time.monotonic() - started < 2.5


# --- sends ---


def test_subscribe_message_is_sent_by_wechatpy(redis_client, stub, no_real_wechat):
    sender = make_sender(make_tokens(redis_client, stub), stub)

    result = sender.subscribe_message(
        openid=OPENID, template_id="tpl-1", data={"thing1": "井盖破损", "time2": "2024-05-01 10:00"}, page="pages/a"
    )

    assert result.outcome == "sent" and result.errcode == 0 and result.msgid
    [seen] = stub.sent
    assert seen.path == SUBSCRIBE
    assert seen.query["access_token"] == redis_client.get(f"tg:wechat:token:{APPID}").decode()
    assert seen.headers["User-Agent"].startswith("python-requests/")  # wechatpy's requests session
    assert seen.body == {
        "touser": OPENID,
        "template_id": "tpl-1",
        "page": "pages/a",
        "data": {"thing1": {"value": "井盖破损"}, "time2": {"value": "2024-05-01 10:00"}},
    }
    assert stub.legacy_token_calls == 0
    assert no_real_wechat == []


def test_template_message_and_customer_service_text(redis_client, stub, no_real_wechat):
    sender = make_sender(make_tokens(redis_client, stub), stub)

    template = sender.template_message(openid=OPENID, template_id="tpl-2", data={"first": "已受理"}, url="https://x/1")
    text = sender.customer_service_text(openid=OPENID, text="您的案件已办结")

    assert (template.outcome, text.outcome) == ("sent", "sent")
    assert [r.path for r in stub.sent] == [TEMPLATE, CUSTOM]
    assert stub.sent[0].body == {
        "touser": OPENID,
        "template_id": "tpl-2",
        "url": "https://x/1",
        "data": {"first": {"value": "已受理"}},
    }
    assert stub.sent[1].body == {"touser": OPENID, "msgtype": "text", "text": {"content": "您的案件已办结"}}
    # wechatpy sends its JSON as UTF-8 without \u escapes
    assert "您的案件已办结" in json.dumps(stub.sent[1].body, ensure_ascii=False)
    assert stub.stable_token_calls == 1 and stub.legacy_token_calls == 0
    assert no_real_wechat == []


def test_revoked_token_is_replaced_and_the_send_retried_once(redis_client, stub):
    tokens = make_tokens(redis_client, stub)
    sender = make_sender(tokens, stub)
    old = tokens.get(APPID)
    stub.revoke_token(old)

    result = sender.customer_service_text(openid=OPENID, text="hi")

    assert result.outcome == "sent"
    assert [r.query["access_token"] == old for r in stub.received] == [True, False]
    assert tokens.get(APPID) != old
    assert stub.stable_token_calls == 2 and stub.legacy_token_calls == 0


def test_expired_token_42001_is_replaced_and_the_send_retried_once(redis_client, stub):
    tokens = make_tokens(redis_client, stub)
    sender = make_sender(tokens, stub)
    old = tokens.get(APPID)
    stub.expire_token(old)

    result = sender.template_message(openid=OPENID, template_id="tpl", data={"k": "v"})

    assert result.outcome == "sent"
    assert len(stub.received) == 2 and stub.received[1].query["access_token"] != old


def test_token_refused_twice_is_retry_after_exactly_one_retry(redis_client, stub):
    sender = make_sender(make_tokens(redis_client, stub), stub)
    stub.fail_next(40001, times=5)

    result = sender.subscribe_message(openid=OPENID, template_id="tpl", data={"k": "v"})

    assert (result.outcome, result.errcode) == ("retry", 40001)
    assert len(stub.received) == 2  # wechatpy's auto_retry would have kept going
    assert stub.legacy_token_calls == 0


@pytest.mark.parametrize(
    ("errcode", "outcome"),
    [(43101, "dead"), (45015, "window_closed"), (45047, "window_closed"), (-1, "retry"), (40003, "dead")],
)
def test_errcodes_map_to_outcomes(redis_client, stub, errcode, outcome):
    sender = make_sender(make_tokens(redis_client, stub), stub)
    stub.fail_next(errcode)

    result = sender.customer_service_text(openid=OPENID, text="hi")

    assert (result.outcome, result.errcode) == (outcome, errcode)
    assert len(stub.received) == 1 and stub.sent == []


def test_user_without_subscription_is_dead(redis_client, stub):
    sender = make_sender(make_tokens(redis_client, stub), stub)
    stub.fail_next(43101, path=SUBSCRIBE)

    result = sender.subscribe_message(openid=OPENID, template_id="tpl", data={"k": "v"})

    assert (result.outcome, result.errcode) == ("dead", 43101)


def test_customer_service_outside_48h_window_is_window_closed(redis_client, stub):
    sender = make_sender(make_tokens(redis_client, stub), stub)
    stub.fail_next(45015, path=CUSTOM)

    result = sender.customer_service_text(openid=OPENID, text="hi")

    assert (result.outcome, result.errcode) == ("window_closed", 45015)


def test_send_that_hangs_past_the_timeout_is_unknown(redis_client, stub):
    tokens = make_tokens(redis_client, stub)
    tokens.get(APPID)
    stub.send_delay_s = 1.0
    sender = make_sender(tokens, stub, timeout_s=0.2)

    started = time.monotonic()
    result = sender.template_message(openid=OPENID, template_id="tpl", data={"k": "v"})

    assert result.outcome == "unknown"
    assert len(stub.received) == 1  # not resent: it may have been delivered
    assert time.monotonic() - started < 1.0


def test_unreachable_server_is_retry(redis_client, stub):
    tokens = make_tokens(redis_client, stub)
    tokens.get(APPID)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    sender = WeChatSender(appid=APPID, secret=SECRET, api_base=f"http://127.0.0.1:{port}", tokens=tokens, timeout_s=0.5)

    result = sender.customer_service_text(openid=OPENID, text="hi")

    assert result.outcome == "retry"


def test_token_server_down_makes_sends_retry(redis_client, stub):
    stub.token_delay_s = 1.0
    sender = make_sender(make_tokens(redis_client, stub, timeout_s=0.1, attempts=2, backoff_s=0.01), stub)

    result = sender.customer_service_text(openid=OPENID, text="hi")

    assert result.outcome == "retry"
    assert stub.received == []


def test_without_redirect_wechatpy_would_reach_the_real_host(redis_client, stub, no_real_wechat):
    """The guard itself works: a sender pointed at the real host is blocked, not sent."""
    tokens = make_tokens(redis_client, stub)
    tokens.get(APPID)
    sender = WeChatSender(
        appid=APPID, secret=SECRET, api_base="https://api.weixin.qq.com", tokens=tokens, timeout_s=0.5
    )

    result = sender.customer_service_text(openid=OPENID, text="hi")

    assert result.outcome == "retry"
    assert no_real_wechat == ["api.weixin.qq.com"]
