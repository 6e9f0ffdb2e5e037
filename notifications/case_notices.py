"""Case progress for the citizens who reported it: each hears of 受理, 不予立案, 派遣 and 办结 on their channel.

Mini-program reporters get a subscribe message (if they granted one), official-account reporters a template
message, and reporters who asked for SMS an SMS to their phone. Each message has its own dedupe key, so the job
can run twice.
"""

from __future__ import annotations

from datetime import timedelta

from core import clock
from core.accounts.models import Citizen
from core.cases.messages import CITIZEN_STATUS, STATUS_NAMES
from core.cases.models import Case
from core.chat.models import ChatState
from core.errors import TongguanError
from core.reports.models import Report
from notifications.service import notify

# WeChat "phrase" fields take at most 5 Chinese characters: the short names of the statuses citizens hear of.
SHORT_STATUS = {"accepted": "已受理", "rejected": "不予立案", "dispatched": "已派遣", "closed": "已办结"}
CHANNEL_OF_SOURCE = {"miniapp": "wechat_subscribe", "official_account": "wechat_template"}
KF_WINDOW = timedelta(hours=47)


def _in_chat_window(citizen: Citizen) -> bool:
    """Whether the citizen wrote to the official account within the last 48 hours (less a margin)."""
    last = citizen.last_message_at
    return last is not None and clock.now() - last < KF_WINDOW


async def notify_reporters(*, case_id: int, status: str, key: str) -> int:
    """Queue one message per citizen reporter of the case; returns how many were queued."""
    case = await Case.get_or_none(id=case_id)
    if case is None:
        return 0
    reports = await Report.filter(case_id=case_id, reporter_type="citizen", anonymous=False).values(
        "reporter_id", "source", "notify_sms"
    )
    citizens = {str(c.id): c for c in await Citizen.filter(id__in=[int(r["reporter_id"]) for r in reports])}
    # Those who unfollowed the official account hear nothing more there (WeChat would refuse it anyway).
    unfollowed = set(
        await ChatState.filter(openid__in=[c.openid for c in citizens.values()], subscribed=False).values_list(
            "openid", flat=True
        )
    )
    params = {
        "number": case.number,
        "status": SHORT_STATUS.get(status, STATUS_NAMES.get(status, status))[:5],
        "note": CITIZEN_STATUS.get(status, "")[:20],
        "time": clock.now().strftime("%Y-%m-%d %H:%M"),
    }
    queued = 0
    for report in reports:
        citizen = citizens.get(report["reporter_id"])
        if citizen is None:
            continue
        targets = []
        channel = CHANNEL_OF_SOURCE.get(report["source"])
        if report["source"] == "official_account" and citizen.openid in unfollowed:
            channel = None
        if channel:
            if channel == "wechat_template" and _in_chat_window(citizen):
                channel = "wechat_kf"  # a reply in the chat itself, while WeChat allows one
            targets.append((channel, citizen.openid))
        if report["notify_sms"] and citizen.phone:
            targets.append(("sms", citizen.phone))
        for channel, recipient in targets:
            try:
                await notify(
                    channel=channel,
                    recipient=recipient,
                    template="case_progress",
                    params=params,
                    dedupe_key=f"{key}:{channel}:{citizen.id}",
                )
                queued += 1
            except TongguanError:
                continue  # a recipient we cannot reach (a malformed phone, no openid): the others still hear
    return queued
