"""HTTP for photos: the upload routes every channel mounts for its own accounts, and signed media serving.

No `from __future__ import annotations` here: the upload routes are made inside a function, and FastAPI must
see their annotations (which name that function's `owner` dependency) as objects, not strings.
"""

import asyncio
import re
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field

from core.errors import NotFoundError, ValidationFailed
from core.media.models import Blob, Media
from core.settings import Settings
from media import images, service, urls
from media.derivatives import read_variant
from media.public import public_key
from media.storage import MediaStore, get_store

router = APIRouter(prefix="/media", tags=["media"])
# Multipart framing around a photo: the body limit for upload routes is the photo limit plus this.
MULTIPART_OVERHEAD = 64 * 1024


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def store_of(request: Request) -> MediaStore:
    """The app's media store, made once (an S3 client is worth keeping)."""
    store = getattr(request.app.state, "media_store", None)
    if store is None:
        store = request.app.state.media_store = get_store(request.app.state.settings)
    return store


AppSettings = Annotated[Settings, Depends(settings_of)]
Store = Annotated[MediaStore, Depends(store_of)]


class MediaOut(BaseModel):
    media_id: str
    format: str
    width: int
    height: int
    taken_at: datetime | None
    lon: float | None
    lat: float | None
    device: str
    url: str
    display_url: str
    thumb_url: str


class UploadIn(BaseModel):
    upload_id: str = Field(description="The client's id for this upload (8–64 letters, digits, - or _)")
    total_size: int
    chunk_size: int
    file_name: str = ""


class UploadOut(BaseModel):
    upload_id: str
    status: str
    total_size: int
    chunk_size: int
    chunks: int
    received: int
    media: MediaOut | None = None


async def media_out(media: Media, settings: Settings) -> MediaOut:
    blob = await Blob.get(sha256=media.blob_id)
    return MediaOut(
        media_id=media.id,
        format=blob.format,
        width=blob.width,
        height=blob.height,
        taken_at=blob.taken_at,
        lon=blob.lon,
        lat=blob.lat,
        device=blob.device,
        url=urls.signed_url(media.id, "photo", settings=settings),
        display_url=urls.signed_url(media.id, "display", settings=settings),
        thumb_url=urls.signed_url(media.id, "thumb", settings=settings),
    )


def _upload_out(state: service.UploadState, media: MediaOut | None = None) -> UploadOut:
    return UploadOut(
        upload_id=state.client_id,
        status=state.status,
        total_size=state.total_size,
        chunk_size=state.chunk_size,
        chunks=state.chunks,
        received=state.received,
        media=media,
    )


def add_upload_routes(target: APIRouter, owner: Callable[..., Any]) -> None:
    """Mount the photo upload routes on a channel's router; `owner` is its dependency for the calling account."""
    Owner = Annotated[service.Owner, Depends(owner)]

    @target.post("/media", status_code=201, tags=["media"])
    async def upload_photo(
        who: Owner, settings: AppSettings, store: Store, file: Annotated[UploadFile, File()]
    ) -> MediaOut:
        """Upload a whole photo in one request (JPEG, PNG or WebP); the same photo again gives the same id."""
        data = await file.read(settings.media_max_bytes + 1)
        media = await service.store_photo(
            data=data, owner=who, file_name=file.filename or "", store=store, settings=settings
        )
        return await media_out(media, settings)

    @target.post("/uploads", status_code=201, tags=["media"])
    async def start_upload(who: Owner, settings: AppSettings, body: UploadIn) -> UploadOut:
        """Open a resumable upload; asking again with the same id returns where it stands."""
        state = await service.start_upload(
            owner=who,
            client_id=body.upload_id,
            total_size=body.total_size,
            chunk_size=body.chunk_size,
            file_name=body.file_name,
            settings=settings,
        )
        return _upload_out(state)

    @target.get("/uploads/{upload_id}", tags=["media"])
    async def upload_state(who: Owner, upload_id: str) -> UploadOut:
        """Where an upload stands: send chunk `received` next."""
        return _upload_out(await service.upload_state(owner=who, client_id=upload_id))

    @target.put("/uploads/{upload_id}/chunks/{index}", tags=["media"])
    async def put_chunk(who: Owner, store: Store, request: Request, upload_id: str, index: int) -> UploadOut:
        """Send one chunk as the raw body; a chunk sent again with the same bytes is harmless."""
        if index < 0:
            raise ValidationFailed("chunk_out_of_order", "chunk numbers start at 0")
        data = await request.body()
        return _upload_out(await service.put_chunk(owner=who, client_id=upload_id, index=index, data=data, store=store))

    @target.post("/uploads/{upload_id}/complete", tags=["media"])
    async def complete_upload(who: Owner, settings: AppSettings, store: Store, upload_id: str) -> UploadOut:
        """Put the chunks together and store the photo; completing again returns the same photo."""
        state, media = await service.complete_upload(owner=who, client_id=upload_id, store=store, settings=settings)
        return _upload_out(state, await media_out(media, settings))


@router.get("/public/{media_id}/{variant}")
async def serve_public(media_id: str, variant: str, store: Store) -> Response:
    """A public size of a photo, only after its faces were blurred (404 before that)."""
    if variant not in images.VARIANTS:
        raise NotFoundError("media_not_found", f"there is no public size {variant!r}")
    media = await Media.get_or_none(id=media_id)
    blob = await Blob.get_or_none(sha256=media.blob_id) if media else None
    if blob is None or not blob.public_ready:
        raise NotFoundError("media_not_public", "this photo is not public")
    data = await asyncio.to_thread(store.get, public_key(blob.sha256, variant))
    return Response(
        data,
        media_type="image/webp",
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/{media_id}/{variant}")
async def serve(
    media_id: str,
    variant: str,
    settings: AppSettings,
    store: Store,
    exp: Annotated[int, Query()],
    sig: Annotated[str, Query(max_length=64)],
) -> Response:
    """A photo in one size, for whoever holds a signed, unexpired link."""
    if variant not in urls.VARIANTS:
        raise NotFoundError("media_not_found", f"there is no size {variant!r}")
    urls.check(media_id, variant, expires=exp, signature=sig, settings=settings)
    media = await Media.get_or_none(id=media_id)
    if media is None:
        raise NotFoundError("media_not_found", "there is no such photo")
    blob = await Blob.get(sha256=media.blob_id)
    data, content_type = await read_variant(blob=blob, variant=variant, store=store)
    return Response(
        data,
        media_type=content_type,
        headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


def body_limits(settings: Settings) -> tuple[tuple[re.Pattern[str], int], ...]:
    """Paths that take photo-sized bodies, for the app's body limit."""
    return (
        # /media: every channel's photo upload; /covers: a muck truck's cover photo from the vehicle platform;
        # /identify: an officer's photo of a party (enforcement).
        (re.compile(r"/(media|covers|identify)$"), settings.media_max_bytes + MULTIPART_OVERHEAD),
        (re.compile(r"/uploads/[^/]+/chunks/\d+$"), service.MAX_CHUNK),
    )
