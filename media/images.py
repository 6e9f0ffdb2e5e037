"""The image pipeline (照片处理): refuse what is not a photo, read EXIF, orient, strip, hash and downscale.

Pure functions on bytes: no database, no storage. Uploads are untrusted, so everything is decided from the real
bytes (never the file name or the declared content type), sizes are refused from the header before a pixel is
decoded, and the stored photo is a re-encoding that carries no metadata at all: no EXIF (GPS, device serials),
no XMP, no ICC profile. What EXIF said is returned apart as `PhotoMeta` for evidence checks and never served.

ICC profiles are dropped too, not kept when sRGB: phone JPEGs are sRGB or Display P3 (iPhone), and P3 read as sRGB
is only slightly less saturated, which does not matter for evidence of a broken manhole cover; a profile can also
name the device model or carry arbitrary bytes.

Pillow is configured process-wide (it has no per-call setting): `Image.MAX_IMAGE_PIXELS` is the default pixel cap
and its DecompressionBombWarning is raised as an error, and truncated files never load.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from PIL import ExifTags, Image, ImageFile

from core.errors import ValidationFailed

CHINA_TZ = ZoneInfo("Asia/Shanghai")
VARIANTS = {"thumb": 320, "display": 1280}
QUALITY = 88  # of the kept JPEG or WebP: it replaces the upload as evidence, so no visible loss is allowed
DEVICE_MAX_CHARS = 128

# Pillow's names of the formats we keep → ours. MPO is the multi-picture JPEG many Android phones write (a depth
# map or preview after the photo); Pillow's JPEG opener returns it, and we keep its first picture as a JPEG.
_FORMATS = {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png", "WEBP": "webp"}
_OPENERS = ["JPEG", "PNG", "WEBP"]  # Pillow tries only these, so a GIF, BMP, TIFF, PDF or SVG is never parsed
_SAVE_AS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}

# EXIF orientation → the transpose that makes the picture upright (as PIL.ImageOps.exif_transpose, without its copy).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_EXIF_DATETIME = re.compile(r"(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_EXIF_OFFSET = re.compile(r"([+-])(\d{2}):?(\d{2})")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]+")


class MediaRejected(ValidationFailed):
    """An upload we do not keep as a photo; `code` says why (empty_file, file_too_large, unsupported_format, …)."""


@dataclass(frozen=True)
class Limits:
    """What an upload may be. max_pixels can lower, not raise, Pillow's process-wide cap set below."""

    max_bytes: int = 15 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_side: int = 12_000


DEFAULT_LIMITS = Limits()

# A pixel cap inside Image.open itself, for every use of Pillow in the process (derivatives, faces): above it Pillow
# warns and above twice it raises; the warning becomes an error so that both refuse before decoding. Our own check
# against Limits still runs after open, so the refusal does not depend on this filter surviving a reset.
Image.MAX_IMAGE_PIXELS = DEFAULT_LIMITS.max_pixels
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)
# A truncated upload (a dropped mobile connection) must be refused, not stored with a grey bottom half. clean()
# sets it again before every decode: importing face_recognition (media/faces.py) turns it on for the whole process.
ImageFile.LOAD_TRUNCATED_IMAGES = False


@dataclass(frozen=True)
class PhotoMeta:
    """What the photo's EXIF said (拍摄时间、位置、设备); kept for evidence checks, never served."""

    taken_at: datetime | None = None  # DateTimeOriginal; China time when the camera wrote no offset
    lon: float | None = None  # WGS-84 decimal degrees as written by the camera
    lat: float | None = None
    gps_accuracy_m: float | None = None  # GPSHPositioningError
    device: str = ""  # "Make Model"
    orientation: int = 1  # the EXIF orientation that was applied


@dataclass(frozen=True)
class CleanImage:
    """A photo as we store it: re-encoded upright with no metadata, plus what its EXIF said and its dHash."""

    data: bytes
    format: str  # "jpeg" | "png" | "webp": the input's real format
    width: int  # upright
    height: int
    meta: PhotoMeta = field(repr=False)
    # 64-bit difference hash of the upright picture as an unsigned int (0 ≤ dhash < 2**64); a signed BIGINT column
    # needs it shifted into range by the caller.
    dhash: int


def inspect_header(data: bytes, *, limits: Limits) -> tuple[str, int, int]:
    """The real format and size of an upload from its header alone; refuses it before any pixel is decoded."""
    im = _open(data, limits=limits)
    return _FORMATS[im.format or ""], im.width, im.height


def clean(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> CleanImage:
    """Check, decode, orient and re-encode an upload without metadata; refusals raise MediaRejected."""
    im: Image.Image = _open(data, limits=limits)
    fmt = _FORMATS[im.format or ""]
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        im.load()
    except MemoryError:
        raise
    except Exception as exc:
        # Pillow's decoders raise OSError, SyntaxError, ValueError, struct.error … on hostile bytes; the header
        # was fine, so whatever fails now is a broken or truncated file.
        raise MediaRejected("corrupt_image", f"the {fmt} data cannot be decoded: {exc}") from exc
    meta = _read_meta(im)  # after load: a PNG may keep its eXIf chunk after the pixels
    if method := _UPRIGHT.get(meta.orientation):
        im = im.transpose(method)  # rebinding drops the decoded original: one full-size copy at a time
    digest = _dhash(im)
    return CleanImage(_encode(im, fmt), fmt, im.width, im.height, meta, digest)


def derivative(clean_data: bytes, *, max_side: int, quality: int = 80) -> bytes:
    """A WebP copy of a cleaned photo whose longer side is at most max_side; never upscales."""
    if max_side < 1:
        raise ValueError(f"max_side must be positive, not {max_side}")
    im: Image.Image = Image.open(io.BytesIO(clean_data), formats=_OPENERS)
    scale = min(1.0, max_side / max(im.size))
    size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
    if im.format in ("JPEG", "MPO"):
        # libjpeg scales by 1/2, 1/4 or 1/8 while decoding (never below `size`): a 320-px thumbnail of a 12 MP
        # photo decodes 0.2 MP instead of 12 MP, in a fraction of the time and memory.
        im.draft(None, size)
    im = im.convert("RGBA" if _has_alpha(im) else "RGB") if im.mode not in ("RGB", "RGBA") else im
    if im.size != size:
        # reducing_gap: a cheap box reduction first, then Lanczos over at most 3× the target; Pillow's docs call the
        # result indistinguishable from Lanczos over the whole picture in most cases, at a fraction of the time.
        im = im.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    out = io.BytesIO()
    im.save(out, "WEBP", quality=quality)
    return out.getvalue()


@dataclass(frozen=True)
class Downscaled:
    """An upright photo shrunk for analysis (faces): its pixels, and how much smaller they are than the photo."""

    image: Image.Image  # RGB, upright, long side at most the asked size
    width: int  # of the upright photo itself
    height: int

    @property
    def scale(self) -> float:
        """Photo pixels per analysed pixel (≥ 1)."""
        return max(self.width, self.height) / max(self.image.size)


def downscaled(data: bytes, *, limits: Limits = DEFAULT_LIMITS, max_side: int) -> Downscaled:
    """An upload decoded straight to at most `max_side` a side, upright, in RGB; refusals raise MediaRejected.

    The same checks as `clean` come first (sizes from the header). A JPEG is decoded by libjpeg at 1/2, 1/4 or 1/8
    scale when that still gives at least about `max_side`: a 12 MP phone photo then decodes as 0.75 MP, in a quarter
    of the time of a full decode. Nothing is re-encoded or kept.
    """
    if max_side < 16:
        raise ValueError(f"max_side must be at least 16, not {max_side}")
    im: Image.Image = _open(data, limits=limits)
    width, height = im.size
    if im.format in ("JPEG", "MPO"):
        # draft picks the smallest DCT scale that keeps both sides at least as asked, so the request keeps the photo's
        # shape; asking for 7/8 of the target lets a 4032 × 3024 photo decode at 1/4 (1008 × 756) for 1024 px
        # instead of at 1/2 (2016 × 1512), for nearly the same detail.
        shrink = min(1.0, max_side * 7 / 8 / max(width, height))
        im.draft("RGB", (max(1, int(width * shrink)), max(1, int(height * shrink))))
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        im.load()
    except MemoryError:
        raise
    except Exception as exc:  # as in clean(): the header was fine, so this is a broken or truncated file
        raise MediaRejected("corrupt_image", f"the image data cannot be decoded: {exc}") from exc
    orientation = _read_meta(im).orientation
    if method := _UPRIGHT.get(orientation):
        im = im.transpose(method)
        if method in (
            Image.Transpose.TRANSPOSE,
            Image.Transpose.TRANSVERSE,
            Image.Transpose.ROTATE_90,
            Image.Transpose.ROTATE_270,
        ):
            width, height = height, width
    if im.mode != "RGB":
        im = im.convert("RGBA").convert("RGB") if im.mode in ("P", "LA", "PA") else im.convert("RGB")
    scale = min(1.0, max_side / max(im.size))
    if scale < 1.0:
        size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
        im = im.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return Downscaled(image=im, width=width, height=height)


def dhash_distance(a: int, b: int) -> int:
    """Number of differing bits between two dHashes: ≤ 6 is the same picture, re-encoded or resized."""
    return (a ^ b).bit_count()


def _open(data: bytes, *, limits: Limits) -> ImageFile.ImageFile:
    """Image.open on untrusted bytes: only our formats, and every refusal that the header alone can decide."""
    if not data:
        raise MediaRejected("empty_file", "the upload has no bytes")
    if len(data) > limits.max_bytes:
        raise MediaRejected("file_too_large", f"{len(data):,} bytes, at most {limits.max_bytes:,}")
    if limits.max_pixels > (Image.MAX_IMAGE_PIXELS or 0):
        # A city that allows larger photos (TG_MEDIA_MAX_PIXELS) raises Pillow's own guard with it; the check
        # against `limits` below still decides.
        Image.MAX_IMAGE_PIXELS = limits.max_pixels
    try:
        im = Image.open(io.BytesIO(data), formats=_OPENERS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaRejected("too_many_pixels", str(exc)) from exc
    except Image.UnidentifiedImageError as exc:
        raise MediaRejected("unsupported_format", "not a JPEG, PNG or WebP image") from exc
    except MemoryError:
        raise
    except Exception as exc:  # identified as ours, then failed to parse: a broken header
        raise MediaRejected("corrupt_image", f"unreadable image header: {exc}") from exc
    width, height = im.size
    if width < 1 or height < 1:
        raise MediaRejected("corrupt_image", f"image size {width}×{height}")
    if width * height > limits.max_pixels or max(width, height) > limits.max_side:
        raise MediaRejected(
            "too_many_pixels",
            f"{width}×{height} pixels; at most {limits.max_pixels:,} pixels and {limits.max_side:,} a side",
        )
    # An MPO's second picture is a depth map or preview, not a frame of an animation.
    frames = getattr(im, "n_frames", 1)
    if frames > 1 and im.format != "MPO":
        raise MediaRejected("animated_image", f"an animated {im.format} with {frames} frames")
    return im


def _read_meta(im: Image.Image) -> PhotoMeta:
    """What the EXIF says; a photo whose EXIF is unreadable is still a photo, with nothing known about it."""
    try:
        exif = im.getexif()  # also reads tiff:Orientation from XMP when EXIF has none
    except Exception:  # hostile EXIF makes Pillow's TIFF parser raise anything; the pixels are what we keep
        return PhotoMeta()
    orientation = exif.get(ExifTags.Base.Orientation)
    try:
        details = exif.get_ifd(ExifTags.IFD.Exif)
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    except Exception:
        details, gps = {}, {}
    lon, lat = _gps_point(gps)
    return PhotoMeta(
        taken_at=_taken_at(details.get(ExifTags.Base.DateTimeOriginal), details.get(ExifTags.Base.OffsetTimeOriginal)),
        lon=lon,
        lat=lat,
        gps_accuracy_m=_gps_accuracy(gps, has_point=lat is not None),
        device=_device(exif.get(ExifTags.Base.Make), exif.get(ExifTags.Base.Model)),
        orientation=orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 1,
    )


def _taken_at(value: Any, offset: Any) -> datetime | None:
    """DateTimeOriginal with OffsetTimeOriginal; a camera without an offset wrote local, i.e. China, time."""
    match = _EXIF_DATETIME.match(value.strip("\x00 ")) if isinstance(value, str) else None
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    try:
        naive = datetime(year, month, day, hour, minute, second)
    except ValueError:  # "0000:00:00 00:00:00" from cameras without a clock, or 2026:02:30
        return None
    tz: timezone | ZoneInfo = CHINA_TZ
    if isinstance(offset, str) and (m := _EXIF_OFFSET.fullmatch(offset.strip("\x00 "))):
        minutes = int(m[2]) * 60 + int(m[3])
        if minutes < 24 * 60:
            tz = timezone(timedelta(minutes=-minutes if m[1] == "-" else minutes))
    return naive.replace(tzinfo=tz)


def _gps_point(gps: Any) -> tuple[float | None, float | None]:
    """(lon, lat) in decimal degrees, or (None, None) when the camera had no usable fix."""
    if str(gps.get(ExifTags.GPS.GPSStatus, "A")).strip("\x00 ").upper() == "V":  # "void": the receiver had no fix
        return None, None
    lat = _degrees(gps.get(ExifTags.GPS.GPSLatitude), gps.get(ExifTags.GPS.GPSLatitudeRef), negative="S")
    lon = _degrees(gps.get(ExifTags.GPS.GPSLongitude), gps.get(ExifTags.GPS.GPSLongitudeRef), negative="W")
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None, None
    if lat == 0 and lon == 0:  # some phones write zeros when they had no fix; (0, 0) is in the Gulf of Guinea
        return None, None
    return lon, lat


def _degrees(value: Any, ref: Any, *, negative: str) -> float | None:
    """EXIF degrees, minutes, seconds (rationals) → signed decimal degrees."""
    parts = list(value) if isinstance(value, tuple | list) else [value]
    if not 1 <= len(parts) <= 3:
        return None
    degrees = _number(parts[0])
    if degrees is None:
        return None
    # A 0/0 minute or second part says nothing (writers that put decimal minutes leave the seconds 0/0).
    rest = [_number(p) or 0.0 for p in parts[1:]]
    total = abs(degrees) + sum(v / f for v, f in zip(rest, (60, 3600), strict=False))
    hemisphere = ref.strip("\x00 ").upper() if isinstance(ref, str) else ""
    return -total if hemisphere == negative or degrees < 0 else total


def _gps_accuracy(gps: Any, *, has_point: bool) -> float | None:
    value = _number(gps.get(ExifTags.GPS.GPSHPositioningError)) if has_point else None
    return value if value is not None and value >= 0 else None


def _number(value: Any) -> float | None:
    """A finite float from an EXIF rational (Pillow's IFDRational, a (num, den) pair or a number); else None."""
    if isinstance(value, tuple) and len(value) == 2:
        value = value[0] / value[1] if value[1] else None
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if math.isfinite(number) else None  # IFDRational with denominator 0 is nan


def _device(make: Any, model: Any) -> str:
    """Make and model as one string, the make not repeated (Model is often "Xiaomi 13" with Make "Xiaomi")."""
    make = _CONTROL_CHARS.sub(" ", make).strip() if isinstance(make, str) else ""
    model = _CONTROL_CHARS.sub(" ", model).strip() if isinstance(model, str) else ""
    if make and model.lower().startswith(make.lower()):
        make = ""
    return f"{make} {model}".strip()[:DEVICE_MAX_CHARS]


def _dhash(im: Image.Image) -> int:
    """Difference hash: 9×8 grey, one bit per horizontal neighbour pair (1 when the right one is brighter)."""
    if im.mode not in ("L", "LA", "RGB", "RGBA"):
        im = im.convert("RGB")  # palette and 1-bit pictures cannot be box-averaged as they are
    # Box averaging (after a cheap integer reduction) is what keeps the hash stable across sizes and qualities.
    grey = im.resize((9, 8), Image.Resampling.BOX, reducing_gap=2.0).convert("L").tobytes()
    bits = 0
    for row in range(8):
        for x in range(8):
            bits = (bits << 1) | (grey[row * 9 + x + 1] > grey[row * 9 + x])
    return bits


def _encode(im: Image.Image, fmt: str) -> bytes:
    """Re-encode with nothing but pixels: Pillow copies ICC (PNG) and other info entries into what it saves."""
    im.info = {k: v for k, v in im.info.items() if k == "transparency"}  # a PNG's tRNS is pixels, not metadata
    options: dict[str, Any] = {}
    if fmt == "jpeg":
        if im.mode not in ("L", "RGB"):
            im = im.convert("RGB")  # a CMYK JPEG displays wrongly in most browsers
        options = {"quality": QUALITY}
    elif fmt == "webp":  # lossy even for a lossless WebP: what we keep are photos, not screenshots
        if im.mode not in ("RGB", "RGBA"):
            im = im.convert("RGBA" if _has_alpha(im) else "RGB")
        options = {"quality": QUALITY}
    out = io.BytesIO()
    im.save(out, _SAVE_AS[fmt], **options)
    return out.getvalue()


def _has_alpha(im: Image.Image) -> bool:
    return "A" in im.mode or "transparency" in im.info
