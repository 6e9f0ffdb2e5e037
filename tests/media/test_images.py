import io
import random
import struct
import tracemalloc
import warnings
import zlib
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from PIL import ExifTags, Image, ImageDraw, ImageFile
from PIL.TiffImagePlugin import IFDRational

from core.errors import ValidationFailed
from core.messages import DEFAULT_TITLE, error_title
from media.images import (
    VARIANTS,
    Limits,
    MediaRejected,
    PhotoMeta,
    clean,
    derivative,
    dhash_distance,
    inspect_header,
)

SHENYANG_LON, SHENYANG_LAT = 123.4321, 41.8012


def street_photo(seed: int, size: tuple[int, int] = (1200, 900)) -> Image.Image:
    """A photo-like picture: a lit gradient, blocks of colour, and sensor noise; each seed a different scene."""
    rng = random.Random(seed)
    w, h = size
    im = Image.linear_gradient("L").rotate(rng.choice([0, 90, 180, 270])).resize(size).convert("RGB")
    draw = ImageDraw.Draw(im)
    for _ in range(14):
        x, y = rng.randrange(w), rng.randrange(h)
        box = [x, y, x + rng.randrange(w // 10, w // 2), y + rng.randrange(h // 10, h // 2)]
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    return Image.blend(im, Image.effect_noise(size, 40).convert("RGB"), 0.12)


def encoded(im: Image.Image, fmt: str = "JPEG", **options) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **options)
    return out.getvalue()


def rational(value: float) -> IFDRational:
    return IFDRational(round(value * 10_000), 10_000)


def phone_exif(
    *,
    orientation: int = 1,
    taken: str | None = "2026:11:30 09:15:42",
    offset: str | None = None,
    lat: tuple | None = (rational(41), rational(48), rational(4.32)),
    lat_ref: str = "N",
    lon: tuple | None = (rational(123), rational(25), rational(55.56)),
    lon_ref: str = "E",
    accuracy: float | None = 4.5,
    make: str | None = "HUAWEI",
    model: str | None = "ELS-AN00",
) -> Image.Exif:
    """EXIF as a phone camera writes it, built with Pillow alone."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    if make is not None:
        exif[ExifTags.Base.Make] = make
    if model is not None:
        exif[ExifTags.Base.Model] = model
    details = exif.get_ifd(ExifTags.IFD.Exif)
    if taken is not None:
        details[ExifTags.Base.DateTimeOriginal] = taken
    if offset is not None:
        details[ExifTags.Base.OffsetTimeOriginal] = offset
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    if lat is not None:
        gps[ExifTags.GPS.GPSLatitudeRef] = lat_ref
        gps[ExifTags.GPS.GPSLatitude] = lat
    if lon is not None:
        gps[ExifTags.GPS.GPSLongitudeRef] = lon_ref
        gps[ExifTags.GPS.GPSLongitude] = lon
    if accuracy is not None:
        gps[ExifTags.GPS.GPSHPositioningError] = rational(accuracy)
    return exif


def bilevel_png(width: int, height: int) -> bytes:
    """A valid all-black 1-bit PNG of any size, written row by row: 100 megapixels take about 12 KB."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    packer = zlib.compressobj(9)
    row = bytes(1 + (width + 7) // 8)  # filter byte + packed bits
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def rejected(data: bytes, **kwargs) -> str:
    with pytest.raises(MediaRejected) as info:
        clean(data, **kwargs)
    return info.value.code


# --- orientation and metadata -----------------------------------------------------------------------------------


def test_phone_jpeg_with_orientation_6_comes_out_upright_without_exif_or_xmp():
    sensor = Image.new("RGB", (120, 80), "white")
    sensor.paste((255, 0, 0), (0, 0, 20, 20))  # the sensor's top-left corner is the upright picture's top-right
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
    data = encoded(sensor, exif=phone_exif(orientation=6), xmp=xmp, icc_profile=b"not-a-real-profile" * 8)

    photo = clean(data)

    assert (photo.format, photo.width, photo.height) == ("jpeg", 80, 120)
    assert photo.meta.orientation == 6
    out = Image.open(io.BytesIO(photo.data))
    assert out.size == (80, 120)
    assert out.getpixel((70, 10))[0] > 200 and out.getpixel((70, 10))[1] < 60  # red, top-right
    assert out.getpixel((10, 10)) > (200, 200, 200)
    assert len(out.getexif()) == 0
    assert b"Exif" not in photo.data
    assert b"xmpmeta" not in photo.data and b"http://ns.adobe.com/xap/1.0/" not in photo.data
    assert b"ICC_PROFILE" not in photo.data and "icc_profile" not in out.info


def test_gps_time_and_device_are_read_from_the_exif():
    data = encoded(street_photo(1, (200, 150)), exif=phone_exif(offset="+08:00"))

    meta = clean(data).meta

    assert meta.lat == pytest.approx(41 + 48 / 60 + 4.32 / 3600)
    assert meta.lon == pytest.approx(123 + 25 / 60 + 55.56 / 3600)
    assert meta.gps_accuracy_m == pytest.approx(4.5)
    assert meta.taken_at == datetime(2026, 11, 30, 9, 15, 42, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert meta.taken_at.utcoffset() == timedelta(hours=8)
    assert meta.device == "HUAWEI ELS-AN00"
    assert meta.orientation == 1


def test_southern_and_western_coordinates_are_negative():
    exif = phone_exif(lat_ref="S", lon_ref="W", lat=(rational(33), rational(52), rational(0)))

    meta = clean(encoded(street_photo(1, (64, 48)), exif=exif)).meta

    assert meta.lat == pytest.approx(-(33 + 52 / 60))
    assert meta.lon == pytest.approx(-(123 + 25 / 60 + 55.56 / 3600))


def test_a_zero_denominator_in_the_seconds_still_gives_a_point_but_not_in_the_degrees():
    seconds_unknown = phone_exif(lon=(rational(123), rational(25.926), IFDRational(0, 0)))
    degrees_unknown = phone_exif(lat=(IFDRational(0, 0), rational(48), rational(4)))

    meta = clean(encoded(street_photo(1, (64, 48)), exif=seconds_unknown)).meta
    assert meta.lon == pytest.approx(123 + 25.926 / 60)
    assert meta.lat == pytest.approx(41 + 48 / 60 + 4.32 / 3600)

    meta = clean(encoded(street_photo(1, (64, 48)), exif=degrees_unknown)).meta
    assert (meta.lon, meta.lat, meta.gps_accuracy_m) == (None, None, None)


def test_a_photo_without_a_fix_has_no_point():
    no_gps = phone_exif(lat=None, lon=None, accuracy=None)
    zeros = phone_exif(lat=(rational(0), rational(0), rational(0)), lon=(rational(0), rational(0), rational(0)))

    for exif in (no_gps, zeros):
        meta = clean(encoded(street_photo(1, (64, 48)), exif=exif)).meta
        assert (meta.lon, meta.lat, meta.gps_accuracy_m) == (None, None, None)


def test_a_camera_time_without_offset_is_china_time_and_an_offset_is_kept():
    naive = clean(encoded(street_photo(1, (64, 48)), exif=phone_exif(offset=None))).meta.taken_at
    abroad = clean(encoded(street_photo(1, (64, 48)), exif=phone_exif(offset="-05:00"))).meta.taken_at

    assert naive is not None and naive.tzinfo == ZoneInfo("Asia/Shanghai")
    assert naive.utcoffset() == timedelta(hours=8)
    assert abroad is not None and abroad.utcoffset() == timedelta(hours=-5)
    assert abroad.replace(tzinfo=None) == datetime(2026, 11, 30, 9, 15, 42)


def test_a_camera_without_a_clock_has_no_time():
    meta = clean(encoded(street_photo(1, (64, 48)), exif=phone_exif(taken="0000:00:00 00:00:00"))).meta

    assert meta.taken_at is None


def test_the_make_is_not_repeated_when_the_model_already_names_it():
    exif = phone_exif(make="Xiaomi ", model="Xiaomi 13\x00")

    assert clean(encoded(street_photo(1, (64, 48)), exif=exif)).meta.device == "Xiaomi 13"


def test_a_photo_without_exif_has_empty_metadata():
    assert clean(encoded(street_photo(1, (64, 48)))).meta == PhotoMeta()


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_a_photo_with_unreadable_exif_is_kept_without_metadata():
    data = encoded(street_photo(1, (64, 48)), exif=b"Exif\x00\x00II*\x00\xff\xff\xff\x7f garbage")

    photo = clean(data)

    assert photo.meta == PhotoMeta()
    assert b"Exif" not in photo.data


# --- formats --------------------------------------------------------------------------------------------------


def test_a_png_uploaded_as_photo_jpg_is_kept_as_png():
    data = encoded(street_photo(1, (64, 48)), "PNG")  # the name is never looked at: only the bytes count

    assert inspect_header(data, limits=Limits()) == ("png", 64, 48)
    assert clean(data).format == "png"
    assert Image.open(io.BytesIO(clean(data).data)).format == "PNG"


def test_a_transparent_png_stays_a_transparent_png_without_its_icc_profile():
    im = Image.new("RGBA", (40, 30), (0, 128, 0, 0))
    im.paste((255, 0, 0, 255), (0, 0, 10, 10))
    data = encoded(im, "PNG", icc_profile=b"not-a-real-profile" * 8, exif=phone_exif())

    photo = clean(data)

    out = Image.open(io.BytesIO(photo.data))
    assert (photo.format, out.mode) == ("png", "RGBA")
    assert out.getpixel((20, 20))[3] == 0 and out.getpixel((5, 5)) == (255, 0, 0, 255)
    assert b"iCCP" not in photo.data and b"eXIf" not in photo.data and len(out.getexif()) == 0
    assert photo.meta.device == "HUAWEI ELS-AN00"  # read before it was dropped


def test_a_webp_stays_a_webp_without_its_exif():
    data = encoded(street_photo(1, (64, 48)), "WEBP", exif=phone_exif(orientation=8))

    photo = clean(data)

    assert (photo.format, photo.width, photo.height, photo.meta.orientation) == ("webp", 48, 64, 8)
    assert b"EXIF" not in photo.data and b"Exif" not in photo.data
    assert Image.open(io.BytesIO(photo.data)).format == "WEBP"


def test_a_multi_picture_jpeg_from_a_phone_is_kept_as_its_first_picture():
    pictures = [Image.new("RGB", (64, 48), (250, 0, 0)), Image.new("RGB", (32, 24), (0, 0, 250))]
    out = io.BytesIO()
    pictures[0].save(out, "MPO", save_all=True, append_images=pictures[1:])

    photo = clean(out.getvalue())

    kept = Image.open(io.BytesIO(photo.data))
    assert (photo.format, kept.format, kept.size) == ("jpeg", "JPEG", (64, 48))
    assert kept.getpixel((30, 20))[0] > 200


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(encoded(Image.new("P", (16, 16)), "GIF"), id="gif"),
        pytest.param(encoded(Image.new("RGB", (16, 16)), "BMP"), id="bmp"),
        pytest.param(encoded(Image.new("RGB", (16, 16)), "TIFF"), id="tiff"),
        pytest.param(encoded(Image.new("RGB", (16, 16)), "PDF"), id="pdf"),
        pytest.param(b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', id="svg"),
        pytest.param(b"<!DOCTYPE html><html><script>alert(1)</script></html>", id="html"),
        pytest.param(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64), id="heic"),
        pytest.param(random.Random(7).randbytes(4096), id="random-bytes"),
    ],
)
def test_anything_but_jpeg_png_or_webp_is_an_unsupported_format(data):
    assert rejected(data) == "unsupported_format"
    with pytest.raises(MediaRejected, match="not a JPEG"):
        inspect_header(data, limits=Limits())


def test_a_truncated_jpeg_is_a_corrupt_image():
    data = encoded(street_photo(2, (400, 300)), quality=90)

    assert inspect_header(data[: len(data) // 2], limits=Limits()) == ("jpeg", 400, 300)  # the header is whole
    assert rejected(data[: len(data) // 2]) == "corrupt_image"


def test_a_truncated_png_is_a_corrupt_image():
    data = encoded(street_photo(2, (400, 300)), "PNG")

    assert rejected(data[: len(data) * 2 // 3]) == "corrupt_image"


def test_truncated_photos_are_refused_even_after_face_recognition_allowed_them(monkeypatch):
    jpeg, png = encoded(street_photo(2, (400, 300))), encoded(street_photo(2, (400, 300)), "PNG")
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # what `import face_recognition` does

    assert rejected(jpeg[: len(jpeg) // 2]) == "corrupt_image"
    assert rejected(png[: len(png) * 2 // 3]) == "corrupt_image"
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_animated_webp_and_png_are_refused():
    frames = [Image.new("RGB", (32, 32), colour) for colour in ("red", "green", "blue")]
    for fmt in ("WEBP", "PNG"):
        data = encoded(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100)
        assert rejected(data) == "animated_image", fmt


# --- limits ---------------------------------------------------------------------------------------------------


def test_an_empty_upload_and_an_oversize_one_are_refused_by_their_length():
    data = encoded(street_photo(1, (200, 150)))

    assert rejected(b"") == "empty_file"
    assert rejected(data, limits=Limits(max_bytes=len(data) - 1)) == "file_too_large"
    assert clean(data, limits=Limits(max_bytes=len(data))).format == "jpeg"


def test_a_100_megapixel_png_is_refused_without_decoding(monkeypatch):
    bomb = bilevel_png(10_000, 10_000)
    assert len(bomb) < 50_000

    def no_decoding(self):
        raise AssertionError("the bomb was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    tracemalloc.start()
    try:
        with pytest.raises(MediaRejected) as info:
            clean(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert info.value.code == "too_many_pixels"
    assert peak < 50 * 1024 * 1024
    with pytest.raises(MediaRejected, match="pixels"):
        inspect_header(bomb, limits=Limits())


def test_a_picture_just_over_the_pixel_cap_is_refused_whatever_becomes_of_pillows_warning(monkeypatch):
    big = bilevel_png(9_000, 5_000)  # 45 MP: above the 40 MP cap, below twice it, where Pillow only warns
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("decoded"))

    # media.images makes the warning an error on import; pytest resets filters around collection, so set it here.
    for action in ("error", "ignore"):
        with warnings.catch_warnings():
            warnings.simplefilter(action, Image.DecompressionBombWarning)
            assert rejected(big) == "too_many_pixels", action


def test_stricter_limits_refuse_by_pixels_and_by_side():
    assert rejected(bilevel_png(200, 100), limits=Limits(max_pixels=19_999)) == "too_many_pixels"
    assert rejected(bilevel_png(1_200, 10), limits=Limits(max_side=1_000)) == "too_many_pixels"
    assert clean(bilevel_png(1_000, 10), limits=Limits(max_side=1_000)).width == 1_000


def test_refusals_are_validation_errors_with_a_chinese_title():
    codes = ["empty_file", "file_too_large", "unsupported_format", "too_many_pixels", "animated_image"]
    for code in [*codes, "corrupt_image"]:
        error = MediaRejected(code, "detail")
        assert isinstance(error, ValidationFailed) and error.status == 422
        assert error_title(code) != DEFAULT_TITLE


# --- dHash and derivatives ------------------------------------------------------------------------------------


def test_the_same_photo_reencoded_and_resized_keeps_its_dhash_and_another_photo_does_not():
    original = street_photo(3, (1600, 1200))
    first = clean(encoded(original, quality=92))
    smaller = clean(encoded(original.resize((640, 480), Image.Resampling.LANCZOS), quality=40))
    as_display = clean(derivative(first.data, max_side=VARIANTS["display"]))
    other = clean(encoded(street_photo(4, (1600, 1200)), quality=92))

    assert 0 <= first.dhash < 2**64
    assert dhash_distance(first.dhash, smaller.dhash) <= 6
    assert dhash_distance(first.dhash, as_display.dhash) <= 6
    assert dhash_distance(first.dhash, other.dhash) > 16


def test_the_dhash_is_taken_of_the_upright_picture():
    upright = street_photo(5, (480, 640))
    as_stored = upright.transpose(Image.Transpose.ROTATE_90)  # what the sensor saw; orientation 6 turns it back

    a = clean(encoded(upright, quality=92))
    b = clean(encoded(as_stored, quality=92, exif=phone_exif(orientation=6)))

    assert (b.width, b.height) == (480, 640)
    assert dhash_distance(a.dhash, b.dhash) <= 6


def test_dhash_distance_counts_differing_bits():
    assert dhash_distance(0, 0) == 0
    assert dhash_distance(0, 2**64 - 1) == 64
    assert dhash_distance(0b1011, 0b0001) == 2


def test_derivatives_are_webp_within_their_size():
    landscape = clean(encoded(street_photo(6, (2000, 1500)), quality=90)).data
    portrait = clean(encoded(street_photo(6, (1500, 2000)), quality=90)).data

    sizes = {name: Image.open(io.BytesIO(derivative(landscape, max_side=side))) for name, side in VARIANTS.items()}

    assert {im.format for im in sizes.values()} == {"WEBP"}
    assert sizes["display"].size == (1280, 960)
    assert sizes["thumb"].size == (320, 240)
    assert Image.open(io.BytesIO(derivative(portrait, max_side=1280))).size == (960, 1280)


def test_a_derivative_never_upscales():
    small = clean(encoded(street_photo(7, (200, 100)))).data
    transparent = clean(encoded(Image.new("RGBA", (50, 40), (0, 0, 0, 0)), "PNG")).data

    assert Image.open(io.BytesIO(derivative(small, max_side=320))).size == (200, 100)
    kept = Image.open(io.BytesIO(derivative(transparent, max_side=1280)))
    assert (kept.format, kept.size, kept.mode) == ("WEBP", (50, 40), "RGBA")


def test_a_city_that_allows_larger_photos_gets_them_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored after the test
    big = io.BytesIO()
    Image.new("1", (9000, 5000)).save(big, "PNG")  # 45 MP, over the default 40 MP
    with pytest.raises(MediaRejected) as refused:
        clean(big.getvalue())
    assert refused.value.code == "too_many_pixels"
    cleaned = clean(big.getvalue(), limits=Limits(max_pixels=50_000_000))
    assert (cleaned.width, cleaned.height) == (9000, 5000)
