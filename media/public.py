"""Public sizes of a photo, for public case views: made only after the PII pass has blurred every face.

A photo is never public by default. `request_public` asks for the pass (a job); until the job has run, the public
URL answers 404, so an unblurred face can never be served publicly, even by mistake.
"""

from __future__ import annotations

import asyncio
import io

from PIL import Image

from core.errors import NotFoundError
from core.media.models import Blob, Media
from core.outbox import service as outbox
from core.settings import get_settings
from media import images
from media.faces import FaceDetector, blur_faces, get_face_detector
from media.service import blob_key, public_key
from media.storage import MediaStore, get_store

PUBLIC_TASK = "make_public"


async def request_public(*, media_id: str) -> None:
    """Ask for the PII pass of a photo that a public view will show (idempotent)."""
    media = await Media.get_or_none(id=media_id)
    if media is None:
        raise NotFoundError("media_not_found", "there is no such photo")
    await outbox.add(task=PUBLIC_TASK, args={"sha256": media.blob_id}, dedupe_key=f"{PUBLIC_TASK}:{media.blob_id}")


def _blurred_sizes(original: bytes, detector: FaceDetector) -> tuple[dict[str, bytes], int]:
    with Image.open(io.BytesIO(original)) as opened:
        image = opened.convert("RGB")
    blurred, faces = blur_faces(image, detector=detector)
    out = io.BytesIO()
    blurred.save(out, "PNG")  # lossless hand-over to the derivative step
    data = out.getvalue()
    return {variant: images.derivative(data, max_side=side) for variant, side in images.VARIANTS.items()}, faces


async def make_public(*, sha256: str, store: MediaStore, detector: FaceDetector) -> int:
    """Blur the faces and store the public sizes; returns how many faces were blurred. Safe to run twice."""
    blob = await Blob.get_or_none(sha256=sha256)
    if blob is None:
        raise NotFoundError("media_not_found", f"no stored photo {sha256}")
    if blob.public_ready:
        return blob.faces_blurred or 0
    original = await asyncio.to_thread(store.get, blob_key(sha256, blob.format))
    sizes, faces = await asyncio.to_thread(_blurred_sizes, original, detector)
    for variant, data in sizes.items():
        await asyncio.to_thread(store.put, public_key(sha256, variant), data, content_type="image/webp")
    # The flag goes last: the public URL answers only once every size is stored.
    await Blob.filter(sha256=sha256).update(public_ready=True, faces_blurred=faces)
    return faces


async def public_job(*, sha256: str) -> int:
    """The job: the PII pass with the configured detector and store."""
    settings = get_settings()
    return await make_public(
        sha256=sha256, store=get_store(settings), detector=get_face_detector(settings.face_detector)
    )
