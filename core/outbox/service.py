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


async def add_many(entries: list[tuple[str, dict[str, Any], str]], *, conn: BaseDBAsyncClient | None = None) -> None:
    """Store many (task, args, dedupe_key) jobs at once; keys already there are left alone."""
    now = clock.now()
    await OutboxEntry.bulk_create(
        [OutboxEntry(task=task, args=args, dedupe_key=key, available_at=now) for task, args, key in entries],
        ignore_conflicts=True,
        batch_size=1000,
        using_db=conn,
    )


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


async def start_many(ids: list[int]) -> list[OutboxEntry]:
    """Count an attempt for each unfinished entry; finished ones (a second delivery of the same job) are left out."""
    entries = await OutboxEntry.filter(id__in=ids).exclude(status__in=("done", "dead")).order_by("id")
    if entries:
        await OutboxEntry.filter(id__in=[e.id for e in entries]).update(attempts=F("attempts") + 1)
    for entry in entries:
        entry.attempts += 1
    return entries


async def finish_many(ids: list[int]) -> None:
    if ids:
        await OutboxEntry.filter(id__in=ids).update(status="done", finished_at=clock.now(), last_error="")


async def fail(entry: OutboxEntry, *, error: str, max_attempts: int) -> str:
    """Record a failed attempt: back to pending after a growing pause, or dead after too many attempts."""
    if entry.attempts >= max_attempts:
        status, available_at = "dead", clock.now()
    else:
        status, available_at = "pending", clock.now() + timedelta(seconds=min(600, 2**entry.attempts))
    await OutboxEntry.filter(id=entry.id).update(status=status, available_at=available_at, last_error=error[:2000])
    return status


async def backlog() -> dict[str, int]:
    """Entries per status (done ones only counted), for operators."""
    return {status: await OutboxEntry.filter(status=status).count() for status in ("pending", "queued", "done", "dead")}


async def dead_entries(*, limit: int = 50) -> list[OutboxEntry]:
    """Entries that failed too often: they wait for an operator to look and retry."""
    return await OutboxEntry.filter(status="dead").order_by("-id").limit(limit)


async def retry_dead(*, ids: list[int] | None = None) -> int:
    """Give dead entries (all, or the listed ones) a fresh start; returns how many."""
    query = OutboxEntry.filter(status="dead")
    if ids is not None:
        query = query.filter(id__in=ids)
    return await query.update(status="pending", attempts=0, available_at=clock.now())
