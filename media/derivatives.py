"""Thumbnail and display sizes of a stored photo: made by a job after upload, or on demand when missing."""

from __future__ import annotations

import asyncio

from core.errors import NotFoundError
from core.media.models import Blob
from core.settings import get_settings
from media import images
from media.service import blob_key, derivative_key
from media.storage import MediaStore, get_store


async def make_derivatives(*, sha256: str, store: MediaStore) -> list[str]:
    """Make every missing size of one photo; returns the sizes made (none when all exist: safe to run twice)."""
    blob = await Blob.get_or_none(sha256=sha256)
    if blob is None:
        raise NotFoundError("media_not_found", f"no stored photo {sha256}")
    made = []
    original: bytes | None = None
    for variant, max_side in images.VARIANTS.items():
        key = derivative_key(sha256, variant)
        if await asyncio.to_thread(store.exists, key):
            continue
        if original is None:
            original = await asyncio.to_thread(store.get, blob_key(sha256, blob.format))
        data = await asyncio.to_thread(images.derivative, original, max_side=max_side)
        await asyncio.to_thread(store.put, key, data, content_type="image/webp")
        made.append(variant)
    return made


async def read_variant(*, blob: Blob, variant: str, store: MediaStore) -> tuple[bytes, str]:
    """The bytes and content type of one size of a photo, making a missing derivative on the spot."""
    if variant == "photo":
        data = await asyncio.to_thread(store.get, blob_key(blob.sha256, blob.format))
        return data, f"image/{blob.format}"
    key = derivative_key(blob.sha256, variant)
    if not await asyncio.to_thread(store.exists, key):
        await make_derivatives(sha256=blob.sha256, store=store)
    return await asyncio.to_thread(store.get, key), "image/webp"


async def derivatives_job(*, sha256: str) -> list[str]:
    """The job: make the sizes of one photo with the configured store."""
    return await make_derivatives(sha256=sha256, store=get_store(get_settings()))
