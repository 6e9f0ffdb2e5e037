"""Offline sync (离线同步): `POST /field/v1/sync` applies a device's queued operations in order, each once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter

from core import clock
from core.errors import BatchTooLarge
from core.geo.service import get_spatial_index
from core.sync import service as sync
from field_app_api import operations
from field_app_api.deps import AppSettings, CurrentActor
from field_app_api.schemas import SyncIn

router = APIRouter(tags=["field app: sync"])


@router.post("/sync")
async def sync_batch(body: SyncIn, actor: CurrentActor, settings: AppSettings) -> dict[str, Any]:
    """Apply operations in order; the answer reports each item (applied, replayed, refused, or to send again)."""
    if len(body.operations) > settings.sync_max_ops:
        raise BatchTooLarge(
            "batch_too_large", f"{len(body.operations)} operations; at most {settings.sync_max_ops} per batch"
        )

    def handler(name: str, spec: operations.OpSpec) -> sync.Handler:
        async def run(raw: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            return await operations.perform(name, actor, operations.parse(spec, raw), settings)

        return run

    handlers = {name: handler(name, spec) for name, spec in operations.OPERATIONS.items()}
    # Each operation runs in a transaction; what needs the spatial index (reports) must not build it from inside one.
    await get_spatial_index()
    items = [sync.SyncItem(client_id=i.id, op=i.op, body=i.body, done_at=_done_at(i.body)) for i in body.operations]
    results = await sync.apply_batch(staff_id=int(actor.id), items=items, handlers=handlers)
    counts = {"applied": 0, "replayed": 0, "refused": 0, "deferred": 0}
    for r in results:
        key = "deferred" if r.retry else "replayed" if r.replayed else "applied" if r.status < 300 else "refused"
        counts[key] += 1
    return {
        **counts,
        "results": [
            {
                "id": r.id,
                "op": r.op,
                "status": r.status,
                "replayed": r.replayed,
                "retry": r.retry,
                "result": r.result,
                "error": r.error,
            }
            for r in results
        ],
    }


def _done_at(body: dict[str, Any]) -> datetime | None:
    value = body.get("at")
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
        # Stored in China time: a moment that does not fit there (year 1 at +14:00) is no time of the device's work.
        return clock.china(parsed) if parsed.tzinfo else None
    except (ValueError, OverflowError):
        return None
