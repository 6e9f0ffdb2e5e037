"""Public services for citizens: toilets, parks and road works nearby, shop pages, the open-cases map feed.

Everything here is public (no login). Points go in and come out in `datum`: gcj02 by default, which is what
wx.getLocation gives and what the mini-program's map draws; wgs84 and bd09 work too. Lists of places page with
`limit` (1–50, default 20) and `offset` (from 0), nearest first; `total` counts every place within `radius_m`.
"""

from datetime import date, datetime
from typing import Annotated, Generic, TypeVar

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from core.errors import ValidationFailed
from core.places import service as places
from miniapp_api.messages import MAP_CAPPED, MAP_EMPTY, NOTHING_NEARBY

router = APIRouter(prefix="/miniapp/v1", tags=["mini-program: public"])

Lon = Annotated[float, Query(description="Longitude of the point, in `datum`")]
Lat = Annotated[float, Query(description="Latitude of the point, in `datum`")]
DatumParam = Annotated[str, Query(description="Datum of points in and out: gcj02 (wx.getLocation), wgs84 or bd09")]
Radius = Annotated[float, Query(description=f"Search radius in metres, at most {places.MAX_RADIUS_M:.0f}")]
Limit = Annotated[int, Query(description=f"Items per page, 1–{places.MAX_LIMIT}")]
Offset = Annotated[int, Query(description="How many items to skip (page × limit)")]


class PlaceOut(BaseModel):
    id: int
    name: str
    district: str
    lon: float
    lat: float
    distance_m: int = Field(description="Straight-line distance from the given point, in metres")


class ToiletOut(PlaceOut):
    address: str
    open_hours: str
    accessible: bool
    baby_room: bool


class ParkOut(PlaceOut):
    kind: str
    kind_name: str
    address: str
    area_m2: float | None
    open_hours: str


class RoadWorkOut(PlaceOut):
    permit_no: str
    road: str
    contractor: str
    radius_m: float
    starts_on: date
    ends_on: date
    detour: str
    state: str = Field(description="underway, or upcoming when it starts within a few days")
    state_name: str


Item = TypeVar("Item", bound=PlaceOut)


class NearbyOut(BaseModel, Generic[Item]):
    items: list[Item]
    total: int
    limit: int
    offset: int
    datum: str
    radius_m: float
    note: str | None = Field(None, description="What to try when nothing was found")


class ShopOut(BaseModel):
    qr: str
    name: str
    address: str
    street: str
    features: list[str]
    lon: float
    lat: float
    datum: str
    duty_area: dict | None = Field(description="门前三包 duty area, a GeoJSON polygon in `datum`")
    duty_note: str


class MapCaseOut(BaseModel):
    number: str
    subclass: str
    subclass_name: str
    status: str
    status_name: str
    status_text: str
    lon: float
    lat: float
    opened_at: datetime
    thumbnails: list[str] = Field(description="Face-blurred public thumbnails only")


class CaseMapOut(BaseModel):
    items: list[MapCaseOut]
    total: int
    capped: bool = Field(description="True when more cases matched than are shown")
    limit: int
    datum: str
    note: str | None = None


def _nearby_out(page: places.NearbyPage, model: type[Item]) -> NearbyOut[Item]:
    return NearbyOut[model](  # type: ignore[valid-type]  # the item model is chosen per kind
        items=[model(**item) for item in page.items],
        total=page.total,
        limit=page.limit,
        offset=page.offset,
        datum=page.datum,
        radius_m=page.radius_m,
        note=None if page.total else NOTHING_NEARBY[page.kind],
    )


def _nearby_route(kind: str, model: type[PlaceOut], summary: str) -> None:
    """GET /{kind}: one route per kind of place, the same parameters and answer shape."""

    async def nearby(
        lon: Lon,
        lat: Lat,
        datum: DatumParam = places.DEFAULT_DATUM,
        radius_m: Radius = places.DEFAULT_RADIUS_M,
        limit: Limit = places.DEFAULT_LIMIT,
        offset: Offset = 0,
    ) -> NearbyOut:
        page = await places.nearby(kind, lon=lon, lat=lat, datum=datum, radius_m=radius_m, limit=limit, offset=offset)
        return _nearby_out(page, model)

    router.add_api_route(
        f"/{kind}",
        nearby,
        methods=["GET"],
        response_model=NearbyOut[model],  # type: ignore[valid-type]  # the item model is chosen per kind
        summary=summary,
        name=f"{kind}_nearby",
    )


_nearby_route("toilets", ToiletOut, "Public toilets (公厕) around a point, nearest first")
_nearby_route("parks", ParkOut, "Parks (公园), pocket parks (口袋公园) included, around a point, nearest first")
_nearby_route("roadworks", RoadWorkOut, "Road works (道路施工) under way or starting within days, nearest first")


@router.get("/shops/{qr}")
async def shop(qr: str, datum: DatumParam = places.DEFAULT_DATUM) -> ShopOut:
    """The page a shop's QR plate opens: its public data and its 门前三包 duty area."""
    page = await places.shop_page(qr=qr, datum=datum)
    return ShopOut(
        qr=page.qr,
        name=page.name,
        address=page.address,
        street=page.street,
        features=page.features,
        lon=page.lon,
        lat=page.lat,
        datum=page.datum,
        duty_area=page.duty_area,
        duty_note=page.duty_note,
    )


@router.get("/cases/map")
async def case_map(
    request: Request,
    bbox: Annotated[str | None, Query(description="The map view: min_lon,min_lat,max_lon,max_lat in `datum`")] = None,
    lon: Annotated[float | None, Query(description="Centre of a circle instead of bbox, in `datum`")] = None,
    lat: Annotated[float | None, Query(description="Centre of a circle instead of bbox, in `datum`")] = None,
    radius_m: Annotated[float | None, Query(description="Radius of the circle (default 2000 m)")] = None,
    datum: DatumParam = places.DEFAULT_DATUM,
    limit: Annotated[int, Query(description=f"At most this many cases, 1–{places.MAX_FEED_POINTS}")] = (
        places.MAX_FEED_POINTS
    ),
    since: Annotated[datetime | None, Query(description="Only cases opened at or after this time")] = None,
) -> CaseMapOut:
    """Open cases on the public map, newest first: what, where, how far along, and blurred photos only."""
    center = (lon, lat) if lon is not None or lat is not None else None
    feed = await places.open_cases_feed(
        bbox=_bbox(bbox) if bbox is not None else None,
        center=center,
        radius_m=radius_m,
        datum=datum,
        limit=limit,
        since=since,
    )
    note = MAP_CAPPED.format(total=feed.total, shown=len(feed.items)) if feed.capped else None
    return CaseMapOut(
        items=[
            MapCaseOut(
                number=case.number,
                subclass=case.subclass,
                subclass_name=case.subclass_name,
                status=case.status,
                status_name=case.status_name,
                status_text=case.status_text,
                lon=case.lon,
                lat=case.lat,
                opened_at=case.opened_at,
                thumbnails=[
                    str(request.app.url_path_for("serve_public", media_id=media_id, variant="thumb"))
                    for media_id in case.public_photos
                ],
            )
            for case in feed.items
        ],
        total=feed.total,
        capped=feed.capped,
        limit=feed.limit,
        datum=feed.datum,
        note=note if feed.total else MAP_EMPTY,
    )


def _bbox(text: str) -> tuple[float, ...]:
    """The bbox parameter, "min_lon,min_lat,max_lon,max_lat", as four numbers."""
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ValidationFailed("bad_bbox", "bbox is min_lon,min_lat,max_lon,max_lat") from None
    if len(values) != 4:
        raise ValidationFailed("bad_bbox", "bbox is min_lon,min_lat,max_lon,max_lat")
    return values
