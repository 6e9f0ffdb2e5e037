"""The job behind each official-account push (takes the stored push's id; safe to run twice).

This first step keeps what the notices need: the moment of the citizen's last message (customer-service
messages may follow for 48 hours) and whether they still follow the account. The conversation (reporting by
chat, queries) builds on it.
"""

from __future__ import annotations

import logging

from core.accounts.models import Citizen
from core.chat.models import ChatInbound, ChatState

log = logging.getLogger("tongguan.chat")


async def handle_message(*, inbound_id: int) -> str:
    """Record the push for its citizen; returns what it was taken as."""
    inbound = await ChatInbound.get_or_none(id=inbound_id)
    if inbound is None:
        return "missing"
    citizen, _ = await Citizen.get_or_create(openid=inbound.openid)
    await ChatState.get_or_create(openid=inbound.openid)
    if inbound.msg_type == "event":
        if inbound.event in ("subscribe", "subscribe_scan"):
            await ChatState.filter(openid=inbound.openid).update(subscribed=True)
            return "subscribed"
        if inbound.event == "unsubscribe":
            await ChatState.filter(openid=inbound.openid).update(subscribed=False, state="idle", draft={})
            return "unsubscribed"
        return "event"
    # A user's message opens (or extends) the 48-hour customer-service window; events do not count.
    if citizen.last_message_at is None or citizen.last_message_at < inbound.sent_at:
        await Citizen.filter(id=citizen.id).update(last_message_at=inbound.sent_at)
    return "message"
