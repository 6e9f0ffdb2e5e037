"""Small helpers that build and read test worlds."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import shapely

from core.components.models import Component
from core.regions.models import UnitGrid


async def interior_point(grid_code: str) -> tuple[float, float]:
    """A WGS-84 point well inside a unit grid."""
    grid = await UnitGrid.get(code=grid_code)
    point = shapely.from_geojson(grid.geometry).point_on_surface()
    return point.x, point.y


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def feature_collection(features: list[dict]) -> dict:
    return {"type": "FeatureCollection", "features": features}


def grid_feature(code: str, polygon: shapely.Geometry, **props) -> dict:
    return {
        "type": "Feature",
        "properties": {"code": code, **props},
        "geometry": json.loads(shapely.to_geojson(polygon)),
    }


async def component_codes() -> set[str]:
    return set(await Component.all().values_list("code", flat=True))


def jpeg_bytes(width: int = 640, height: int = 480, *, colour: tuple[int, int, int] = (90, 120, 60)) -> bytes:
    """A small JPEG photo, different per colour."""
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), colour)
    ImageDraw.Draw(image).rectangle((width // 4, height // 4, width // 2, height // 2), fill=(200, 30, 30))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def field_photo(seed: int, *, taken: datetime | None, lon: float | None = None, lat: float | None = None) -> bytes:
    """A phone photo of a scene of its own (seed), with the EXIF time (China time) and GPS position given."""
    import io
    import random

    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    w, h = 800, 600
    image = Image.linear_gradient("L").rotate(rng.choice([0, 90, 180, 270])).resize((w, h)).convert("RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(14):
        x, y = rng.randrange(w), rng.randrange(h)
        box = [x, y, x + rng.randrange(w // 10, w // 2), y + rng.randrange(h // 10, h // 2)]
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    exif = camera_exif(taken=taken, lon=lon, lat=lat)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()


def camera_exif(*, taken: datetime | None, lon: float | None = None, lat: float | None = None):
    """EXIF as a phone camera writes it: DateTimeOriginal in China time with its offset, and GPS when given."""
    from PIL import ExifTags, Image
    from PIL.TiffImagePlugin import IFDRational

    def dms(value: float) -> tuple:
        degrees = int(value)
        minutes = int((value - degrees) * 60)
        seconds = (value - degrees - minutes / 60) * 3600
        return (IFDRational(degrees, 1), IFDRational(minutes, 1), IFDRational(round(seconds * 10_000), 10_000))

    exif = Image.Exif()
    if taken is not None:
        details = exif.get_ifd(ExifTags.IFD.Exif)
        details[ExifTags.Base.DateTimeOriginal] = taken.astimezone(ZoneInfo("Asia/Shanghai")).strftime(
            "%Y:%m:%d %H:%M:%S"
        )
        details[ExifTags.Base.OffsetTimeOriginal] = "+08:00"
    if lon is not None and lat is not None:
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
        gps[ExifTags.GPS.GPSLatitudeRef], gps[ExifTags.GPS.GPSLatitude] = "N", dms(lat)
        gps[ExifTags.GPS.GPSLongitudeRef], gps[ExifTags.GPS.GPSLongitude] = "E", dms(lon)
    return exif
