"""Small-world helpers of the field app tests: a case waiting in the field, photos taken on the spot."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime

import httpx

from core import clock
from core.accounts.models import StaffAccount
from core.cases.models import Case, CaseTask
from core.regions.models import UnitGrid
from tests.factories import field_photo, interior_point

_seeds = itertools.count(1000)


async def upload_photo(
    api: httpx.AsyncClient,
    headers: dict,
    *,
    taken: datetime | None = None,
    lon: float | None = None,
    lat: float | None = None,
    seed: int | None = None,
) -> str:
    """Upload a photo of a scene of its own, taken now (or at `taken`) at the given point; returns its media id."""
    data = field_photo(next(_seeds) if seed is None else seed, taken=taken or clock.now(), lon=lon, lat=lat)
    response = await api.post("/field/v1/media", files={"file": ("p.jpg", data, "image/jpeg")}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["media_id"]


async def hotline_case(
    api: httpx.AsyncClient, desk: dict, *, subclass: str = "event:0102", grid_index: int = 0
) -> Case:
    """A hotline report in a unit grid that has an inspector, become a case waiting for 核实."""
    grid = await UnitGrid.filter(responsibility_grid_id__isnull=False).order_by("code").offset(grid_index).first()
    lon, lat = await interior_point(grid.code)
    body = {"text": "路口有暴露垃圾", "lon": lon, "lat": lat, "subclass": subclass}
    last = await Case.all().order_by("-id").first()
    response = await api.post("/staff/v1/reports", json=body, headers=desk)
    assert response.status_code == 202, response.text
    for _ in range(200):
        case = await Case.filter(unit_grid=grid.code, id__gt=last.id if last else 0).order_by("-id").first()
        if case is not None and await CaseTask.filter(case_id=case.id).exists():
            return case
        await asyncio.sleep(0.05)
    raise AssertionError("no case with a task appeared")


async def inspector_of(case: Case) -> str:
    """The username of the inspector of the case's responsibility grid."""
    staff = await StaffAccount.filter(responsibility_grids__code=case.responsibility_grid).first()
    return staff.username


async def other_inspector(case: Case) -> str:
    staff = (
        await StaffAccount.filter(username__startswith="inspector-")
        .exclude(responsibility_grids__code=case.responsibility_grid)
        .order_by("id")
        .first()
    )
    return staff.username
