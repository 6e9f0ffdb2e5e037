"""Fixed-window rate limits shared by every API process through Redis (in-process in embedded mode).

A limit that cannot be checked (Redis down) lets the request through and logs it: refusing every citizen
because a counter is unavailable would lose reports, which we never do.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from core.errors import TongguanError

log = logging.getLogger("tongguan.ratelimit")


class RateLimited(TongguanError):
    status = 429

    def __init__(self, code: str, detail: str, *, retry_after: int) -> None:
        super().__init__(code, detail)
        self.retry_after = retry_after


class RateLimiter:
    """`hit(key, limit, window_s)` counts one request and refuses the one over the limit with 429."""

    def __init__(self, redis: Any | None = None, *, prefix: str = "tg:rate:") -> None:
        self._redis = redis
        self._prefix = prefix
        self._local: dict[str, int] = {}
        self._local_window: dict[str, int] = {}

    async def hit(self, key: str, *, limit: int, window_s: int, code: str = "rate_limited") -> None:
        if limit <= 0:
            return
        now = time.time()
        window = int(now // window_s)
        count = await self._count(f"{self._prefix}{key}:{window_s}:{window}", window_s)
        if count is not None and count > limit:
            retry_after = max(1, int((window + 1) * window_s - now) + 1)
            raise RateLimited(
                code, f"more than {limit} requests in {window_s} s ({key.split(':')[0]})", retry_after=retry_after
            )

    async def _count(self, key: str, window_s: int) -> int | None:
        if self._redis is None:
            return self._count_here(key)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.incr(key)
                pipe.expire(key, window_s + 5)
                count, _ = await pipe.execute()
            return int(count)
        except Exception as exc:  # Redis down or slow: let the request through
            log.warning("rate limit not checked", extra={"fields": {"error": type(exc).__name__}})
            return None

    def _count_here(self, key: str) -> int:
        prefix, _, window = key.rpartition(":")
        if self._local_window.get(prefix) != int(window):  # a new window: forget the old count
            self._local_window[prefix] = int(window)
            self._local[prefix] = 0
        self._local[prefix] += 1
        if len(self._local) > 100_000:  # many addresses in one window: drop the oldest half of the table
            for stale in list(self._local)[: len(self._local) // 2]:
                self._local.pop(stale, None)
                self._local_window.pop(stale, None)
        return self._local[prefix]
