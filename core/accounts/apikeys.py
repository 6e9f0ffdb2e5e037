"""API keys of other systems using Open311: created and revoked by an operator, shown once, stored hashed.

A key is "tg_" + 43 URL-safe characters (256 random bits). Only its sha256 is stored, so a lookup by hash is
the check: a stolen database does not yield working keys, and there is no secret comparison to time.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

from tortoise.transactions import in_transaction

from core import clock
from core.accounts.models import ApiKey
from core.audit import service as audit
from core.errors import ConflictError, NotFoundError, PermissionDenied, ValidationFailed

KEY_PREFIX = "tg_"
SHOWN_PREFIX = 10  # "tg_" + 7 characters: enough to tell keys apart in a list, far too few to guess the rest
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# Writing last_used_at on every request would turn each read into a write; a minute is precise enough.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create_key(*, name: str, actor: str = "system") -> str:
    """Create a key for another system and return it; this is the only time the key itself is seen."""
    if not _NAME.fullmatch(name):
        raise ValidationFailed(
            "bad_api_key_name",
            "a key name has 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    if await ApiKey.exists(name=name):
        raise ConflictError("api_key_name_taken", f"there is already a key named {name!r} (revoked keys keep names)")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    async with in_transaction():
        row = await ApiKey.create(name=name, prefix=key[:SHOWN_PREFIX], key_hash=hash_key(key))
        await audit.record(
            actor_type="system",
            actor_id=actor,
            action="api_key.create",
            object_type="api_key",
            object_id=str(row.id),
            detail={"name": name, "prefix": row.prefix},
        )
    return key


async def revoke_key(*, name: str, actor: str = "system") -> ApiKey:
    """Revoke a key at once; revoking a revoked key changes nothing."""
    row = await ApiKey.get_or_none(name=name)
    if row is None:
        raise NotFoundError("api_key_not_found", f"there is no key named {name!r}")
    if row.revoked_at is None:
        async with in_transaction():
            row.revoked_at = clock.now()
            await row.save(update_fields=["revoked_at"])
            await audit.record(
                actor_type="system",
                actor_id=actor,
                action="api_key.revoke",
                object_type="api_key",
                object_id=str(row.id),
                detail={"name": name},
            )
    return row


async def list_keys() -> list[ApiKey]:
    """Every key, revoked ones included, by name."""
    return await ApiKey.all().order_by("name")


async def check_key(key: str | None) -> ApiKey:
    """The key's row when it is valid; a missing, unknown or revoked key is refused (403)."""
    if not key:
        raise PermissionDenied("api_key_missing", "api_key was not provided")
    row = await ApiKey.get_or_none(key_hash=hash_key(key))
    if row is None:
        raise PermissionDenied("api_key_invalid", "api_key is not valid")
    if row.revoked_at is not None:
        raise PermissionDenied("api_key_revoked", "api_key has been revoked")
    now = clock.now()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        await ApiKey.filter(id=row.id).update(last_used_at=now)
        row.last_used_at = now
    return row
