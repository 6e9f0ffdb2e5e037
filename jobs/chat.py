"""The official-account chat job: one conversation step per push, its replies sent as customer-service messages.

The step (core/chat/flows.py) stores its replies with the push; each reply is queued as a notice keyed by the
push and its position, so a job that runs twice sends every reply once.
"""

from __future__ import annotations

from core.chat.flows import handle_message
from core.chat.models import ChatInbound
from notifications.service import notify

REPLY_TEMPLATE = "chat_reply"


async def chat_message(*, inbound_id: int) -> int:
    """Take the push into its conversation and queue the replies; returns how many replies there are."""
    replies = await handle_message(inbound_id=inbound_id)
    if not replies:
        return 0
    openid = (await ChatInbound.get(id=inbound_id)).openid
    for position, text in enumerate(replies):
        await notify(
            channel="wechat_kf",
            recipient=openid,
            template=REPLY_TEMPLATE,
            params={"text": text},
            dedupe_key=f"chat:{inbound_id}:{position}",
            to_citizen=False,  # an answer to what they just wrote: no quiet hours (and kf is not SMS anyway)
        )
    return len(replies)
