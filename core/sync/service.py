"""Offline sync (离线同步): a device's queued operations, applied in order, each exactly once.

Every operation carries the device's UUID for it. The operation and the record of its answer are written in one
transaction, so an operation is either applied and remembered, or not applied at all: a device that lost our
answer (or was offline for a day and replays its whole queue) gets the same answer again, and nothing happens
twice. The same UUID with other content is a conflict for that item. A refusal that will not change (the case
moved on, the photo was stale) is remembered like a success; a passing one (an upload not finished yet, the
database busy) is not, and the rest of the batch waits, because later operations may depend on this one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from core import clock
from core.errors import ConflictError, TongguanError, ValidationFailed
from core.messages import error_title
from core.sync.models import SyncOp

log = logging.getLogger("tongguan.sync")

# Refusals that may pass: the item is not remembered and the device sends it again later.
PASSING = frozenset({"upload_incomplete", "retry_later", "unavailable", "rate_limited", "internal_error"})

Handler = Callable[[dict[str, Any]], Awaitable[tuple[int, dict[str, Any]]]]


@dataclass(frozen=True)
class SyncItem:
    client_id: str  # the device's UUID for this operation
    op: str
    body: dict[str, Any]
    done_at: datetime | None = None  # when the device did it (the body's own time, if any)

    def content_hash(self) -> str:
        canonical = json.dumps({"op": self.op, "body": self.body}, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class ItemResult:
    id: str
    op: str
    status: int  # 200/201 applied; 4xx refused; 409 also for a reused UUID; 503 deferred (send again)
    result: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    replayed: bool = False  # the answer of an earlier delivery of the same operation
    retry: bool = False  # not applied and not remembered: send it again later


def _error(exc: TongguanError) -> dict[str, Any]:
    return {"code": exc.code, "title": error_title(exc.code), "detail": exc.detail, "errors": exc.errors}


def _stored(row: SyncOp, item: SyncItem) -> ItemResult:
    if row.content_hash != item.content_hash():
        exc = ConflictError("op_id_reused", f"operation {item.client_id} was sent before with other content")
        return ItemResult(item.client_id, item.op, 409, error=_error(exc))
    payload = dict(row.result)
    error = payload.pop("error", None)
    return ItemResult(item.client_id, row.op, row.status, result=payload, error=error, replayed=True)


async def apply_batch(*, staff_id: int, items: Sequence[SyncItem], handlers: Mapping[str, Handler]) -> list[ItemResult]:
    """Apply a device's operations in order; after one that must be sent again, the rest wait too."""
    results: list[ItemResult] = []
    deferred = False
    # One look-up for the batch: a device replaying its queue sends mostly operations we already hold.
    ids = [item.client_id.lower() for item in items if _is_uuid(item.client_id)]
    held = {row.client_id: row for row in await SyncOp.filter(staff_id=staff_id, client_id__in=ids)} if ids else {}
    for item in items:
        if deferred:
            exc = ValidationFailed("retry_later", "an earlier operation of this batch must be sent again first")
            results.append(ItemResult(item.client_id, item.op, 503, error=_error(exc), retry=True))
            continue
        earlier = held.get(item.client_id.lower())
        if earlier is not None:
            results.append(_stored(earlier, item))
            continue
        result = await apply_one(staff_id=staff_id, item=item, handlers=handlers)
        deferred = result.retry
        results.append(result)
    return results


async def apply_one(*, staff_id: int, item: SyncItem, handlers: Mapping[str, Handler]) -> ItemResult:
    """Apply one operation once, or return the answer it got before."""
    if not _is_uuid(item.client_id):
        exc = ValidationFailed("bad_op_id", "an operation id is a UUID, e.g. 0b9d3c1e-5f3a-4c1e-9a7b-2d6f8e4a1c35")
        return ItemResult(item.client_id, item.op, 422, error=_error(exc))
    client_id = item.client_id.lower()
    earlier = await SyncOp.get_or_none(staff_id=staff_id, client_id=client_id)
    if earlier is not None:
        return _stored(earlier, item)
    handler = handlers.get(item.op)
    try:
        if handler is None:
            raise ValidationFailed("unknown_operation", f"there is no operation {item.op!r}")
        async with in_transaction() as conn:
            status, result = await handler(item.body)
            await SyncOp.create(
                staff_id=staff_id,
                client_id=client_id,
                op=item.op,
                content_hash=item.content_hash(),
                status=status,
                result=result,
                done_at=item.done_at or clock.now(),
                using_db=conn,
            )
        return ItemResult(item.client_id, item.op, status, result=result)
    except IntegrityError:
        # Another delivery of the same operation won the unique index meanwhile: its answer is ours.
        row = await SyncOp.get_or_none(staff_id=staff_id, client_id=client_id)
        if row is None:
            raise
        return _stored(row, item)
    except TongguanError as exc:
        if exc.code in PASSING:
            log.info("sync item deferred", extra={"fields": {"id": client_id, "op": item.op, "code": exc.code}})
            return ItemResult(item.client_id, item.op, 503, error=_error(exc), retry=True)
        log.info("sync item refused", extra={"fields": {"id": client_id, "op": item.op, "code": exc.code}})
        return await _remember_refusal(staff_id, client_id, item, exc)


async def _remember_refusal(staff_id: int, client_id: str, item: SyncItem, exc: TongguanError) -> ItemResult:
    error = _error(exc)
    try:
        await SyncOp.create(
            staff_id=staff_id,
            client_id=client_id,
            op=item.op,
            content_hash=item.content_hash(),
            status=exc.status,
            result={"error": error},
            done_at=item.done_at or clock.now(),
        )
    except IntegrityError:
        row = await SyncOp.get_or_none(staff_id=staff_id, client_id=client_id)
        if row is not None:
            return _stored(row, item)
    return ItemResult(item.client_id, item.op, exc.status, error=error)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return len(value) == 36
