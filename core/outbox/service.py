"""Writing follow-up work into the outbox, and the bookkeeping of handing it over and finishing it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from core import clock
from core.outbox.models import OutboxEntry


async def add(
    *,
    task: str,
    args: dict[str, Any],
    dedupe_key: str,
    delay_s: float = 0,
    conn: BaseDBAsyncClient | None = None,
) -> None:
    """Store a job in the caller's transaction; a key that is already there is left alone (no second job)."""
    entry = OutboxEntry(
        task=task, args=args, dedupe_key=dedupe_key, available_at=clock.now() + timedelta(seconds=delay_s)
    )
    # ON CONFLICT DO NOTHING on both databases: a failed insert would abort a PostgreSQL transaction.
    await OutboxEntry.bulk_create([entry], ignore_conflicts=True, using_db=conn)


async def claim_for_handing(*, limit: int, stale_after_s: float) -> list[int]:
    """Claim due entries and mark them queued in one transaction.

    On PostgreSQL, rows another relay is claiming at the same moment are skipped (FOR UPDATE SKIP LOCKED), so
    relays on many machines do not hand the same entry twice.
    """
    now = clock.now()
    stale = now - timedelta(seconds=stale_after_s)
    async with in_transaction() as conn:
        query = (
            OutboxEntry.filter(Q(status="pending", available_at__lte=now) | Q(status="queued", handed_at__lt=stale))
            .using_db(conn)
            .order_by("id")
            .limit(limit)
        )
        if conn.capabilities.dialect == "postgres":
            query = query.select_for_update(skip_locked=True)
        ids = [entry.id for entry in await query]
        if ids:
            await OutboxEntry.filter(id__in=ids).using_db(conn).update(status="queued", handed_at=now)
    return ids


async def release(ids: list[int]) -> None:
    """Put claimed entries back to pending (the queue could not take them)."""
    if ids:
        await OutboxEntry.filter(id__in=ids, status="queued").update(status="pending")


async def start(entry_id: int) -> OutboxEntry | None:
    """Count an attempt; None when the entry is finished already (a second delivery of the same job)."""
    entry = await OutboxEntry.get_or_none(id=entry_id)
    if entry is None or entry.status in ("done", "dead"):
        return None
    await OutboxEntry.filter(id=entry_id).update(attempts=F("attempts") + 1)
    entry.attempts += 1
    return entry


async def finish(entry_id: int) -> None:
    await OutboxEntry.filter(id=entry_id).update(status="done", finished_at=clock.now(), last_error="")


async def fail(entry: OutboxEntry, *, error: str, max_attempts: int) -> str:
    """Record a failed attempt: back to pending after a growing pause, or dead after too many attempts."""
    if entry.attempts >= max_attempts:
        status, available_at = "dead", clock.now()
    else:
        status, available_at = "pending", clock.now() + timedelta(seconds=min(600, 2**entry.attempts))
    await OutboxEntry.filter(id=entry.id).update(status=status, available_at=available_at, last_error=error[:2000])
    return status


async def counts() -> dict[str, int]:
    """Entries per status, for health checks and the demo summary."""
    result: dict[str, int] = {}
    for status in ("pending", "queued", "done", "dead"):
        result[status] = await OutboxEntry.filter(status=status).count()
    return result
