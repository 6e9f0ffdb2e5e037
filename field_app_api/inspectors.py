"""Inspectors (监督员): my grids, my tasks (核实, 核查) with deadlines, their results, and my own reports."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from core import clock
from core.cases import fieldwork
from core.cases.messages import STATUS_NAMES
from core.cases.models import CaseEvent, CaseTask
from core.regions.models import ResponsibilityGrid, RoadSegment, UnitGrid
from core.reports.models import Report
from field_app_api import operations
from field_app_api.deps import AppSettings, CurrentActor, CurrentStaff, require_role
from field_app_api.messages import TASK_KINDS
from field_app_api.schemas import ReportIn, TaskId, TaskResultIn, TaskResultOp
from media import urls

router = APIRouter(tags=["field app: inspectors"])


@router.get("/me")
async def me(staff: CurrentStaff) -> dict[str, Any]:
    """Who I am: my roles, my responsibility grids and the road segments I am chief of."""
    grids = await ResponsibilityGrid.filter(inspectors__id=staff.staff_id).order_by("code")
    counts = {code: await UnitGrid.filter(responsibility_grid_id=code).count() for code in (g.code for g in grids)}
    roads = await RoadSegment.filter(chief_id=staff.staff_id).order_by("code").values_list("code", "name")
    return {
        "staff_id": staff.staff_id,
        "username": staff.username,
        "display_name": staff.display_name,
        "roles": [{"role": r.role, "department": r.department_code, "area": r.area_code} for r in staff.roles],
        "grids": [
            {"code": g.code, "name": g.name, "street": g.street_id, "unit_grids": counts[g.code]}  # type: ignore[attr-defined]
            for g in grids
        ],
        "road_segments": [{"code": code, "name": name} for code, name in roads],
    }


@router.get("/grids")
async def my_grids(actor: CurrentActor) -> dict[str, Any]:
    """My responsibility grids' unit grids as GeoJSON, for the map of the app."""
    require_role(actor, "inspector")
    codes = await fieldwork.grid_codes_of(int(actor.id))
    rows = (
        await UnitGrid.filter(responsibility_grid_id__in=codes)
        .order_by("code")
        .values_list("code", "responsibility_grid_id", "geometry")
    )
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": code,
                "properties": {"unit_grid": code, "responsibility_grid": rgrid},
                "geometry": json.loads(geometry),
            }
            for code, rgrid, geometry in rows
        ],
    }


def task_view(task: CaseTask, settings: Any) -> dict[str, Any]:
    case = task.case
    now = clock.now()
    return {
        "id": task.id,
        "kind": task.kind,
        "kind_name": TASK_KINDS.get(task.kind, task.kind),
        "round": task.round,
        "status": task.status,
        "result": task.result,
        "due_at": task.due_at,
        "overdue": bool(task.status == "open" and task.due_at and task.due_at < now),
        "case": {
            "number": case.number,
            "subclass": f"{case.subclass.kind}:{case.subclass.code}",
            "subclass_name": case.subclass.name,
            "status": case.status,
            "status_name": STATUS_NAMES.get(case.status, case.status),
            "address": case.address,
            "description": case.description,
            "lon": case.lon,
            "lat": case.lat,
            "unit_grid": case.unit_grid,
            "check_distance_m": case.subclass.check_distance_m,
        },
    }


@router.get("/tasks")
async def my_tasks(
    actor: CurrentActor,
    settings: AppSettings,
    status: str = "open",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """My tasks (核实 a citizen report, 核查 a fix), the earliest deadline first."""
    require_role(actor, "inspector")
    total, rows = await fieldwork.inspector_tasks(staff_id=int(actor.id), status=status, limit=limit, offset=offset)
    return {"total": total, "items": [task_view(t, settings) for t in rows]}


@router.get("/tasks/{task_id}")
async def one_task(task_id: TaskId, actor: CurrentActor, settings: AppSettings) -> dict[str, Any]:
    """One of my tasks with the case's photos and timeline."""
    require_role(actor, "inspector")
    task = await fieldwork.inspector_task(staff_id=int(actor.id), task_id=task_id)
    view = task_view(task, settings)
    view["photos"] = await case_photos(task.case_id, settings)
    view["timeline"] = await timeline(task.case_id)
    return view


async def case_photos(case_id: int, settings: Any) -> list[dict[str, str]]:
    photos: list[str] = []
    for row in await Report.filter(case_id=case_id).order_by("id").values_list("photos", flat=True):
        photos.extend(p for p in row or [] if p not in photos)  # type: ignore[union-attr]
    for row in await CaseEvent.filter(case_id=case_id).order_by("id").values_list("media", flat=True):
        photos.extend(p for p in row or [] if p not in photos)  # type: ignore[union-attr]
    return [
        {
            "media_id": p,
            "display_url": urls.signed_url(p, "display", settings=settings),
            "thumb_url": urls.signed_url(p, "thumb", settings=settings),
        }
        for p in photos
    ]


async def timeline(case_id: int) -> list[dict[str, Any]]:
    events = await CaseEvent.filter(case_id=case_id).order_by("id")
    return [
        {"action": e.action, "to_status": e.to_status, "actor_name": e.actor_name, "note": e.note, "at": e.at}
        for e in events
    ]


@router.post("/tasks/{task_id}/result")
async def task_result(task_id: TaskId, body: TaskResultIn, actor: CurrentActor, settings: AppSettings) -> JSONResponse:
    """核实 (confirmed / not_found) or 核查 (passed / failed → 返工), with photos taken there and then."""
    op = TaskResultOp(**body.model_dump(), task_id=task_id)
    return operations.respond(await operations.perform("task_result", actor, op, settings))


@router.post("/reports")
async def inspector_report(body: ReportIn, actor: CurrentActor, settings: AppSettings) -> JSONResponse:
    """A problem I found on patrol (自行发现): problem type, photos, point with its accuracy, component code."""
    return operations.respond(await operations.perform("report", actor, body, settings))
