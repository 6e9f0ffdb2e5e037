"""The official-account chat job: one conversation step per push, its replies sent as customer-service messages.

The step (core/chat/flows.py) stores its replies with the push; each reply is queued as a notice keyed by the
push and its position, so a job that runs twice sends every reply once.
"""

from __future__ import annotations

import asyncio
import logging

from core.chat import messages as say
from core.chat.flows import handle_message
from core.chat.models import ChatInbound
from core.settings import get_settings
from media.images import MediaRejected
from media.service import Owner, store_photo
from media.storage import get_store
from notifications.service import notify
from notifications.wechat_media import MediaUnavailable, WeChatMedia

log = logging.getLogger("tongguan.chat")

REPLY_TEMPLATE = "chat_reply"


async def chat_message(*, inbound_id: int) -> int:
    """Take the push into its conversation and queue the replies; returns how many replies there are."""
    replies = await handle_message(inbound_id=inbound_id, fetch_photo=fetch_photo)
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


async def fetch_photo(media_id: str, citizen_id: int) -> tuple[str | None, str]:
    """Download a chat photo from WeChat and keep it as the citizen's upload: (our media id, "") or (None, why)."""
    settings = get_settings()
    try:
        source = WeChatMedia.from_settings(settings)
        data = await asyncio.to_thread(source.download, media_id)
    except MediaUnavailable as exc:
        log.warning("chat photo not fetched", extra={"fields": {"media_id": media_id, "why": str(exc)}})
        return None, say.PHOTO_FAILED
    try:
        media = await store_photo(
            data=data,
            owner=Owner(kind="citizen", id=str(citizen_id)),
            file_name=f"wechat-{media_id[:40]}.jpg",
            store=get_store(settings),
            settings=settings,
        )
    except MediaRejected as exc:  # not an image, a bomb, too large: the citizen is asked for another
        log.info("chat photo refused", extra={"fields": {"media_id": media_id, "code": exc.code}})
        return None, say.PHOTO_NOT_IMAGE
    return media.id, ""
