"""The image pipeline (media/images.py): phone photos per second, memory per photo, decompression bombs refused.

A 4000×3000 phone-like JPEG (quality 90, EXIF with time, GPS, make/model) is generated once: smooth light and
colour, a few hundred shapes with softened edges, and sensor noise, about 3 MB like a 12 MP phone photo. Each
photo is `clean()` (decode, orient, strip, dHash, re-encode at quality 88) plus the two derivatives of
`VARIANTS` (320 and 1280 px WebP), one after another in this process, as the upload path and its job do:

* speed: `--photos` (10) photos after one warm-up, per step and in all; median per photo → photos/s. Once with
  EXIF orientation 1 and once with 6 (a phone held upright: one more full-size copy, the rotation). The
  derivatives are also timed without `Image.draft()` (full decode, then resize) to show what draft saves.
* memory per photo: the tracemalloc peak (Python objects only: the input and output bytes; Pillow's pixel buffers
  are C memory that tracemalloc does not see) and the RSS peak above the RSS before each step, in a fresh
  process per step (median of 3), from VmHWM after resetting it through /proc/self/clear_refs (or VmRSS polled
  every millisecond where that is not allowed); also without draft.
* bombs: a 10000×10000 1-bit PNG (12 KB) and a 16×16 JPEG whose header claims 10000×10000, refused by `clean()`
  as too_many_pixels; time to refuse, tracemalloc peak and RSS peak of the refusal. For contrast, the PNG is then
  decoded with Pillow's guard off, which is what the refusal saves.

    .venv/bin/python -m bench.media [--photos N]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import ExifTags, Image, ImageDraw, ImageFilter, features
from PIL.TiffImagePlugin import IFDRational

from bench._common import REPO, BenchError, console, fmt_int, fmt_mib, main_guard, print_table, record, temp_dir
from media import images

BENCH = "media"
SEED = 20261130
SIZE = (4000, 3000)
BOMB_SIDE = 10_000
CHILD_TIMEOUT_S = 120
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


# --- inputs ---------------------------------------------------------------------------------------------------


def phone_photo(orientation: int) -> bytes:
    """A 4000×3000 JPEG at quality 90 with the EXIF a phone writes; the pixels are the same for every call."""
    rng = np.random.default_rng(SEED)
    w, h = SIZE
    # Smooth light and colour (sky, walls, shade): a tiny random picture blown up.
    im = Image.fromarray(rng.integers(30, 230, (6, 8, 3), dtype=np.uint8)).resize(SIZE, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(im)
    for _ in range(400):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        box = (x, y, x + int(rng.integers(10, 600)), y + int(rng.integers(10, 400)))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.rectangle if rng.random() < 0.5 else draw.ellipse)(box, fill=colour)
    im = im.filter(ImageFilter.GaussianBlur(1.2))  # a lens does not draw pixel-sharp edges
    pixels = np.asarray(im, dtype=np.int16)
    pixels += rng.normal(0, 5, (h, w, 1)).astype(np.int16)  # sensor noise: mostly luminance, a little colour
    pixels += rng.normal(0, 2, (h, w, 3)).astype(np.int16)
    im = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    del pixels
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "HUAWEI"
    exif[ExifTags.Base.Model] = "ELS-AN00"
    exif[ExifTags.Base.Orientation] = orientation
    details = exif.get_ifd(ExifTags.IFD.Exif)
    details[ExifTags.Base.DateTimeOriginal] = "2026:11:30 09:15:42"
    details[ExifTags.Base.OffsetTimeOriginal] = "+08:00"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (IFDRational(41), IFDRational(48), IFDRational(432, 100))
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (IFDRational(123), IFDRational(25), IFDRational(5556, 100))
    gps[ExifTags.GPS.GPSHPositioningError] = IFDRational(45, 10)
    out = io.BytesIO()
    im.save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()


def png_bomb() -> bytes:
    """A valid all-black 1-bit PNG of 10000×10000 pixels, written row by row (about 12 KB)."""
    import struct
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    packer = zlib.compressobj(9)
    row = bytes(1 + BOMB_SIDE // 8)
    idat = b"".join(packer.compress(row) for _ in range(BOMB_SIDE)) + packer.flush()
    header = struct.pack(">IIBBBBB", BOMB_SIDE, BOMB_SIDE, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def jpeg_header_bomb() -> bytes:
    """A 16×16 JPEG whose frame header (SOF0) is rewritten to claim 10000×10000 pixels."""
    out = io.BytesIO()
    Image.new("RGB", (16, 16), "grey").save(out, "JPEG")
    data = bytearray(out.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = BOMB_SIDE.to_bytes(2, "big") * 2  # height, width
    return bytes(data)


# --- memory ---------------------------------------------------------------------------------------------------


def _status_kib(name: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    raise BenchError(f"no {name} in {_STATUS}")


@contextlib.contextmanager
def rss_peak_above_start() -> Iterator[dict[str, float]]:
    """The RSS peak inside the block above the RSS at its start (MiB), in result["mib"]."""
    gc.collect()
    result: dict[str, float] = {}
    start = _status_kib("VmRSS")
    try:
        _CLEAR_REFS.write_text("5")  # resets VmHWM to the current RSS (Linux ≥ 4.0)
        reset = True
    except OSError:
        reset = False
    peak = start
    done = threading.Event()

    def poll() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _status_kib("VmRSS"))
            done.wait(0.001)

    poller = threading.Thread(target=poll, daemon=True)
    if not reset:
        poller.start()
    try:
        yield result
    finally:
        done.set()
        if reset:
            peak = _status_kib("VmHWM")
        else:
            poller.join()
        result["mib"] = (peak - start) / 1024


def tracemalloc_peak_mib(work: Callable[[], Any]) -> float:
    """Peak of Python allocations during `work` (MiB); exceptions of `work` are the caller's business."""
    gc.collect()
    tracemalloc.start()
    try:
        with contextlib.suppress(images.MediaRejected):
            work()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


# --- cases ----------------------------------------------------------------------------------------------------


def derivative_without_draft(clean_data: bytes, *, max_side: int, quality: int = 80) -> bytes:
    """images.derivative as it would be without Image.draft(): a full decode, then the same resize."""
    im: Image.Image = Image.open(io.BytesIO(clean_data))
    im.load()
    scale = min(1.0, max_side / max(im.size))
    size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
    im = im.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    out = io.BytesIO()
    im.save(out, "WEBP", quality=quality)
    return out.getvalue()


def one_photo(upload: bytes) -> tuple[images.CleanImage, dict[str, bytes]]:
    photo = images.clean(upload)
    return photo, {name: images.derivative(photo.data, max_side=side) for name, side in images.VARIANTS.items()}


CHILD_STEPS: dict[str, Callable[[bytes], Any]] = {
    "photo": lambda data: one_photo(data),
    "clean": lambda data: images.clean(data),
    **{
        name: (lambda data, side=side: images.derivative(data, max_side=side)) for name, side in images.VARIANTS.items()
    },
    **{
        f"{name}_no_draft": (lambda data, side=side: derivative_without_draft(data, max_side=side))
        for name, side in images.VARIANTS.items()
    },
    "refuse": lambda data: refuse(data),
    "decode_anyway": lambda data: decode_anyway(data),
}


def refuse(data: bytes) -> str:
    """The code clean() refuses `data` with; a bomb that is not refused fails the bench."""
    try:
        images.clean(data)
    except images.MediaRejected as exc:
        return exc.code
    raise BenchError("the bomb was not refused")


def decode_anyway(data: bytes) -> None:
    """What a refusal saves: the same file decoded with Pillow's guard off (not through images.clean())."""
    guard = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        Image.open(io.BytesIO(data)).load()
    finally:
        Image.MAX_IMAGE_PIXELS = guard


def child(step: str, path: Path) -> None:
    """In a fresh interpreter: one step on the file, then its RSS peak above the RSS before it, as JSON."""
    data = path.read_bytes()
    started = time.perf_counter()
    with rss_peak_above_start() as rss:
        CHILD_STEPS[step](data)
    print(json.dumps({"rss_peak_mib": rss["mib"], "wall_s": time.perf_counter() - started}))


def rss_peak_in_fresh_process(step: str, path: Path, repeats: int = 3) -> float:
    """RSS peak of one step in a new process (median of `repeats`). In a warm process glibc hands the step memory
    it kept from earlier photos, so the RSS barely moves and the figure would read 0: only a fresh process shows
    what one photo costs."""
    peaks = []
    for _ in range(repeats):
        cmd = [sys.executable, "-m", "bench.media", "--child", step, str(path)]
        try:
            done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"{step}: timed out after {CHILD_TIMEOUT_S} s") from exc
        if done.returncode != 0:
            raise BenchError(f"{step}: exit code {done.returncode}\n{done.stderr[-2000:]}")
        peaks.append(json.loads(done.stdout.strip().splitlines()[-1])["rss_peak_mib"])
    return statistics.median(peaks)


def photo_case(orientation: int, photos: int, tmp: Path) -> dict[str, float | int]:
    console.print(f"generating a {SIZE[0]}×{SIZE[1]} JPEG with EXIF orientation {orientation} …")
    upload = phone_photo(orientation)
    photo, sizes = one_photo(upload)  # also the warm-up: first use of the codecs
    expected = SIZE if orientation == 1 else SIZE[::-1]
    if (photo.width, photo.height) != expected or photo.meta.lat is None or b"Exif" in photo.data:
        raise BenchError(f"clean() gave {photo.width}×{photo.height}, meta {photo.meta}")

    console.print(f"timing {photos} photos (clean + {len(images.VARIANTS)} derivatives) …")
    steps: dict[str, list[float]] = {"clean": [], **{name: [] for name in images.VARIANTS}, "total": []}
    no_draft: dict[str, list[float]] = {name: [] for name in images.VARIANTS}
    for _ in range(photos):
        t0 = time.perf_counter()
        cleaned = images.clean(upload)
        t1 = time.perf_counter()
        steps["clean"].append(t1 - t0)
        for name, side in images.VARIANTS.items():
            t = time.perf_counter()
            images.derivative(cleaned.data, max_side=side)
            steps[name].append(time.perf_counter() - t)
        steps["total"].append(time.perf_counter() - t0)
        for name, side in images.VARIANTS.items():
            t = time.perf_counter()
            derivative_without_draft(cleaned.data, max_side=side)
            no_draft[name].append(time.perf_counter() - t)
    median = {k: statistics.median(v) for k, v in steps.items()}

    console.print("measuring memory per photo (fresh processes) …")
    upload_file, clean_file = tmp / f"upload_{orientation}.jpg", tmp / f"clean_{orientation}.jpg"
    upload_file.write_bytes(upload)
    clean_file.write_bytes(photo.data)
    rss = {step: rss_peak_in_fresh_process(step, upload_file) for step in ("photo", "clean")}
    for name in images.VARIANTS:
        for step in (name, f"{name}_no_draft"):
            rss[step] = rss_peak_in_fresh_process(step, clean_file)
    return {
        "upload_bytes": len(upload),
        "clean_bytes": len(photo.data),
        **{f"{name}_bytes": len(data) for name, data in sizes.items()},
        "photos": photos,
        "photos_per_s": 1 / median["total"],
        "total_ms": median["total"] * 1000,
        "clean_ms": median["clean"] * 1000,
        **{f"{name}_ms": median[name] * 1000 for name in images.VARIANTS},
        **{f"{name}_no_draft_ms": statistics.median(v) * 1000 for name, v in no_draft.items()},
        **{f"rss_peak_{step}_mib": v for step, v in rss.items()},
        "tracemalloc_peak_photo_mib": tracemalloc_peak_mib(lambda: one_photo(upload)),
        "bench_process_rss_mib": _status_kib("VmRSS") / 1024,
    }


def bomb_case(data: bytes, path: Path, *, contrast: bool) -> dict[str, float | int]:
    if (code := refuse(data)) != "too_many_pixels":
        raise BenchError(f"the bomb was refused as {code}, not too_many_pixels")
    times = []
    for _ in range(50):
        t = time.perf_counter()
        refuse(data)
        times.append(time.perf_counter() - t)
    path.write_bytes(data)
    figures: dict[str, float | int] = {
        "bytes": len(data),
        "claimed_pixels": BOMB_SIDE * BOMB_SIDE,
        "refuse_ms": statistics.median(times) * 1000,
        "tracemalloc_peak_mib": tracemalloc_peak_mib(lambda: refuse(data)),
        "rss_peak_mib": rss_peak_in_fresh_process("refuse", path),
    }
    if contrast:
        t = time.perf_counter()
        decode_anyway(data)
        figures["decoded_anyway_ms"] = (time.perf_counter() - t) * 1000
        figures["decoded_anyway_rss_peak_mib"] = rss_peak_in_fresh_process("decode_anyway", path)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=10, help="photos timed per case, after one warm-up")
    parser.add_argument("--child", nargs=2, metavar=("STEP", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    notes = {
        "pillow": Image.__version__,
        "libjpeg_turbo": features.version("libjpeg_turbo"),
        "libwebp": features.version("webp"),
        "photo": f"{SIZE[0]}x{SIZE[1]} JPEG q90 with EXIF, generated (seed {SEED})",
        "variants": images.VARIANTS,
        "rss_peak": "fresh process each; VmHWM after /proc/self/clear_refs, else VmRSS polled every 1 ms",
    }
    results: dict[str, dict[str, Any]] = {}
    bombs = {"bomb_png_100mp": png_bomb(), "bomb_jpeg_header_100mp": jpeg_header_bomb()}
    with temp_dir("media") as tmp:
        for orientation in (1, 6):
            case = f"jpeg_4000x3000_orientation_{orientation}"
            figures = photo_case(orientation, args.photos, tmp)
            results[case] = f = {k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}
            record(BENCH, case, f, notes)
        for case, data in bombs.items():
            console.print(f"{case}: refusing {len(data):,} bytes that claim {BOMB_SIDE:,}×{BOMB_SIDE:,} pixels …")
            figures = bomb_case(data, tmp / f"{case}.bin", contrast=case == "bomb_png_100mp")
            results[case] = f = {k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}
            record(BENCH, case, f, notes)

    ms = "{:,.1f} ms".format
    for orientation in (1, 6):
        f = results[f"jpeg_4000x3000_orientation_{orientation}"]
        rows: list[tuple[str, str, str, bool | None]] = [
            ("upload → clean (bytes)", f"{fmt_int(f['upload_bytes'])} → {fmt_int(f['clean_bytes'])}", "", None),
            ("thumb / display WebP (bytes)", f"{fmt_int(f['thumb_bytes'])} / {fmt_int(f['display_bytes'])}", "", None),
            ("photos/s (clean + 2 derivatives, one process)", f"{f['photos_per_s']:,.2f}/s", "", None),
            ("per photo", ms(f["total_ms"]), "", None),
            ("  clean()", ms(f["clean_ms"]), "", None),
            ("  derivative thumb 320 (draft)", ms(f["thumb_ms"]), f"{ms(f['thumb_no_draft_ms'])} without", None),
            ("  derivative display 1280 (draft)", ms(f["display_ms"]), f"{ms(f['display_no_draft_ms'])} without", None),
            ("RSS peak, whole photo (fresh process)", fmt_mib(f["rss_peak_photo_mib"]), "", None),
            ("  clean()", fmt_mib(f["rss_peak_clean_mib"]), "", None),
            ("  thumb (draft)", fmt_mib(f["rss_peak_thumb_mib"]),
             f"{fmt_mib(f['rss_peak_thumb_no_draft_mib'])} without", None),
            ("  display (draft)", fmt_mib(f["rss_peak_display_mib"]),
             f"{fmt_mib(f['rss_peak_display_no_draft_mib'])} without", None),
            ("tracemalloc peak, whole photo (Python objects)", f"{f['tracemalloc_peak_photo_mib']:,.1f} MiB", "", None),
            ("RSS of this process after all photos", fmt_mib(f["bench_process_rss_mib"]), "", None),
        ]  # fmt: skip
        print_table(
            f"image pipeline: {SIZE[0]}×{SIZE[1]} JPEG, EXIF orientation {orientation}",
            rows,
            caption=f"medians of {args.photos} photos; RSS peaks above the RSS before the step, median of 3 fresh "
            f"processes; Pillow {notes['pillow']}, libjpeg-turbo {notes['libjpeg_turbo']}, libwebp {notes['libwebp']}",
            third="note",
        )
    rows = []
    for case in bombs:
        f = results[case]
        rows += [
            (f"{case}: {fmt_int(f['bytes'])} bytes → too_many_pixels in", f"{f['refuse_ms']:,.3f} ms", "", None),
            ("  tracemalloc peak / RSS peak of the refusal",
             f"{f['tracemalloc_peak_mib']:,.2f} / {f['rss_peak_mib']:,.1f} MiB", "", None),
        ]  # fmt: skip
        if "decoded_anyway_ms" in f:
            rows.append(
                (
                    "  decoded anyway, Pillow's guard off (what the refusal saves)",
                    f"{f['decoded_anyway_ms']:,.0f} ms, {fmt_mib(f['decoded_anyway_rss_peak_mib'])}",
                    "",
                    None,
                )
            )
    print_table(f"decompression bombs ({BOMB_SIDE:,}×{BOMB_SIDE:,} = 100 MP claimed)", rows, third="note")


if __name__ == "__main__":
    main_guard(BENCH, main)
