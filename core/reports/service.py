"""Taking in a report: validate, refuse what cannot be right, store it with its follow-up job, once."""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from core import clock
from core.catalog.models import Subclass
from core.catalog.service import active_catalog
from core.db import on_open
from core.errors import ConflictError, NotFoundError, ValidationFailed
from core.geo.datum import Datum
from core.geo.service import get_spatial_index
from core.media.models import Media
from core.outbox import service as outbox
from core.outbox.models import OutboxEntry
from core.reports.models import SOURCES, Report

URGENCIES = ("urgent", "normal", "routine")
REPORTER_TYPES = ("citizen", "staff", "system")
MAX_TEXT = 2000
MAX_PHOTOS = 9
_COMPONENT_CODE = re.compile(r"\d{16}")
_SUBCLASS_REF = re.compile(r"(component|event):(\d{4})")
_MEDIA_ID = re.compile(r"[A-Za-z0-9_-]{1,80}")
PROCESS_TASK = "process_report"
SUBCLASS_CACHE_S = 60.0


@dataclass(frozen=True)
class NewReport:
    """What a channel hands over; `subclass` is "event:0102" / "component:0101" when the reporter chose one."""

    source: str
    reporter_type: str
    reporter_id: str
    lon: float
    lat: float
    datum: str = "wgs84"
    text: str = ""
    address: str = ""
    photos: Sequence[str] = ()
    subclass: str | None = None
    component_code: str | None = None
    urgency: str = "normal"
    anonymous: bool = False
    accuracy_m: float | None = None
    idempotency_key: str | None = None
    notify_sms: bool = False  # the reporter asked for progress by SMS too
    flagged: bool = False  # a person should look at it (e.g. content review)
    media_url: str | None = None  # a photo kept elsewhere (Open311), not fetched

    def content_hash(self) -> str:
        """A digest of the content, to tell a replayed submission from another one under the same key."""
        body = {
            "text": self.text,
            "address": self.address,
            "photos": list(self.photos),
            "lon": round(self.lon, 7),
            "lat": round(self.lat, 7),
            "datum": self.datum,
            "subclass": self.subclass,
            "component_code": self.component_code,
            "urgency": self.urgency,
            "anonymous": self.anonymous,
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


async def submit_report(new: NewReport) -> tuple[Report, bool]:
    """Store a report and its processing job in one transaction; returns (report, created).

    A replay of the same idempotency key with the same content returns the first report; with other content it
    is refused (409). Bad input is refused before anything is written.
    """
    subclass_id = await _validate(new)
    digest = new.content_hash()
    # Insert first: a replayed key is rare, so it is found by the unique index refusing the insert, not by a
    # lookup before every new report.
    try:
        async with in_transaction() as conn:
            report = await Report.create(
                source=new.source,
                reporter_type=new.reporter_type,
                reporter_id=new.reporter_id,
                anonymous=new.anonymous,
                idempotency_key=new.idempotency_key or None,
                content_hash=digest,
                text=new.text.strip(),
                address=new.address.strip(),
                photos=list(new.photos),
                datum=new.datum,
                raw_lon=new.lon,
                raw_lat=new.lat,
                accuracy_m=new.accuracy_m,
                subclass_id=subclass_id,
                component_code=new.component_code or None,
                urgency=new.urgency,
                notify_sms=new.notify_sms,
                flagged=new.flagged,
                media_url=new.media_url or None,
                created_at=clock.now(),
                using_db=conn,
            )
            await outbox.add(
                task=PROCESS_TASK, args={"report_id": report.id}, dedupe_key=f"{PROCESS_TASK}:{report.id}", conn=conn
            )
    except IntegrityError:
        # The key was used before (a retry), or by a request at the same moment that won the unique index.
        existing = await existing_report(new) if new.idempotency_key else None
        if existing is None:
            raise
        return _same_or_conflict(existing, digest), False
    return report, True


async def existing_report(new: NewReport) -> Report | None:
    """The report stored earlier under the same idempotency key of the same reporter, if any."""
    return await Report.get_or_none(
        source=new.source,
        reporter_type=new.reporter_type,
        reporter_id=new.reporter_id,
        idempotency_key=new.idempotency_key,
    )


def _same_or_conflict(existing: Report, digest: str) -> Report:
    if existing.content_hash != digest:
        raise ConflictError(
            "idempotency_key_reused", "this idempotency key was used for a different report; use a new key"
        )
    return existing


async def _validate(new: NewReport) -> int | None:
    """Refuse what cannot be right; returns the chosen subclass id (None when the text must be classified)."""
    if new.source not in SOURCES:
        raise ValidationFailed("unknown_source", f"source must be one of {', '.join(SOURCES)}")
    if new.reporter_type not in REPORTER_TYPES:
        raise ValidationFailed("unknown_reporter_type", f"reporter_type must be one of {', '.join(REPORTER_TYPES)}")
    if new.urgency not in URGENCIES:
        raise ValidationFailed("unknown_urgency", f"urgency must be one of {', '.join(URGENCIES)}")
    if len(new.text) > MAX_TEXT:
        raise ValidationFailed("text_too_long", f"the description may have at most {MAX_TEXT} characters")
    if len(new.photos) > MAX_PHOTOS or not all(isinstance(p, str) and _MEDIA_ID.fullmatch(p) for p in new.photos):
        raise ValidationFailed("bad_photos", f"photos must be at most {MAX_PHOTOS} media ids")
    if new.idempotency_key is not None and not 8 <= len(new.idempotency_key) <= 64:
        raise ValidationFailed("bad_idempotency_key", "an idempotency key has 8 to 64 characters")
    if new.component_code is not None and not _COMPONENT_CODE.fullmatch(new.component_code):
        raise ValidationFailed("bad_component_code", "a component code has 16 digits")
    if not new.text.strip() and not new.photos and new.subclass is None:
        raise ValidationFailed("empty_report", "a report needs a description, a photo or a problem type")
    try:
        datum = Datum(new.datum)
    except ValueError:
        raise ValidationFailed("unknown_datum", f"datum must be one of {', '.join(d.value for d in Datum)}") from None
    if not (math.isfinite(new.lon) and math.isfinite(new.lat) and -180 <= new.lon <= 180 and -90 <= new.lat <= 90):
        raise ValidationFailed("bad_point", "longitude and latitude must be finite degrees")
    if new.photos:
        await check_photos(new.photos, owner_type=new.reporter_type, owner_id=new.reporter_id)
    index = await get_spatial_index()
    if index.locate(new.lon, new.lat, datum) is None:
        raise ValidationFailed("outside_city", "the point lies outside every unit grid of the city")
    if new.subclass is None:
        return None
    return await _subclass_id(new.subclass)


async def check_photos(photos: Sequence[str], *, owner_type: str, owner_id: str) -> None:
    """Every photo must be an upload of this account: nobody attaches another person's photos."""
    wanted = set(photos)
    owned = await Media.filter(id__in=list(wanted), owner_type=owner_type, owner_id=owner_id).count()
    if owned != len(wanted):
        raise ValidationFailed("unknown_photo", "a photo is not one of your uploads; upload it first")


async def _subclass_id(ref: str) -> int:
    """The active catalog's subclass for "kind:code" (e.g. event:0102)."""
    match = _SUBCLASS_REF.fullmatch(ref)
    if match is None:
        raise ValidationFailed("unknown_subclass", "subclass is written kind:code, e.g. event:0102")
    ids = await _subclass_ids.get()
    if ref not in ids:
        raise NotFoundError("unknown_subclass", f"there is no subclass {ref} in the active catalog")
    return ids[ref]


class _SubclassIds:
    """ "kind:code" → id in the active catalog, re-read every minute (every report asks; activation is rare)."""

    def __init__(self) -> None:
        self._read_at = -math.inf
        self._ids: dict[str, int] = {}

    async def get(self) -> dict[str, int]:
        if time.monotonic() - self._read_at > SUBCLASS_CACHE_S:
            catalog = await active_catalog()
            rows = await Subclass.filter(catalog=catalog).values_list("kind", "code", "id")
            self._ids, self._read_at = {f"{kind}:{code}": id_ for kind, code, id_ in rows}, time.monotonic()
        return self._ids

    def forget(self) -> None:
        self._read_at = -math.inf


_subclass_ids = _SubclassIds()
on_open(_subclass_ids.forget)


async def classify_queued_report(*, report_id: int, subclass: str, actor_id: str) -> Report:
    """A dispatcher gives a waiting report its subclass; the pipeline then runs for it again."""
    subclass_id = await _subclass_id(subclass)
    async with in_transaction() as conn:
        report = await Report.filter(id=report_id).using_db(conn).first()
        if report is None:
            raise NotFoundError("report_not_found", f"report {report_id} does not exist")
        if report.status != "queued":
            raise ConflictError("report_not_queued", f"report {report_id} is {report.status}, not waiting")
        report.subclass_id, report.status = subclass_id, "received"
        report.classify_rule, report.classify_confidence = f"manual:staff {actor_id}", 1.0
        await report.save(using_db=conn)
        attempt = await OutboxEntry.filter(dedupe_key__startswith=f"{PROCESS_TASK}:{report_id}").using_db(conn).count()
        await outbox.add(
            task=PROCESS_TASK,
            args={"report_id": report_id},
            dedupe_key=f"{PROCESS_TASK}:{report_id}:{attempt + 1}",
            conn=conn,
        )
    return report
