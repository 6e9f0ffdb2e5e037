"""`tongguan worker`: rq workers that run outbox batches, and the relay that feeds them.

Each worker process is an rq SimpleWorker (no fork per job: the database connection, the spatial index and the
classifier stay loaded) with rq's scheduler. The supervising process runs the relay and schedules the SLA sweep.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Coroutine
from typing import Any

from core.db import close_db, init_db
from core.settings import Settings, get_settings
from jobs.queue import connect, enqueue_batch, outbox_queue
from jobs.relay import SweepSchedule, relay_once
from jobs.runner import run_entries

log = logging.getLogger("tongguan.worker")
RELAY_IDLE_S = 0.2

_loop: asyncio.AbstractEventLoop | None = None


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine on this process's one event loop, opening the database on first use."""
    global _loop
    if _loop is None:
        _loop = asyncio.new_event_loop()
        _loop.run_until_complete(init_db(get_settings()))
    return _loop.run_until_complete(coro)


def run_outbox_batch(ids: list[int]) -> dict[str, int]:
    """The rq job: run a batch of outbox entries."""
    return _run(run_entries(list(ids)))


def _exit_when_orphaned(parent: int) -> None:
    """A worker whose supervisor died (SIGKILL, OOM) must not linger: the next supervisor starts its own."""
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(1)


def _work(settings: Settings, burst: bool) -> None:
    from rq import SimpleWorker

    from core.logs import configure_logging

    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True).start()
    configure_logging(level=settings.log_level, json_lines=settings.log_json)
    connection = connect(settings.redis_url or "")
    try:
        SimpleWorker([outbox_queue(connection)], connection=connection).work(burst=burst, with_scheduler=True)
    finally:
        # aiosqlite keeps a non-daemon thread per connection: the process would not exit with it open.
        if _loop is not None:
            _loop.run_until_complete(close_db())


async def relay_forever(settings: Settings, *, stop: asyncio.Event) -> None:
    """Hand due entries to the queue until stopped; keep going through database or Redis outages."""
    queue = outbox_queue(connect(settings.redis_url or ""))
    await init_db(settings)
    sweeps = SweepSchedule(settings)
    try:
        while not stop.is_set():
            try:
                await sweeps.tick()
                handed = await relay_once(settings=settings, enqueue=lambda ids: enqueue_batch(queue, ids))
            except Exception:
                log.exception("relay round failed; retrying")
                handed = 0
            if not handed:
                try:
                    await asyncio.wait_for(stop.wait(), RELAY_IDLE_S)
                except TimeoutError:
                    pass
    finally:
        await close_db()


async def relay_all(settings: Settings) -> int:
    """Hand over everything due now (burst mode), then return how many entries went."""
    queue = outbox_queue(connect(settings.redis_url or ""))
    await init_db(settings)
    total = 0
    try:
        while handed := await relay_once(settings=settings, enqueue=lambda ids: enqueue_batch(queue, ids)):
            total += handed
    finally:
        await close_db()
    return total


def serve(settings: Settings, *, processes: int = 1, burst: bool = False) -> None:
    """Start `processes` rq workers and the relay; stop them all on SIGINT/SIGTERM.

    In burst mode the relay hands over what is due once, the workers empty the queue, and everything exits.
    """
    context = multiprocessing.get_context("spawn")
    if burst:
        asyncio.run(relay_all(settings))
        batch = [context.Process(target=_work, args=(settings, True)) for _ in range(processes)]
        for process in batch:
            process.start()
        for process in batch:
            process.join()
        return
    workers = [
        context.Process(target=_work, args=(settings, False), name=f"tongguan-worker-{i}", daemon=False)
        for i in range(processes)
    ]
    for process in workers:
        process.start()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        relay = asyncio.create_task(relay_forever(settings, stop=stop))
        while not stop.is_set():
            for i, process in enumerate(workers):
                if not process.is_alive() and not stop.is_set():
                    # A worker that died (killed, out of memory) is replaced; its jobs come back through the relay.
                    log.warning("worker exited, starting another", extra={"fields": {"exitcode": process.exitcode}})
                    workers[i] = context.Process(target=_work, args=(settings, False), name=process.name)
                    workers[i].start()
            await asyncio.sleep(0.5)
        await relay

    try:
        asyncio.run(main())
    finally:
        for process in workers:
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + 10
        for process in workers:
            process.join(max(0.1, deadline - time.monotonic()))
