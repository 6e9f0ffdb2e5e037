"""The same photo used again: other uploads of the same or a nearly identical picture, by their 64-bit dHash."""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.expressions import Q

from core.errors import NotFoundError
from core.media.models import Blob, Media


@dataclass(frozen=True)
class Reuse:
    media: Media
    distance: int  # differing bits of the 64-bit dHash: 0 is the same picture


def unsigned64(value: int) -> int:
    """A BIGINT column's signed value as the unsigned 64-bit hash it holds."""
    return value + (1 << 64) if value < 0 else value


def _band_probes(band: int) -> list[int]:
    """The band itself and every value one bit away from it."""
    return [band, *(band ^ (1 << bit) for bit in range(16))]


async def near_blobs(dhash: int, *, max_distance: int = 6) -> dict[str, int]:
    """Stored photos within `max_distance` bits of a hash: sha256 → distance.

    Probing each 16-bit band with itself and its one-bit neighbours finds, through the band indexes, every photo
    within 7 bits: with at most 7 differing bits over four bands, one band differs by at most one bit.
    """
    if not 0 <= max_distance <= 7:
        raise ValueError("max_distance must be 0..7 (what the band probes guarantee)")
    target = unsigned64(dhash)
    bands = [(target >> (16 * i)) & 0xFFFF for i in range(4)]
    near = (
        Q(dhash_b0__in=_band_probes(bands[0]))
        | Q(dhash_b1__in=_band_probes(bands[1]))
        | Q(dhash_b2__in=_band_probes(bands[2]))
        | Q(dhash_b3__in=_band_probes(bands[3]))
    )
    distances = {
        sha: (target ^ unsigned64(value)).bit_count()
        for sha, value in await Blob.filter(near).values_list("sha256", "dhash")
    }
    return {sha: d for sha, d in distances.items() if d <= max_distance}


async def find_reused(*, media_id: str, max_distance: int = 6, limit: int = 20) -> list[Reuse]:
    """Other uploads of the same or a nearly identical photo (recompressed, resized), nearest first."""
    media = await Media.get_or_none(id=media_id)
    if media is None:
        raise NotFoundError("media_not_found", "there is no such photo")
    blob = await Blob.get(sha256=media.blob_id)
    close = await near_blobs(blob.dhash, max_distance=max_distance)
    uploads = await Media.filter(blob_id__in=list(close)).exclude(id=media_id).order_by("created_at")
    found = sorted((Reuse(m, close[m.blob_id]) for m in uploads), key=lambda r: r.distance)
    return found[:limit]
