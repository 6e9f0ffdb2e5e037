"""Signed, expiring media URLs: whoever holds one may fetch that photo in that size until it expires."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from core.errors import PermissionDenied
from core.settings import Settings

VARIANTS = ("photo", "display", "thumb")


def _signature(media_id: str, variant: str, expires: int, settings: Settings) -> str:
    # A key of its own, derived from the secret: a media signature can never stand in for a token.
    key = hashlib.sha256(b"tongguan-media-url:" + settings.secret_key.get_secret_value().encode()).digest()
    mac = hmac.new(key, f"{media_id}:{variant}:{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:18]).decode()


def signed_url(media_id: str, variant: str, *, settings: Settings, now: float | None = None) -> str:
    """A path the API serves: /media/{id}/{variant}?exp=…&sig=…"""
    expires = int((now or time.time()) + settings.media_url_seconds)
    return f"/media/{media_id}/{variant}?exp={expires}&sig={_signature(media_id, variant, expires, settings)}"


def check(media_id: str, variant: str, *, expires: int, signature: str, settings: Settings) -> None:
    """Refuse a URL that was not signed by us for this photo and size, or that has expired."""
    expected = _signature(media_id, variant, expires, settings)
    if not hmac.compare_digest(expected, signature):
        raise PermissionDenied("bad_media_signature", "this media link is not valid")
    if expires < time.time():
        raise PermissionDenied("media_link_expired", "this media link has expired; ask for a new one")
