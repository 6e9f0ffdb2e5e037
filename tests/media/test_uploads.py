"""Photo uploads through the staff API: whole or in resumable chunks, owned, content-addressed, served signed."""

import io
import time

import pytest
from PIL import Image

from core.media.models import Blob, Media, Upload
from core.outbox.models import OutboxEntry

PASSWORD = "correct horse"
CHUNK = 64 * 1024


async def staff_headers(api, username: str) -> dict[str, str]:
    from core.accounts.service import create_staff

    await create_staff(username=username, password=PASSWORD, role="inspector")
    response = await api.post("/auth/token", data={"username": username, "password": PASSWORD})
    return {"authorization": f"Bearer {response.json()['access_token']}"}


def photo(width: int = 1600, height: int = 1200, *, seed: int = 1) -> bytes:
    """A JPEG with some structure (a gradient and blocks), so that sizes and hashes mean something."""
    image = Image.new("RGB", (width, height))
    pixels = image.load()
    for x in range(0, width, 8):
        for y in range(0, height, 8):
            colour = ((x * seed) % 256, (y * 3) % 256, ((x + y) * seed) % 256)
            for dx in range(8):
                for dy in range(8):
                    if x + dx < width and y + dy < height:
                        pixels[x + dx, y + dy] = colour
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


async def test_a_whole_photo_upload_returns_a_media_id_with_signed_urls_that_serve_it(api):
    headers = await staff_headers(api, "inspector.wang")
    response = await api.post(
        "/staff/v1/media", files={"file": ("IMG_0001.jpg", photo(), "image/jpeg")}, headers=headers
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["width"], body["height"], body["format"]) == (1600, 1200, "jpeg")

    served = await api.get(body["thumb_url"])
    assert served.status_code == 200 and served.headers["content-type"] == "image/webp"
    assert max(Image.open(io.BytesIO(served.content)).size) == 320
    original = await api.get(body["url"])
    assert b"Exif" not in original.content[:4096]


async def test_a_tampered_or_expired_media_link_is_refused(api, app_settings):
    from media.urls import signed_url

    headers = await staff_headers(api, "inspector.li")
    body = (await api.post("/staff/v1/media", files={"file": ("a.jpg", photo(), "image/jpeg")}, headers=headers)).json()
    tampered = body["url"].replace("/photo?", "/display?")
    assert (await api.get(tampered)).json()["code"] == "bad_media_signature"
    expired = signed_url(body["media_id"], "photo", settings=app_settings, now=time.time() - 7200)
    assert (await api.get(expired)).json()["code"] == "media_link_expired"


async def test_the_same_photo_twice_is_stored_once(api):
    headers = await staff_headers(api, "inspector.zhao")
    data = photo()
    first = (await api.post("/staff/v1/media", files={"file": ("a.jpg", data, "image/jpeg")}, headers=headers)).json()
    again = (await api.post("/staff/v1/media", files={"file": ("b.jpg", data, "image/jpeg")}, headers=headers)).json()
    assert first["media_id"] == again["media_id"]
    assert await Blob.all().count() == 1 and await Media.all().count() == 1
    assert await OutboxEntry.filter(task="make_derivatives").count() == 1


async def test_a_resumable_upload_survives_a_lost_answer_and_completes_once(api):
    headers = await staff_headers(api, "inspector.sun")
    data = photo(2400, 1800, seed=3)
    chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
    start = {"upload_id": "phone-upload-0001", "total_size": len(data), "chunk_size": CHUNK, "file_name": "x.jpg"}
    assert (await api.post("/staff/v1/uploads", json=start, headers=headers)).status_code == 201

    for index, chunk in enumerate(chunks[:2]):
        response = await api.put(f"/staff/v1/uploads/phone-upload-0001/chunks/{index}", content=chunk, headers=headers)
        assert response.status_code == 200, response.text
    # The network dropped: the phone asks where to resume, and replays chunk 1 (harmless).
    state = (await api.get("/staff/v1/uploads/phone-upload-0001", headers=headers)).json()
    assert state["received"] == 2
    replay = await api.put("/staff/v1/uploads/phone-upload-0001/chunks/1", content=chunks[1], headers=headers)
    assert replay.status_code == 200 and replay.json()["received"] == 2
    for index, chunk in enumerate(chunks[2:], start=2):
        await api.put(f"/staff/v1/uploads/phone-upload-0001/chunks/{index}", content=chunk, headers=headers)

    done = await api.post("/staff/v1/uploads/phone-upload-0001/complete", headers=headers)
    assert done.status_code == 200, done.text
    again = await api.post("/staff/v1/uploads/phone-upload-0001/complete", headers=headers)
    assert again.json()["media"]["media_id"] == done.json()["media"]["media_id"]
    assert await Media.all().count() == 1


@pytest.mark.parametrize(
    ("step", "code"),
    [
        ("out_of_order", "chunk_out_of_order"),
        ("replay_other_bytes", "chunk_conflict"),
        ("after_completion", "upload_completed"),
        ("complete_early", "upload_incomplete"),
        ("another_account", "upload_not_found"),
    ],
)
async def test_chunks_out_of_turn_are_refused_and_change_nothing(api, step, code):
    headers = await staff_headers(api, "inspector.qian")
    data = photo(1200, 900, seed=5)
    chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
    start = {"upload_id": "phone-upload-0002", "total_size": len(data), "chunk_size": CHUNK}
    await api.post("/staff/v1/uploads", json=start, headers=headers)
    await api.put("/staff/v1/uploads/phone-upload-0002/chunks/0", content=chunks[0], headers=headers)
    url = "/staff/v1/uploads/phone-upload-0002"
    match step:
        case "out_of_order":
            response = await api.put(f"{url}/chunks/2", content=chunks[2], headers=headers)
        case "replay_other_bytes":
            response = await api.put(f"{url}/chunks/0", content=chunks[1], headers=headers)
        case "after_completion":
            for index, chunk in enumerate(chunks[1:], start=1):
                await api.put(f"{url}/chunks/{index}", content=chunk, headers=headers)
            await api.post(f"{url}/complete", headers=headers)
            response = await api.put(f"{url}/chunks/{len(chunks)}", content=b"x" * 10, headers=headers)
        case "complete_early":
            response = await api.post(f"{url}/complete", headers=headers)
        case "another_account":
            other = await staff_headers(api, "inspector.other")
            response = await api.put(f"{url}/chunks/1", content=chunks[1], headers=other)
    assert response.json()["code"] == code, response.text
    assert response.headers["content-type"] == "application/problem+json"
    upload = await Upload.get(client_id="phone-upload-0002")
    if step != "after_completion":
        assert len(upload.chunk_hashes) == 1 and await Media.all().count() == 0


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"GIF89a" + b"\x00" * 100, "unsupported_format"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "unsupported_format"),
        (None, "corrupt_image"),
    ],
)
async def test_a_bad_photo_is_refused_and_nothing_is_stored(api, payload, code, app_settings):
    headers = await staff_headers(api, "inspector.zhou")
    if payload is None:
        payload = photo()[:5000]  # truncated on a weak network
    response = await api.post(
        "/staff/v1/media", files={"file": ("../../etc/passwd.jpg", payload, "image/jpeg")}, headers=headers
    )
    assert response.status_code == 422 and response.json()["code"] == code
    assert await Blob.all().count() == 0 and await Media.all().count() == 0
    stored = list((app_settings.effective_media_root).rglob("*")) if app_settings.effective_media_root.exists() else []
    assert not [p for p in stored if p.is_file()]


async def test_a_path_in_the_file_name_is_kept_as_a_plain_name(api):
    headers = await staff_headers(api, "inspector.wu")
    await api.post("/staff/v1/media", files={"file": ("../../etc/passwd.jpg", photo(), "image/jpeg")}, headers=headers)
    media = await Media.get()
    assert media.file_name == "passwd.jpg"


async def test_the_derivatives_job_makes_both_sizes_after_an_upload(api, app_settings):
    import asyncio

    from media.service import derivative_key

    headers = await staff_headers(api, "inspector.feng")
    await api.post("/staff/v1/media", files={"file": ("a.jpg", photo(), "image/jpeg")}, headers=headers)
    blob = await Blob.get()
    for _ in range(100):
        if await OutboxEntry.filter(task="make_derivatives", status="done").exists():
            break
        await asyncio.sleep(0.05)
    root = app_settings.effective_media_root
    sizes = {v: Image.open(root / derivative_key(blob.sha256, v)).size for v in ("thumb", "display")}
    assert max(sizes["thumb"]) == 320 and max(sizes["display"]) == 1280


async def test_a_photo_sent_again_recompressed_by_another_account_is_found_as_reused(api):
    from media.service import find_reused

    original = photo(1600, 1200, seed=7)
    image = Image.open(io.BytesIO(original)).resize((1200, 900))
    recompressed = io.BytesIO()
    image.save(recompressed, "JPEG", quality=60)  # what a chat app does to a forwarded photo
    first = await staff_headers(api, "inspector.a")
    second = await staff_headers(api, "inspector.b")
    a = (await api.post("/staff/v1/media", files={"file": ("a.jpg", original, "image/jpeg")}, headers=first)).json()
    b = (
        await api.post(
            "/staff/v1/media", files={"file": ("b.jpg", recompressed.getvalue(), "image/jpeg")}, headers=second
        )
    ).json()
    other = (
        await api.post(
            "/staff/v1/media", files={"file": ("c.jpg", photo(1600, 1200, seed=2), "image/jpeg")}, headers=second
        )
    ).json()

    reused = await find_reused(media_id=b["media_id"])
    assert [r.media.id for r in reused] == [a["media_id"]] and reused[0].distance <= 6
    assert other["media_id"] not in [r.media.id for r in reused]


async def test_the_field_app_takes_resumable_uploads_for_the_signed_in_staff_member(api):
    headers = await staff_headers(api, "inspector.field")
    data = photo(800, 600, seed=9)
    start = {"upload_id": "field-upload-0001", "total_size": len(data), "chunk_size": len(data) + 1000}
    response = await api.post("/field/v1/uploads", json=start, headers=headers)
    assert response.status_code == 201 and response.json()["chunks"] == 1
    await api.put("/field/v1/uploads/field-upload-0001/chunks/0", content=data, headers=headers)
    done = await api.post("/field/v1/uploads/field-upload-0001/complete", headers=headers)
    assert done.status_code == 200 and done.json()["media"]["width"] == 800
    assert (await api.get("/field/v1/uploads/field-upload-0001")).status_code == 401


async def test_an_upload_abandoned_for_a_day_is_cleared_with_its_chunks(api, app_settings):
    from datetime import timedelta

    from core import clock
    from media.service import drop_stale_uploads
    from media.storage import get_store

    headers = await staff_headers(api, "inspector.gone")
    data = photo(1200, 900, seed=4)
    start = {"upload_id": "phone-upload-gone", "total_size": len(data), "chunk_size": CHUNK}
    await api.post("/staff/v1/uploads", json=start, headers=headers)
    await api.put("/staff/v1/uploads/phone-upload-gone/chunks/0", content=data[:CHUNK], headers=headers)
    chunks = [p for p in app_settings.effective_media_root.rglob("*") if "uploads" in p.parts and p.is_file()]
    assert len(chunks) == 1

    store = get_store(app_settings)
    assert await drop_stale_uploads(store=store) == 0  # still fresh
    await Upload.filter(client_id="phone-upload-gone").update(updated_at=clock.now() - timedelta(hours=25))
    assert await drop_stale_uploads(store=store) == 1
    assert not chunks[0].exists()
    response = await api.post("/staff/v1/uploads/phone-upload-gone/complete", headers=headers)
    assert response.json()["code"] == "upload_refused"
