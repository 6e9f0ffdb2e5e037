"""The Aliyun SMS adapter, through the real aliyun-python-sdk-core, against a stub dysmsapi on 127.0.0.1."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest

from notifications.sms_aliyun import OUTCOME_BY_CODE, AliyunSms
from tests.stubs.aliyun_sms import AliyunSmsStub, post_raw, signed_params

KEY_ID, SECRET = "LTAItestkey", "test-secret"
PHONE = "13800138000"


@pytest.fixture
def stub() -> Iterator[AliyunSmsStub]:
    with AliyunSmsStub(keys={KEY_ID: SECRET}) as running:
        yield running


def adapter(endpoint: str, *, secret: str = SECRET, timeout_s: float = 5.0) -> AliyunSms:
    return AliyunSms(
        access_key_id=KEY_ID,
        access_key_secret=secret,
        endpoint=endpoint,
        sign_name="沈阳城管",
        scheme="http",
        timeout_s=timeout_s,
    )


def send(sms: AliyunSms, out_id: str = "notice-1-sms"):
    return sms.send(phone=PHONE, template_code="SMS_123456", params={"case": "A-1 * ~", "name": "张三"}, out_id=out_id)


def filed_on(stub: AliyunSmsStub):
    """The China date Aliyun filed the last send under (the day a query names, even across midnight)."""
    return stub.sent[-1].received_at.astimezone(timezone(timedelta(hours=8))).date()


def test_send_arrives_signed_with_our_params_and_returns_the_biz_id(stub: AliyunSmsStub) -> None:
    result = send(adapter(stub.endpoint))

    assert (result.outcome, result.code) == ("sent", "OK")
    assert result.provider_id == stub.sent[0].biz_id != ""
    received = stub.sent[0]
    assert received.params["Action"] == "SendSms"
    assert received.params["Version"] == "2017-05-25"
    assert received.phone == PHONE
    assert received.params["SignName"] == "沈阳城管"
    assert received.params["TemplateCode"] == "SMS_123456"
    assert received.params["OutId"] == "notice-1-sms"
    assert received.template_param == {"case": "A-1 * ~", "name": "张三"}
    assert "张三" in received.params["TemplateParam"]  # ensure_ascii=False: Aliyun counts characters, not escapes
    assert stub.refused == []


def test_each_send_uses_a_new_nonce(stub: AliyunSmsStub) -> None:
    sms = adapter(stub.endpoint)

    assert [send(sms, f"n-{i}").outcome for i in range(3)] == ["sent"] * 3
    assert len({s.params["SignatureNonce"] for s in stub.sent}) == 3


def test_wrong_secret_is_refused_by_the_stub_and_the_message_is_dead(
    stub: AliyunSmsStub, caplog: pytest.LogCaptureFixture
) -> None:
    result = send(adapter(stub.endpoint, secret="not-the-secret"))

    assert stub.refused == ["SignatureDoesNotMatch"]
    assert [s for s in stub.sent if s.code == "OK"] == []
    # The SDK would rename this InvalidAccessKeySecret by comparing string-to-signs, but a CommonRequest never
    # records its string-to-sign, so the code arrives as Aliyun sent it.
    assert (result.outcome, result.code) == ("dead", "SignatureDoesNotMatch")
    # Aliyun's message echoes the string-to-sign (phone number, template values): kept out of records and logs.
    assert PHONE not in result.message
    assert "SignatureDoesNotMatch" in caplog.text and PHONE not in caplog.text


def test_signature_message_without_a_colon_does_not_crash_the_adapter(stub: AliyunSmsStub) -> None:
    stub.signature_message_without_colon = True

    result = send(adapter(stub.endpoint, secret="not-the-secret"))

    assert (result.outcome, result.code) == ("dead", "SignatureDoesNotMatch")


def test_unknown_access_key_is_dead(stub: AliyunSmsStub) -> None:
    stub.keys = {"someone-else": SECRET}

    result = send(adapter(stub.endpoint))

    assert (result.outcome, result.code) == ("dead", "InvalidAccessKeyId.NotFound")


@pytest.mark.parametrize(
    ("code", "http_status", "outcome"),
    [
        ("isp.SYSTEM_ERROR", 200, "retry"),
        ("isv.BUSINESS_LIMIT_CONTROL", 200, "retry"),
        ("Throttling.User", 400, "retry"),
        ("isv.MOBILE_NUMBER_ILLEGAL", 200, "dead"),
        ("isv.SMS_TEMPLATE_ILLEGAL", 200, "dead"),
        ("isv.SMS_SIGNATURE_ILLEGAL", 200, "dead"),
        ("isv.TEMPLATE_MISSING_PARAMETERS", 200, "dead"),
        ("isv.INVALID_PARAMETERS", 200, "dead"),
        ("isv.BLACK_KEY_CONTROL_LIMIT", 200, "dead"),
        ("isp.RAM_PERMISSION_DENY", 200, "dead"),
        ("isv.AMOUNT_NOT_ENOUGH", 200, "pause"),
        ("isv.OUT_OF_SERVICE", 200, "pause"),
        ("isv.ACCOUNT_ABNORMAL", 200, "pause"),
        ("isv.SOMETHING_NEW", 200, "dead"),  # refused by Aliyun, so nothing left: not "unknown"
        ("InternalError", 500, "unknown"),  # a 5xx may come after the message was accepted
    ],
)
def test_each_aliyun_code_maps_to_its_outcome(stub: AliyunSmsStub, code: str, http_status: int, outcome: str) -> None:
    stub.answer_next(code, http_status=http_status)

    result = send(adapter(stub.endpoint))

    assert (result.outcome, result.code, result.provider_id) == (outcome, code, "")
    assert OUTCOME_BY_CODE.get(code, outcome) == outcome


def test_a_timeout_after_the_request_left_is_unknown_and_query_reconciles_it(stub: AliyunSmsStub) -> None:
    sms = adapter(stub.endpoint, timeout_s=0.5)
    stub.delay_next(3)

    result = send(sms, out_id="notice-7-sms")

    assert (result.outcome, result.code) == ("unknown", "timeout")
    assert [s.code for s in stub.sent] == ["OK"]  # the stub did send it
    assert sms.query(phone=PHONE, biz_id="", send_date=filed_on(stub), out_id="notice-7-sms") == "delivered"
    assert sms.query(phone=PHONE, biz_id="", send_date=filed_on(stub), out_id="notice-8-sms") == "unknown"


def test_query_by_biz_id_reports_the_delivery_state(stub: AliyunSmsStub) -> None:
    sms = adapter(stub.endpoint)
    biz_id = send(sms).provider_id

    assert sms.query(phone=PHONE, biz_id=biz_id, send_date=filed_on(stub)) == "delivered"
    stub.send_status = 1
    assert sms.query(phone=PHONE, biz_id=biz_id, send_date=filed_on(stub)) == "pending"
    stub.send_status = 2
    assert sms.query(phone=PHONE, biz_id=biz_id, send_date=filed_on(stub)) == "failed"
    assert sms.query(phone=PHONE, biz_id="999^0", send_date=filed_on(stub)) == "unknown"


def test_connection_refused_is_retried() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    result = send(adapter(f"127.0.0.1:{port}"))

    assert (result.outcome, result.code) == ("retry", "network")


def test_the_stub_refuses_a_replayed_nonce(stub: AliyunSmsStub) -> None:
    request = signed_params(
        {
            "Action": "SendSms",
            "PhoneNumbers": PHONE,
            "SignName": "沈阳城管",
            "TemplateCode": "SMS_1",
            "TemplateParam": "{}",
        },
        key_id=KEY_ID,
        secret=SECRET,
    )

    first = post_raw(stub.endpoint, request)
    replay = post_raw(stub.endpoint, request)

    assert first[0] == 200 and first[1]["Code"] == "OK"
    assert replay[0] == 400 and replay[1]["Code"] == "SignatureNonceUsed"
    assert len(stub.sent) == 1


def test_the_stub_refuses_a_tampered_parameter(stub: AliyunSmsStub) -> None:
    request = signed_params(
        {"Action": "SendSms", "PhoneNumbers": PHONE, "SignName": "沈阳城管", "TemplateCode": "SMS_1"},
        key_id=KEY_ID,
        secret=SECRET,
    )

    status, answer = post_raw(stub.endpoint, {**request, "PhoneNumbers": "13900139000"})

    assert (status, answer["Code"]) == (400, "SignatureDoesNotMatch")
    assert "server string to sign is:POST&%2F&AccessKeyId%3D" in answer["Message"]


def test_the_stub_refuses_a_stale_timestamp(stub: AliyunSmsStub) -> None:
    stale = (datetime.now(UTC) - timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    request = signed_params({"Action": "SendSms", "Timestamp": stale}, key_id=KEY_ID, secret=SECRET)

    status, answer = post_raw(stub.endpoint, request)

    assert (status, answer["Code"]) == (400, "InvalidTimeStamp.Expired")


def test_a_proxy_in_the_environment_is_not_used(stub: AliyunSmsStub, monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK reads HTTP(S)_PROXY but not NO_PROXY; the adapter's explicit no-proxy map keeps it direct.
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")

    assert send(adapter(stub.endpoint)).outcome == "sent"


def test_a_batch_arrives_signed_as_one_call_with_each_number_s_own_params(stub: AliyunSmsStub) -> None:
    sms = adapter(stub.endpoint)
    items = [("13800138000", {"case": "A-1"}), ("13900139000", {"case": "B-2 张三"})]

    result = sms.send_batch(template_code="SMS_123456", items=items, out_id="batch-1")

    assert (result.outcome, result.code) == ("sent", "OK")
    assert len(stub.requests) == 1 and stub.refused == []
    assert [(s.phone, s.template_param, s.params["SignName"]) for s in stub.sent] == [
        ("13800138000", {"case": "A-1"}, "沈阳城管"),
        ("13900139000", {"case": "B-2 张三"}, "沈阳城管"),
    ]
    assert {s.biz_id for s in stub.sent} == {result.provider_id}
    assert sms.query(phone="13900139000", biz_id=result.provider_id, send_date=filed_on(stub)) == "delivered"
    assert sms.query(phone="13900139000", biz_id="", send_date=filed_on(stub), out_id="batch-1") == "delivered"


def test_a_batch_over_one_hundred_numbers_is_refused_before_and_by_aliyun(stub: AliyunSmsStub) -> None:
    items = [(f"138{i:08d}", {"case": "A"}) for i in range(101)]
    with pytest.raises(ValueError):
        adapter(stub.endpoint).send_batch(template_code="SMS_1", items=items, out_id="b")
    params = {
        "Action": "SendBatchSms",
        "PhoneNumberJson": json.dumps([phone for phone, _ in items]),
        "SignNameJson": json.dumps(["沈阳城管"] * 101),
        "TemplateCode": "SMS_1",
    }
    status, answer = post_raw(stub.endpoint, signed_params(params, key_id=KEY_ID, secret=SECRET))
    assert (status, answer["Code"]) == (200, "isv.MOBILE_COUNT_OVER_LIMIT")
    assert [s for s in stub.sent if s.code == "OK"] == []
