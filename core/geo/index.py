"""The spatial index: point (any datum) → unit grid → community, street, district, responsibility grid,
and the nearest road segment. Built once per process from the database and kept in memory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import shapely
from shapely import STRtree

from core.geo.datum import Datum, to_wgs84
from core.geo.projection import LocalProjection


class Location(NamedTuple):
    """Where a WGS-84 point lies in the city's region hierarchy (a tuple: cheap on the lookup hot path)."""

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


class _Buckets:
    """A uniform lattice of cells over the grids' extent, each listing the grids its cell touches.

    A single-point lookup then costs two multiplications and one vectorised test against two or three
    prepared polygons; it needs no shapely Point and no tree walk, about twice the speed of STRtree.query.
    """

    def __init__(self, geoms: np.ndarray, tree: STRtree) -> None:
        bounds = shapely.bounds(geoms)
        # Half a typical grid's width keeps ~2 candidates per cell at a build cost of a few tenths of a second.
        self.cell = float(np.median(bounds[:, 2] - bounds[:, 0])) / 2 or 1.0
        self.minx, self.miny, maxx, maxy = (float(v) for v in shapely.total_bounds(geoms))
        self.nx = int((maxx - self.minx) / self.cell) + 1
        self.ny = int((maxy - self.miny) / self.cell) + 1
        x, y = np.meshgrid(
            self.minx + np.arange(self.nx) * self.cell, self.miny + np.arange(self.ny) * self.cell, indexing="ij"
        )
        x, y = x.ravel(), y.ravel()
        cell_idx, grid_idx = tree.query(shapely.box(x, y, x + self.cell, y + self.cell), predicate="intersects")
        order = np.lexsort((grid_idx, cell_idx))  # ascending grid index inside each cell: lowest wins on edges
        self.candidates = grid_idx[order]
        # The candidates' geometries laid out alongside, so a lookup slices (a view) instead of fancy-indexing.
        self.candidate_geoms = geoms[self.candidates]
        self.offsets: list[int] = np.searchsorted(cell_idx[order], np.arange(self.nx * self.ny + 1)).tolist()

    def span_at(self, x: float, y: float) -> tuple[int, int]:
        """The [start, end) range of `candidates` for the cell holding (x, y); empty outside the extent."""
        ix, iy = int((x - self.minx) // self.cell), int((y - self.miny) // self.cell)
        if not (0 <= ix < self.nx and 0 <= iy < self.ny):
            return 0, 0
        b = ix * self.ny + iy
        return self.offsets[b], self.offsets[b + 1]


class SpatialIndex:
    """Unit grids (lon/lat: STRtree for bulk, buckets for single points) and road segments (local metres)."""

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
        self._buckets = _Buckets(self.grid_geoms, self._grid_tree) if len(self.grid_geoms) else None
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
        if datum != Datum.WGS84:
            lon, lat = to_wgs84(lon, lat, datum)
        buckets = self._buckets
        if buckets is None:
            return None
        start, end = buckets.span_at(lon, lat)
        if start == end:
            return None
        hits = shapely.intersects_xy(buckets.candidate_geoms[start:end], lon, lat)
        if not hits.any():
            return None
        # A point exactly on a shared edge touches two grids; the lowest index keeps the answer stable.
        return self._location(lon, lat, int(buckets.candidates[start + hits.argmax()]))

    def locate_many(self, lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
        """Index into `grid_codes` for each WGS-84 point, -1 where the point is outside every grid."""
        points = shapely.points(np.asarray(lons, dtype=float), np.asarray(lats, dtype=float))
        point_idx, grid_idx = self._grid_tree.query(points, predicate="intersects")
        # A point exactly on a shared edge touches two grids; the lowest index keeps the answer stable.
        out = np.full(len(points), len(self.grid_codes), dtype=np.int64)
        np.minimum.at(out, point_idx, grid_idx)
        out[out == len(self.grid_codes)] = -1
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

    def nearest_road_many(self, lons: np.ndarray, lats: np.ndarray, *, max_distance_m: float) -> np.ndarray:
        """Index into `road_codes` of the nearest road segment within `max_distance_m` of each WGS-84 point,
        -1 where none is that close (GPS tracks: thousands of points in one call)."""
        out = np.full(len(lons), -1, dtype=np.int64)
        if not len(self.road_codes) or not len(out):
            return out
        x, y = self.projection.to_m(np.asarray(lons, dtype=float), np.asarray(lats, dtype=float))
        pairs = self._road_tree.query_nearest(shapely.points(x, y), max_distance=max_distance_m, all_matches=True)
        if not pairs.shape[1]:
            return out
        # Equally near segments (a point at a junction): the lowest index keeps the answer stable.
        best = np.full(len(out), len(self.road_codes), dtype=np.int64)
        np.minimum.at(best, pairs[0], pairs[1])
        found = best < len(self.road_codes)
        out[found] = best[found]
        return out


def linear_scan_locate(grid_geoms: np.ndarray, lon: float, lat: float) -> int:
    """The naive answer the index is measured against: test every polygon in turn."""
    point = shapely.Point(lon, lat)
    for i, geom in enumerate(grid_geoms):
        if geom.intersects(point):
            return i
    return -1
