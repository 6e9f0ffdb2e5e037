"""Lenient enforcement (柔性执法) for officers: identify a party by face, see the history, decide on a violation.

Officers only. A photo is read in memory, its faces found and the chosen one encoded; the photo is then dropped
unless the officer keeps it as evidence (`keep`). The search is recorded with its purpose and case; the answer
names candidate parties with their history, never an encoding. The identify result (`search`) stays usable for a
decision for `TG_FACE_HOLD_MINUTES`, so a party not yet in the register can be registered with this face.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from core.enforcement import rules, service
from core.enforcement.catalog import Catalog, catalog_at
from core.enforcement.keys import keyring_from
from core.enforcement.messages import CAP_EXCEEDED, CAP_NOT_MEASURED, CONFIDENCE, GROUNDS, OUTCOMES, PARTY_KINDS
from core.enforcement.register import FaceRegister
from core.errors import ValidationFailed
from core.geo.datum import Datum, to_wgs84
from core.geo.service import get_spatial_index
from core.settings import Settings
from field_app_api.deps import AppSettings, CurrentActor
from field_app_api.operations import resolve_photos
from media import images
from media.faces import FaceEngine, get_face_engine, read_face
from media.service import Owner, store_photo
from media.views import Store

log = logging.getLogger("tongguan.enforcement")
router = APIRouter(prefix="/enforcement", tags=["field app: enforcement"])


@dataclass
class Enforcement:
    """What the enforcement routes share in one process: the exemption list, the face index (with its keys) and the
    face engine."""

    settings: Settings
    catalog: Catalog
    register: FaceRegister
    _engine: FaceEngine | None = None
    _engine_lock: threading.Lock = field(default_factory=threading.Lock)

    def engine(self) -> FaceEngine:
        """The face engine, made at first use: loading dlib's models costs a second and 100 MB."""
        with self._engine_lock:
            if self._engine is None:
                self._engine = get_face_engine(self.settings.face_detector)
            return self._engine


def enforcement_of(app: Any) -> Enforcement:
    """The app's enforcement state, made once."""
    state = getattr(app.state, "enforcement", None)
    if state is None:
        settings: Settings = app.state.settings
        keyring = keyring_from(settings)
        state = Enforcement(
            settings=settings,
            catalog=catalog_at(settings.enforcement_catalog),
            register=FaceRegister(keyring=keyring, kind=settings.face_index),
        )
        app.state.enforcement = state
    return state


async def warm(app: Any) -> None:
    """Load the register's index at start, so the first identify does not wait for it; failures are only logged."""
    try:
        await enforcement_of(app).register.current()
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("face register not loaded at start; the first identify loads it")


def _state(request: Request) -> Enforcement:
    return enforcement_of(request.app)


State = Annotated[Enforcement, Depends(_state)]


# --- answers ------------------------------------------------------------------------------------------------------


def _history(item: service.HistoryItem) -> dict[str, Any]:
    return {
        "violation": item.violation_id,
        "type": item.type_code,
        "type_name": item.type_name,
        "organ": item.organ,
        "found_at": item.found_at,
        "address": item.address,
        "corrected": item.corrected,
        "outcome": item.outcome,
        "outcome_name": OUTCOMES.get(item.outcome or "", ""),
    }


def _party(view: service.PartyView) -> dict[str, Any]:
    return {
        "id": view.id,
        "kind": view.kind,
        "kind_name": PARTY_KINDS.get(view.kind, view.kind),
        "name": view.name,
        "id_type": view.id_type,
        "id_number": view.id_masked,
        "phone": view.phone_masked,
        "faces_on_file": view.encodings,
        "retain_until": view.retain_until,
        "violations": len(view.history),
        "history": [_history(h) for h in view.history],
    }


def _ground(code: str, kind: Any) -> str:
    what, _, name = code.partition(":")
    if what in ("cap_exceeded", "cap_not_measured"):
        cap = kind.caps[name]
        text = CAP_EXCEEDED if what == "cap_exceeded" else CAP_NOT_MEASURED
        return text.format(label=cap.label, max=f"{cap.max:g}", unit=cap.unit)
    return GROUNDS.get(code, code)


# --- routes -------------------------------------------------------------------------------------------------------


@router.get("/types")
async def violation_types(actor: CurrentActor, state: State) -> dict[str, Any]:
    """The exemption list (免罚清单): violation types, their conditions and caps."""
    service.require_officer(actor)
    return {
        "version": state.catalog.version,
        "title": state.catalog.title,
        "types": state.catalog.model_dump()["types"],
    }


@router.post("/identify")
async def identify(
    actor: CurrentActor,
    state: State,
    settings: AppSettings,
    store: Store,
    photo: Annotated[UploadFile, File(description="the party's photo, as the camera took it")],
    purpose: Annotated[str, Form(description="why the register is searched (kept in the audit)")] = "",
    case: Annotated[str | None, Form(description="the case number the search belongs to")] = None,
    face: Annotated[int | None, Form(ge=0, le=99, description="which face (index, largest first); default 0")] = None,
    keep: Annotated[bool, Form(description="keep the photo as evidence; otherwise it is dropped")] = False,
) -> dict[str, Any]:
    """Find a party in the register by face: candidates nearest first, each with their violation history."""
    service.require_officer(actor)
    purpose = service.check_purpose(purpose)
    case_id = await service.case_id_of(case)
    data = await photo.read(settings.media_max_bytes + 1)
    limits = images.Limits(max_bytes=settings.media_max_bytes, max_pixels=settings.media_max_pixels)
    engine = await asyncio.to_thread(state.engine)
    read = await asyncio.to_thread(
        read_face,
        data,
        engine=engine,
        limits=limits,
        side=settings.face_side,
        min_px=settings.face_min_px,
        choose=face,
    )
    faces = [(b.top, b.right, b.bottom, b.left) for b in read.faces]
    result = await service.search_faces(
        actor=actor,
        encoding=read.encoding,
        faces=faces,
        chosen=read.chosen,
        purpose=purpose,
        case_id=case_id,
        register=state.register,
        settings=settings,
        catalog=state.catalog,
    )
    photo_id = None
    if keep:  # stored once the search succeeded: a refused or failed search keeps no photo
        owner = Owner(kind="staff", id=actor.id)
        media = await store_photo(
            data=data, owner=owner, file_name=photo.filename or "", store=store, settings=settings
        )
        photo_id = media.id
        await service.attach_photo(search_id=result.search_id, photo_id=photo_id)
    del data  # the photo itself is not needed past this point
    return {
        "search": str(result.search_id),
        "held_until": result.held_until,
        "width": read.width,
        "height": read.height,
        "faces": [{"index": i, "top": t, "right": r, "bottom": b, "left": le} for i, (t, r, b, le) in enumerate(faces)],
        "chosen": result.chosen,
        "matched": bool(result.candidates),
        "photo": photo_id,
        "candidates": [
            {
                "party": _party(c.party),
                "distance": c.distance,
                "confidence": c.confidence,
                "level": c.level,
                "level_name": CONFIDENCE[c.level],
            }
            for c in result.candidates
        ],
    }


class NewPartyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = Field(default="person", description="person (个人) or business (单位)")
    name: str = Field(default="", max_length=64)
    id_type: str = Field(default="", description="resident_id, passport, business_license or other")
    id_number: str = Field(default="", max_length=32)
    phone: str = Field(default="", max_length=20, pattern=r"^[0-9+\- ]*$")


class FactsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    minor: bool = Field(description="the violation (and any harm) is minor")
    corrected: bool = Field(description="the party has corrected it")
    corrected_promptly: bool | None = Field(default=None, description="within the deadline; default: = corrected")
    harm: bool = Field(description="it caused harmful consequences")
    measures: dict[str, Annotated[float, Field(ge=0, allow_inf_nan=False)]] = Field(
        default_factory=dict, description="measured facts checked against the caps (e.g. area_m2)"
    )


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(description="the violation type's code on the exemption list")
    facts: FactsIn
    party: int | None = Field(default=None, description="a matched party's id")
    search: uuid.UUID | None = Field(default=None, description="the identify result: its face joins the party")
    new_party: NewPartyIn | None = None
    found_at: datetime | None = Field(default=None, description="when it was found (default: now)")
    lon: float | None = Field(default=None, ge=-180, le=180, allow_inf_nan=False)
    lat: float | None = Field(default=None, ge=-90, le=90, allow_inf_nan=False)
    datum: Datum = Datum.WGS84
    address: str = Field(default="", max_length=255)
    case: str | None = Field(default=None, max_length=20, description="the case number")
    photos: list[str] = Field(default_factory=list, max_length=9, description="evidence: media ids or upload:<id>")
    education: str = Field(default="", max_length=2000, description="the education given (教育记录)")
    commitment_photo: str | None = Field(default=None, description="the signed commitment letter (承诺书)")
    outcome: str | None = Field(default=None, description="minor, first_offence or normal; default: the suggestion")
    reason: str = Field(default="", max_length=1000, description="why, when the outcome is not the suggestion")


@router.post("/decisions", status_code=201)
async def decide(body: DecisionBody, actor: CurrentActor, state: State, settings: AppSettings) -> dict[str, Any]:
    """Record a violation and decide on it: 轻微不罚, 首违免罚 or the normal procedure, as suggested or overridden."""
    service.require_officer(actor)
    place = await _place(body, settings)
    photos = await resolve_photos(body.photos, actor)
    letter = (await resolve_photos([body.commitment_photo], actor))[0] if body.commitment_photo else None
    facts = body.facts
    data = service.DecisionIn(
        type_code=body.type,
        facts=rules.Facts(
            minor=facts.minor,
            corrected=facts.corrected,
            corrected_promptly=facts.corrected if facts.corrected_promptly is None else facts.corrected_promptly,
            harm=facts.harm,
            measures=facts.measures,
        ),
        party_id=body.party,
        search_id=body.search,
        new_party=service.NewParty(**body.new_party.model_dump()) if body.new_party else None,
        found_at=body.found_at,
        place=place,
        case_id=await service.case_id_of(body.case),
        photos=tuple(photos),
        education=body.education,
        commitment_photo_id=letter,
        outcome=body.outcome,
        reason=body.reason,
    )
    result = await service.decide(
        actor=actor, data=data, register=state.register, settings=settings, catalog=state.catalog
    )
    return {
        "decision": result.decision_id,
        "violation": result.violation_id,
        "party": result.party_id,
        "party_created": result.party_created,
        "type": result.kind.code,
        "type_name": result.kind.name,
        "suggested": result.suggested,
        "suggested_name": OUTCOMES[result.suggested],
        "outcome": result.outcome,
        "outcome_name": OUTCOMES[result.outcome],
        "overridden": result.outcome != result.suggested,
        "grounds": [{"code": g, "text": _ground(g, result.kind)} for g in result.grounds],
        "earlier_violations": result.earlier,
        "correction_deadline": result.correction_deadline,
    }


class CorrectionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    photos: list[str] = Field(default_factory=list, max_length=9, description="the corrected scene")
    note: str = Field(default="", max_length=1000)


@router.post("/violations/{violation_id}/correction")
async def correction(violation_id: int, body: CorrectionBody, actor: CurrentActor) -> dict[str, Any]:
    """The party corrected a violation found by this organ (整改完成); on time when before the deadline."""
    service.require_officer(actor)
    photos = await resolve_photos(body.photos, actor)
    violation = await service.record_correction(actor=actor, violation_id=violation_id, photos=photos, note=body.note)
    deadline = violation.correction_deadline
    return {
        "violation": violation.id,
        "corrected_at": violation.corrected_at,
        "correction_deadline": deadline,
        "on_time": bool(deadline and violation.corrected_at and violation.corrected_at <= deadline),
    }


async def _place(body: DecisionBody, settings: Settings) -> service.Place:
    if body.lon is None or body.lat is None:
        if body.lon is not None or body.lat is not None:
            raise ValidationFailed("invalid_request", "lon and lat come together")
        return service.Place(address=body.address)
    lon, lat = to_wgs84(body.lon, body.lat, body.datum)
    where = (await get_spatial_index()).locate(lon, lat)
    if where is None:
        raise ValidationFailed("outside_city", "the place lies outside every unit grid of the city")
    return service.Place(lon=lon, lat=lat, address=body.address, grid_code=where.unit_grid)


@router.get("/parties/{party_id}")
async def party(
    party_id: int,
    actor: CurrentActor,
    state: State,
    purpose: Annotated[str, Query(description="why the party is viewed (kept in the audit)")] = "",
    case: Annotated[str | None, Query(description="the case number the view belongs to")] = None,
) -> dict[str, Any]:
    """A party with their violation history; the view is audited."""
    service.require_officer(actor)
    view = await service.view_party(
        actor=actor,
        party_id=party_id,
        purpose=service.check_purpose(purpose),
        case_id=await service.case_id_of(case),
        catalog=state.catalog,
    )
    return _party(view)
