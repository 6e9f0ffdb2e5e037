"""Every citizen who reported a case hears of its progress, on the channel they reported through."""

import pytest

from core.accounts.models import Citizen
from core.cases.models import Case
from core.notices.models import Notice
from core.outbox.models import OutboxEntry
from core.regions.models import UnitGrid
from core.reports.flows import process_report
from core.reports.service import NewReport, submit_report
from core.settings import Settings, use_settings
from notifications.case_notices import notify_reporters
from notifications.providers import recording
from notifications.service import grant_subscription, send_notice
from tests.factories import interior_point


@pytest.fixture(autouse=True)
def recorder(city):
    use_settings(Settings(_env_file=None, database_url=city, sms_provider="recording", wechat_provider="recording"))
    recording.sent.clear()
    return recording


async def report_as(citizen: Citizen, source: str, *, notify_sms: bool = False) -> int:
    grid = (await UnitGrid.all().order_by("code").first()).code
    lon, lat = await interior_point(grid)
    report, _ = await submit_report(
        NewReport(
            source=source,
            reporter_type="citizen",
            reporter_id=str(citizen.id),
            lon=lon,
            lat=lat,
            text="暴露垃圾",
            subclass="event:0102",
        )
    )
    if notify_sms:
        await type(report).filter(id=report.id).update(notify_sms=True)
    await process_report(report_id=report.id)
    return report.id


async def run_case_notices() -> None:
    """What the workers do: each case_notices job once, then the sends it queued."""
    for entry in await OutboxEntry.filter(task="case_notices", status="pending").order_by("id"):
        await notify_reporters(**entry.args)
        await OutboxEntry.filter(id=entry.id).update(status="done")
    for key in await Notice.filter(status="pending").values_list("dedupe_key", flat=True):
        await send_notice(dedupe_key=key)


async def test_reporters_hear_of_acceptance_on_their_own_channel(recorder):
    wang = await Citizen.create(openid="oUpF8uMuAJO_M2pxb1Q9zNjWe001", phone="13800000001")
    li = await Citizen.create(openid="oUpF8uMuAJO_M2pxb1Q9zNjWe002", phone="13800000002")
    await grant_subscription(openid=wang.openid, template_id="case-progress")
    await report_as(wang, "miniapp")
    await run_case_notices()
    await report_as(li, "official_account", notify_sms=True)  # the same problem a little later: joins the case
    await run_case_notices()

    case = await Case.get()
    got = {(n.channel, n.recipient, n.status) for n in await Notice.all()}
    assert got == {("wechat_subscribe", wang.openid, "sent")}  # li joined after the acceptance was told
    _, message = recorder.sent[0]
    assert message.data["character_string1"] == case.number and message.data["phrase2"] == "已受理"

    # Both hear of the next step; li by template message and by the SMS li asked for.
    from core.cases.service import act
    from core.cases.workflow import Actor

    await grant_subscription(openid=wang.openid, template_id="case-progress")
    await act(case_id=case.id, action="verify", actor=Actor.system(), detail={"result": "confirmed"})
    await run_case_notices()
    dispatched = (
        {(n.channel, n.recipient) for n in await Notice.filter(params__contains={"status": "已派遣"})}
        if False
        else {(n.channel, n.recipient) for n in await Notice.all() if n.params["status"] == "已派遣"}
    )
    assert dispatched == {("wechat_subscribe", wang.openid), ("wechat_template", li.openid), ("sms", li.phone)}


async def test_running_the_notices_job_twice_queues_nothing_twice(recorder):
    wang = await Citizen.create(openid="oUpF8uMuAJO_M2pxb1Q9zNjWe003")
    await report_as(wang, "official_account")
    entry = await OutboxEntry.get(task="case_notices")
    assert await notify_reporters(**entry.args) == 1
    await notify_reporters(**entry.args)
    assert await Notice.all().count() == 1


async def test_a_chat_reporter_gets_a_chat_reply_in_the_48_hour_window_and_a_template_message_after(recorder):
    from datetime import timedelta

    from core import clock
    from notifications.providers import SendResult

    recent = await Citizen.create(
        openid="oUpF8uMuAJO_M2pxb1Q9zNjWe004", last_message_at=clock.now() - timedelta(hours=2)
    )
    await report_as(recent, "official_account")
    recorder.script.append(SendResult("window_closed", code="45047"))  # the chat's 5 messages are used up
    await run_case_notices()
    got = [(n.channel, n.status) for n in await Notice.all().order_by("id")]
    assert got[0] == ("wechat_kf", "failed")
    await run_case_notices()
    for key in await Notice.filter(status="pending").values_list("dedupe_key", flat=True):
        await send_notice(dedupe_key=key)
    assert [(n.channel, n.status) for n in await Notice.all().order_by("id")] == [
        ("wechat_kf", "failed"),
        ("wechat_template", "sent"),
    ]
    assert [m.channel for _, m in recorder.sent] == ["wechat_template"]


async def test_a_chat_reporter_who_unfollowed_the_account_hears_nothing_more_there(recorder):
    from core.chat.models import ChatState

    left = await Citizen.create(openid="oUpF8uMuAJO_M2pxb1Q9zNjWe005", phone="13812345678")
    await ChatState.create(openid=left.openid, subscribed=False)
    report_id = await report_as(left, "official_account", notify_sms=True)
    await run_case_notices()

    assert report_id and [n.channel for n in await Notice.all()] == ["sms"]  # the SMS they asked for still goes
