"""Encryption at rest of face encodings and identity numbers: AES-256-GCM with named keys, for rotation.

`TG_FACE_KEYS` lists keys as `id:base64,id:base64,…` (32 random bytes each: `tongguan faces new-key` prints one).
The first key encrypts; every listed key decrypts. Rotation: put a new key first, keep the old ones after it, run
`tongguan faces rekey` (or let the nightly `face_rekey` job do it), then drop the old keys once it reports none left.
A sealed value is `id.base64url(nonce ‖ ciphertext ‖ tag)`, so the rows still under an old key are found by prefix.

Without keys a development install derives one named `dev` from `TG_SECRET_KEY`; production refuses to start
without `TG_FACE_KEYS` (core/settings.py). The label (what the value is: face, id_number …) is authenticated with
the ciphertext, so a value copied into another column does not decrypt there.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.errors import TongguanError

if TYPE_CHECKING:
    from core.settings import Settings

_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,16}$")
NONCE_BYTES = 12


class SealError(TongguanError):
    """A sealed value that no configured key opens (a key dropped too early), or a malformed key list."""

    status = 500


class Keyring:
    """The configured keys by id; `current` encrypts."""

    def __init__(self, keys: list[tuple[str, bytes]], *, lookup_key: bytes) -> None:
        if not keys:
            raise ValueError("a keyring needs at least one key")
        self._keys = {key_id: AESGCM(secret) for key_id, secret in keys}
        self.current = keys[0][0]
        self._lookup_key = lookup_key

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def seal(self, plaintext: bytes, *, label: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._keys[self.current].encrypt(nonce, plaintext, label.encode())
        return f"{self.current}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, token: str, *, label: str) -> bytes:
        key_id, _, body = token.partition(".")
        aead = self._keys.get(key_id)
        if aead is None:
            raise SealError("face_key_missing", f"a value is sealed with key {key_id!r}, which is not configured")
        try:
            raw = base64.urlsafe_b64decode(body)
            return aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], label.encode())
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise SealError("face_key_mismatch", f"a value sealed with key {key_id!r} does not open") from exc

    @staticmethod
    def key_of(token: str) -> str:
        return token.partition(".")[0]

    def lookup_hash(self, value: str) -> str:
        """A keyed hash to find a record by an identity number without storing the number in the clear.

        Its key comes from TG_SECRET_KEY, which rotating the face keys does not touch: hashes stay valid across a
        rotation. Changing TG_SECRET_KEY makes stored numbers unfindable by hash (they still decrypt).
        """
        return hmac.new(self._lookup_key, value.encode(), hashlib.sha256).hexdigest()


def keyring_from(settings: Settings) -> Keyring:
    """The keyring `TG_FACE_KEYS` describes, or the development key derived from `TG_SECRET_KEY`."""
    secret = settings.secret_key.get_secret_value().encode()
    lookup_key = hmac.new(secret, b"tongguan enforcement lookup", hashlib.sha256).digest()
    keys = parse_keys(settings.face_keys.get_secret_value())
    if not keys:
        keys = [("dev", hmac.new(secret, b"tongguan face keys", hashlib.sha256).digest())]
    return Keyring(keys, lookup_key=lookup_key)


def parse_keys(text: str) -> list[tuple[str, bytes]]:
    """The keys of a `TG_FACE_KEYS` value, in order; ValueError naming the bad entry (never its secret)."""
    keys: list[tuple[str, bytes]] = []
    if not text.strip():
        return keys
    for item in text.split(","):
        key_id, sep, encoded = item.strip().partition(":")
        try:
            raw = base64.b64decode(encoded, validate=True) if sep else b""
        except binascii.Error:
            raw = b""
        if not _KEY_ID.match(key_id) or len(raw) != 32 or key_id in dict(keys):
            raise ValueError(
                f"TG_FACE_KEYS: entry {len(keys) + 1} is not `id:base64 of 32 bytes` with an id not used before"
            )
        keys.append((key_id, raw))
    return keys


def new_key_line(key_id: str) -> str:
    """A fresh `id:base64` entry for TG_FACE_KEYS."""
    if not _KEY_ID.match(key_id):
        raise ValueError("a key id has 1 to 16 letters, digits, '-' or '_'")
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"
