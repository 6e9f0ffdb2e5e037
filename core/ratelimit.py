"""Fixed-window rate limits shared by every API process through Redis (in-process in embedded mode).

A limit that cannot be checked (Redis down) lets the request through and logs it: refusing every citizen
because a counter is unavailable would lose reports, which we never do.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from core.errors import TongguanError

log = logging.getLogger("tongguan.ratelimit")


class RateLimited(TongguanError):
    status = 429

    def __init__(self, code: str, detail: str, *, retry_after: int) -> None:
        super().__init__(code, detail)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Limit:
    key: str  # e.g. "user:42" or "ip:10.0.0.1"
    limit: int  # requests per window; 0 or less: no limit
    window_s: int
    code: str = "rate_limited"


class RateLimiter:
    """`hit(key, limit, window_s)` counts one request and refuses the one over the limit with 429."""

    def __init__(self, redis: Any | None = None, *, prefix: str = "tg:rate:") -> None:
        self._redis = redis
        self._prefix = prefix
        self._local: dict[str, int] = {}
        self._local_window: dict[str, int] = {}

    async def hit(self, key: str, *, limit: int, window_s: int, code: str = "rate_limited") -> None:
        await self.hit_all([Limit(key, limit, window_s, code)])

    async def hit_all(self, limits: list[Limit]) -> None:
        """Count one request against each limit in one round trip; refuse with the first one exceeded."""
        limits = [limit for limit in limits if limit.limit > 0]
        if not limits:
            return
        now = time.time()
        windows = [int(now // limit.window_s) for limit in limits]
        keys = [f"{self._prefix}{x.key}:{x.window_s}:{w}" for x, w in zip(limits, windows, strict=True)]
        counts = await self._count(keys, [x.window_s for x in limits])
        for limit, window, count in zip(limits, windows, counts, strict=True):
            if count is not None and count > limit.limit:
                retry_after = max(1, int((window + 1) * limit.window_s - now) + 1)
                detail = f"more than {limit.limit} requests in {limit.window_s} s ({limit.key.split(':')[0]})"
                raise RateLimited(limit.code, detail, retry_after=retry_after)

    async def _count(self, keys: list[str], windows_s: list[int]) -> list[int | None]:
        if self._redis is None:
            return [self._count_here(key) for key in keys]
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key, window_s in zip(keys, windows_s, strict=True):
                    pipe.incr(key)
                    pipe.expire(key, window_s + 5)
                answers = await pipe.execute()
            return [int(count) for count in answers[::2]]
        except Exception as exc:  # Redis down or slow: let the request through
            log.warning("rate limit not checked", extra={"fields": {"error": type(exc).__name__}})
            return [None] * len(keys)

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
