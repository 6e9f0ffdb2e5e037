"""Job functions by name: what an outbox entry's `task` refers to. Each takes ids and can run twice."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from core.cases.flows import sla_sweep
from core.enforcement.service import drop_held_job, rekey_job, retention_job
from core.muck.service import report_alert_job
from core.patrols.summary import patrol_days_job
from core.reports.flows import process_report
from jobs.chat import chat_message
from media.derivatives import derivatives_job
from media.public import public_job
from media.service import erase_media_job, stale_uploads_job
from notifications.case_notices import notify_reporters
from notifications.service import reconcile_unknown, send_notice, send_notices, settle_stuck
from notifications.sla_notices import notify_departments

TASKS: dict[str, Callable[..., Awaitable[Any]]] = {
    "process_report": process_report,
    "sla_sweep": sla_sweep,
    "make_derivatives": derivatives_job,
    "make_public": public_job,
    "drop_stale_uploads": stale_uploads_job,
    "send_notice": send_notice,
    "case_notices": notify_reporters,
    "sla_notices": notify_departments,
    "settle_stuck_notices": settle_stuck,
    "reconcile_notices": reconcile_unknown,
    "chat_message": chat_message,
    "muck_report": report_alert_job,
    "patrol_days": patrol_days_job,
    "face_retention": retention_job,
    "face_rekey": rekey_job,
    "face_holds": drop_held_job,
    "erase_media": erase_media_job,
}

# Tasks whose entries in one batch run as one call (the argument named here collected into a list): sending
# notices checks the rules for a whole batch in a few queries.
BATCHED: dict[str, tuple[Callable[[list[Any]], Awaitable[Any]], str]] = {
    "send_notice": (send_notices, "dedupe_key"),
}
