"""Running outbox entries: the same code under an rq worker and in embedded mode."""

from __future__ import annotations

import logging

from core.outbox import service as outbox
from core.settings import get_settings
from jobs.registry import TASKS

log = logging.getLogger("tongguan.jobs")


async def run_entry(entry_id: int) -> str:
    """Run one entry's job unless it is finished; record success, or the failure and when to retry."""
    entry = await outbox.start(entry_id)
    if entry is None:
        return "skipped"
    task = TASKS.get(entry.task)
    if task is None:
        return await outbox.fail(entry, error=f"unknown task {entry.task!r}", max_attempts=0)
    try:
        await task(**entry.args)
    except Exception as exc:
        log.exception("job failed", extra={"fields": {"entry": entry_id, "task": entry.task}})
        return await outbox.fail(
            entry, error=f"{type(exc).__name__}: {exc}", max_attempts=get_settings().outbox_max_attempts
        )
    await outbox.finish(entry_id)
    return "done"


async def run_entries(ids: list[int]) -> dict[str, int]:
    """Run a batch; one entry's failure does not stop the others."""
    outcome: dict[str, int] = {}
    for entry_id in ids:
        try:
            status = await run_entry(entry_id)
        except Exception:  # the bookkeeping itself failed (database gone): the relay hands it over again
            log.exception("job bookkeeping failed", extra={"fields": {"entry": entry_id}})
            status = "error"
        outcome[status] = outcome.get(status, 0) + 1
    return outcome
