"""Public photo sizes exist only after the PII pass: every face blurred before anything is public."""

import asyncio
import io

import numpy as np
import pytest
from PIL import Image

from core.media.models import Blob, Media
from core.outbox.models import OutboxEntry
from media.public import request_public
from tests.media.test_uploads import staff_headers


def faces_in(data: bytes, detector) -> int:
    return len(detector.detect(np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))))


async def wait_for(task: str) -> None:
    for _ in range(200):
        if await OutboxEntry.filter(task=task, status="done").exists():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {task} did not finish")


@pytest.mark.slow
async def test_a_public_photo_shows_no_face_and_nothing_is_public_before_the_pass(api, test_images, hog):
    headers = await staff_headers(api, "inspector.he")
    data = (test_images / "obama.jpg").read_bytes()
    uploaded = await api.post("/staff/v1/media", files={"file": ("obama.jpg", data, "image/jpeg")}, headers=headers)
    media_id = uploaded.json()["media_id"]
    await wait_for("make_derivatives")

    assert (await api.get(f"/media/public/{media_id}/display")).json()["code"] == "media_not_public"
    private = await api.get(uploaded.json()["display_url"])
    assert faces_in(private.content, hog) == 1

    await request_public(media_id=media_id)
    await wait_for("make_public")
    public = await api.get(f"/media/public/{media_id}/display")
    assert public.status_code == 200 and public.headers["cache-control"].startswith("public")
    assert faces_in(public.content, hog) == 0
    blob = await Blob.get(sha256=(await Media.get(id=media_id)).blob_id)
    assert blob.public_ready and blob.faces_blurred == 1
