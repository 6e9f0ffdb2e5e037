"""Rate limits: counted across API processes through Redis, per window; an unreachable Redis refuses nobody."""

import pytest
from redis.asyncio import Redis

from core.ratelimit import RateLimited, RateLimiter


async def test_the_request_over_the_limit_is_refused_with_when_to_come_back():
    limiter = RateLimiter()
    for _ in range(3):
        await limiter.hit("user:1", limit=3, window_s=60)

    with pytest.raises(RateLimited) as refused:
        await limiter.hit("user:1", limit=3, window_s=60)

    assert refused.value.status == 429 and 1 <= refused.value.retry_after <= 61
    await limiter.hit("user:2", limit=3, window_s=60)  # someone else is not held back


async def test_two_api_processes_share_one_count_through_redis(redis_url):
    first, second = Redis.from_url(redis_url), Redis.from_url(redis_url)
    try:
        a, b = RateLimiter(first), RateLimiter(second)
        await a.hit("ip:10.0.0.1", limit=2, window_s=60)
        await b.hit("ip:10.0.0.1", limit=2, window_s=60)
        with pytest.raises(RateLimited):
            await a.hit("ip:10.0.0.1", limit=2, window_s=60)
    finally:
        await first.aclose()
        await second.aclose()


async def test_an_unreachable_redis_lets_requests_through():
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    limiter = RateLimiter(dead)
    try:
        for _ in range(5):
            await limiter.hit("user:1", limit=1, window_s=60)
    finally:
        await dead.aclose()
