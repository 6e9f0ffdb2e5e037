"""Outdoor-ad permits as their holders see them, and renewal (延续) requests from the mini-program."""

from __future__ import annotations

from core import clock
from core.errors import NotFoundError
from core.permits.models import AdCompany, AdPermit


async def permits_of(*, openid: str) -> list[AdPermit]:
    """The permits of every company whose contact is this mini-program user, soonest expiry first."""
    company_ids = await AdCompany.filter(openid=openid).values_list("id", flat=True)
    if not company_ids:
        return []
    query = AdPermit.filter(company_id__in=list(company_ids)).order_by("valid_to", "id")
    return await query.prefetch_related("company")


async def request_renewal(*, openid: str, number: str, note: str = "") -> AdPermit:
    """Record the holder's renewal request (asking again keeps the first time); staff take it from there."""
    permit = await AdPermit.get_or_none(number=number, company__openid=openid)
    if permit is None:
        raise NotFoundError("permit_not_found", f"permit {number} is not one of your company's")
    if permit.renewal_requested_at is None:
        permit.renewal_requested_at = clock.now()
        permit.renewal_note = note.strip()[:256]
        await permit.save(update_fields=["renewal_requested_at", "renewal_note"])
    return permit
