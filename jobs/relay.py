"""The relay: hands due outbox entries to the queue after their transaction committed, and again when stale.

An entry is marked queued before it is enqueued; if the queue cannot take it (Redis down) it goes back to
pending. A worker killed mid-job leaves its entries queued; once `outbox_stale_seconds` have passed they are
handed over again, and the idempotent job functions make the second run harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta

from core import clock
from core.outbox import service as outbox
from core.settings import Settings

log = logging.getLogger("tongguan.relay")
BATCH = 100  # entries per queued job: amortises the queue's own cost and the batch queries per job
CLAIM = 1000


async def relay_once(*, settings: Settings, enqueue: Callable[[list[int]], None]) -> int:
    """Hand every due entry over in batches; returns how many were handed."""
    claimed = await outbox.claim_for_handing(limit=CLAIM, stale_after_s=settings.outbox_stale_seconds)
    handed = 0
    for start in range(0, len(claimed), BATCH):
        ids = claimed[start : start + BATCH]
        try:
            enqueue(ids)
        except Exception as exc:
            await outbox.release(claimed[start:])
            log.warning("queue unavailable, entries stay pending", extra={"fields": {"error": repr(exc)}})
            break
        handed += len(ids)
    return handed


UPLOAD_CLEANUP_S = 3600
STUCK_NOTICES_S = 300
# Yesterday's patrol days are summarised from 01:00 China time: phones that kept points over midnight have sent them.
PATROL_DAYS_HOUR = 1
NIGHTLY = ("face_retention", "face_rekey")
FACE_HOLDS_S = 600  # identify results held past their time lose their encoding within ten minutes


class SweepSchedule:
    """Periodic jobs, one per period across every relay: the outbox dedupe key is the task and the period's number.

    Each relay writes a period's entry once, when the period begins, not on every round. The SLA sweep runs every
    `sla_sweep_seconds`; abandoned uploads are cleared hourly; notices stuck in `sending` are settled every 5 minutes.
    Daily jobs are keyed by their China day: yesterday's patrol days once the day is PATROL_DAYS_HOUR hours old.
    """

    def __init__(self, settings: Settings) -> None:
        self.periods = {
            "sla_sweep": max(1, settings.sla_sweep_seconds),
            "drop_stale_uploads": UPLOAD_CLEANUP_S,
            "settle_stuck_notices": STUCK_NOTICES_S,
            "reconcile_notices": STUCK_NOTICES_S,
            "face_holds": FACE_HOLDS_S,
        }
        self.last: dict[str, int] = {}
        self.last_day: date | None = None

    async def tick(self, *, now: datetime | None = None) -> None:
        now = now or clock.now()
        seconds = int(now.timestamp())
        for task, period in self.periods.items():
            bucket = seconds // period
            if self.last.get(task) != bucket:
                await outbox.add(task=task, args={}, dedupe_key=f"{task}:{bucket}")
                self.last[task] = bucket
        local = clock.china(now)
        if local.hour >= PATROL_DAYS_HOUR and self.last_day != local.date():
            yesterday = (local.date() - timedelta(days=1)).isoformat()
            await outbox.add(task="patrol_days", args={"day": yesterday}, dedupe_key=f"patrol_days:{yesterday}")
            # The register's nightly care: parties past retention deleted, values under an old key sealed anew.
            today = local.date().isoformat()
            for task in NIGHTLY:
                await outbox.add(task=task, args={}, dedupe_key=f"{task}:{today}")
            self.last_day = local.date()
