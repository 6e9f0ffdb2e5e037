"""Embedded mode (no Redis): the API process runs the outbox itself, so `tongguan serve` alone is complete."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from core.outbox import service as outbox
from core.settings import Settings
from jobs.relay import SweepSchedule
from jobs.runner import run_entries

log = logging.getLogger("tongguan.jobs")
IDLE_WAIT_S = 1.0

_wake: asyncio.Event | None = None


def wake() -> None:
    """Tell the embedded runner that new work was committed (a no-op when jobs run under rq)."""
    if _wake is not None:
        _wake.set()


class EmbeddedRunner:
    """A background task in the API's event loop that claims due outbox entries and runs them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        global _wake
        _wake = asyncio.Event()
        self._task = asyncio.create_task(self._loop(), name="tongguan-embedded-jobs")

    async def stop(self) -> None:
        global _wake
        _wake = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run_pending(self) -> int:
        """Run everything due now; returns how many entries ran."""
        ran = 0
        while True:
            ids = await outbox.claim_for_handing(limit=100, stale_after_s=self.settings.outbox_stale_seconds)
            if not ids:
                return ran
            await run_entries(ids)
            ran += len(ids)

    async def _loop(self) -> None:
        sweeps = SweepSchedule(self.settings)
        while True:
            try:
                await sweeps.tick()
                await self.run_pending()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("embedded job loop failed; retrying")
            event = _wake
            if event is None:
                # stop() ran while this round worked, and a library swallowed its cancellation: end here.
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), IDLE_WAIT_S)
            event.clear()
