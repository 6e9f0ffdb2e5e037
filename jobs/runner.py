"""Running outbox entries: the same code under an rq worker and in embedded mode."""

from __future__ import annotations

import logging

from core.outbox import service as outbox
from core.outbox.models import OutboxEntry
from core.settings import get_settings
from jobs.registry import BATCHED, TASKS

log = logging.getLogger("tongguan.jobs")


async def run_entries(ids: list[int]) -> dict[str, int]:
    """Run a batch; one entry's failure does not stop the others.

    The bookkeeping is per batch (one statement to count the attempts, one to mark the successes done): a
    crash part way leaves the batch unfinished, and the relay hands it over again; the jobs are idempotent.
    """
    try:
        entries = await outbox.start_many(ids)
    except Exception:  # the database is gone: the relay hands the batch over again
        log.exception("job bookkeeping failed", extra={"fields": {"entries": ids}})
        return {"error": len(ids)}
    outcome: dict[str, int] = {"skipped": len(ids) - len(entries)}
    done: list[int] = []
    for task in {e.task for e in entries if e.task in BATCHED}:
        group = [e for e in entries if e.task == task]
        function, argument = BATCHED[task]
        try:
            await function([e.args[argument] for e in group])
        except Exception as exc:
            log.exception("batch job failed", extra={"fields": {"task": task, "entries": [e.id for e in group]}})
            for entry in group:
                status = await _failed(entry, exc)
                outcome[status] = outcome.get(status, 0) + 1
            continue
        done += [e.id for e in group]
        outcome["done"] = outcome.get("done", 0) + len(group)
    for entry in entries:
        if entry.task in BATCHED:
            continue
        status = await _run(entry)
        if status == "done":
            done.append(entry.id)
        outcome[status] = outcome.get(status, 0) + 1
    await outbox.finish_many(done)
    return outcome


async def _run(entry: OutboxEntry) -> str:
    """Run one entry's job; record a failure and when to retry it."""
    task = TASKS.get(entry.task)
    try:
        if task is None:
            return await outbox.fail(entry, error=f"unknown task {entry.task!r}", max_attempts=0)
        await task(**entry.args)
        return "done"
    except Exception as exc:
        log.exception("job failed", extra={"fields": {"entry": entry.id, "task": entry.task}})
        return await _failed(entry, exc)


async def _failed(entry: OutboxEntry, exc: Exception) -> str:
    """Record a failed attempt (retry later, or dead); "error" when even that cannot be written."""
    try:
        return await outbox.fail(
            entry, error=f"{type(exc).__name__}: {exc}", max_attempts=get_settings().outbox_max_attempts
        )
    except Exception:
        log.exception("job bookkeeping failed", extra={"fields": {"entry": entry.id}})
        return "error"
