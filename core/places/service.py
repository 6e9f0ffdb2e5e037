"""Public places near a citizen (公厕, 公园, 道路施工), a shop's page by its QR code, and the public map of open cases.

Everything is stored in WGS-84. Callers say which datum their points are in (the mini-program's wx.getLocation gives
GCJ-02) and get points back in that same datum, so markers land where their map draws the streets.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import shapely

from core import clock
from core.cases.messages import CITIZEN_STATUS, STATUS_NAMES
from core.cases.models import Case
from core.cases.workflow import OPEN
from core.catalog.models import Subclass
from core.errors import NotFoundError, ValidationFailed
from core.geo.datum import Datum, from_wgs84_many, to_wgs84, to_wgs84_many
from core.geo.projection import EARTH_RADIUS_M, haversine_m
from core.media.models import Media
from core.places.messages import PARK_KIND_NAMES, ROADWORK_STATE_NAMES
from core.places.models import Park, RoadWork, Shop, Toilet
from core.reports.models import Report

KINDS = {"toilets": Toilet, "parks": Park, "roadworks": RoadWork}
DEFAULT_DATUM = Datum.GCJ02.value
DEFAULT_RADIUS_M = 2_000.0
MAX_RADIUS_M = 20_000.0
DEFAULT_LIMIT = 20
MAX_LIMIT = 50
# Works starting within this many days are listed too (即将施工): someone planning tomorrow's trip wants to know,
# while works announced weeks ahead would only crowd out the ones in the way today.
ROADWORK_LOOKAHEAD_DAYS = 3
MAX_FEED_POINTS = 500
MAX_BBOX_DEG = 0.6  # about 50 x 66 km at this latitude: the whole city fits in one view, a province does not
MAX_THUMBNAILS = 3
MAX_QR_CHARS = 32
COORD_DECIMALS = 7  # ≈ 1 cm, what the database keeps
# What a citizen may see of each kind besides id, name and point: nothing else leaves this module.
PUBLIC_FIELDS = {
    "toilets": ("address", "district", "open_hours", "accessible", "baby_room"),
    "parks": ("kind", "address", "district", "area_m2", "open_hours"),
    "roadworks": ("permit_no", "road", "district", "contractor", "radius_m", "starts_on", "ends_on", "detour"),
}
_OPEN_STATUSES = sorted(s.value for s in OPEN)
_MAP_FIELDS = ("id", "number", "subclass_id", "status", "lon", "lat", "opened_at")


@dataclass(frozen=True)
class NearbyPage:
    """One page of places around a point, nearest first; `total` counts all of them within the radius."""

    kind: str
    total: int
    items: list[dict[str, Any]]
    datum: str
    radius_m: float
    limit: int
    offset: int


@dataclass(frozen=True)
class ShopPage:
    """What the QR plate on a shop opens: its public data and its 门前三包 duty area."""

    qr: str
    name: str
    address: str
    street: str
    features: list[str]
    lon: float
    lat: float
    duty_area: dict | None  # GeoJSON in `datum`
    duty_note: str
    datum: str


@dataclass(frozen=True)
class MapCase:
    """An open case as anybody may see it: no reporter, no free text, only photos whose faces were blurred."""

    number: str
    subclass: str  # "event:0102"
    subclass_name: str
    status: str
    status_name: str
    status_text: str  # in citizen words
    lon: float
    lat: float
    opened_at: datetime
    public_photos: list[str] = field(default_factory=list)  # media ids with a public (blurred) version


@dataclass(frozen=True)
class CaseMap:
    """Open cases in an area, newest first; `capped` when more than `limit` matched (`total` says how many)."""

    items: list[MapCase]
    total: int
    capped: bool
    limit: int
    datum: str


async def nearby(
    kind: str,
    *,
    lon: float,
    lat: float,
    datum: str = DEFAULT_DATUM,
    radius_m: float = DEFAULT_RADIUS_M,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
    today: date | None = None,
) -> NearbyPage:
    """Toilets, parks or current road works within radius_m of a point, nearest first, in the caller's datum."""
    model = KINDS.get(kind)
    if model is None:
        raise ValidationFailed("unknown_place_kind", f"kind must be one of {', '.join(KINDS)}")
    parsed = _datum(datum)
    lon, lat = _point(lon, lat)
    radius = _radius(radius_m)
    _page(limit, offset)
    today = today or clock.now().date()
    wlon, wlat = to_wgs84(lon, lat, parsed)
    query = model.filter(**_box(wlon, wlat, radius))
    if kind == "roadworks":
        query = query.filter(ends_on__gte=today, starts_on__lte=today + timedelta(days=ROADWORK_LOOKAHEAD_DAYS))
    rows = await query.values("id", "name", "lon", "lat", *PUBLIC_FIELDS[kind])
    # The box is only the index's pre-filter; the circle decides.
    hits = []
    for row in rows:
        distance = haversine_m(wlon, wlat, row["lon"], row["lat"])
        if distance <= radius:
            hits.append((distance, row["id"], row))
    hits.sort(key=lambda hit: (hit[0], hit[1]))
    page = hits[offset : offset + limit]
    lons, lats = _from_wgs84([row["lon"] for *_, row in page], [row["lat"] for *_, row in page], parsed)
    items = []
    for (distance, _, row), item_lon, item_lat in zip(page, lons, lats, strict=True):
        item = {**row, "lon": item_lon, "lat": item_lat, "distance_m": round(distance)}
        if kind == "parks":
            item["kind_name"] = PARK_KIND_NAMES.get(row["kind"], "")
        elif kind == "roadworks":
            item["state"] = "underway" if row["starts_on"] <= today else "upcoming"
            item["state_name"] = ROADWORK_STATE_NAMES[item["state"]]
        items.append(item)
    return NearbyPage(
        kind=kind, total=len(hits), items=items, datum=parsed.value, radius_m=radius, limit=limit, offset=offset
    )


async def shop_page(*, qr: str, datum: str = DEFAULT_DATUM) -> ShopPage:
    """The public page of the shop whose QR plate was scanned (never its owner's account)."""
    parsed = _datum(datum)
    qr = qr.strip()
    shop = await Shop.get_or_none(qr=qr) if 0 < len(qr) <= MAX_QR_CHARS else None
    if shop is None:
        raise NotFoundError("shop_not_found", f"no shop has the QR code {qr[:MAX_QR_CHARS]!r}")
    lons, lats = _from_wgs84([shop.lon], [shop.lat], parsed)
    return ShopPage(
        qr=shop.qr,
        name=shop.name,
        address=shop.address,
        street=shop.street,
        features=list(shop.features or []),
        lon=lons[0],
        lat=lats[0],
        duty_area=_geojson_in(shop.duty_area, parsed) if shop.duty_area else None,
        duty_note=shop.duty_note,
        datum=parsed.value,
    )


async def open_cases_feed(
    *,
    bbox: Sequence[float] | None = None,
    center: Sequence[float | None] | None = None,
    radius_m: float | None = None,
    datum: str = DEFAULT_DATUM,
    limit: int = MAX_FEED_POINTS,
    since: datetime | None = None,
) -> CaseMap:
    """Open cases in a map view (bbox) or a circle (center + radius_m), newest first, at most `limit`."""
    parsed = _datum(datum)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_FEED_POINTS:
        raise ValidationFailed("bad_limit", f"limit must be 1..{MAX_FEED_POINTS}")
    query = Case.filter(is_open=True, status__in=_OPEN_STATUSES)
    if since is not None:
        query = query.filter(opened_at__gte=clock.china_of(since))
    if bbox is not None and center is None and radius_m is None:
        min_lon, min_lat, max_lon, max_lat = _wgs84_bbox(bbox, parsed)
        query = query.filter(lat__gte=min_lat, lat__lte=max_lat, lon__gte=min_lon, lon__lte=max_lon)
        total = await query.count()
        rows = await query.order_by("-opened_at", "-id").limit(limit).values(*_MAP_FIELDS)
    elif bbox is None and center is not None:
        if len(center) != 2:
            raise ValidationFailed("bad_point", "center is (lon, lat)")
        lon, lat = _point(center[0], center[1])
        radius = _radius(DEFAULT_RADIUS_M if radius_m is None else radius_m)
        wlon, wlat = to_wgs84(lon, lat, parsed)
        candidates = await query.filter(**_box(wlon, wlat, radius)).values_list("id", "lon", "lat", "opened_at")
        inside = sorted(
            (
                (opened, case_id)
                for case_id, c_lon, c_lat, opened in candidates
                if haversine_m(wlon, wlat, c_lon, c_lat) <= radius
            ),
            reverse=True,
        )
        total = len(inside)
        order = {case_id: k for k, (_, case_id) in enumerate(inside[:limit])}
        rows = sorted(await Case.filter(id__in=list(order)).values(*_MAP_FIELDS), key=lambda r: order[r["id"]])
    else:
        raise ValidationFailed("bad_area", "give either bbox, or center (lon, lat) with an optional radius_m")
    return CaseMap(
        items=await _map_cases(rows, parsed), total=total, capped=total > len(rows), limit=limit, datum=parsed.value
    )


async def _map_cases(rows: list[dict[str, Any]], datum: Datum) -> list[MapCase]:
    """The public form of the cases in rows (in their order)."""
    if not rows:
        return []
    subclasses = {
        sid: (f"{kind}:{code}", name)
        for sid, kind, code, name in await Subclass.filter(id__in={r["subclass_id"] for r in rows}).values_list(
            "id", "kind", "code", "name"
        )
    }
    photos = await _public_photos([r["id"] for r in rows])
    lons, lats = _from_wgs84([r["lon"] for r in rows], [r["lat"] for r in rows], datum)
    out = []
    for row, lon, lat in zip(rows, lons, lats, strict=True):
        ref, name = subclasses.get(row["subclass_id"], ("", ""))
        out.append(
            MapCase(
                number=row["number"],
                subclass=ref,
                subclass_name=name,
                status=row["status"],
                status_name=STATUS_NAMES.get(row["status"], ""),
                status_text=CITIZEN_STATUS.get(row["status"], ""),
                lon=lon,
                lat=lat,
                opened_at=row["opened_at"],
                public_photos=photos.get(row["id"], []),
            )
        )
    return out


async def _public_photos(case_ids: list[int]) -> dict[int, list[str]]:
    """Per case, the first few photos of its reports whose public (face-blurred) sizes exist."""
    # Only the PII pass sets public_ready, after it stored the blurred sizes; an unblurred photo never qualifies.
    attached = await Report.filter(case_id__in=case_ids).order_by("id").values_list("case_id", "photos")
    wanted = {media_id for _, photos in attached for media_id in photos or []}
    if not wanted:
        return {}
    public = set(await Media.filter(id__in=wanted, blob__public_ready=True).values_list("id", flat=True))
    out: dict[int, list[str]] = {}
    for case_id, photos in attached:
        shown = out.setdefault(case_id, [])
        for media_id in photos or []:
            if media_id in public and media_id not in shown and len(shown) < MAX_THUMBNAILS:
                shown.append(media_id)
    return {case_id: shown for case_id, shown in out.items() if shown}


def _datum(datum: str) -> Datum:
    try:
        return Datum(str(datum).strip().lower())
    except ValueError:
        known = ", ".join(d.value for d in Datum)
        raise ValidationFailed("unknown_datum", f"datum must be one of {known}") from None


def _point(lon: Any, lat: Any) -> tuple[float, float]:
    try:
        lon, lat = float(lon), float(lat)
    except (TypeError, ValueError):
        raise ValidationFailed("bad_point", "lon and lat must be numbers") from None
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise ValidationFailed("bad_point", "lon must be -180..180 and lat -90..90")
    return lon, lat


def _radius(radius_m: Any) -> float:
    try:
        radius = float(radius_m)
    except (TypeError, ValueError):
        raise ValidationFailed("bad_radius", "radius_m must be a number") from None
    if not (math.isfinite(radius) and 0 < radius <= MAX_RADIUS_M):
        raise ValidationFailed("bad_radius", f"radius_m must be more than 0 and at most {MAX_RADIUS_M:.0f}")
    return radius


def _page(limit: Any, offset: Any) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed("bad_limit", f"limit must be 1..{MAX_LIMIT}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValidationFailed("bad_offset", "offset must be 0 or more")


def _box(lon: float, lat: float, radius_m: float) -> dict[str, float]:
    """Filter arguments for a lon/lat box that holds the circle (lat first: it is the indexed column)."""
    # 1 % more than the exact spherical extent covers the rounding of both; the circle test follows anyway.
    dlat = math.degrees(radius_m / EARTH_RADIUS_M) * 1.01
    dlon = dlat / max(math.cos(math.radians(lat)), 0.01)
    return {"lat__gte": lat - dlat, "lat__lte": lat + dlat, "lon__gte": lon - dlon, "lon__lte": lon + dlon}


def _wgs84_bbox(bbox: Sequence[float], datum: Datum) -> tuple[float, float, float, float]:
    """A map view (min_lon, min_lat, max_lon, max_lat) in `datum` as the WGS-84 box that covers it."""
    try:
        min_lon, min_lat, max_lon, max_lat = (float(v) for v in bbox)
    except (TypeError, ValueError):
        raise ValidationFailed("bad_bbox", "bbox is min_lon,min_lat,max_lon,max_lat") from None
    finite = all(math.isfinite(v) for v in (min_lon, min_lat, max_lon, max_lat))
    if not (finite and -180 <= min_lon < max_lon <= 180 and -90 <= min_lat < max_lat <= 90):
        raise ValidationFailed("bad_bbox", "bbox is min_lon,min_lat,max_lon,max_lat with min < max")
    if max_lon - min_lon > MAX_BBOX_DEG or max_lat - min_lat > MAX_BBOX_DEG:
        raise ValidationFailed("bad_bbox", f"bbox may span at most {MAX_BBOX_DEG} degrees each way")
    # The datum shift differs a little from corner to corner: take the box around all four moved corners.
    lons, lats = to_wgs84_many(
        np.array([min_lon, max_lon, min_lon, max_lon]), np.array([min_lat, min_lat, max_lat, max_lat]), datum
    )
    return float(lons.min()), float(lats.min()), float(lons.max()), float(lats.max())


def _from_wgs84(lons: Sequence[float], lats: Sequence[float], datum: Datum) -> tuple[list[float], list[float]]:
    if not lons:
        return [], []
    out_lons, out_lats = from_wgs84_many(np.asarray(lons, dtype=float), np.asarray(lats, dtype=float), datum)
    return np.round(out_lons, COORD_DECIMALS).tolist(), np.round(out_lats, COORD_DECIMALS).tolist()


def _geojson_in(geometry: dict, datum: Datum) -> dict:
    """A WGS-84 GeoJSON geometry with every vertex moved to `datum`."""

    def move(coords: np.ndarray) -> np.ndarray:
        lons, lats = from_wgs84_many(coords[:, 0], coords[:, 1], datum)
        return np.round(np.column_stack([lons, lats]), COORD_DECIMALS)

    moved = shapely.transform(shapely.from_geojson(json.dumps(geometry)), move)
    return json.loads(shapely.to_geojson(moved))
