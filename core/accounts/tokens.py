"""Staff sign-in (登录): short-lived JWT access tokens, and sessions held by rotating refresh tokens.

An access token is a signed JWT naming the staff member and the session; every request checks that the
session is still open, so revoking a session ends its access tokens at once. A refresh token is
`<session id>.<nonce>.<mac>`; the database keeps only the sha256 of the current one. The MAC proves we issued
a token, so a genuine but no longer current refresh token means two parties hold copies of the session: we
revoke it (reuse detection), while a forged token cannot revoke anyone's session.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

import jwt
from argon2.exceptions import InvalidHashError, VerificationError
from tortoise.transactions import in_transaction

from core.accounts.models import StaffAccount, StaffRole, StaffSession
from core.accounts.service import hash_password, verify_password
from core.audit import service as audit
from core.errors import PermissionDenied, Unauthenticated
from core.settings import get_settings

ALGORITHM = "HS256"
ACCESS_TYPE = "access"
# API processes on several machines: a second of clock skew must not refuse a token issued a moment ago.
LEEWAY_SECONDS = 30
_ACCESS_KEY_PURPOSE = b"tongguan staff access token"
_REFRESH_KEY_PURPOSE = b"tongguan staff refresh token"


@dataclass(frozen=True)
class RoleGrant:
    role: str
    department_code: str | None
    area_code: str  # "" = city-wide, else a district (6-digit) or street (9-digit) code


@dataclass(frozen=True)
class StaffPrincipal:
    """Who is calling: the staff member, the session the token belongs to, and the roles held now."""

    staff_id: int
    username: str
    display_name: str
    session_id: int
    roles: tuple[RoleGrant, ...]


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int  # seconds until the access token expires


async def sign_in(*, username: str, password: str, user_agent: str = "") -> TokenPair:
    """Check a username and password and open a session; unknown names and wrong passwords look the same."""
    staff = await StaffAccount.get_or_none(username=username)
    if staff is None:
        # Spend the same argon2 time as for a real account, so timing does not tell which names exist.
        await asyncio.to_thread(_password_matches, _dummy_hash(), password)
        raise Unauthenticated("invalid_credentials", "username or password is wrong")
    if not await asyncio.to_thread(_password_matches, staff.password_hash, password):
        await _audit_refusal(staff, "wrong_password")
        raise Unauthenticated("invalid_credentials", "username or password is wrong")
    # Checked after the password, so a stranger cannot learn which accounts are disabled.
    if not staff.active:
        await _audit_refusal(staff, "account_disabled")
        raise PermissionDenied("account_disabled", f"staff account {staff.id} is disabled")

    now = _now()
    async with in_transaction():
        # The refresh token names its session, so the row exists before the token; the placeholder is never issued.
        session = await StaffSession.create(
            staff=staff,
            refresh_hash=_sha256(secrets.token_hex(32)),
            expires_at=now + timedelta(days=get_settings().refresh_token_days),
            user_agent=user_agent[:255],
        )
        refresh_token = _new_refresh_token(session.id)
        session.refresh_hash = _sha256(refresh_token)
        await session.save(update_fields=["refresh_hash"])
        await audit.record(
            actor_type="staff",
            actor_id=str(staff.id),
            action="staff.sign_in",
            object_type="staff_session",
            object_id=str(session.id),
            detail={"username": staff.username, "user_agent": session.user_agent},
        )
    return _pair(staff.id, session.id, refresh_token, now)


async def refresh(*, refresh_token: str) -> TokenPair:
    """Trade a refresh token for a new pair; the old refresh token stops working and a reused one ends the session."""
    session_id = _session_id_of(refresh_token)
    session = await StaffSession.filter(id=session_id).select_related("staff").first()
    if session is None:
        raise Unauthenticated("token_invalid", "refresh token names no session")
    now = _now()
    _check_open(session, now)
    new_token = _new_refresh_token(session.id)
    # Compare-and-swap: of two requests presenting the same token, only one rotates; the other counts as reuse.
    rotated = await StaffSession.filter(
        id=session.id, refresh_hash=_sha256(refresh_token), revoked_at__isnull=True
    ).update(refresh_hash=_sha256(new_token))
    if not rotated:
        await _revoke(session.id, reason="refresh_reuse", now=now)
        raise Unauthenticated("session_revoked", f"session {session.id}: an old refresh token was reused; revoked")
    return _pair(session.staff.id, session.id, new_token, now)


async def revoke(*, session_id: int | None = None, refresh_token: str | None = None) -> None:
    """End a session, named by its id or by one of its refresh tokens; revoking twice is harmless."""
    if (session_id is None) == (refresh_token is None):
        raise ValueError("pass exactly one of session_id and refresh_token")
    if refresh_token is not None:
        session_id = _session_id_of(refresh_token)
    assert session_id is not None
    await _revoke(session_id, reason="sign_out", now=_now())


async def authenticate_bearer(token: str | None) -> StaffPrincipal:
    """The staff member behind an `Authorization: Bearer` token; 401 when there is none or it is not valid."""
    if not token:
        raise Unauthenticated("not_authenticated", "a bearer access token is required")
    return await authenticate(token)


async def authenticate(access_token: str) -> StaffPrincipal:
    """The staff member behind an access token, if the token is genuine and its session and account still stand."""
    staff_id, session_id = _decode_access_token(access_token)
    session = await StaffSession.filter(id=session_id).select_related("staff").first()
    if session is None or session.staff.id != staff_id:
        raise Unauthenticated("token_invalid", "access token names no session of its staff member")
    _check_open(session, _now())
    rows = await StaffRole.filter(staff_id=staff_id).order_by("id").values_list("role", "department_id", "area_code")
    staff = session.staff
    return StaffPrincipal(
        staff_id=staff.id,
        username=staff.username,
        display_name=staff.display_name,
        session_id=session.id,
        roles=tuple(RoleGrant(role, department, area) for role, department, area in rows),
    )


def issue_access_token(*, staff_id: int, session_id: int, issued_at: datetime | None = None) -> str:
    """A signed access token for a session; `issued_at` exists for tests of expiry."""
    issued_at = issued_at or _now()
    claims = {
        "sub": str(staff_id),
        "sid": session_id,
        "iat": int(issued_at.timestamp()),
        "exp": int((issued_at + timedelta(minutes=get_settings().access_token_minutes)).timestamp()),
        "typ": ACCESS_TYPE,
    }
    return jwt.encode(claims, _key(_ACCESS_KEY_PURPOSE), algorithm=ALGORITHM)


def _decode_access_token(token: str) -> tuple[int, int]:
    try:
        claims = jwt.decode(
            token,
            _key(_ACCESS_KEY_PURPOSE),
            algorithms=[ALGORITHM],
            leeway=LEEWAY_SECONDS,
            options={"require": ["sub", "sid", "iat", "exp", "typ"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated("token_expired", "access token has expired") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthenticated("token_invalid", f"access token refused: {exc}") from exc
    sub, sid = claims["sub"], claims["sid"]
    if claims["typ"] != ACCESS_TYPE or not sub.isdigit() or type(sid) is not int:
        raise Unauthenticated("token_invalid", "access token has malformed claims")
    return int(sub), sid


def _check_open(session: StaffSession, now: datetime) -> None:
    """Refuse a revoked or expired session, or one whose account was disabled since sign-in."""
    if session.revoked_at is not None:
        raise Unauthenticated("session_revoked", f"session {session.id} was revoked")
    if session.expires_at <= now:
        raise Unauthenticated("token_expired", f"session {session.id} has expired")
    if not session.staff.active:
        raise PermissionDenied("account_disabled", f"staff account {session.staff.id} is disabled")


async def _revoke(session_id: int, *, reason: str, now: datetime) -> None:
    owner = await StaffSession.filter(id=session_id).first().values_list("staff_id", flat=True)
    if owner is None:
        return
    closed = await StaffSession.filter(id=session_id, revoked_at__isnull=True).update(revoked_at=now)
    if closed:
        # Signing out is the owner's act; revoking a session whose refresh token was reused is ours.
        by_owner = reason == "sign_out"
        await audit.record(
            actor_type="staff" if by_owner else "system",
            actor_id=str(owner) if by_owner else "tokens",
            action="staff.session_revoke",
            object_type="staff_session",
            object_id=str(session_id),
            detail={"reason": reason},
        )


async def _audit_refusal(staff: StaffAccount, reason: str) -> None:
    await audit.record(
        actor_type="staff",
        actor_id=str(staff.id),
        action="staff.sign_in_refused",
        object_type="staff_account",
        object_id=str(staff.id),
        detail={"reason": reason},
    )


def _pair(staff_id: int, session_id: int, refresh_token: str, now: datetime) -> TokenPair:
    return TokenPair(
        access_token=issue_access_token(staff_id=staff_id, session_id=session_id, issued_at=now),
        refresh_token=refresh_token,
        expires_in=get_settings().access_token_minutes * 60,
    )


def _new_refresh_token(session_id: int) -> str:
    body = f"{session_id}.{secrets.token_urlsafe(32)}"
    return f"{body}.{_refresh_mac(body)}"


def _session_id_of(refresh_token: str) -> int:
    """The session a refresh token names, if we issued the token (current or not)."""
    body, _, mac = refresh_token.rpartition(".")
    session_part = body.partition(".")[0]
    if not (session_part.isdigit() and hmac.compare_digest(mac.encode(), _refresh_mac(body).encode())):
        raise Unauthenticated("token_invalid", "refresh token is malformed or was not issued here")
    return int(session_part)


def _refresh_mac(body: str) -> str:
    digest = hmac.new(_key(_REFRESH_KEY_PURPOSE), body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _key(purpose: bytes) -> bytes:
    # One key per purpose, derived from the application secret: an access token cannot pass for a refresh MAC,
    # and the HS256 key is always 32 bytes whatever the length of the configured secret.
    secret = get_settings().secret_key.get_secret_value().encode()
    return hmac.new(secret, purpose, hashlib.sha256).digest()


def _password_matches(password_hash: str, password: str) -> bool:
    try:
        return verify_password(password_hash, password)
    except (VerificationError, InvalidHashError):
        # An account imported without a usable password hash cannot sign in; it is not a server error.
        return False


@cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_hex(16))


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)
