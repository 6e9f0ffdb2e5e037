"""A local metric projection around the city centre, for distances and areas inside one city."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True)
class LocalProjection:
    """Equirectangular metres around (lon0, lat0).

    Inside a 30 km city the scale error stays below 0.1 %, well under what grid lookups and
    "within 50 m" checks need, and it is cheap enough to apply to millions of points.
    """

    lon0: float
    lat0: float

    @property
    def _kx(self) -> float:
        return math.radians(1) * EARTH_RADIUS_M * math.cos(math.radians(self.lat0))

    @property
    def _ky(self) -> float:
        return math.radians(1) * EARTH_RADIUS_M

    def to_m(self, lon, lat):
        """(lon, lat) degrees → (x, y) metres; scalars or numpy arrays."""
        return (np.asarray(lon) - self.lon0) * self._kx, (np.asarray(lat) - self.lat0) * self._ky

    def to_deg(self, x, y):
        """(x, y) metres → (lon, lat) degrees; scalars or numpy arrays."""
        return np.asarray(x) / self._kx + self.lon0, np.asarray(y) / self._ky + self.lat0


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))
