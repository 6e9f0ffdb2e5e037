"""Taking in official-account pushes: each stored once with its follow-up job, whatever WeChat retries."""

from __future__ import annotations

from datetime import UTC, datetime

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from core import clock
from core.chat.models import ChatInbound
from core.outbox import service as outbox

CHAT_TASK = "chat_message"


async def take_in(
    *, key: str, openid: str, msg_type: str, event: str, sent_at: int, payload: dict[str, str]
) -> tuple[ChatInbound, bool]:
    """Store a push and its job in one transaction; (row, True) the first time, (first row, False) on a retry.

    Retries arriving at the same moment meet at the unique key: one insert wins, the others find its row.
    """
    try:
        async with in_transaction() as conn:
            row = await ChatInbound.create(
                key=key,
                openid=openid,
                msg_type=msg_type,
                event=event,
                sent_at=clock.china(datetime.fromtimestamp(sent_at, UTC)),
                payload=payload,
                received_at=clock.now(),
                using_db=conn,
            )
            await outbox.add(task=CHAT_TASK, args={"inbound_id": row.id}, dedupe_key=f"{CHAT_TASK}:{row.id}", conn=conn)
    except IntegrityError:
        first = await ChatInbound.get_or_none(key=key)
        if first is None:
            raise
        return first, False
    return row, True
