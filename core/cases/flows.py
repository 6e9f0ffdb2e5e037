"""Background flows on cases: the SLA sweep that reminds before a deadline and escalates (提级) after it."""

from __future__ import annotations

import logging
from datetime import datetime

from tortoise.transactions import in_transaction

from core import clock
from core.cases.models import Case
from core.cases.service import Work
from core.cases.workflow import Actor
from core.outbox import service as outbox

log = logging.getLogger("tongguan.sla")
SWEEP_BATCH = 500
SLA_NOTICES_TASK = "sla_notices"


async def sla_sweep(*, now: str | None = None) -> dict[str, int]:
    """Remind cases whose warning point passed and escalate overdue ones; safe to run twice or at once."""
    moment = clock.now()
    if now:
        moment = clock.china_of(datetime.fromisoformat(now))
    warn = (
        await Case.filter(
            is_open=True,
            stage_warned=False,
            paused_at__isnull=True,
            stage_warn_at__lte=moment,
            stage_deadline__gt=moment,
        )
        .limit(SWEEP_BATCH)
        .values_list("id", "stage_seq")
    )
    late = (
        await Case.filter(is_open=True, stage_overdue=False, paused_at__isnull=True, stage_deadline__lte=moment)
        .limit(SWEEP_BATCH)
        .values_list("id", "stage_seq")
    )
    done = {"reminded": 0, "escalated": 0, "skipped": 0, "failed": 0}
    for case_id, seq in warn:
        done[await _step(case_id, seq, "remind", moment)] += 1
    for case_id, seq in late:
        done[await _step(case_id, seq, "escalate", moment)] += 1
    if done["reminded"] or done["escalated"] or done["failed"]:
        log.info("sla sweep", extra={"fields": done})
    return done


async def _step(case_id: int, stage_seq: int, action: str, moment: datetime) -> str:
    """One case in its own transaction: a failure is logged and the sweep goes on with the next case."""
    try:
        async with in_transaction() as conn:
            work = await Work.load(case_id=case_id, conn=conn)
            work.now = moment
            c = work.case
            # Re-read under the row lock: another sweep, or a person's action, may have got here first.
            if c.stage_seq != stage_seq or c.paused_at is not None or not c.is_open:
                return "skipped"
            if action == "remind" and c.stage_warned:
                return "skipped"
            if action == "escalate" and c.stage_overdue:
                return "skipped"
            system = Actor.system()
            await work.apply(action, system)
            departments = [c.department_id] if c.department_id else []
            if action == "escalate":
                superior = work.events[-1].detail.get("to")
                departments += [superior] if superior else []
                await work.apply("supervise", system, note="超时督办", detail={"type": "overdue"})
            await work.save()
            # The departments' duty phones hear of it (the notifications job sends the SMS).
            key = f"{SLA_NOTICES_TASK}:{case_id}:{stage_seq}:{action}"
            args = {"case_id": case_id, "kind": action, "departments": departments, "key": key}
            await outbox.add(task=SLA_NOTICES_TASK, args=args, dedupe_key=key, conn=conn)
    except Exception:
        log.exception("sla step failed", extra={"fields": {"case_id": case_id, "action": action}})
        return "failed"
    return "reminded" if action == "remind" else "escalated"
