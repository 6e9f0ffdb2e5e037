"""Notices: queue a message once, send it once, within the rules (opt-out, quiet hours, per-number limits).

`notify` checks the recipient and the template (bad input is refused before anything is queued) and stores the
notice with its unique dedupe key and a send job, in the caller's transaction. `send_notice` (the job) claims the
notice, applies the rules, and marks it `sending` *before* calling the provider: a worker that dies during the
call leaves it `sending`, and such a notice is never retried blindly — it becomes `unknown` for reconciliation or
an operator. So a dedupe key is never sent twice.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from core import clock
from core.errors import NotFoundError, ValidationFailed
from core.notices.models import CHANNELS, STATUSES, ChannelPause, Notice, OptOut, SubscribeGrant
from core.outbox import service as outbox
from core.settings import Settings, get_settings
from notifications import templates
from notifications.providers import BATCH_TAG, BatchProvider, Provider, SendResult, provider_for

log = logging.getLogger("tongguan.notify")
SEND_TASK = "send_notice"
MAX_ATTEMPTS = 6
SENT_LIKE = ("ready", "sending", "sent", "unknown")  # what counts against a number's limits
STUCK_SENDING_S = 300.0
MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
CHANNEL_PAUSE = timedelta(hours=1)


async def notify(
    *,
    channel: str,
    recipient: str,
    template: str,
    params: dict[str, Any],
    dedupe_key: str,
    urgent: bool = False,
    to_citizen: bool = True,
    conn: BaseDBAsyncClient | None = None,
) -> None:
    """Queue one message; the same dedupe key again is a no-op (it is, or was, already queued)."""
    if channel not in CHANNELS:
        raise ValidationFailed("unknown_channel", f"channel must be one of {', '.join(CHANNELS)}")
    recipient = templates.check_recipient(channel, recipient)
    templates.render(template, channel, params)  # refuse bad params now, not at send time
    notice = Notice(
        channel=channel,
        recipient=recipient,
        template=template,
        params={k: str(v) for k, v in params.items()},
        urgent=urgent,
        to_citizen=to_citizen,
        dedupe_key=dedupe_key,
        next_attempt_at=clock.now(),
    )
    await Notice.bulk_create([notice], ignore_conflicts=True, using_db=conn)
    await outbox.add(task=SEND_TASK, args={"dedupe_key": dedupe_key}, dedupe_key=f"{SEND_TASK}:{dedupe_key}", conn=conn)


@dataclass(frozen=True)
class Decision:
    send: bool
    status: str = ""  # when not sending now: deferred / cancelled
    until: datetime | None = None
    reason: str = ""


def quiet_until(moment: datetime, settings: Settings) -> datetime | None:
    """The end of the citizens' quiet hours when `moment` falls in them (China time), else None."""
    local = clock.china(moment)
    start, end = settings.quiet_start_hour, settings.quiet_end_hour
    if local.hour >= start:
        return (local + timedelta(days=1)).replace(hour=end, minute=0, second=0, microsecond=0)
    if local.hour < end:
        return local.replace(hour=end, minute=0, second=0, microsecond=0)
    return None


@dataclass
class _Facts:
    """What the rules need about a batch of notices, read in a few queries for the whole batch."""

    opted_out: set[tuple[str, str]]
    paused: dict[str, ChannelPause]
    recent: dict[str, list[datetime]]  # SMS recipient → times of their sends in the last day, oldest first


async def _facts(notices: list[Notice], now: datetime, conn: BaseDBAsyncClient) -> _Facts:
    recipients = list({n.recipient for n in notices})
    opted = await OptOut.filter(recipient__in=recipients).using_db(conn).values_list("channel", "recipient")
    paused = {p.channel: p for p in await ChannelPause.filter(until__gt=now).using_db(conn)}
    sms = list({n.recipient for n in notices if n.channel == "sms"})
    recent: dict[str, list[datetime]] = {r: [] for r in sms}
    if sms:
        # Only the (recipient, sent_at) index may serve this: channel and status are checked here, as a generic
        # plan on stale statistics would otherwise walk the status index through every pending notice.
        rows = (
            await Notice.filter(recipient__in=sms, sent_at__gte=now - DAY)
            .using_db(conn)
            .order_by("sent_at")
            .values_list("recipient", "sent_at", "channel", "status")
        )
        for recipient, sent_at, channel, status in rows:
            if channel == "sms" and status in SENT_LIKE:
                recent[recipient].append(sent_at)
    return _Facts({(c, r) for c, r in opted}, paused, recent)


def _rate_limited_until(recipient: str, now: datetime, settings: Settings, facts: _Facts) -> datetime | None:
    """When this number may get another SMS, if one of its limits (minute, hour, day) is reached now."""
    sent = facts.recent.get(recipient, [])
    for window, limit in (
        (MINUTE, settings.sms_per_minute),
        (HOUR, settings.sms_per_hour),
        (DAY, settings.sms_per_day),
    ):
        inside = [t for t in sent if t >= now - window]
        if len(inside) >= limit:
            return inside[len(inside) - limit] + window  # the moment the oldest counted send leaves the window
    return None


async def _decide(
    notice: Notice, now: datetime, settings: Settings, conn: BaseDBAsyncClient, facts: _Facts
) -> Decision:
    if (notice.channel, notice.recipient) in facts.opted_out:
        return Decision(False, "cancelled", reason="opted_out")
    pause = facts.paused.get(notice.channel)
    if pause is not None:
        return Decision(False, "deferred", pause.until, f"channel_paused:{pause.reason}")
    if notice.channel == "sms":
        if notice.to_citizen and not notice.urgent and (until := quiet_until(now, settings)):
            return Decision(False, "deferred", until, "quiet_hours")
        if until := _rate_limited_until(notice.recipient, now, settings, facts):
            return Decision(False, "deferred", until, "rate_limited")
        facts.recent.setdefault(notice.recipient, []).append(now)  # the next notice of this batch counts it
    if notice.channel == "wechat_subscribe":
        spec = templates.templates()[notice.template]["wechat_subscribe"]
        # One authorisation, one message: take it now, under the row lock of this notice.
        used = (
            await SubscribeGrant.filter(openid=notice.recipient, template_id=spec["template_id"], remaining__gt=0)
            .using_db(conn)
            .update(remaining=F("remaining") - 1)
        )
        if not used:
            return Decision(False, "cancelled", reason="no_subscription")
    return Decision(True)


async def send_notice(*, dedupe_key: str, provider: Provider | None = None) -> str:
    """The job for one notice: send it if it is due; safe to run twice or at once (a notice is claimed once)."""
    outcome = await send_notices([dedupe_key], provider=provider)
    if dedupe_key in outcome:
        return outcome[dedupe_key]
    notice = await Notice.get_or_none(dedupe_key=dedupe_key)  # not due, or someone else's: say where it stands
    return notice.status if notice else "missing"


async def send_notices(keys: list[str], *, provider: Provider | None = None) -> dict[str, str]:
    """Send the due notices among `keys`: claimed and checked together, sent one by one; key → what happened."""
    settings = get_settings()
    now = clock.now()
    outcome: dict[str, str] = {}
    async with in_transaction() as conn:
        # By key alone (the unique index; due-ness is checked below): see the note in `_facts`.
        query = Notice.filter(dedupe_key__in=keys).using_db(conn)
        if conn.capabilities.dialect == "postgres":
            query = query.select_for_update(skip_locked=True)  # another worker holds those: they are its to send
        notices = [
            n for n in await query.order_by("id") if n.status in ("pending", "deferred") and n.next_attempt_at <= now
        ]
        facts = await _facts(notices, now, conn)
        claimed: list[Notice] = []
        for notice in notices:
            decision = await _decide(notice, now, settings, conn, facts)
            if decision.send:
                notice.status, notice.attempts, notice.sent_at = "ready", notice.attempts + 1, now
                claimed.append(notice)
            else:
                notice.status, notice.error_code = decision.status, decision.reason
                if decision.until:
                    notice.next_attempt_at = decision.until
                    await _again(notice, decision.until, now, conn)
            outcome[notice.dedupe_key] = notice.status
        # Few statements for the batch, grouped by the values written (tortoise's bulk_update builds a CASE per
        # row and field, which cost more CPU than the sends).
        if claimed:
            await (
                Notice.filter(id__in=[n.id for n in claimed])
                .using_db(conn)
                .update(status="ready", attempts=F("attempts") + 1, sent_at=now)
            )
        for notice in notices:
            if notice.status != "ready":
                await (
                    Notice.filter(id=notice.id)
                    .using_db(conn)
                    .update(status=notice.status, error_code=notice.error_code, next_attempt_at=notice.next_attempt_at)
                )
    # Each send is marked `sending` and committed just before its provider call: a crash leaves that send (one
    # notice, or one batch) in doubt — reconciled, never resent; the batch's others stay `ready`, sent later.
    sent: list[Notice] = []
    for chosen, group in _plan(claimed, provider, settings):
        if len(group) > 1:
            await _send_batch(group, chosen, now, outcome, sent)
        elif await Notice.filter(id=group[0].id, status="ready").update(status="sending"):
            group[0].status = "sending"
            await _settle(group[0], _send_one(group[0], chosen), now, outcome, sent)
    by_provider_id: dict[str, list[int]] = {}  # a batch shares one BizId
    for notice in sent:
        by_provider_id.setdefault(notice.provider_id, []).append(notice.id)
    for provider_id, ids in by_provider_id.items():
        await Notice.filter(id__in=ids).update(status="sent", provider_id=provider_id, error_code="")
    return outcome


def _plan(claimed: list[Notice], provider: Provider | None, settings: Settings) -> list[tuple[Provider, list[Notice]]]:
    """The provider calls for the claimed notices: routine SMS of one template go together when the provider
    sends batches (Aliyun SendBatchSms); urgent ones go alone, as batches may be delivered a little later."""
    plan: list[tuple[Provider, list[Notice]]] = []
    open_batches: dict[tuple[int, str], tuple[BatchProvider, list[Notice]]] = {}
    for notice in claimed:
        chosen = provider or _provider(notice.channel, settings)
        batch_max = getattr(chosen, "batch_max", 0)  # a BatchProvider (isinstance on a Protocol is slow)
        if notice.channel != "sms" or notice.urgent or not batch_max:
            plan.append((chosen, [notice]))
            continue
        _, group = open_batches.setdefault((id(chosen), notice.template), (cast(BatchProvider, chosen), []))
        group.append(notice)
        if len(group) == batch_max:
            plan.append(open_batches.pop((id(chosen), notice.template)))
    plan.extend(open_batches.values())
    return plan


def _send_one(notice: Notice, chosen: Provider) -> SendResult:
    rendered = templates.render(notice.template, notice.channel, notice.params)
    try:
        return chosen.send(rendered, recipient=notice.recipient, out_id=notice.dedupe_key)
    except Exception as exc:  # an adapter bug or a failure we cannot place: the provider may have it
        log.exception("provider raised", extra={"fields": {"notice": notice.id}})
        return SendResult("unknown", code=type(exc).__name__, message=str(exc)[:500])


async def _send_batch(
    group: list[Notice], chosen: Provider, now: datetime, outcome: dict[str, str], sent: list[Notice]
) -> None:
    """One batch call; a notice in doubt carries the batch's OutId (BATCH_TAG) so reconciliation can find it."""
    assert hasattr(chosen, "send_batch")
    token = uuid.uuid4().hex
    ids = [n.id for n in group]
    taken = await Notice.filter(id__in=ids, status="ready").update(status="sending", provider_id=BATCH_TAG + token)
    if taken < len(group):  # some were settled back to pending and taken by another worker meanwhile
        mine = set(await Notice.filter(id__in=ids, provider_id=BATCH_TAG + token).values_list("id", flat=True))
        group = [n for n in group if n.id in mine]
        if not group:
            return
    for notice in group:
        notice.status = "sending"
    messages = [(templates.render(n.template, n.channel, n.params), n.recipient) for n in group]
    try:
        result = chosen.send_batch(messages, out_id=token)
    except Exception as exc:
        log.exception("provider raised", extra={"fields": {"notices": [n.id for n in group]}})
        result = SendResult("unknown", code=type(exc).__name__, message=str(exc)[:500])
    if result.outcome == "dead":
        # The whole batch was refused, so nothing went out; one bad number must not sink the others: each goes
        # alone (its own OutId from now on) and meets its own fate.
        await Notice.filter(id__in=[n.id for n in group]).update(provider_id="")
        for notice in group:
            await _settle(notice, _send_one(notice, chosen), now, outcome, sent)
        return
    for notice in group:
        await _settle(notice, result, now, outcome, sent)


async def _settle(
    notice: Notice, result: SendResult, now: datetime, outcome: dict[str, str], sent: list[Notice]
) -> None:
    """Keep a sent notice for one bulk update at the end; store any other outcome now."""
    if result.outcome == "sent":
        notice.status, notice.provider_id, notice.error_code = "sent", result.provider_id, ""
        sent.append(notice)
        outcome[notice.dedupe_key] = "sent"
    else:
        outcome[notice.dedupe_key] = await _record(notice, result, now)


async def _record(notice: Notice, result: SendResult, now: datetime) -> str:
    """Store what the provider said; a retry is planned with a growing pause, never for an unknown outcome."""
    fields: dict[str, Any] = {
        "error_code": result.code if result.outcome != "sent" else "",
        "error_message": result.message,
    }
    match result.outcome:
        case "sent":
            fields.update(status="sent", provider_id=result.provider_id)
        case "retry" | "pause" if notice.attempts < MAX_ATTEMPTS:
            delay = timedelta(seconds=30 * 2**notice.attempts)
            if result.outcome == "pause":
                # The account is out of credit or service: stop the whole channel, tell operators, retry later.
                delay = CHANNEL_PAUSE
                await _pause_channel(notice.channel, until=now + delay, reason=result.code)
            fields.update(status="deferred", next_attempt_at=now + delay)
            async with in_transaction() as conn:
                await _again(notice, now + delay, now, conn)
                await Notice.filter(id=notice.id).using_db(conn).update(**fields)
            return "deferred"
        case "unknown":
            fields.update(status="unknown")
        case "window_closed" if notice.channel == "wechat_kf" and "wechat_template" in templates.templates().get(
            notice.template, {}
        ):
            # The 48-hour chat window closed (or its 5 messages are used): a template message says it instead.
            fields.update(status="failed")
            await notify(
                channel="wechat_template",
                recipient=notice.recipient,
                template=notice.template,
                params=notice.params,
                dedupe_key=f"{notice.dedupe_key}:template",
                urgent=notice.urgent,
            )
        case _:  # dead, window_closed, or retries used up
            fields.update(status="failed")
    await Notice.filter(id=notice.id).update(**fields)
    return fields["status"]


async def _pause_channel(channel: str, *, until: datetime, reason: str) -> None:
    await ChannelPause.update_or_create(defaults={"until": until, "reason": reason[:64]}, channel=channel)
    log.error("channel paused", extra={"fields": {"channel": channel, "reason": reason, "until": until.isoformat()}})


async def _again(notice: Notice, when: datetime, now: datetime, conn: BaseDBAsyncClient) -> None:
    await outbox.add(
        task=SEND_TASK,
        args={"dedupe_key": notice.dedupe_key},
        dedupe_key=f"{SEND_TASK}:{notice.dedupe_key}:{notice.attempts}:{int(when.timestamp())}",
        delay_s=max(0.0, (when - now).total_seconds()),
        conn=conn,
    )


def _provider(channel: str, settings: Settings) -> Provider:
    return provider_for(channel, settings.sms_provider if channel == "sms" else settings.wechat_provider, settings)


async def settle_stuck(*, older_than_s: float = STUCK_SENDING_S) -> int:
    """Notices a dead worker left behind: `sending` ones become `unknown` (reconciled, never resent blindly);
    `ready` ones never reached the provider, so they go back to pending with a send job. Returns how many."""
    now = clock.now()
    cutoff = now - timedelta(seconds=older_than_s)
    lost = await Notice.filter(status="sending", sent_at__lt=cutoff).update(
        status="unknown", error_code="worker_lost", error_message="the worker stopped during the provider call"
    )
    waiting = await Notice.filter(status="ready", sent_at__lt=cutoff)
    async with in_transaction() as conn:
        for notice in waiting:
            await (
                Notice.filter(id=notice.id, status="ready").using_db(conn).update(status="pending", next_attempt_at=now)
            )
            await _again(notice, now, now, conn)
    return lost + len(waiting)


async def reconcile_unknown(*, provider: Provider | None = None, give_up_after_h: float = 24.0) -> dict[str, int]:
    """Ask the SMS provider what became of sends with an unknown outcome: delivered → sent, failed → failed.

    Nothing is resent. Providers that cannot tell (console, WeChat) leave the notice to an operator, and so does
    a send still unknown after a day (`notify status` lists them).
    """
    settings = get_settings()
    chosen = provider or _provider("sms", settings)
    done: dict[str, int] = {}
    reconcile = getattr(chosen, "reconcile", None)
    for notice in await Notice.filter(status="unknown", channel="sms").exclude(error_code="unreconciled").limit(500):
        outcome = "unknown"
        if reconcile is not None and notice.sent_at is not None:
            try:
                outcome = reconcile(
                    recipient=notice.recipient,
                    provider_id=notice.provider_id,
                    out_id=notice.dedupe_key,
                    sent_at=notice.sent_at,
                )
            except Exception:  # the query itself failed: ask again next time
                log.exception("reconcile failed", extra={"fields": {"notice": notice.id}})
        if outcome in ("delivered", "failed"):
            status = "sent" if outcome == "delivered" else "failed"
            await Notice.filter(id=notice.id, status="unknown").update(
                status=status, error_code=f"reconciled:{outcome}"
            )
            done[status] = done.get(status, 0) + 1
        elif notice.sent_at and clock.now() - notice.sent_at > timedelta(hours=give_up_after_h):
            # Still unknown after a day: it stays unknown, flagged for an operator, and is not asked about again.
            await Notice.filter(id=notice.id, status="unknown").update(error_code="unreconciled")
            done["left_to_operator"] = done.get("left_to_operator", 0) + 1
    return done


async def opt_out(*, channel: str, recipient: str) -> None:
    """Record a 退订: no more messages to this recipient on this channel."""
    recipient = templates.check_recipient(channel, recipient)
    await OptOut.bulk_create([OptOut(channel=channel, recipient=recipient)], ignore_conflicts=True)


async def grant_subscription(*, openid: str, template_id: str, times: int = 1) -> None:
    """The user accepted a subscribe-message template (one-time authorisations add up)."""
    grant, _ = await SubscribeGrant.get_or_create(openid=openid, template_id=template_id)
    await SubscribeGrant.filter(id=grant.id).update(remaining=F("remaining") + times)


async def subscriptions(*, openid: str) -> dict[str, int]:
    """One-time subscribe authorisations this user has left, by template id."""
    rows = await SubscribeGrant.filter(openid=openid, remaining__gt=0).values_list("template_id", "remaining")
    return {template_id: remaining for template_id, remaining in rows}


async def status_counts() -> dict[str, int]:
    """Notices per status, for `tongguan notify status`."""
    return {status: await Notice.filter(status=status).count() for status in STATUSES}


@dataclass(frozen=True)
class Planned:
    """One message a planner wants sent (validated and stored by `notify_many`)."""

    channel: str
    recipient: str
    template: str
    params: dict[str, Any]
    dedupe_key: str
    urgent: bool = False
    to_citizen: bool = False


async def notify_many(items: list[Planned], *, dry_run: bool = False) -> tuple[int, list[tuple[Planned, str]]]:
    """Queue many messages in one transaction (reminder runs): returns (queued, refused with the reason).

    A key that is already there is skipped, so a run started again queues nothing twice. A dry run checks and
    counts what it would queue, and writes nothing.
    """
    good: list[Planned] = []
    refused: list[tuple[Planned, str]] = []
    for item in items:
        try:
            recipient = templates.check_recipient(item.channel, item.recipient)
            templates.render(item.template, item.channel, item.params)
        except (ValidationFailed, NotFoundError) as exc:
            refused.append((item, exc.code))
            continue
        good.append(Planned(**{**item.__dict__, "recipient": recipient}))
    now = clock.now()
    async with in_transaction() as conn:
        keys = [g.dedupe_key for g in good]
        known = set(await Notice.filter(dedupe_key__in=keys).using_db(conn).values_list("dedupe_key", flat=True))
        fresh = [g for g in good if g.dedupe_key not in known]
        if dry_run:
            return len(fresh), refused
        await Notice.bulk_create(
            [
                Notice(
                    channel=g.channel,
                    recipient=g.recipient,
                    template=g.template,
                    params={k: str(v) for k, v in g.params.items()},
                    urgent=g.urgent,
                    to_citizen=g.to_citizen,
                    dedupe_key=g.dedupe_key,
                    next_attempt_at=now,
                )
                for g in fresh
            ],
            ignore_conflicts=True,
            using_db=conn,
        )
        await outbox.add_many(
            [(SEND_TASK, {"dedupe_key": g.dedupe_key}, f"{SEND_TASK}:{g.dedupe_key}") for g in fresh], conn=conn
        )
    return len(fresh), refused
