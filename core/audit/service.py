"""Writing audit entries."""

from __future__ import annotations

from core.audit.models import AuditEntry


async def record(
    *,
    actor_type: str,
    actor_id: str,
    action: str,
    object_type: str,
    object_id: str,
    purpose: str = "",
    detail: dict | None = None,
    request_id: str = "",
) -> AuditEntry:
    """Record who did what to which object, and why."""
    return await AuditEntry.create(
        actor_type=actor_type,
        actor_id=actor_id,
        action=action,
        object_type=object_type,
        object_id=object_id,
        purpose=purpose,
        detail=detail or {},
        request_id=request_id,
    )
