"""Evidence photos (现场照片): a check or a check-in is proved by a photo taken there and then, used once.

The phone's own word is not enough: a photo from the gallery, or yesterday's photo sent again, proves nothing.
So a photo must carry its EXIF time, close to the moment the work was done; its EXIF position (or, when the
camera wrote none, the phone's own fix, if accurate enough) must lie near the place; and neither it nor a near
copy of it (the 64-bit dHash within a few bits: recompressed, resized, screenshotted) may have proved anything
before. The checks read what the upload pipeline stored (media/images.py keeps the EXIF facts apart).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError

from core.errors import ValidationFailed
from core.geo.projection import haversine_m
from core.media.models import Blob, Media, UsedPhoto
from core.media.similar import near_blobs
from core.settings import Settings

# Near copies: what survives recompression and resizing stays within 6 bits; other pictures differ in 16 or more.
REUSE_BITS = 6


@dataclass(frozen=True)
class Place:
    """Where the photo must be taken: a WGS-84 point and how far from it counts as there."""

    lon: float
    lat: float
    radius_m: float


@dataclass(frozen=True)
class Fix:
    """The phone's own position when the work was done (WGS-84)."""

    lon: float
    lat: float
    accuracy_m: float


async def check_photos(
    *,
    photos: Sequence[str],
    owner_type: str,
    owner_id: str,
    at: datetime,
    place: Place | None,
    fix: Fix | None,
    settings: Settings,
) -> list[str]:
    """Check evidence photos for work done at `at`; returns their blobs' sha256, to be marked used with the work."""
    if not photos:
        raise ValidationFailed("photo_required", "at least one photo taken on the spot is required")
    media = await Media.filter(id__in=list(set(photos)), owner_type=owner_type, owner_id=owner_id)
    if len(media) != len(set(photos)):
        raise ValidationFailed("unknown_photo", "a photo is not one of your uploads; upload it first")
    blobs = {b.sha256: b for b in await Blob.filter(sha256__in=[m.blob_id for m in media])}
    for m in media:
        blob = blobs[m.blob_id]
        _check_time(blob, at, settings)
        if place is not None:
            _check_place(blob, place, fix, settings)
        await _check_unused(blob)
    return list(blobs)


def _check_time(blob: Blob, at: datetime, settings: Settings) -> None:
    if blob.taken_at is None:
        raise ValidationFailed("photo_no_time", "the photo carries no EXIF time: take it with the camera")
    allowed = timedelta(minutes=settings.field_photo_max_age_min)
    gap = abs(at - blob.taken_at)
    if gap > allowed:
        raise ValidationFailed(
            "photo_stale",
            f"the photo was taken {gap.total_seconds() / 60:.0f} min from the work (at most {allowed.seconds // 60})",
        )


def _check_place(blob: Blob, place: Place, fix: Fix | None, settings: Settings) -> None:
    if blob.lon is not None and blob.lat is not None:
        where, source = (blob.lon, blob.lat), "EXIF GPS"
    elif fix is not None:
        if fix.accuracy_m > settings.field_gps_accuracy_m:
            raise ValidationFailed(
                "gps_inaccurate", f"device fix ±{fix.accuracy_m:.0f} m; at most ±{settings.field_gps_accuracy_m:.0f} m"
            )
        where, source = (fix.lon, fix.lat), "device fix"
    else:
        raise ValidationFailed("photo_no_location", "neither the photo nor the device gave a position")
    distance = haversine_m(where[0], where[1], place.lon, place.lat)
    if distance > place.radius_m:
        raise ValidationFailed(
            "photo_too_far", f"{source} is {distance:.0f} m from the place; at most {place.radius_m:.0f} m"
        )


async def _check_unused(blob: Blob) -> None:
    near = await near_blobs(blob.dhash, max_distance=REUSE_BITS)
    used = await UsedPhoto.filter(blob_sha256__in=list(near)).first()
    if used is not None:
        raise ValidationFailed("photo_reused", f"this photo (or a near copy) already proved {used.used_for} {used.ref}")


async def mark_used(shas: Sequence[str], *, used_for: str, ref: str, at: datetime, conn: BaseDBAsyncClient) -> None:
    """Mark photos used, in the transaction of the work they prove; a photo used at the same moment elsewhere fails."""
    try:
        await UsedPhoto.bulk_create(
            [UsedPhoto(blob_sha256=sha, used_for=used_for, ref=ref, used_at=at) for sha in shas], using_db=conn
        )
    except IntegrityError as exc:
        raise ValidationFailed("photo_reused", "this photo proved other work at the same moment") from exc
