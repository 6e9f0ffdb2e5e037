"""Department crews (处置人员): my department's cases; accept, report the fix, ask for time, return."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from core.cases import fieldwork, workflow
from core.cases.messages import STATUS_NAMES
from core.cases.models import Case
from core.cases.service import facts_for
from core.logs import request_id_var
from field_app_api import operations
from field_app_api.deps import AppSettings, CurrentActor, require_role
from field_app_api.inspectors import case_photos, timeline
from field_app_api.schemas import CaseStepIn, CaseStepOp, ExtensionIn, ExtensionOp, FixReportIn, FixReportOp

router = APIRouter(tags=["field app: crews"])


def case_item(case: Case) -> dict[str, Any]:
    return {
        "number": case.number,
        "subclass": f"{case.subclass.kind}:{case.subclass.code}",
        "subclass_name": case.subclass.name,
        "status": case.status,
        "status_name": STATUS_NAMES.get(case.status, case.status),
        "urgency": case.urgency,
        "address": case.address,
        "description": case.description,
        "lon": case.lon,
        "lat": case.lat,
        "stage": case.stage,
        "stage_deadline": case.stage_deadline,
        "paused": case.paused_at is not None,
        "rework_count": case.rework_count,
    }


@router.get("/cases")
async def my_cases(
    actor: CurrentActor,
    queue: str = "all",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """My department's cases: todo (待处置), doing (处置中), fixed (待核查) or all, the nearest deadline first."""
    require_role(actor, "handler")
    total, rows = await fieldwork.crew_cases(actor=actor, queue=queue, limit=limit, offset=offset)
    return {"total": total, "items": [case_item(c) for c in rows]}


@router.get("/cases/{number}")
async def one_case(number: str, actor: CurrentActor, settings: AppSettings) -> dict[str, Any]:
    """One case of my department with photos, timeline and the actions I may take now."""
    require_role(actor, "handler")
    case = await fieldwork.crew_case(actor=actor, number=number)
    facts = await facts_for(case)
    return {
        **case_item(case),
        "photos": await case_photos(case.id, settings),
        "timeline": await timeline(case.id),
        "allowed_actions": workflow.allowed_actions(facts=facts, actor=actor),
    }


@router.get("/cases/{number}/contacts")
async def reporter_contacts(number: str, purpose: str, actor: CurrentActor, request: Request) -> dict[str, Any]:
    """The phone numbers of the case's reporters who did not stay anonymous; the read is audited with its purpose."""
    require_role(actor, "handler")
    contacts = await fieldwork.reporter_contacts(
        actor=actor, number=number, purpose=purpose, request_id=request_id_var.get()
    )
    return {"contacts": [{"report_id": c.report_id, "name": c.name, "phone": c.phone} for c in contacts]}


@router.post("/cases/{number}/accept")
async def accept(number: str, body: CaseStepIn, actor: CurrentActor, settings: AppSettings) -> JSONResponse:
    """受理: take the dispatched case on."""
    op = CaseStepOp(**body.model_dump(), number=number)
    return operations.respond(await operations.perform("accept", actor, op, settings))


@router.post("/cases/{number}/return")
async def return_case(number: str, body: CaseStepIn, actor: CurrentActor, settings: AppSettings) -> JSONResponse:
    """回退: not ours; the reason is required."""
    op = CaseStepOp(**body.model_dump(), number=number)
    return operations.respond(await operations.perform("return", actor, op, settings))


@router.post("/cases/{number}/extension")
async def extension(number: str, body: ExtensionIn, actor: CurrentActor, settings: AppSettings) -> JSONResponse:
    """申请延期: the amount in the stage's unit and the reason; the clock stops until a dispatcher decides."""
    op = ExtensionOp(**body.model_dump(), number=number)
    return operations.respond(await operations.perform("extension", actor, op, settings))


@router.post("/cases/{number}/fix")
async def fix(number: str, body: FixReportIn, actor: CurrentActor, settings: AppSettings) -> JSONResponse:
    """反馈: the fix with photos before and after (after: taken there and then)."""
    op = FixReportOp(**body.model_dump(), number=number)
    return operations.respond(await operations.perform("fix", actor, op, settings))
