"""Notices arrive once, on time, within the rules; bad input is refused before anything is queued."""

from datetime import datetime

import pytest
from pydantic import SecretStr

from core import clock
from core.errors import NotFoundError, ValidationFailed
from core.notices.models import Notice
from core.outbox.models import OutboxEntry
from core.settings import Settings, use_settings
from notifications.providers import SendResult, recording
from notifications.service import grant_subscription, notify, opt_out, send_notice, settle_stuck
from tests.stubs.aliyun_sms import AliyunSmsStub

PHONE = "13812345678"
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
DAYTIME = datetime(2026, 11, 30, 10, 0, tzinfo=clock.CHINA)


@pytest.fixture(autouse=True)
def recorder(db):
    use_settings(Settings(_env_file=None, database_url=db, sms_provider="recording", wechat_provider="recording"))
    recording.sent.clear()
    recording.script.clear()
    clock.simulate(DAYTIME)
    yield recording
    clock.simulate(None)


def aliyun_settings(db: str, stub: AliyunSmsStub) -> Settings:
    """The city's settings with SMS through the real Aliyun SDK, pointed at the stub."""
    return Settings(
        _env_file=None,
        database_url=db,
        sms_provider="aliyun",
        aliyun_access_key_id="LTAIcity",
        aliyun_access_key_secret=SecretStr("city-secret"),
        aliyun_sms_endpoint=stub.endpoint,
        aliyun_sms_scheme="http",
        aliyun_sms_sign_name="沈阳城管",
    )


def impatient_provider(db: str, stub: AliyunSmsStub):
    """The city's Aliyun provider, in use, that gives up waiting for an answer after half a second."""
    from notifications.providers import AliyunSmsProvider
    from notifications.sms_aliyun import AliyunSms

    settings = aliyun_settings(db, stub)
    use_settings(settings)
    provider = AliyunSmsProvider(settings)
    provider.client = AliyunSms(
        access_key_id="LTAIcity",
        access_key_secret="city-secret",
        endpoint=stub.endpoint,
        sign_name="沈阳城管",
        scheme="http",
        timeout_s=0.5,
    )
    return provider


async def progress_sms(key: str = "case-1:dispatched:sms", **overrides) -> str:
    fields = {"number": "20261130000001", "status": "已派遣", "note": "正在处置"}
    await notify(
        channel="sms",
        recipient=overrides.pop("recipient", PHONE),
        template="case_progress",
        params={**fields, **overrides},
        dedupe_key=key,
    )
    return key


async def test_a_notice_is_sent_once_however_often_its_job_runs(recorder):
    key = await progress_sms()
    await notify(
        channel="sms",
        recipient=PHONE,
        template="case_progress",
        params={"number": "20261130000001", "status": "已派遣", "note": "x"},
        dedupe_key=key,
    )
    assert await send_notice(dedupe_key=key) == "sent"
    assert await send_notice(dedupe_key=key) == "sent"
    assert len(recorder.sent) == 1
    assert await Notice.all().count() == 1 and await OutboxEntry.filter(task="send_notice").count() == 1
    recipient, message = recorder.sent[0]
    assert recipient == PHONE and message.data == {"number": "20261130000001", "status": "已派遣"}


async def test_a_notice_left_sending_by_a_dead_worker_is_never_sent_again_but_reconciled(recorder):
    key = await progress_sms()
    await Notice.filter(dedupe_key=key).update(status="sending", sent_at=clock.now())  # the worker died mid-call
    assert await send_notice(dedupe_key=key) == "sending"
    clock.simulate(DAYTIME.replace(minute=10))
    assert await settle_stuck() == 1
    assert (await Notice.get(dedupe_key=key)).status == "unknown"
    assert await send_notice(dedupe_key=key) == "unknown"
    assert recorder.sent == []


async def test_sms_to_citizens_waits_for_the_end_of_quiet_hours_unless_urgent(recorder):
    clock.simulate(datetime(2026, 11, 30, 23, 30, tzinfo=clock.CHINA))
    key = await progress_sms()
    assert await send_notice(dedupe_key=key) == "deferred"
    notice = await Notice.get(dedupe_key=key)
    assert clock.china(notice.next_attempt_at) == datetime(2026, 12, 1, 8, 0, tzinfo=clock.CHINA)
    assert recorder.sent == []
    clock.simulate(datetime(2026, 12, 1, 8, 0, 1, tzinfo=clock.CHINA))
    assert await send_notice(dedupe_key=key) == "sent"

    clock.simulate(datetime(2026, 12, 1, 23, 30, tzinfo=clock.CHINA))
    await notify(
        channel="sms",
        recipient="13900000000",
        template="sla_overdue",
        params={"number": "20261201000009", "stage": "处置"},
        dedupe_key="urgent-1",
        urgent=True,
    )
    assert await send_notice(dedupe_key="urgent-1") == "sent"


async def test_a_second_sms_to_one_number_within_a_minute_is_deferred_not_dropped(recorder):
    first = await progress_sms("k1")
    second = await progress_sms("k2", status="已结案")
    assert await send_notice(dedupe_key=first) == "sent"
    assert await send_notice(dedupe_key=second) == "deferred"
    clock.simulate(DAYTIME.replace(minute=1, second=1))
    assert await send_notice(dedupe_key=second) == "sent"
    assert len(recorder.sent) == 2


async def test_an_opted_out_number_gets_nothing(recorder):
    await opt_out(channel="sms", recipient="+86 138-1234-5678")
    key = await progress_sms()
    assert await send_notice(dedupe_key=key) == "cancelled"
    assert recorder.sent == []


async def test_a_one_time_subscribe_authorisation_is_used_once(recorder):
    await grant_subscription(openid=OPENID, template_id="case-progress")
    params = {"number": "20261130000001", "status": "已派遣", "note": "正在处置", "time": "2026-11-30 10:00"}
    for key in ("s1", "s2"):
        await notify(
            channel="wechat_subscribe", recipient=OPENID, template="case_progress", params=params, dedupe_key=key
        )
    assert await send_notice(dedupe_key="s1") == "sent"
    assert await send_notice(dedupe_key="s2") == "cancelled"
    assert (await Notice.get(dedupe_key="s2")).error_code == "no_subscription"


@pytest.mark.parametrize(
    ("result", "status"),
    [
        (SendResult("retry", code="isp.SYSTEM_ERROR"), "deferred"),
        (SendResult("pause", code="isv.AMOUNT_NOT_ENOUGH"), "deferred"),
        (SendResult("dead", code="isv.MOBILE_NUMBER_ILLEGAL"), "failed"),
        (SendResult("unknown", code="timeout"), "unknown"),
    ],
)
async def test_each_provider_outcome_leads_where_it_should(recorder, result, status):
    recorder.script.append(result)
    key = await progress_sms()
    assert await send_notice(dedupe_key=key) == status
    notice = await Notice.get(dedupe_key=key)
    assert notice.error_code == result.code
    if status == "deferred":
        assert notice.next_attempt_at > clock.now()
        assert await OutboxEntry.filter(task="send_notice").count() == 2  # the retry is planned as a job
        assert await send_notice(dedupe_key=key) == "deferred"  # not before its time


@pytest.mark.parametrize(
    ("call", "code"),
    [
        ({"recipient": "12345"}, "bad_phone"),
        ({"template": "no_such_template"}, "unknown_template"),
        ({"params": {"number": "20261130000001"}}, "missing_param"),
        ({"params": {"number": "2" * 40, "status": "已派遣", "note": "x"}}, "param_too_long"),
        (
            {
                "channel": "wechat_subscribe",
                "recipient": OPENID,
                "params": {"number": "1", "status": "已经派遣出去了", "note": "x", "time": "2026-11-30"},
            },
            "bad_param",
        ),
    ],
)
async def test_bad_input_is_refused_before_anything_is_queued(call, code):
    args = {
        "channel": "sms",
        "recipient": PHONE,
        "template": "case_progress",
        "params": {"number": "1", "status": "已派遣", "note": "x"},
        "dedupe_key": "bad-1",
        **call,
    }
    with pytest.raises((ValidationFailed, NotFoundError)) as refused:
        await notify(**args)
    assert refused.value.code == code
    assert await Notice.all().count() == 0 and await OutboxEntry.all().count() == 0


async def test_a_queued_sms_goes_out_through_the_real_aliyun_sdk_signed_and_once(db):
    with AliyunSmsStub(keys={"LTAIcity": "city-secret"}) as stub:
        use_settings(aliyun_settings(db, stub))
        key = await progress_sms()
        assert await send_notice(dedupe_key=key) == "sent"
        assert await send_notice(dedupe_key=key) == "sent"
    assert len(stub.sent) == 1
    sms = stub.sent[0]
    assert sms.phone == PHONE and sms.params["TemplateCode"] == "SMS_CASE_PROGRESS" and sms.params["OutId"] == key
    assert sms.template_param == {"number": "20261130000001", "status": "已派遣"}
    assert (await Notice.get(dedupe_key=key)).provider_id == sms.biz_id


async def test_an_account_out_of_credit_pauses_the_whole_sms_channel_until_later(recorder):
    from datetime import timedelta

    recorder.script.append(SendResult("pause", code="isv.AMOUNT_NOT_ENOUGH"))
    first = await progress_sms("p1")
    other = await progress_sms("p2", recipient="13700000000")
    assert await send_notice(dedupe_key=first) == "deferred"
    assert await send_notice(dedupe_key=other) == "deferred"
    assert (await Notice.get(dedupe_key=other)).error_code == "channel_paused:isv.AMOUNT_NOT_ENOUGH"
    assert recorder.sent == []

    clock.simulate(DAYTIME + timedelta(hours=1, minutes=1))  # credit topped up, the pause is over
    assert await send_notice(dedupe_key=other) == "sent"


async def test_a_send_that_timed_out_is_not_resent_but_reconciled_with_aliyun(db):
    from notifications.service import reconcile_unknown

    with AliyunSmsStub(keys={"LTAIcity": "city-secret"}, now=clock.now) as stub:
        provider = impatient_provider(db, stub)
        stub.delay_next(1.5)  # the SMS leaves, the answer comes too late
        key = await progress_sms()
        assert await send_notice(dedupe_key=key, provider=provider) == "unknown"
        assert await send_notice(dedupe_key=key, provider=provider) == "unknown"  # never resent blindly
        assert await reconcile_unknown(provider=provider) == {"sent": 1}
    assert len(stub.sent) == 1
    assert (await Notice.get(dedupe_key=key)).status == "sent"


@pytest.mark.parametrize(
    ("ours", "aliyuns"),
    [
        ("2026-11-30 23:59:59", "2026-12-01 00:00:01"),  # sent just before midnight, filed by Aliyun the next day
        ("2026-12-01 00:00:30", "2026-11-30 23:58:30"),  # Aliyun's clock two minutes behind ours
    ],
)
async def test_a_send_that_timed_out_around_midnight_is_found_on_the_day_aliyun_filed_it(db, ours, aliyuns):
    from notifications.service import reconcile_unknown

    def at(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=clock.CHINA)

    clock.simulate(at(ours))
    with AliyunSmsStub(keys={"LTAIcity": "city-secret"}, now=lambda: at(aliyuns)) as stub:
        provider = impatient_provider(db, stub)
        stub.delay_next(1.5)
        key = "case-9:overdue:sms"  # urgent: only urgent messages go out at midnight
        params = {"number": "20261130000009", "stage": "处置"}
        await notify(channel="sms", recipient=PHONE, template="sla_overdue", params=params, dedupe_key=key, urgent=True)
        assert await send_notice(dedupe_key=key, provider=provider) == "unknown"
        assert await reconcile_unknown(provider=provider) == {"sent": 1}
    assert len(stub.sent) == 1
    assert (await Notice.get(dedupe_key=key)).status == "sent"


async def test_a_subscribe_message_goes_out_through_wechatpy_to_the_mini_program_once(db, redis_url):

    from tests.stubs.wechat import WeChatStub

    stub = WeChatStub(appid="wxminiapp0000001", secret="mini-secret").start()
    try:
        use_settings(
            Settings(
                _env_file=None,
                database_url=db,
                redis_url=redis_url,
                wechat_provider="wechat",
                miniapp_appid="wxminiapp0000001",
                miniapp_secret=SecretStr("mini-secret"),
                miniapp_api_base=stub.base_url,
            )
        )
        await grant_subscription(openid=OPENID, template_id="case-progress")
        params = {"number": "20261130000001", "status": "已派遣", "note": "正在处置", "time": "2026-11-30 10:00"}
        await notify(
            channel="wechat_subscribe", recipient=OPENID, template="case_progress", params=params, dedupe_key="wx-1"
        )
        assert await send_notice(dedupe_key="wx-1") == "sent"
        assert await send_notice(dedupe_key="wx-1") == "sent"
    finally:
        stub.stop()
    assert len(stub.sent) == 1
    body = stub.sent[0].body
    assert body["touser"] == OPENID and body["template_id"] == "case-progress"
    assert body["data"]["phrase2"] == {"value": "已派遣"}


async def test_notices_a_dead_worker_had_not_started_go_out_later_and_only_they(recorder):
    from datetime import timedelta

    keys = [await progress_sms(f"r{i}", recipient=f"1370000000{i}") for i in range(3)]
    # The worker claimed all three, sent the first, and died during the second.
    await Notice.filter(dedupe_key=keys[0]).update(status="sent", sent_at=clock.now())
    await Notice.filter(dedupe_key=keys[1]).update(status="sending", sent_at=clock.now())
    await Notice.filter(dedupe_key=keys[2]).update(status="ready", sent_at=clock.now())
    clock.simulate(DAYTIME + timedelta(minutes=6))
    assert await settle_stuck() == 2
    statuses = {n.dedupe_key: n.status for n in await Notice.all()}
    assert statuses == {keys[0]: "sent", keys[1]: "unknown", keys[2]: "pending"}
    assert await send_notice(dedupe_key=keys[2]) == "sent"
    assert [r for r, _ in recorder.sent] == ["13700000002"]


async def queue_progress(count: int, *, urgent_too: bool = False) -> list[str]:
    """`count` routine progress SMS to different numbers (and one urgent one): their keys."""
    keys = [await progress_sms(f"b{i}", recipient=f"1370000{i:04d}") for i in range(count)]
    if urgent_too:
        fields = {"number": "20261130000009", "status": "已超时", "note": "请处置"}
        await notify(
            channel="sms", recipient=PHONE, template="case_progress", params=fields, dedupe_key="u", urgent=True
        )
        keys.append("u")
    return keys


async def test_routine_sms_of_one_template_go_out_in_one_batch_and_urgent_ones_alone(db):
    from notifications.service import send_notices

    with AliyunSmsStub(keys={"LTAIcity": "city-secret"}) as stub:
        use_settings(aliyun_settings(db, stub))
        keys = await queue_progress(5, urgent_too=True)
        assert await send_notices(keys) == {key: "sent" for key in keys}
        assert await send_notices(keys) == {}  # nothing is due any more: nothing goes twice
    assert sorted(r["Action"] for r in stub.requests) == ["SendBatchSms", "SendSms"]
    batch = [s for s in stub.sent if s.params["Action"] == "SendBatchSms"]
    assert sorted(s.phone for s in batch) == [f"1370000{i:04d}" for i in range(5)]
    assert all(s.template_param == {"number": "20261130000001", "status": "已派遣"} for s in batch)
    notices = {n.dedupe_key: n for n in await Notice.all()}
    assert {notices[f"b{i}"].provider_id for i in range(5)} == {batch[0].biz_id}
    assert notices["u"].provider_id not in ("", batch[0].biz_id)


async def test_a_batch_refused_for_one_bad_number_is_sent_one_by_one_and_only_that_number_fails(db):
    from notifications.service import send_notices

    with AliyunSmsStub(keys={"LTAIcity": "city-secret"}) as stub:
        use_settings(aliyun_settings(db, stub))
        keys = await queue_progress(3)
        stub.answer_next("isv.MOBILE_NUMBER_ILLEGAL", times=2)  # the batch, then the first number alone
        assert await send_notices(keys) == {"b0": "failed", "b1": "sent", "b2": "sent"}
    assert [s.params["Action"] for s in stub.sent if s.code == "OK"] == ["SendSms", "SendSms"]
    failed = await Notice.get(dedupe_key="b0")
    assert (failed.error_code, failed.provider_id) == ("isv.MOBILE_NUMBER_ILLEGAL", "")


async def test_a_batch_whose_answer_never_came_is_not_resent_but_reconciled_number_by_number(db):
    from notifications.service import reconcile_unknown, send_notices

    with AliyunSmsStub(keys={"LTAIcity": "city-secret"}, now=clock.now) as stub:
        provider = impatient_provider(db, stub)
        keys = await queue_progress(4)
        stub.delay_next(1.5)  # the batch leaves, the answer comes too late
        assert await send_notices(keys, provider=provider) == {key: "unknown" for key in keys}
        assert await send_notices(keys, provider=provider) == {}
        assert await reconcile_unknown(provider=provider) == {"sent": 4}
    assert len(stub.sent) == 4 and len(stub.requests) == 1 + 4  # one batch, then one query per number
    assert {n.status for n in await Notice.all()} == {"sent"}
