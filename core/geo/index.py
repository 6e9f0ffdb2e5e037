"""The spatial index: point (any datum) → unit grid → community, street, district, responsibility grid,
and the nearest road segment. Built once per process from the database and kept in memory."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely import STRtree

from core.geo.datum import Datum, to_wgs84
from core.geo.projection import LocalProjection


@dataclass(frozen=True)
class Location:
    """Where a WGS-84 point lies in the city's region hierarchy."""

    lon: float
    lat: float
    unit_grid: str
    community: str
    street: str
    district: str
    responsibility_grid: str | None


@dataclass(frozen=True)
class RoadHit:
    code: str
    distance_m: float


class SpatialIndex:
    """STRtree over the unit grids (lon/lat) and the road segments (local metres)."""

    def __init__(
        self,
        *,
        grid_codes: list[str],
        grid_geoms: np.ndarray,
        responsibility: dict[str, str | None],
        road_codes: list[str],
        road_geoms: np.ndarray,
        projection: LocalProjection,
    ) -> None:
        self.grid_codes = np.asarray(grid_codes, dtype=object)
        self.grid_geoms = grid_geoms
        self.responsibility = responsibility
        self.projection = projection
        shapely.prepare(self.grid_geoms)
        self._grid_tree = STRtree(self.grid_geoms)
        self.road_codes = np.asarray(road_codes, dtype=object)
        # Roads are indexed in metres so that "within 50 m" means metres, not degrees.
        road_m = shapely.transform(road_geoms, lambda c: np.column_stack(projection.to_m(c[:, 0], c[:, 1])))
        self._road_tree = STRtree(road_m)

    def __len__(self) -> int:
        return len(self.grid_codes)

    def _location(self, lon: float, lat: float, i: int) -> Location:
        code = self.grid_codes[i]
        return Location(lon, lat, code, code[:12], code[:9], code[:6], self.responsibility.get(code))

    def locate(self, lon: float, lat: float, datum: Datum | str = Datum.WGS84) -> Location | None:
        """The unit grid containing the point, or None outside the city."""
        lon, lat = to_wgs84(lon, lat, datum)
        hits = self._grid_tree.query(shapely.Point(lon, lat), predicate="intersects")
        if not len(hits):
            return None
        # A point exactly on a shared edge touches two grids; the lowest index keeps the answer stable.
        return self._location(lon, lat, int(hits.min()))

    def locate_many(self, lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
        """Index into `grid_codes` for each WGS-84 point, -1 where the point is outside every grid."""
        points = shapely.points(np.asarray(lons, dtype=float), np.asarray(lats, dtype=float))
        point_idx, grid_idx = self._grid_tree.query(points, predicate="intersects")
        out = np.full(len(points), -1, dtype=np.int64)
        # Reverse order so that for edge points the lowest grid index is written last and wins.
        order = np.lexsort((-grid_idx, point_idx))
        out[point_idx[order]] = grid_idx[order]
        return out

    def nearest_road(
        self, lon: float, lat: float, *, max_distance_m: float, datum: Datum | str = Datum.WGS84
    ) -> RoadHit | None:
        """The nearest road segment within `max_distance_m`, or None."""
        if not len(self.road_codes):
            return None
        lon, lat = to_wgs84(lon, lat, datum)
        x, y = self.projection.to_m(lon, lat)
        idx, dist = self._road_tree.query_nearest(
            shapely.Point(float(x), float(y)), max_distance=max_distance_m, return_distance=True
        )
        if not len(idx):
            return None
        best = int(np.argmin(dist))
        return RoadHit(str(self.road_codes[idx[best]]), float(dist[best]))


def linear_scan_locate(grid_geoms: np.ndarray, lon: float, lat: float) -> int:
    """The naive answer the index is measured against: test every polygon in turn."""
    point = shapely.Point(lon, lat)
    for i, geom in enumerate(grid_geoms):
        if geom.intersects(point):
            return i
    return -1
