"""The rq queue that carries outbox batches to workers."""

from __future__ import annotations

from redis import Redis
from rq import Queue

QUEUE_NAME = "tongguan"
JOB_FUNCTION = "jobs.worker.run_outbox_batch"
JOB_TIMEOUT_S = 600
RESULT_TTL_S = 300


def connect(redis_url: str) -> Redis:
    return Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=30)


def outbox_queue(connection: Redis) -> Queue:
    return Queue(QUEUE_NAME, connection=connection)


def enqueue_batch(queue: Queue, ids: list[int]) -> None:
    """One rq job per batch of outbox entries; the job reads the entries, so the queue holds only ids."""
    queue.enqueue(JOB_FUNCTION, ids, job_timeout=JOB_TIMEOUT_S, result_ttl=RESULT_TTL_S, failure_ttl=86_400)
