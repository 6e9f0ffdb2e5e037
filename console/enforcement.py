"""A party's rights over the violator register (个人信息保护法 art. 45, 47): export and erase, for administrators.

A legal request (a party asks for their data or its deletion, or a court orders it) reaches an administrator, who
exports or erases through these routes; both are audited with the request's reference. Erasing takes the party's
encodings out of every process's face index at its next search (core/enforcement/register.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from console.deps import CurrentActor
from core.cases.workflow import Actor
from core.enforcement import service
from core.enforcement.catalog import catalog_at
from core.enforcement.keys import keyring_from
from core.errors import PermissionDenied
from core.settings import Settings

router = APIRouter(prefix="/staff/v1/enforcement", tags=["staff"])


def _require_admin(actor: Actor) -> None:
    if not any(g.role == "admin" for g in actor.grants):
        raise PermissionDenied("role_not_allowed", "exporting or erasing a party's data is for administrators")


@router.get("/parties/{party_id}/export")
async def export_party(
    party_id: int,
    actor: CurrentActor,
    request: Request,
    purpose: Annotated[
        str, Query(max_length=255, description="the legal request's reference (kept in the audit)")
    ] = "",
) -> dict[str, Any]:
    """Everything held about a party, identity in the clear; face encodings are counted, never exported."""
    _require_admin(actor)
    settings: Settings = request.app.state.settings
    return await service.export_party(
        actor=actor,
        party_id=party_id,
        purpose=service.check_purpose(purpose),
        keyring=keyring_from(settings),
        catalog=catalog_at(settings.enforcement_catalog),
    )


class EraseIn(BaseModel):
    reason: str = Field(max_length=255, description="the legal request's reference and ground")


@router.post("/parties/{party_id}/erase")
async def erase_party(party_id: int, body: EraseIn, actor: CurrentActor) -> dict[str, Any]:
    """Delete a party with their encodings, violations and decisions; the audit keeps that it happened."""
    _require_admin(actor)
    counts = await service.erase_party(actor=actor, party_id=party_id, reason=body.reason)
    return {"party": party_id, "erased": counts}
