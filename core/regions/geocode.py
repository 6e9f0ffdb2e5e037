"""Locating a written address by the place names the city already knows (no outside geocoder).

The gazetteer holds every street (街道), community (社区), road (by road name) and road segment (路长制 stretch)
with one representative point in WGS-84: a point inside each polygon, the point of each line nearest its centre.
An address is read greedily, longest name first, so "八经街道" is one street and not the road "八经街" inside it.
Two roads named in one address that cross give their crossing ("一纬路与惠工大街交叉口"); otherwise the longest
name wins, and of names equally long the smaller place (segment, community, road, street).
"""

from __future__ import annotations

import asyncio
import math
import time
import unicodedata
from dataclasses import dataclass

import shapely
from shapely import Geometry
from shapely.ops import nearest_points

from core.db import on_open
from core.regions.models import Community, RoadSegment, Street

# Names are re-read now and then: region imports are rare, and a stale name only locates less well.
GAZETTEER_TTL_S = 600.0
MIN_NAME_LENGTH = 2
_RANK = {"segment": 0, "community": 1, "road": 2, "street": 3}  # smaller first among names of one length


@dataclass(frozen=True)
class Place:
    name: str
    kind: str  # segment / community / road / street
    lon: float
    lat: float


def normalise(text: str) -> str:
    """NFKC (full-width letters and digits become plain) without whitespace."""
    return "".join(unicodedata.normalize("NFKC", text).split())


def representative(geom: Geometry) -> tuple[float, float]:
    """A point of the geometry: inside a polygon, on a line nearest the line's centre."""
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        point = geom.point_on_surface()
    else:
        point = nearest_points(geom, geom.centroid)[0]
    return point.x, point.y


class Gazetteer:
    """Place names, longest first, with their points, and the roads' lines for crossings."""

    def __init__(self, places: list[Place], roads: dict[str, Geometry]) -> None:
        self.places = sorted(places, key=lambda p: (-len(p.name), _RANK[p.kind], p.name))
        self.roads = roads

    def matches(self, text: str) -> list[tuple[int, Place]]:
        """Non-overlapping names in the text, longest claimed first, in reading order."""
        claimed: list[tuple[int, int]] = []
        found: list[tuple[int, Place]] = []
        for place in self.places:
            start = text.find(place.name)
            while start >= 0:
                end = start + len(place.name)
                if all(end <= s or start >= e for s, e in claimed):
                    claimed.append((start, end))
                    found.append((start, place))
                    break  # one occurrence of a name is enough
                start = text.find(place.name, start + 1)
        return sorted(found, key=lambda m: m[0])

    def locate(self, text: str) -> tuple[float, float, str] | None:
        found = self.matches(normalise(text))
        if not found:
            return None
        roads = [p for _, p in found if p.kind == "road"]
        for i, a in enumerate(roads):
            for b in roads[i + 1 :]:
                crossing = self.roads[a.name].intersection(self.roads[b.name])
                if not crossing.is_empty:
                    point = crossing.representative_point()
                    return point.x, point.y, f"{a.name}/{b.name}"
        best = min((p for _, p in found), key=lambda p: (-len(p.name), _RANK[p.kind]))
        return best.lon, best.lat, best.name


async def build_gazetteer() -> Gazetteer:
    places: list[Place] = []
    for model, kind in ((Street, "street"), (Community, "community")):
        rows = await model.all().values_list("name", "geometry")
        for name, geom in zip([r[0] for r in rows], shapely.from_geojson([r[1] for r in rows]), strict=True):
            places.append(Place(normalise(name), kind, *representative(geom)))
    segments = await RoadSegment.all().order_by("code").values_list("name", "road_name", "geometry")
    by_road: dict[str, list[Geometry]] = {}
    geoms = shapely.from_geojson([s[2] for s in segments]) if segments else []
    for (name, road_name, _), geom in zip(segments, geoms, strict=True):
        places.append(Place(normalise(name), "segment", *representative(geom)))
        by_road.setdefault(normalise(road_name), []).append(geom)
    roads = {name: shapely.union_all(parts) for name, parts in by_road.items()}
    places += [Place(name, "road", *representative(geom)) for name, geom in roads.items()]
    return Gazetteer([p for p in places if len(p.name) >= MIN_NAME_LENGTH], roads)


class _Cache:
    def __init__(self) -> None:
        self._gazetteer: Gazetteer | None = None
        self._read_at = -math.inf
        self._lock = asyncio.Lock()

    async def get(self) -> Gazetteer:
        if self._gazetteer is None or time.monotonic() - self._read_at > GAZETTEER_TTL_S:
            async with self._lock:
                if self._gazetteer is None or time.monotonic() - self._read_at > GAZETTEER_TTL_S:
                    self._gazetteer, self._read_at = await build_gazetteer(), time.monotonic()
        return self._gazetteer

    def forget(self) -> None:
        self._gazetteer, self._read_at = None, -math.inf


_cache = _Cache()
on_open(_cache.forget)
forget_gazetteer = _cache.forget


async def locate_address(text: str) -> tuple[float, float, str] | None:
    """(lon, lat, matched name) in WGS-84 for an address naming a known place, else None."""
    if not text.strip():
        return None
    return (await _cache.get()).locate(text)
