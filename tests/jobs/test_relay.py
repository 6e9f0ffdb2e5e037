"""The relay: batches to the queue, puts entries back when the queue is down, one SLA sweep per period."""

from datetime import UTC, datetime, timedelta

from core.outbox import service as outbox
from core.outbox.models import OutboxEntry
from core.settings import Settings
from jobs.relay import BATCH, SweepSchedule, relay_once

SETTINGS = Settings(_env_file=None, sla_sweep_seconds=60, outbox_stale_seconds=120)


async def add_entries(n: int) -> None:
    for i in range(n):
        await outbox.add(task="process_report", args={"report_id": i}, dedupe_key=f"process_report:{i}")


async def test_due_entries_go_to_the_queue_in_batches_and_are_marked_queued(db):
    await add_entries(BATCH + 5)
    batches: list[list[int]] = []
    assert await relay_once(settings=SETTINGS, enqueue=batches.append) == BATCH + 5
    assert [len(b) for b in batches] == [BATCH, 5]
    assert await OutboxEntry.filter(status="queued").count() == BATCH + 5
    # Handed entries are not handed again until they are stale.
    assert await relay_once(settings=SETTINGS, enqueue=batches.append) == 0


async def test_entries_stay_pending_when_the_queue_refuses_them(db):
    await add_entries(3)

    def redis_down(ids: list[int]) -> None:
        raise ConnectionError("redis is down")

    assert await relay_once(settings=SETTINGS, enqueue=redis_down) == 0
    assert await OutboxEntry.filter(status="pending").count() == 3


async def test_writing_the_same_dedupe_key_twice_adds_one_entry(db):
    await outbox.add(task="sla_sweep", args={}, dedupe_key="same")
    await outbox.add(task="sla_sweep", args={}, dedupe_key="same")
    assert await OutboxEntry.filter(dedupe_key="same").count() == 1


async def test_two_relays_schedule_one_sla_sweep_per_period(db):
    start = datetime(2026, 11, 30, 9, 0, 5, tzinfo=UTC)
    first, second = SweepSchedule(SETTINGS), SweepSchedule(SETTINGS)
    for relay in (first, second):
        await relay.tick(now=start)
        await relay.tick(now=start + timedelta(seconds=30))
    assert await OutboxEntry.filter(task="sla_sweep").count() == 1
    await first.tick(now=start + timedelta(seconds=60))
    assert await OutboxEntry.filter(task="sla_sweep").count() == 2
