"""Lenient enforcement (柔性执法): search the register by face, decide on a violation, and the party's rights.

DESIGN.md, "Personal and biometric data": only officers search; every search and every view is audited with its
purpose (and case); a match is a suggestion the officer confirms; encodings are sealed at rest and never leave
through the API; a party's data expires with the retention period and can be exported or erased on request.
"""

from __future__ import annotations

import calendar
import logging
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from core import clock
from core.audit import service as audit
from core.audit.models import AuditEntry
from core.cases.models import Case
from core.cases.workflow import Actor
from core.enforcement import rules
from core.enforcement.catalog import Catalog, ViolationType
from core.enforcement.keys import Keyring, keyring_from
from core.enforcement.models import (
    Decision,
    FaceEncoding,
    FaceIndexChange,
    FaceSearch,
    FaceSearchHit,
    Party,
    Violation,
)
from core.enforcement.register import FACE_LABEL, FaceRegister, pack
from core.errors import ConflictError, NotFoundError, PermissionDenied, ValidationFailed
from core.logs import request_id_var
from core.media.models import Media
from core.outbox import service as outbox
from core.progress import NoProgress, ProgressSink
from core.settings import Settings, get_settings

log = logging.getLogger("tongguan.enforcement")
OFFICER = "officer"
ID_LABEL = "id_number"
PHONE_LABEL = "phone"
HELD_LABEL = "held_face"
CHANGE_LOG_DAYS = 7  # index changes older than this are pruned; a process further behind reloads
PARTY_KINDS = ("person", "business")
VIEW_AFTER_SEARCH = timedelta(days=1)  # an officer may open a party their search showed for this long
ID_TYPES = ("resident_id", "passport", "business_license", "other")


# --- who may act --------------------------------------------------------------------------------------------------


def require_officer(actor: Actor) -> str:
    """The organ (执法机关: the department of the officer grant) of an officer; others are refused."""
    for grant in actor.grants:
        if grant.role == OFFICER:
            return grant.department_code or grant.area_code or ""
    raise PermissionDenied("role_not_allowed", "only enforcement officers may search faces or decide violations")


def check_purpose(purpose: str | None) -> str:
    """The stated purpose of a search or view of personal data, which the audit keeps; required."""
    text = " ".join((purpose or "").split())
    if len(text) < 2:
        raise ValidationFailed("purpose_required", "say why the register is searched or viewed (purpose)")
    return text[:255]


async def _audit(
    actor: Actor, *, action: str, object_type: str, object_id: str, purpose: str, detail: dict | None = None
) -> None:
    """An audit entry for what a staff member did here, with the request it came in."""
    await audit.record(
        actor_type=actor.kind,
        actor_id=actor.id,
        action=action,
        object_type=object_type,
        object_id=object_id,
        purpose=purpose,
        detail=detail,
        request_id=request_id_var.get(),
    )


async def case_id_of(number: str | None) -> int | None:
    """The id of the case a search or violation belongs to, from its number; None when none is given."""
    if not number or not number.strip():
        return None
    case = await Case.filter(number=number.strip()).only("id").first()
    if case is None:
        raise NotFoundError("case_not_found", f"there is no case {number.strip()!r}")
    return case.id


# --- search -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryItem:
    violation_id: int
    type_code: str
    type_name: str
    organ: str
    found_at: datetime
    address: str
    corrected: bool
    outcome: str | None  # the decision; None when not decided yet
    suggested: str | None


@dataclass(frozen=True)
class PartyView:
    id: int
    kind: str
    name: str  # as registered; officers see it, the app shows it masked on the lock screen
    id_type: str
    id_masked: str
    phone_masked: str
    created_at: datetime
    retain_until: datetime
    encodings: int
    history: list[HistoryItem]


@dataclass(frozen=True)
class Candidate:
    party: PartyView
    distance: float
    confidence: float  # 0.5 at the match threshold, → 1 for identical encodings
    level: str  # high / medium / low


@dataclass(frozen=True)
class SearchResult:
    search_id: uuid.UUID
    faces: list[tuple[int, int, int, int]]  # (top, right, bottom, left) in photo pixels, largest first
    chosen: int
    candidates: list[Candidate]
    held_until: datetime


def confidence(distance: float, threshold: float) -> tuple[float, str]:
    """A 0–1 figure and a word for how sure a match is; a heuristic on the distance, not a probability.

    Logistic around the threshold: 0.5 there, 0.95 at 0.12 closer. The same person's photos are typically 0.2–0.45
    apart with dlib's encodings, two people 0.7 and more.
    """
    score = 1.0 / (1.0 + math.exp((distance - threshold) / 0.04))
    level = "high" if distance <= threshold - 0.15 else "medium" if distance <= threshold - 0.07 else "low"
    return round(score, 3), level


async def search_faces(
    *,
    actor: Actor,
    encoding: NDArray[np.float32],
    faces: Sequence[tuple[int, int, int, int]],
    chosen: int,
    purpose: str,
    case_id: int | None,
    register: FaceRegister,
    settings: Settings,
    catalog: Catalog,
) -> SearchResult:
    """Search the register for the encoding of a photo's chosen face; the search is recorded and audited."""
    organ = require_officer(actor)
    per_party = max(1, settings.face_encodings_per_party)
    hits = await register.search(encoding, k=settings.face_candidates * per_party)
    best: dict[int, float] = {}
    for party_id, _, distance in hits:
        if distance < settings.face_match_distance and distance < best.get(party_id, math.inf):
            best[party_id] = distance
    ranked = sorted(best.items(), key=lambda item: item[1])[: settings.face_candidates]
    views = await party_views([p for p, _ in ranked], catalog=catalog)
    candidates = []
    for party_id, distance in ranked:
        if party_id in views:  # erased between the index and this read
            score, level = confidence(distance, settings.face_match_distance)
            candidates.append(Candidate(views[party_id], round(distance, 4), score, level))
    held_until = clock.now() + timedelta(minutes=settings.face_hold_minutes)
    async with in_transaction():
        search = await FaceSearch.create(
            id=uuid.uuid4(),
            officer_id=int(actor.id),
            organ=organ,
            purpose=purpose,
            case_id=case_id,
            faces=[list(f) for f in faces],
            chosen=chosen,
            candidates=[{"party": c.party.id, "distance": c.distance} for c in candidates],
            held_sealed=register.keyring.seal(pack(encoding), label=HELD_LABEL),
            held_until=held_until,
        )
        await FaceSearchHit.bulk_create(
            [FaceSearchHit(search_id=search.id, party_id=c.party.id, officer_id=int(actor.id)) for c in candidates]
        )
        await _audit(
            actor,
            action="enforcement.face_search",
            object_type="face_search",
            object_id=str(search.id),
            purpose=purpose,
            detail={"case_id": case_id, "faces": len(faces), "parties": [c.party.id for c in candidates]},
        )
    return SearchResult(search.id, [tuple(f) for f in faces], chosen, candidates, held_until)  # type: ignore[misc]


async def attach_photo(*, search_id: uuid.UUID, photo_id: str) -> None:
    """The photo of a search, kept as evidence (stored once the search succeeded: a failed one keeps nothing)."""
    await FaceSearch.filter(id=search_id).update(photo_id=photo_id)


async def party_views(party_ids: Sequence[int], *, catalog: Catalog) -> dict[int, PartyView]:
    """Parties with their violation history (newest first), identity masked; no encoding, no audit (callers do)."""
    if not party_ids:
        return {}
    parties = await Party.filter(id__in=list(party_ids))
    violations = await Violation.filter(party_id__in=list(party_ids)).order_by("-found_at", "-id")
    decisions = {d.violation_id: d for d in await Decision.filter(violation_id__in=[v.id for v in violations])}  # type: ignore[attr-defined]
    counts: dict[int, int] = {}
    for party_id in await FaceEncoding.filter(party_id__in=list(party_ids)).values_list("party_id", flat=True):
        counts[int(party_id)] = counts.get(int(party_id), 0) + 1  # type: ignore[call-overload]
    names = catalog.names()
    history: dict[int, list[HistoryItem]] = {}
    for v in violations:
        d = decisions.get(v.id)
        history.setdefault(v.party_id, []).append(  # type: ignore[attr-defined]
            HistoryItem(
                v.id,
                v.type_code,
                names.get(v.type_code, v.type_code),
                v.organ,
                v.found_at,
                v.address,
                v.corrected,
                d.outcome if d else None,
                d.suggested if d else None,
            )
        )
    return {
        p.id: PartyView(
            p.id,
            p.kind,
            p.name,
            p.id_type,
            _masked(p.id_tail),
            _masked(p.phone_tail),
            p.created_at,
            p.retain_until,
            counts.get(p.id, 0),
            history.get(p.id, []),
        )
        for p in parties
    }


def _masked(tail: str) -> str:
    return f"****{tail}" if tail else ""


async def view_party(*, actor: Actor, party_id: int, purpose: str, case_id: int | None, catalog: Catalog) -> PartyView:
    """One party with its history, for an officer; the view is audited with its purpose.

    Not a directory: an officer opens a party their own search showed within a day, or one their organ has a
    violation of. Any other id is "not found", so walking the ids tells nothing.
    """
    organ = require_officer(actor)
    shown = FaceSearchHit.filter(party_id=party_id, officer_id=int(actor.id), at__gte=clock.now() - VIEW_AFTER_SEARCH)
    if not await shown.exists() and not await Violation.filter(party_id=party_id, organ=organ).exists():
        raise NotFoundError("party_not_found", f"there is no party {party_id} among yours")
    views = await party_views([party_id], catalog=catalog)
    if party_id not in views:
        raise NotFoundError("party_not_found", f"there is no party {party_id}")
    await _audit(
        actor,
        action="enforcement.party.read",
        object_type="party",
        object_id=str(party_id),
        purpose=purpose,
        detail={"case_id": case_id},
    )
    return views[party_id]


# --- decide -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewParty:
    """Identity for a party registered with a decision; everything optional but the kind."""

    kind: str = "person"
    name: str = ""
    id_type: str = ""
    id_number: str = ""
    phone: str = ""


@dataclass(frozen=True)
class Place:
    lon: float | None = None  # WGS-84
    lat: float | None = None
    address: str = ""
    grid_code: str | None = None


@dataclass(frozen=True)
class DecisionIn:
    type_code: str
    facts: rules.Facts
    party_id: int | None = None
    search_id: uuid.UUID | None = None
    new_party: NewParty | None = None
    found_at: datetime | None = None
    place: Place = field(default_factory=Place)
    case_id: int | None = None
    photos: tuple[str, ...] = ()
    education: str = ""
    commitment_photo_id: str | None = None
    outcome: str | None = None  # the officer's; None confirms the suggestion
    reason: str = ""  # required when the outcome differs from the suggestion


@dataclass(frozen=True)
class DecisionResult:
    decision_id: int
    violation_id: int
    party_id: int
    party_created: bool
    suggested: str
    outcome: str
    grounds: tuple[str, ...]
    earlier: int  # violations of this type by the party, found by this organ within the window
    correction_deadline: datetime
    kind: ViolationType


def months_before(moment: datetime, months: int) -> datetime:
    """The same day and time `months` calendar months earlier (the month's last day when it has fewer days)."""
    total = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(total, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def months_after(moment: datetime, months: int) -> datetime:
    return months_before(moment, -months)


async def decide(
    *, actor: Actor, data: DecisionIn, register: FaceRegister, settings: Settings, catalog: Catalog
) -> DecisionResult:
    """Record a violation and its decision for a matched, found or new party; returns what the rules suggested.

    A face joins a party only when the search showed that party (or the party has no face yet): a slip of the
    finger or a mistyped identity number must not put one person's face on another's record.
    """
    organ = require_officer(actor)
    keyring = register.keyring
    kind = catalog.type(data.type_code)
    if data.outcome is not None and data.outcome not in rules.OUTCOMES:
        raise ValidationFailed("bad_outcome", f"outcome is one of {', '.join(rules.OUTCOMES)}")
    if data.outcome is not None and not rules.allowed(kind, data.outcome):
        raise ValidationFailed("outcome_not_listed", f"{kind.code} is not on the list for {data.outcome}")
    rules.check_measures(kind, data.facts)
    reason = " ".join(data.reason.split())
    now = clock.now()
    found_at = clock.china_of(data.found_at) if data.found_at else now
    if found_at > now + timedelta(seconds=settings.field_clock_skew_s):
        raise ValidationFailed("time_in_future", "the violation cannot be found after now")
    if found_at < now - timedelta(hours=settings.field_max_age_hours):
        raise ValidationFailed("time_too_old", f"a violation is recorded within {settings.field_max_age_hours} h")
    if data.party_id is None and data.search_id is None and not (data.new_party and data.new_party.id_number):
        raise ValidationFailed("party_required", "name a party: a matched party, an identify result or an identity")
    await _check_photos([*data.photos, *([data.commitment_photo_id] if data.commitment_photo_id else [])], actor)
    if data.search_id is not None and data.party_id is None:
        # Another officer may have registered this person since the search: one person, one record.
        held_now = await _held_encoding(data.search_id, actor=actor, keyring=keyring)
        if held_now is not None:
            for party_id, _, distance in await register.search(held_now, k=settings.face_encodings_per_party):
                if distance < settings.face_match_distance:
                    raise ConflictError("party_matched", f"party {party_id} has this face now; name that party")
    async with in_transaction():
        held = await _held_encoding(data.search_id, actor=actor, keyring=keyring) if data.search_id else None
        if data.search_id is not None and held is None and data.party_id is None:
            raise ConflictError("search_used", "this identify result registered a party already; name that party")
        party, created = await _party_for(data, keyring=keyring, actor=actor, settings=settings, found_at=found_at)
        if held is not None:
            if not created and not await _face_fits(party.id, data.search_id):
                raise ConflictError("face_not_matched", f"the search did not show party {party.id}")
            await _add_encoding(party, held, keyring=keyring, keep=settings.face_encodings_per_party)
            await FaceSearch.filter(id=data.search_id).update(held_sealed=None)
        since = months_before(found_at, settings.enforcement_window_months)
        earlier = await Violation.filter(
            party_id=party.id, type_code=kind.code, organ=organ, found_at__gte=since, found_at__lt=found_at
        ).count()
        suggestion = rules.suggest(kind, data.facts, earlier=earlier)
        outcome = data.outcome or suggestion.outcome
        if outcome != suggestion.outcome and len(reason) < 2:
            raise ValidationFailed("override_needs_reason", "a decision other than the suggestion needs a reason")
        deadline = found_at + timedelta(hours=kind.correction_hours)
        violation = await Violation.create(
            party_id=party.id,
            type_code=kind.code,
            organ=organ,
            officer_id=int(actor.id),
            officer_name=actor.name[:64],
            found_at=found_at,
            lon=data.place.lon,
            lat=data.place.lat,
            address=data.place.address[:255],
            grid_code=data.place.grid_code,
            case_id=data.case_id,
            search_id=data.search_id,
            photos=list(data.photos),
            facts={
                "minor": data.facts.minor,
                "corrected": data.facts.corrected,
                "corrected_promptly": data.facts.corrected_promptly,
                "harm": data.facts.harm,
                "measures": data.facts.measures,
            },
            correction_deadline=deadline,
            corrected=data.facts.corrected,
            corrected_at=now if data.facts.corrected else None,
            education=data.education,
            commitment_photo_id=data.commitment_photo_id,
        )
        decision = await Decision.create(
            violation_id=violation.id,
            suggested=suggestion.outcome,
            outcome=outcome,
            grounds=list(suggestion.grounds),
            override_reason=reason if outcome != suggestion.outcome else "",
            officer_id=int(actor.id),
        )
        last = max(party.last_violation_at or found_at, found_at)
        retain = max(party.retain_until, months_after(last, settings.enforcement_retention_months))
        await Party.filter(id=party.id).update(last_violation_at=last, retain_until=retain)
        await _audit(
            actor,
            action="enforcement.decision",
            object_type="party",
            object_id=str(party.id),
            purpose=f"violation {violation.id}",
            detail={
                "violation": violation.id,
                "type": kind.code,
                "suggested": suggestion.outcome,
                "outcome": outcome,
                "case_id": data.case_id,
                "search": str(data.search_id) if data.search_id else None,
                "party_created": created,
            },
        )
    return DecisionResult(
        decision.id,
        violation.id,
        party.id,
        created,
        suggestion.outcome,
        outcome,
        suggestion.grounds,
        earlier,
        deadline,
        kind,
    )


async def record_correction(*, actor: Actor, violation_id: int, photos: list[str], note: str) -> Violation:
    """The party corrected the violation (整改完成): when, with photos; the decision stays the officer's."""
    organ = require_officer(actor)
    await _check_photos(photos, actor)
    async with in_transaction():
        violation = await Violation.filter(id=violation_id).select_for_update().first()
        if violation is None or violation.organ != organ:
            raise NotFoundError("violation_not_found", f"your organ has no violation {violation_id}")
        if violation.corrected:
            raise ConflictError("already_corrected", "this violation is recorded as corrected already")
        now = clock.now()
        violation.corrected, violation.corrected_at = True, now
        violation.photos = [*violation.photos, *photos]
        if note.strip():
            violation.education = f"{violation.education}\n{note.strip()}".strip()
        await violation.save(update_fields=["corrected", "corrected_at", "photos", "education"])
        await _audit(
            actor,
            action="enforcement.correction",
            object_type="party",
            object_id=str(violation.party_id),  # type: ignore[attr-defined]
            purpose=f"violation {violation.id}",
            detail={"on_time": bool(violation.correction_deadline and now <= violation.correction_deadline)},
        )
    return violation


async def _check_photos(ids: list[str], actor: Actor) -> None:
    """Evidence photos are the officer's own uploads."""
    wanted = set(ids)
    if wanted and await Media.filter(id__in=wanted, owner_type="staff", owner_id=actor.id).count() != len(wanted):
        raise ValidationFailed("unknown_photo", "a photo is not one of your uploads")


async def _held_encoding(search_id: uuid.UUID, *, actor: Actor, keyring: Keyring) -> NDArray[np.float32] | None:
    """The encoding an officer's own identify result still holds; None when a decision already used it."""
    search = await FaceSearch.filter(id=search_id, officer_id=int(actor.id)).select_for_update().first()
    if search is None:
        raise NotFoundError("search_not_found", "no identify result of yours has this id")
    # Used by a decision: held_sealed cleared, held_until kept. Expired: past held_until (cleared or not yet).
    if search.held_until is not None and search.held_until < clock.now():
        raise ConflictError("search_expired", "this identify result has expired; identify again")
    if search.held_sealed is None:
        return None
    return np.frombuffer(keyring.open(search.held_sealed, label=HELD_LABEL), dtype="<f4").astype(np.float32)


async def _face_fits(party_id: int, search_id: uuid.UUID | None) -> bool:
    """A search's face may join a party the search showed, or a party with no face yet."""
    if search_id is not None and await FaceSearchHit.filter(search_id=search_id, party_id=party_id).exists():
        return True
    return not await FaceEncoding.filter(party_id=party_id).exists()


async def _party_for(
    data: DecisionIn, *, keyring: Keyring, actor: Actor, settings: Settings, found_at: datetime
) -> tuple[Party, bool]:
    """The named party (locked), the party with this identity number, or a new one."""
    if data.party_id is not None:
        party = await Party.filter(id=data.party_id).select_for_update().first()
        if party is None:
            raise NotFoundError("party_not_found", f"there is no party {data.party_id}")
        return party, False
    new = data.new_party or NewParty()
    if new.kind not in PARTY_KINDS:
        raise ValidationFailed("bad_party", f"a party's kind is one of {', '.join(PARTY_KINDS)}")
    if new.id_type and new.id_type not in ID_TYPES:
        raise ValidationFailed("bad_party", f"an identity type is one of {', '.join(ID_TYPES)}")
    number = "".join(new.id_number.split()).upper()
    if number and (len(number) < 4 or len(number) > 32):
        raise ValidationFailed("bad_party", "an identity number has 4 to 32 characters")
    if new.id_type == "resident_id" and number and not resident_id_valid(number):
        # A mistyped number would register the same person again, and give them a second first offence.
        raise ValidationFailed("bad_resident_id", "not an 18-character resident ID number with a valid check digit")
    id_hash = keyring.lookup_hash(f"{new.id_type}:{number}") if number else None
    if id_hash:
        known = await Party.filter(id_hash=id_hash).select_for_update().first()
        if known is not None:
            return known, False  # the same person, registered before (perhaps without a face)
    phone = "".join(new.phone.split())
    fields: dict[str, Any] = dict(
        kind=new.kind,
        name=" ".join(new.name.split())[:64],
        id_type=new.id_type if number else "",
        id_sealed=keyring.seal(number.encode(), label=ID_LABEL) if number else None,
        id_hash=id_hash,
        id_tail=number[-4:],
        phone_sealed=keyring.seal(phone.encode(), label=PHONE_LABEL) if phone else None,
        phone_tail=phone[-4:],
        created_by_id=int(actor.id),
        retain_until=months_after(found_at, settings.enforcement_retention_months),
    )
    try:
        async with in_transaction():  # a savepoint: the unique identity hash may lose a race to another decision
            return await Party.create(**fields), True
    except IntegrityError:
        known = await Party.filter(id_hash=id_hash).select_for_update().first()
        if id_hash is None or known is None:
            raise
        return known, False


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def resident_id_valid(number: str) -> bool:
    """A mainland resident ID number (居民身份证号码, GB 11643): 17 digits and an ISO 7064 MOD 11-2 check character."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    return "10X98765432"[sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True)) % 11] == number[17]


async def _add_encoding(party: Party, encoding: NDArray[np.float32], *, keyring: Keyring, keep: int) -> None:
    """Store a new encoding of the party, drop its oldest beyond `keep`; both go into the index change log."""
    row = await FaceEncoding.create(party_id=party.id, sealed=keyring.seal(pack(encoding), label=FACE_LABEL))
    await FaceIndexChange.create(encoding_id=row.id, party_id=party.id, added=True)
    stale = (
        await FaceEncoding.filter(party_id=party.id).order_by("-id").offset(max(1, keep)).values_list("id", flat=True)
    )
    await _remove_encodings(party.id, [int(i) for i in stale])  # type: ignore[call-overload]


async def _remove_encodings(party_id: int, ids: list[int]) -> None:
    if not ids:
        return
    await FaceEncoding.filter(id__in=ids).delete()
    await FaceIndexChange.bulk_create([FaceIndexChange(encoding_id=i, party_id=party_id, added=False) for i in ids])


# --- the party's rights: export and erase; retention -------------------------------------------------------------


async def export_party(
    *, actor: Actor, party_id: int, purpose: str, keyring: Keyring, catalog: Catalog
) -> dict[str, Any]:
    """Everything held about a party, identity in the clear, for a legal request (the encodings only counted)."""
    party = await Party.get_or_none(id=party_id)
    if party is None:
        raise NotFoundError("party_not_found", f"there is no party {party_id}")
    names = catalog.names()
    violations = await Violation.filter(party_id=party_id).order_by("found_at", "id")
    decisions = {d.violation_id: d for d in await Decision.filter(violation_id__in=[v.id for v in violations])}  # type: ignore[attr-defined]
    encodings = await FaceEncoding.filter(party_id=party_id).order_by("id").values_list("id", "created_at")
    shown_in = await FaceSearchHit.filter(party_id=party_id).values_list("search_id", flat=True)
    found_in = await FaceSearch.filter(id__in=list(shown_in)).order_by("at")
    reads = await AuditEntry.filter(object_type="party", object_id=str(party_id)).order_by("at", "id")
    await _audit(
        actor,
        action="enforcement.party.export",
        object_type="party",
        object_id=str(party_id),
        purpose=purpose,
    )

    def opened(sealed: str | None, label: str) -> str:
        return keyring.open(sealed, label=label).decode() if sealed else ""

    return {
        "party": {
            "id": party.id,
            "kind": party.kind,
            "name": party.name,
            "id_type": party.id_type,
            "id_number": opened(party.id_sealed, ID_LABEL),
            "phone": opened(party.phone_sealed, PHONE_LABEL),
            "created_at": party.created_at.isoformat(),
            "last_violation_at": party.last_violation_at.isoformat() if party.last_violation_at else None,
            "retain_until": party.retain_until.isoformat(),
        },
        "face_encodings": {
            "count": len(encodings),
            "stored_at": [at.isoformat() for _, at in encodings],
            "note": "人脸特征值以加密形式保存，仅用于比对，不予导出。",
        },
        "violations": [
            {
                "id": v.id,
                "type": v.type_code,
                "type_name": names.get(v.type_code, v.type_code),
                "organ": v.organ,
                "officer_id": v.officer_id,
                "found_at": v.found_at.isoformat(),
                "address": v.address,
                "lon": v.lon,
                "lat": v.lat,
                "facts": v.facts,
                "photos": v.photos,
                "correction_deadline": v.correction_deadline.isoformat() if v.correction_deadline else None,
                "corrected": v.corrected,
                "education": v.education,
                "commitment_photo": v.commitment_photo_id,
                "decision": (
                    {
                        "suggested": decisions[v.id].suggested,
                        "outcome": decisions[v.id].outcome,
                        "override_reason": decisions[v.id].override_reason,
                        "decided_at": decisions[v.id].decided_at.isoformat(),
                    }
                    if v.id in decisions
                    else None
                ),
            }
            for v in violations
        ],
        "searches_that_found_the_party": [
            {"at": s.at.isoformat(), "officer_id": s.officer_id, "purpose": s.purpose, "case_id": s.case_id}
            for s in found_in
        ],
        "access_log": [
            {"at": e.at.isoformat(), "actor": f"{e.actor_type}:{e.actor_id}", "action": e.action, "purpose": e.purpose}
            for e in reads
        ],
    }


async def erase_party(*, actor: Actor, party_id: int, reason: str) -> dict[str, int]:
    """Delete a party and everything of theirs (legal request, or the retention job); the audit keeps the fact."""
    reason = check_purpose(reason)
    async with in_transaction():
        party = await Party.filter(id=party_id).select_for_update().first()
        if party is None:
            raise NotFoundError("party_not_found", f"there is no party {party_id}")
        counts = await _delete_parties([party_id])
        await _audit(
            actor,
            action="enforcement.party.erase",
            object_type="party",
            object_id=str(party_id),
            purpose=reason,
            detail=counts,
        )
    return counts


async def _delete_parties(party_ids: list[int]) -> dict[str, int]:
    """Delete locked parties with their encodings (logged for the indexes), violations, decisions, the identify
    results that still hold a face shown with them, and (by a job) the photos of their violations and searches."""
    encodings = await FaceEncoding.filter(party_id__in=party_ids).values_list("id", "party_id")
    if encodings:
        await FaceIndexChange.bulk_create(
            [FaceIndexChange(encoding_id=e, party_id=p, added=False) for e, p in encodings]
        )
    violations = await Violation.filter(party_id__in=party_ids).values_list(
        "id", "photos", "commitment_photo_id", "search_id"
    )
    # The searches that showed the party, and those that registered it (their photo is the party's face too).
    searches = {*await FaceSearchHit.filter(party_id__in=party_ids).values_list("search_id", flat=True)}
    searches |= {v[3] for v in violations if v[3]}
    photos = {p for _, shown, letter, _ in violations for p in [*shown, letter] if p}
    photos |= set(
        await FaceSearch.filter(id__in=list(searches), photo_id__not_isnull=True).values_list("photo_id", flat=True)
    )
    await FaceSearch.filter(id__in=list(searches)).update(held_sealed=None)
    decisions = await Decision.filter(violation_id__in=[v[0] for v in violations]).delete()
    await FaceEncoding.filter(party_id__in=party_ids).delete()
    await Violation.filter(party_id__in=party_ids).delete()
    await FaceSearchHit.filter(party_id__in=party_ids).delete()
    # Searches and audit entries that showed the party keep its number, which now points at nothing.
    parties = await Party.filter(id__in=party_ids).delete()
    if photos:
        # Files leave the store by a job (media/ owns the store); it is written here, so it cannot be lost.
        key = f"erase_media:{min(party_ids)}:{len(party_ids)}:{uuid.uuid4().hex}"
        await outbox.add(task="erase_media", args={"media_ids": sorted(photos)}, dedupe_key=key)
    return {
        "parties": parties,
        "encodings": len(encodings),
        "violations": len(violations),
        "decisions": decisions,
        "photos": len(photos),
    }


async def retention_job(*, progress: ProgressSink | None = None) -> dict[str, int]:
    """The job `face_retention`: delete parties past retention, drop held encodings, prune the index change log.

    Runs nightly; safe to run twice (it deletes only what is due, and nothing is due twice). Each batch locks its
    parties and checks their time again, so a decision that renewed a party meanwhile keeps it.
    """
    now = clock.now()
    due = [int(i) for i in await Party.filter(retain_until__lt=now).values_list("id", flat=True)]  # type: ignore[call-overload]
    deleted = {"parties": 0, "encodings": 0, "violations": 0, "decisions": 0, "photos": 0}
    progress = progress or NoProgress()
    progress.phase("parties past retention", len(due))
    for start in range(0, len(due), 500):
        async with in_transaction():
            locked = await Party.filter(id__in=due[start : start + 500], retain_until__lt=now).select_for_update()
            counts = await _delete_parties([p.id for p in locked]) if locked else {}
        deleted = {k: deleted[k] + counts.get(k, 0) for k in deleted}
        progress.advance(min(500, len(due) - start))
    if deleted["parties"]:
        await audit.record(
            actor_type="system",
            actor_id="face_retention",
            action="enforcement.retention",
            object_type="party",
            object_id="*",
            purpose="retention period ended",
            detail={**deleted, "party_ids": due[:1000]},
        )
    held = await drop_held_job()
    # The newest change is never pruned: a process compares its position with the oldest row left.
    newest = await FaceIndexChange.all().order_by("-seq").only("seq").first()
    old_changes = FaceIndexChange.filter(at__lt=now - timedelta(days=CHANGE_LOG_DAYS))
    pruned = await old_changes.filter(seq__lt=newest.seq).delete() if newest else 0
    log.info("face retention", extra={"fields": {**deleted, "held_dropped": held, "changes_pruned": pruned}})
    return {**deleted, "held_dropped": held, "changes_pruned": pruned}


async def drop_held_job() -> int:
    """The job `face_holds` (every ten minutes): identify results past their time lose the face they held."""
    return await FaceSearch.filter(held_until__lt=clock.now(), held_sealed__not_isnull=True).update(held_sealed=None)


async def rekey_job(
    *, batch: int = 1000, keyring: Keyring | None = None, progress: ProgressSink | None = None
) -> dict[str, int]:
    """The job `face_rekey`: seal again with the current key every value still under an older one.

    Safe to run twice and to interrupt: each row is re-sealed on its own, and only rows under another key are read.
    """
    ring = keyring or keyring_from(get_settings())
    progress = progress or NoProgress()
    prefix = f"{ring.current}."
    counts = {"encodings": 0, "parties": 0, "searches": 0}
    progress.phase("face encodings", await FaceEncoding.exclude(sealed__startswith=prefix).count())
    last = 0
    while True:
        # Walk by id: each page is read once, whatever its rows' keys.
        rows = await FaceEncoding.filter(id__gt=last).order_by("id").limit(batch).values_list("id", "sealed")
        if not rows:
            break
        last = rows[-1][0]
        for row_id, sealed in rows:
            if sealed.startswith(prefix):
                continue
            # Only if unchanged since read: a row re-sealed or deleted meanwhile is left as it is.
            counts["encodings"] += await FaceEncoding.filter(id=row_id, sealed=sealed).update(
                sealed=ring.seal(ring.open(sealed, label=FACE_LABEL), label=FACE_LABEL)
            )
            progress.advance()
    stale = Q(id_sealed__not_isnull=True) & ~Q(id_sealed__startswith=prefix)
    stale |= Q(phone_sealed__not_isnull=True) & ~Q(phone_sealed__startswith=prefix)
    progress.phase("identity numbers and phones", await Party.filter(stale).count())
    last = 0
    while True:
        parties = (
            await Party.filter(stale, id__gt=last).order_by("id").limit(batch).only("id", "id_sealed", "phone_sealed")
        )
        if not parties:
            break
        last = parties[-1].id
        for party in parties:
            progress.advance()
            changes: dict[str, str] = {}
            for column, label in (("id_sealed", ID_LABEL), ("phone_sealed", PHONE_LABEL)):
                sealed = getattr(party, column)
                if sealed and not sealed.startswith(prefix):
                    changes[column] = ring.seal(ring.open(sealed, label=label), label=label)
            if changes:
                unchanged = {column: getattr(party, column) for column in changes}
                counts["parties"] += await Party.filter(id=party.id, **unchanged).update(**changes)
    holding = FaceSearch.filter(held_sealed__not_isnull=True).exclude(held_sealed__startswith=prefix)
    for search_id, held in await holding.values_list("id", "held_sealed"):
        # Filtered on the old value: a hold a decision used (cleared) meanwhile is not brought back.
        counts["searches"] += await FaceSearch.filter(id=search_id, held_sealed=held).update(
            held_sealed=ring.seal(ring.open(held, label=HELD_LABEL), label=HELD_LABEL)
        )
    log.info("face keys rotated", extra={"fields": {**counts, "key": ring.current}})
    return counts
