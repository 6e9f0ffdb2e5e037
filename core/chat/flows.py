"""The job behind each official-account push (takes the stored push's id; safe to run twice).

One step of the citizen's conversation per push, under a lock on their conversation: the step's replies are
stored on the push in the same transaction, so a run again finds them and sends nothing new (the sending job
dedupes each reply by push and position). Events keep what the notices need: subscribed or not.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta

from tortoise.transactions import in_transaction

from core import clock
from core.accounts.models import Citizen
from core.cases.messages import CITIZEN_STATUS
from core.cases.models import Case
from core.catalog.models import Subclass
from core.chat import messages as say
from core.chat.conversation import Said, Step, step
from core.chat.models import ChatInbound, ChatState
from core.errors import TongguanError
from core.geo.service import get_spatial_index
from core.messages import error_title
from core.regions.geocode import locate_address
from core.reports.models import Report
from core.reports.public import report_views
from core.reports.service import NewReport, submit_report

log = logging.getLogger("tongguan.chat")
STATE_MINUTES = 30  # a report left unfinished this long is dropped
_QUERY = re.compile(r"^(?:查询|查)\s*[:：]?\s*(\d{8,20})$")
HELP_WORDS = frozenset({"帮助", "help", "?", "？"})  # answered passively by the webhook


ORDER_WAIT = timedelta(minutes=2)


class EarlierPushPending(Exception):
    """A push this citizen sent before is not handled yet: this one waits its turn (the job is tried again).

    Workers run jobs in parallel, but a conversation must take its pushes in order ("确认" after the place).
    A push whose predecessor has waited longer than ORDER_WAIT (its job stuck or dead) goes ahead anyway.
    """


PhotoFetcher = Callable[[str, int], Awaitable[tuple[str | None, str]]]
"""(WeChat media id, citizen id) → (our media id, or None and the reply saying why)."""


async def handle_message(*, inbound_id: int, fetch_photo: PhotoFetcher | None = None) -> list[str]:
    """Take one push into its citizen's conversation; returns the replies to send (the same on a second run).

    A photo is fetched from WeChat by `fetch_photo` before the step, outside the conversation's lock.
    """
    inbound = await ChatInbound.get_or_none(id=inbound_id)
    if inbound is None:
        return []
    if inbound.handled_at is not None:
        return list(inbound.replies)
    earlier = ChatInbound.filter(openid=inbound.openid, handled_at=None, id__lt=inbound.id)
    if await earlier.filter(received_at__gte=clock.now() - ORDER_WAIT).exists():
        raise EarlierPushPending(f"push {inbound.id} waits for an earlier push of the same citizen")
    citizen, _ = await Citizen.get_or_create(openid=inbound.openid)
    photo: tuple[str | None, str] = (None, say.PHOTO_FAILED)
    if inbound.msg_type == "image" and fetch_photo is not None:
        photo = await fetch_photo(inbound.payload.get("MediaId", ""), citizen.id)
    await ChatState.get_or_create(openid=inbound.openid)
    async with in_transaction() as conn:
        query = ChatState.filter(openid=inbound.openid).using_db(conn)
        if conn.capabilities.dialect == "postgres":
            query = query.select_for_update()  # one step at a time per citizen
        state = await query.get()
        again = await ChatInbound.filter(id=inbound.id).using_db(conn).get()
        if again.handled_at is not None:  # another run took this push while we waited for the lock
            return list(again.replies)
        replies = await _take(inbound, state, citizen, photo)
        await ChatInbound.filter(id=inbound.id).using_db(conn).update(handled_at=clock.now(), replies=replies)
        await state.save(using_db=conn)
    return replies if state.subscribed else []


async def _take(inbound: ChatInbound, state: ChatState, citizen: Citizen, photo: tuple[str | None, str]) -> list[str]:
    """Apply the push to `state` (saved by the caller); returns the replies."""
    now = clock.now()
    if inbound.msg_type == "event":
        if inbound.event in ("subscribe", "subscribe_scan"):
            state.subscribed = True
            return []  # the webhook welcomed them passively
        if inbound.event == "unsubscribe":
            state.subscribed, state.state, state.draft = False, "idle", {}
            return []
        if inbound.event != "click":
            return []
    else:
        # A message opens (or extends) the 48-hour customer-service window; events do not count.
        if citizen.last_message_at is None or citizen.last_message_at < inbound.sent_at:
            await Citizen.filter(id=citizen.id).update(last_message_at=inbound.sent_at)
    said = await _said(inbound, state, photo)
    if said.kind == "text" and said.text.strip().lower() in HELP_WORDS:
        return []  # answered passively by the webhook
    if said.kind == "text" and (answer := await _command(said.text.strip(), citizen)):
        return [answer]
    replies: list[str] = []
    if state.state != "idle" and state.expires_at is not None and state.expires_at < now:
        state.state, state.draft = "idle", {}
        replies.append(say.EXPIRED)
    result = step(state.state, state.draft, said)
    if result.submit:
        replies.append(await _submit(result, citizen, inbound))
    else:
        replies.extend(result.replies)
    state.state, state.draft = result.state, ({} if result.submit else result.draft)
    state.expires_at = now + timedelta(minutes=STATE_MINUTES) if state.state != "idle" else None
    return replies


async def _said(inbound: ChatInbound, state: ChatState, photo: tuple[str | None, str]) -> Said:
    payload = inbound.payload
    match inbound.msg_type:
        case "text":
            text = payload.get("Content", "")
        case "voice" if payload.get("Recognition"):
            text = payload["Recognition"]  # WeChat's speech recognition: treated as typed text
        case "image":
            media_id, why = photo
            return Said("image", photo=media_id) if media_id else Said("photo_failed", text=why)
        case "location":
            try:
                lon, lat = float(payload["Location_Y"]), float(payload["Location_X"])  # X is the latitude
            except (KeyError, ValueError):
                return Said("other")
            inside = (await get_spatial_index()).locate(lon, lat, "gcj02") is not None
            label = payload.get("Label", "")[:256]
            return Said("location", point=(lon, lat) if inside else None, point_outside=not inside, label=label)
        case "event":
            return Said("click", text=payload.get("EventKey", ""))
        case _:
            return Said("other")
    said = Said("text", text=text[:2000])
    if state.state != "idle" and state.draft.get("description") and "lon" not in state.draft:
        found = await locate_address(text)
        if found is not None:
            return Said("text", text=text[:2000], address_point=(found[0], found[1]), label=found[2])
    return said


async def _command(text: str, citizen: Citizen) -> str | None:
    """查询 <案卷号> and 我的上报, answered in citizen words whatever the conversation's state."""
    if text == "我的上报":
        reports = await Report.filter(reporter_type="citizen", reporter_id=str(citizen.id)).order_by("-id").limit(5)
        if not reports:
            return say.MY_REPORTS_NONE
        lines = [
            say.MY_REPORT_LINE.format(
                created=clock.china(v.report.created_at).strftime("%m-%d"), report_id=v.report.id, status=v.status_text
            )
            for v in await report_views(reports, with_steps=False)
        ]
        return say.MY_REPORTS.format(lines="\n".join(lines))
    if text.startswith("查询") or text.startswith("查 "):
        match = _QUERY.match(text)
        if match is None:
            return say.QUERY_USAGE
        case = await Case.get_or_none(number=match.group(1))
        if case is None:
            return say.CASE_NOT_FOUND.format(number=match.group(1))
        subclass = await Subclass.get(id=case.subclass_id)
        return say.CASE_STATUS.format(number=case.number, subclass=subclass.name, status=CITIZEN_STATUS[case.status])
    return None


async def _submit(result: Step, citizen: Citizen, inbound: ChatInbound) -> str:
    draft = result.draft
    try:
        report, _ = await submit_report(
            NewReport(
                source="official_account",
                reporter_type="citizen",
                reporter_id=str(citizen.id),
                lon=float(draft["lon"]),
                lat=float(draft["lat"]),
                datum=draft.get("datum", "gcj02"),
                text=draft.get("description", ""),
                address=draft.get("address", ""),
                photos=draft.get("photos", []),
                idempotency_key=f"chat-push-{inbound.id:08d}",  # a run again finds the same report
            )
        )
    except TongguanError as exc:
        log.info("chat report refused", extra={"fields": {"code": exc.code, "openid": inbound.openid}})
        return say.REPORT_REFUSED.format(reason=error_title(exc.code))
    return say.SUBMITTED.format(report_id=report.id)
