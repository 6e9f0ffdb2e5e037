"""Loading the spatial index from the database, once per process."""

from __future__ import annotations

import asyncio

import numpy as np
import shapely

from core.geo.index import SpatialIndex
from core.geo.projection import LocalProjection
from core.regions.models import RoadSegment, UnitGrid
from core.settings import get_settings

_index: SpatialIndex | None = None
_lock = asyncio.Lock()


def parse_geojson_many(texts: list[str]) -> np.ndarray:
    """GeoJSON geometry strings → shapely geometries, vectorised."""
    if not texts:
        return np.asarray([], dtype=object)
    return shapely.from_geojson(np.asarray(texts, dtype=object))


async def build_spatial_index() -> SpatialIndex:
    """Read every unit grid and road segment and index them."""
    settings = get_settings()
    grids = await UnitGrid.all().order_by("code").values_list("code", "geometry", "responsibility_grid_id")
    roads = await RoadSegment.all().order_by("code").values_list("code", "geometry")
    return SpatialIndex(
        grid_codes=[g[0] for g in grids],
        grid_geoms=parse_geojson_many([g[1] for g in grids]),
        responsibility={g[0]: g[2] for g in grids},
        road_codes=[r[0] for r in roads],
        road_geoms=parse_geojson_many([r[1] for r in roads]),
        projection=LocalProjection(settings.city_center_lon, settings.city_center_lat),
    )


async def get_spatial_index() -> SpatialIndex:
    """The process's spatial index, built on first use."""
    global _index
    if _index is None:
        async with _lock:
            if _index is None:
                _index = await build_spatial_index()
    return _index


def forget_spatial_index() -> None:
    """Drop the cached index (after an import, or between tests on another database)."""
    global _index
    _index = None
