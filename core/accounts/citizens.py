"""Citizens of the mini-program: sign-in after WeChat vouched for them, our own session tokens, phone binding.

The bearer token is ours (`tgc_…`, 256 random bits); the database keeps its sha256 only. WeChat's
session_key stays in the session row and never leaves the server.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from core import clock
from core.accounts.models import Citizen, CitizenSession
from core.errors import Unauthenticated, ValidationFailed
from core.settings import get_settings

TOKEN_PREFIX = "tgc_"


@dataclass(frozen=True)
class CitizenPrincipal:
    citizen_id: int
    openid: str
    session_id: int


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class SignedIn:
    citizen: Citizen
    token: str
    expires_at: datetime


async def sign_in(*, openid: str, unionid: str | None, session_key: str) -> SignedIn:
    """The citizen (created on first sign-in) and a new session token for them."""
    citizen, _ = await Citizen.get_or_create(openid=openid)
    if unionid and citizen.unionid != unionid:
        citizen.unionid = unionid
        await citizen.save(update_fields=["unionid"])
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = clock.now() + timedelta(days=get_settings().miniapp_session_days)
    await CitizenSession.create(
        citizen=citizen,
        token_hash=_digest(token),
        session_key=session_key,
        expires_at=expires_at,
        created_at=clock.now(),
    )
    return SignedIn(citizen, token, expires_at)


async def authenticate(token: str | None) -> CitizenPrincipal:
    """The citizen a bearer token belongs to; 401 when it is missing, unknown, expired or signed out."""
    if not token:
        raise Unauthenticated("not_authenticated", "sign in first")
    if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        raise Unauthenticated("token_invalid", "not a citizen session token")
    # Plain values, not model objects: this runs on every signed-in request.
    rows = await CitizenSession.filter(token_hash=_digest(token)).values(
        "id", "citizen_id", "citizen__openid", "revoked_at", "expires_at"
    )
    if not rows:
        raise Unauthenticated("token_invalid", "unknown session token")
    session = rows[0]
    if session["revoked_at"] is not None:
        raise Unauthenticated("session_revoked", "this session was signed out")
    if session["expires_at"] <= clock.now():
        raise Unauthenticated("token_expired", "the session has expired; sign in again")
    return CitizenPrincipal(session["citizen_id"], session["citizen__openid"], session["id"])


async def sign_out(*, session_id: int) -> None:
    await CitizenSession.filter(id=session_id, revoked_at=None).update(revoked_at=clock.now())


async def bind_phone(*, citizen_id: int, phone: str) -> str:
    """Keep the phone number WeChat confirmed for this citizen (for SMS progress notices they ask for)."""
    if not (len(phone) == 11 and phone.isdigit() and phone[0] == "1" and phone[1] in "3456789"):
        raise ValidationFailed("bad_phone", "a mainland mobile number has 11 digits")
    await Citizen.filter(id=citizen_id).update(phone=phone)
    return phone


def mask_phone(phone: str | None) -> str:
    """138****5678: how a phone number appears anywhere but to its owner's own eyes."""
    if not phone:
        return ""
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else "****"
