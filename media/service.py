"""Uploads: one request for small photos, resumable chunks for large ones on weak networks; content-addressed.

A photo is accepted only whole: chunks are kept apart until the client completes the upload, then the bytes are
validated and cleaned (media/images.py), stored once under the sha256 of the cleaned bytes, and given to the
account as a media id. The thumbnail and display sizes are made by a job. Nothing is stored half-way: a refused
photo leaves no blob, no media row and no derivatives.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from core import clock
from core.errors import ConflictError, NotFoundError, ValidationFailed
from core.media.models import Blob, Media, Upload, UsedPhoto
from core.media.similar import Reuse, find_reused, unsigned64  # noqa: F401 (the media package's API)
from core.outbox import service as outbox
from core.settings import Settings, get_settings
from media import images
from media.storage import MediaStore, get_store

CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
EXTENSIONS = {"jpeg": "jpg", "png": "png", "webp": "webp"}
MIN_CHUNK = 64 * 1024
MAX_CHUNK = 8 * 1024 * 1024
DERIVATIVES_TASK = "make_derivatives"
STALE_UPLOAD_HOURS = 24.0
_CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
_UNSAFE_NAME = re.compile(r"[^\w.\- ()\u4e00-\u9fff]")


@dataclass(frozen=True)
class Owner:
    """The account an upload belongs to."""

    kind: str  # citizen / staff
    id: str


def blob_key(sha256: str, fmt: str) -> str:
    return f"blobs/{sha256[:2]}/{sha256[2:4]}/{sha256}.{EXTENSIONS[fmt]}"


def derivative_key(sha256: str, variant: str) -> str:
    return f"derived/{sha256[:2]}/{sha256}/{variant}.webp"


def public_key(sha256: str, variant: str) -> str:
    """Where the public (faces blurred) size of a photo is kept."""
    return f"public/{sha256[:2]}/{sha256}/{variant}.webp"


def chunk_key(upload_id: int, index: int) -> str:
    return f"uploads/{upload_id}/{index:05d}"


def safe_file_name(name: str) -> str:
    """The client's file name for display only: no folders, no control characters, at most 128 characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip().lstrip(".")
    return _UNSAFE_NAME.sub("_", base)[:128]


async def store_photo(*, data: bytes, owner: Owner, file_name: str, store: MediaStore, settings: Settings) -> Media:
    """Validate, clean and store a whole photo for an account; the same bytes again give the same media."""
    limits = images.Limits(max_bytes=settings.media_max_bytes, max_pixels=settings.media_max_pixels)
    if len(data) > limits.max_bytes:
        raise images.MediaRejected("file_too_large", f"a photo may have at most {limits.max_bytes:,} bytes")
    source_sha = hashlib.sha256(data).hexdigest()
    blob = await Blob.get_or_none(source_sha256=source_sha)
    if blob is None:
        # Decoding and re-encoding take tens of milliseconds: off the event loop.
        cleaned = await asyncio.to_thread(images.clean, data, limits=limits)
        blob = await _store_blob(cleaned, source_sha=source_sha, store=store)
    return await _media_for(blob, owner=owner, file_name=safe_file_name(file_name))


async def _store_blob(cleaned: images.CleanImage, *, source_sha: str, store: MediaStore) -> Blob:
    sha = hashlib.sha256(cleaned.data).hexdigest()
    # Bytes first, row second: a row always points at stored bytes; stored bytes without a row are harmless.
    await asyncio.to_thread(
        store.put, blob_key(sha, cleaned.format), cleaned.data, content_type=CONTENT_TYPES[cleaned.format]
    )
    bands = [(cleaned.dhash >> (16 * i)) & 0xFFFF for i in range(4)]
    meta = cleaned.meta
    async with in_transaction() as conn:
        existing = await Blob.filter(sha256=sha).using_db(conn).first()
        if existing is not None:
            return existing
        blob = Blob(
            sha256=sha,
            source_sha256=source_sha,
            size=len(cleaned.data),
            format=cleaned.format,
            width=cleaned.width,
            height=cleaned.height,
            dhash=_signed64(cleaned.dhash),
            dhash_b0=bands[0],
            dhash_b1=bands[1],
            dhash_b2=bands[2],
            dhash_b3=bands[3],
            taken_at=meta.taken_at,
            lon=meta.lon,
            lat=meta.lat,
            gps_accuracy_m=meta.gps_accuracy_m,
            device=meta.device[:128],
        )
        await Blob.bulk_create([blob], ignore_conflicts=True, using_db=conn)
        await outbox.add(task=DERIVATIVES_TASK, args={"sha256": sha}, dedupe_key=f"{DERIVATIVES_TASK}:{sha}", conn=conn)
    return await Blob.get(sha256=sha)


async def _media_for(blob: Blob, *, owner: Owner, file_name: str) -> Media:
    existing = await Media.get_or_none(owner_type=owner.kind, owner_id=owner.id, blob_id=blob.sha256)
    if existing is not None:
        return existing
    try:
        return await Media.create(
            id=secrets.token_urlsafe(16)[:22],
            blob_id=blob.sha256,
            owner_type=owner.kind,
            owner_id=owner.id,
            file_name=file_name,
        )
    except IntegrityError:  # the same account sent the same photo twice at once
        return await Media.get(owner_type=owner.kind, owner_id=owner.id, blob_id=blob.sha256)


def _signed64(value: int) -> int:
    """An unsigned 64-bit hash as the signed integer a BIGINT column holds."""
    return value - (1 << 64) if value >= 1 << 63 else value


# --- resumable uploads ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadState:
    client_id: str
    status: str
    total_size: int
    chunk_size: int
    chunks: int  # how many chunks the whole file has
    received: int  # how many arrived: the next one to send is this index
    media_id: str | None


def _state(upload: Upload) -> UploadState:
    return UploadState(
        client_id=upload.client_id,
        status=upload.status,
        total_size=upload.total_size,
        chunk_size=upload.chunk_size,
        chunks=-(-upload.total_size // upload.chunk_size),
        received=len(upload.chunk_hashes),
        media_id=upload.media_id,
    )


async def start_upload(
    *, owner: Owner, client_id: str, total_size: int, chunk_size: int, file_name: str, settings: Settings
) -> UploadState:
    """Open a resumable upload (or return the one this account already opened under that id)."""
    if not _CLIENT_ID.fullmatch(client_id):
        raise ValidationFailed("bad_upload_id", "an upload id has 8 to 64 letters, digits, '-' or '_'")
    if not 0 < total_size <= settings.media_max_bytes:
        raise images.MediaRejected("file_too_large", f"a photo may have at most {settings.media_max_bytes:,} bytes")
    if not MIN_CHUNK <= chunk_size <= MAX_CHUNK:
        raise ValidationFailed("bad_chunk_size", f"chunks are {MIN_CHUNK:,} to {MAX_CHUNK:,} bytes")
    existing = await _find(owner, client_id)
    if existing is not None:
        if (existing.total_size, existing.chunk_size) != (total_size, chunk_size):
            raise ConflictError("upload_id_reused", "this upload id was opened for another file; use a new id")
        return _state(existing)
    try:
        upload = await Upload.create(
            owner_type=owner.kind,
            owner_id=owner.id,
            client_id=client_id,
            file_name=safe_file_name(file_name),
            total_size=total_size,
            chunk_size=chunk_size,
        )
    except IntegrityError:
        return await start_upload(
            owner=owner,
            client_id=client_id,
            total_size=total_size,
            chunk_size=chunk_size,
            file_name=file_name,
            settings=settings,
        )
    return _state(upload)


async def upload_state(*, owner: Owner, client_id: str) -> UploadState:
    """Where an upload stands: the client resumes from `received`."""
    return _state(await _owned(owner, client_id))


async def put_chunk(*, owner: Owner, client_id: str, index: int, data: bytes, store: MediaStore) -> UploadState:
    """Store chunk `index`; the next expected chunk only, or a replay of one already received (idempotent)."""
    upload = await _owned(owner, client_id)
    state = _state(upload)
    digest = hashlib.sha256(data).hexdigest()
    if index < state.received:
        if upload.chunk_hashes[index] != digest:
            raise ConflictError("chunk_conflict", f"chunk {index} was received with other content")
        return state  # a replay of what we have: the client lost our answer
    if upload.status != "open":
        raise ConflictError("upload_completed", "this upload is finished; no more chunks are taken")
    if index != state.received:
        raise ConflictError("chunk_out_of_order", f"expected chunk {state.received}, got {index}")
    last = index == state.chunks - 1
    expected = upload.total_size - index * upload.chunk_size if last else upload.chunk_size
    if len(data) != expected:
        raise ValidationFailed("bad_chunk_length", f"chunk {index} must have {expected:,} bytes, got {len(data):,}")
    await asyncio.to_thread(store.put, chunk_key(upload.id, index), data, content_type="application/octet-stream")
    async with in_transaction() as conn:
        fresh = await Upload.filter(id=upload.id).using_db(conn).select_for_update().first()
        assert fresh is not None
        if len(fresh.chunk_hashes) == index:  # another request may have stored the same chunk meanwhile
            fresh.chunk_hashes = [*fresh.chunk_hashes, digest]
            await fresh.save(using_db=conn, update_fields=["chunk_hashes", "updated_at"])
    return _state(await Upload.get(id=upload.id))


async def complete_upload(
    *, owner: Owner, client_id: str, store: MediaStore, settings: Settings
) -> tuple[UploadState, Media]:
    """Put the chunks together, validate and store the photo; completing twice returns the same media."""
    upload = await _owned(owner, client_id)
    if upload.status == "completed" and upload.media_id:
        return _state(upload), await Media.get(id=upload.media_id)
    if upload.status in ("refused", "expired"):
        raise ConflictError("upload_refused", f"this upload was {upload.status}; start a new upload")
    state = _state(upload)
    if state.received != state.chunks:
        raise ConflictError("upload_incomplete", f"{state.received} of {state.chunks} chunks have arrived")
    parts = [await asyncio.to_thread(store.get, chunk_key(upload.id, i)) for i in range(state.chunks)]
    data = b"".join(parts)
    if len(data) != upload.total_size:
        raise ConflictError("upload_incomplete", "the stored chunks do not add up to the declared size")
    try:
        media = await store_photo(data=data, owner=owner, file_name=upload.file_name, store=store, settings=settings)
    except images.MediaRejected:
        # A refused photo keeps nothing: the chunks go, and the upload cannot be completed again.
        await Upload.filter(id=upload.id).update(status="refused")
        await _drop_chunks(upload.id, state.chunks, store)
        raise
    await Upload.filter(id=upload.id).update(status="completed", media_id=media.id)
    await _drop_chunks(upload.id, state.chunks, store)
    return _state(await Upload.get(id=upload.id)), media


async def drop_stale_uploads(*, store: MediaStore, older_than_h: float = STALE_UPLOAD_HOURS) -> int:
    """Forget uploads left open for a day (the phone gave up) and their chunks; returns how many."""
    cutoff = clock.now() - timedelta(hours=older_than_h)
    stale = await Upload.filter(status="open", updated_at__lt=cutoff)
    for upload in stale:
        await _drop_chunks(upload.id, len(upload.chunk_hashes), store)
        await Upload.filter(id=upload.id, status="open").update(status="expired")
    return len(stale)


async def stale_uploads_job() -> int:
    """The hourly job: clear uploads abandoned for a day, in the configured store."""
    return await drop_stale_uploads(store=get_store(get_settings()))


async def erase_media(*, media_ids: list[str], store: MediaStore) -> int:
    """Delete uploads for a legal erase: a photo whose last upload goes leaves the store with all its sizes.

    Safe to run twice and to interrupt: files go first (deleting a missing file is no error), rows after, so a run
    that stops halfway is finished by the next. Returns how many uploads were deleted.
    """
    rows = await Media.filter(id__in=media_ids).values_list("id", "blob_id")
    for media_id, sha256 in rows:
        if not await Media.filter(blob_id=sha256).exclude(id=media_id).exists():
            blob = await Blob.get_or_none(sha256=sha256)
            if blob is not None:
                keys = [blob_key(sha256, blob.format)]
                keys += [derivative_key(sha256, v) for v in images.VARIANTS]
                keys += [public_key(sha256, v) for v in images.VARIANTS]
                for key in keys:
                    await asyncio.to_thread(store.delete, key)
        async with in_transaction() as conn:  # the upload and, with its last upload, the photo go at once
            await Upload.filter(media_id=media_id).using_db(conn).update(media_id=None)
            await Media.filter(id=media_id).using_db(conn).delete()
            if not await Media.filter(blob_id=sha256).using_db(conn).exists():
                await UsedPhoto.filter(blob_sha256=sha256).using_db(conn).delete()
                await Blob.filter(sha256=sha256).using_db(conn).delete()
    return len(rows)


async def erase_media_job(media_ids: list[str]) -> int:
    """The job `erase_media`: uploads deleted on a legal request (core/enforcement erase and retention)."""
    return await erase_media(media_ids=media_ids, store=get_store(get_settings()))


async def _drop_chunks(upload_id: int, chunks: int, store: MediaStore) -> None:
    for i in range(chunks):
        await asyncio.to_thread(store.delete, chunk_key(upload_id, i))


async def _find(owner: Owner, client_id: str) -> Upload | None:
    return await Upload.get_or_none(owner_type=owner.kind, owner_id=owner.id, client_id=client_id)


async def _owned(owner: Owner, client_id: str) -> Upload:
    # Another account's upload id is "not found": its existence is not ours to tell.
    upload = await _find(owner, client_id)
    if upload is None:
        raise NotFoundError("upload_not_found", "there is no such upload of yours")
    return upload
