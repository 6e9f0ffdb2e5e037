"""The field app's write operations, one function each, used by their routes and by offline sync alike.

Each takes the signed-in actor and its validated body and returns (HTTP status, answer). Photos may be named by
media id or as `upload:<upload id>` of a resumable upload; an upload not completed yet is a passing refusal
(`upload_incomplete`): the device completes it and sends the operation again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from tortoise.transactions import in_transaction

from core import clock
from core.cases import fieldwork
from core.cases.messages import STATUS_NAMES
from core.cases.models import Case
from core.cases.workflow import Actor
from core.catalog.models import Subclass
from core.errors import ConflictError, PermissionDenied, ValidationFailed
from core.geo.datum import to_wgs84
from core.geo.service import get_spatial_index
from core.media import evidence
from core.media.models import Upload
from core.patrols import checkins
from core.reports import service as reports
from core.settings import Settings
from field_app_api.schemas import (
    CaseStepOp,
    CheckInIn,
    ExtensionOp,
    FixIn,
    FixReportOp,
    ReportIn,
    TaskResultOp,
)
from jobs.embedded import wake

UPLOAD_PREFIX = "upload:"


async def resolve_photos(refs: list[str], actor: Actor) -> list[str]:
    """Media ids for photo references; `upload:<id>` names a resumable upload of this account."""
    out = []
    for ref in refs:
        if not ref.startswith(UPLOAD_PREFIX):
            out.append(ref)
            continue
        upload = await Upload.get_or_none(owner_type="staff", owner_id=actor.id, client_id=ref[len(UPLOAD_PREFIX) :])
        if upload is None:
            raise ValidationFailed("unknown_photo", f"there is no upload {ref!r} of yours")
        if upload.status != "completed" or not upload.media_id:
            raise ConflictError("upload_incomplete", f"upload {ref!r} is not complete yet")
        out.append(upload.media_id)
    return out


def _fix(body: FixIn) -> fieldwork.FieldFix | None:
    if body.lon is None or body.lat is None or body.accuracy is None:
        return None
    return fieldwork.FieldFix(body.lon, body.lat, body.accuracy, body.datum)


def case_answer(case: Case) -> dict[str, Any]:
    return {
        "number": case.number,
        "status": case.status,
        "status_name": STATUS_NAMES.get(case.status, case.status),
        "stage": case.stage,
        "stage_deadline": case.stage_deadline.isoformat() if case.stage_deadline else None,
    }


async def submit_report(actor: Actor, body: ReportIn, settings: Settings) -> tuple[int, dict[str, Any]]:
    """An inspector's own report: fresh photos taken near the point, used once; then the pipeline as usual."""
    at = body.at or clock.now()
    checkins.check_time(at, settings=settings)
    if body.accuracy > settings.field_gps_accuracy_m:
        raise ValidationFailed(
            "gps_inaccurate", f"device fix ±{body.accuracy:.0f} m; at most ±{settings.field_gps_accuracy_m:.0f} m"
        )
    photos = await resolve_photos(body.photos, actor)
    new = reports.NewReport(
        source="field_app",
        reporter_type="staff",
        reporter_id=actor.id,
        lon=body.lon,
        lat=body.lat,
        datum=body.datum,
        text=body.text,
        address=body.address,
        photos=photos,
        subclass=body.subclass,
        component_code=body.component_code,
        urgency=body.urgency,
        accuracy_m=body.accuracy,
        idempotency_key=body.idempotency_key,
    )
    if body.idempotency_key and await reports.existing_report(new) is not None:
        # A replay: its photos proved this very report and are not checked again (other content is a conflict).
        report, _ = await reports.submit_report(new)
        return 200, _report_answer(report, created=False)
    lon, lat = to_wgs84(body.lon, body.lat, body.datum)
    kind, _, code = body.subclass.partition(":")
    subclass = await Subclass.filter(kind=kind, code=code, catalog__active=True).first()
    radius = float(subclass.check_distance_m) if subclass else settings.field_gps_accuracy_m
    shas = await evidence.check_photos(
        photos=photos,
        owner_type="staff",
        owner_id=actor.id,
        at=at,
        place=evidence.Place(lon, lat, radius),
        fix=evidence.Fix(lon, lat, body.accuracy),
        settings=settings,
    )
    # Intake locates the point in the process's spatial index: built before the transaction, because building it
    # reads the database, which on SQLite is the one connection this transaction would hold.
    await get_spatial_index()
    async with in_transaction() as conn:
        report, created = await reports.submit_report(new)
        await evidence.mark_used(shas, used_for="report", ref=str(report.id), at=at, conn=conn)
    wake()
    return 202, _report_answer(report, created=created)


def _report_answer(report: Any, *, created: bool) -> dict[str, Any]:
    return {"report_id": report.id, "status": report.status, "created": created}


async def task_result(actor: Actor, body: TaskResultOp, settings: Settings) -> tuple[int, dict[str, Any]]:
    """核实 or 核查 of one of my tasks."""
    step = fieldwork.FieldStep(
        at=body.at or clock.now(), note=body.note, photos=await resolve_photos(body.photos, actor), fix=_fix(body)
    )
    task, case = await fieldwork.record_task_result(
        actor=actor, task_id=body.task_id, result=body.result, step=step, settings=settings
    )
    wake()
    return 200, {"task_id": task.id, "kind": task.kind, "result": task.result, "case": case_answer(case)}


async def _crew_step(
    action: str, actor: Actor, body: CaseStepOp | ExtensionOp, settings: Settings, **detail: Any
) -> dict[str, Any]:
    step = fieldwork.FieldStep(
        at=body.at or clock.now(), note=body.note, photos=await resolve_photos(body.photos, actor), detail=detail
    )
    case = await fieldwork.crew_step(actor=actor, number=body.number, action=action, step=step, settings=settings)
    wake()
    return case_answer(case)


async def accept_case(actor: Actor, body: CaseStepOp, settings: Settings) -> tuple[int, dict[str, Any]]:
    """受理: the crew takes the dispatched case on."""
    return 200, await _crew_step("start", actor, body, settings)


async def return_case(actor: Actor, body: CaseStepOp, settings: Settings) -> tuple[int, dict[str, Any]]:
    """回退: not ours, back to the dispatcher, with the reason."""
    return 200, await _crew_step("return", actor, body, settings)


async def ask_extension(actor: Actor, body: ExtensionOp, settings: Settings) -> tuple[int, dict[str, Any]]:
    """申请延期: the clock stops until a dispatcher decides."""
    return 200, await _crew_step("request_extension", actor, body, settings, amount=body.amount)


async def report_fix(actor: Actor, body: FixReportOp, settings: Settings) -> tuple[int, dict[str, Any]]:
    """反馈: the fix, with photos before and after."""
    step = fieldwork.FieldStep(at=body.at or clock.now(), note=body.note, fix=_fix(body))
    case = await fieldwork.report_fix(
        actor=actor,
        number=body.number,
        before=await resolve_photos(body.before, actor),
        after=await resolve_photos(body.after, actor),
        step=step,
        settings=settings,
    )
    wake()
    return 200, case_answer(case)


async def check_in(actor: Actor, body: CheckInIn, settings: Settings) -> tuple[int, dict[str, Any]]:
    """巡查打卡."""
    row = await checkins.check_in(
        checkins.NewCheckIn(
            staff_id=int(actor.id),
            site_kind=body.site_kind,
            site_code=body.site_code,
            at=body.at or clock.now(),
            lon=body.lon,
            lat=body.lat,
            accuracy_m=body.accuracy,
            datum=body.datum,
            photos=await resolve_photos(body.photos, actor),
            note=body.note,
        ),
        settings=settings,
    )
    return 201, {
        "check_in_id": row.id,
        "site_kind": row.site_kind,
        "site_code": row.site_code,
        "distance_m": row.distance_m,
        "at": row.at.isoformat(),
    }


Operation = Callable[[Actor, Any, Settings], Awaitable[tuple[int, dict[str, Any]]]]
INSPECTOR = ("inspector",)
CREW = ("handler",)
ANY_STAFF: tuple[str, ...] = ()  # patrol check-ins: inspectors, crews, road chiefs of any role


@dataclass(frozen=True)
class OpSpec:
    body: type[BaseModel]
    run: Operation
    roles: tuple[str, ...]  # one of these is needed; none listed: any signed-in staff member


OPERATIONS: dict[str, OpSpec] = {
    "report": OpSpec(ReportIn, submit_report, INSPECTOR),
    "task_result": OpSpec(TaskResultOp, task_result, INSPECTOR),
    "accept": OpSpec(CaseStepOp, accept_case, CREW),
    "return": OpSpec(CaseStepOp, return_case, CREW),
    "extension": OpSpec(ExtensionOp, ask_extension, CREW),
    "fix": OpSpec(FixReportOp, report_fix, CREW),
    "check_in": OpSpec(CheckInIn, check_in, ANY_STAFF),
}


async def perform(name: str, actor: Actor, body: BaseModel, settings: Settings) -> tuple[int, dict[str, Any]]:
    """Run an operation for an actor who holds one of its roles: its route and offline sync both come here."""
    spec = OPERATIONS[name]
    if spec.roles and not any(g.role in spec.roles for g in actor.grants):
        raise PermissionDenied("role_not_allowed", f"{name} needs one of the roles {', '.join(spec.roles)}")
    return await spec.run(actor, body, settings)


def parse(spec: OpSpec, body: dict[str, Any]) -> BaseModel:
    """An operation's body, validated as its route would; a bad body is a refusal of that item only."""
    try:
        return spec.body.model_validate(body)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
            for e in exc.errors(include_url=False, include_context=False)
        ]
        raise ValidationFailed("invalid_request", "the operation's body is not valid", errors=errors) from None


def respond(outcome: tuple[int, dict[str, Any]]) -> JSONResponse:
    """An operation's answer as its route's response."""
    status, body = outcome
    return JSONResponse(status_code=status, content=jsonable_encoder(body))
