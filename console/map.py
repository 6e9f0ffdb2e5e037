"""The command centre's city map (一张图): boundaries of districts, streets and unit grids, open cases, heat.

Boundaries are the same for every signed-in staff member and are served from the process's cache with an ETag;
cases and heat are read by desk roles and crews, within what `visible_filter` lets them see.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from console.deps import CurrentActor
from core.cases.workflow import Actor
from core.errors import PermissionDenied
from core.regions import mapdata

router = APIRouter(prefix="/staff/v1/map", tags=["staff"])
READER_ROLES = frozenset({"dispatcher", "duty_chief", "handler"})
CACHE_CONTROL = "private, max-age=300"
GEOJSON = "application/geo+json"


def _require_reader(actor: Actor) -> None:
    if not any(g.role in READER_ROLES for g in actor.grants):
        raise PermissionDenied("role_not_allowed", "the case map is for dispatchers, duty chiefs and crews")


def _accepts_gzip(header: str) -> bool:
    """Accept-Encoding names gzip (or `*`) with a q-value above 0."""
    for item in header.split(","):
        coding, *params = (p.strip() for p in item.split(";"))
        if coding.lower() not in ("gzip", "x-gzip", "*"):
            continue
        q = next((p[2:] for p in params if p.lower().startswith("q=")), "1")
        try:
            return float(q) > 0
        except ValueError:
            return False
    return False


def _not_modified(header: str | None, layer: mapdata.Layer) -> bool:
    """If-None-Match names either encoding's tag (weak or strong), or `*`."""
    if not header:
        return False
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in tags or layer.etag in tags or layer.etag_gzip in tags


@router.get(
    "/boundaries/{level}",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}}, "description": "a GeoJSON FeatureCollection"}, 304: {}},
)
async def boundaries(level: str, request: Request, actor: CurrentActor) -> Response:
    """Boundaries of one level (district, street or grid) as GeoJSON, simplified for drawing; gzip when accepted."""
    layer = await mapdata.boundary_layer(level=level)
    gzipped = _accepts_gzip(request.headers.get("accept-encoding", ""))
    headers = {
        "ETag": layer.etag_gzip if gzipped else layer.etag,
        "Cache-Control": CACHE_CONTROL,
        "Vary": "Accept-Encoding",
    }
    if _not_modified(request.headers.get("if-none-match"), layer):
        return Response(status_code=304, headers=headers)
    if gzipped:
        headers["Content-Encoding"] = "gzip"
        return Response(layer.gzipped, media_type=GEOJSON, headers=headers)
    return Response(layer.body, media_type=GEOJSON, headers=headers)


@router.get("/cases", response_class=JSONResponse)
async def open_cases(request: Request, actor: CurrentActor) -> Response:
    """Open cases you may see, newest first, as rows of `fields` (at most 50,000; then `truncated`); gzip when
    accepted (10,000 cases: 780 KB plain, about a fifth gzipped)."""
    _require_reader(actor)
    # Serialised directly: tens of thousands of plain rows need no pydantic or jsonable_encoder pass.
    body = json.dumps(await mapdata.open_cases(actor=actor), ensure_ascii=False, separators=(",", ":")).encode()
    headers = {"Cache-Control": "no-store", "Vary": "Accept-Encoding"}
    if _accepts_gzip(request.headers.get("accept-encoding", "")):
        # Level 1: a few milliseconds for 10,000 rows; the page asks again whenever the queues move.
        body = await asyncio.to_thread(gzip.compress, body, 1)
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type="application/json", headers=headers)


@router.get("/heat")
async def heat(
    actor: CurrentActor,
    subclass: Annotated[str | None, Query(description="kind:code, e.g. event:0102; all subclasses without")] = None,
    days: Annotated[int, Query(ge=1, le=366)] = 30,
) -> JSONResponse:
    """Cases opened in the last `days` days per unit grid, at the grid's point; and the period's top subclasses."""
    _require_reader(actor)
    return JSONResponse(await mapdata.heat(actor=actor, days=days, subclass=subclass))
