"""Small helpers that build and read test worlds."""

from __future__ import annotations

import csv
import json
from pathlib import Path

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
