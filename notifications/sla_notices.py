"""SLA notices by SMS to departments' duty mobiles: a reminder before a stage's deadline, an overdue notice after."""

from __future__ import annotations

from core import clock
from core.cases.messages import STAGE_NAMES
from core.cases.models import Case
from core.errors import TongguanError
from core.org.models import Department
from notifications.service import notify


async def notify_departments(*, case_id: int, kind: str, departments: list[str], key: str) -> int:
    """Queue the reminder (kind remind) or overdue notice (kind escalate) for each department; returns how many."""
    case = await Case.get_or_none(id=case_id)
    if case is None:
        return 0
    stage = STAGE_NAMES.get(case.stage or "", case.stage or "")
    if kind == "remind":
        deadline = clock.china(case.stage_deadline).strftime("%m-%d %H:%M") if case.stage_deadline else ""
        template, params = "sla_reminder", {"number": case.number, "stage": stage, "deadline": deadline}
    else:
        template, params = "sla_overdue", {"number": case.number, "stage": stage}
    queued = 0
    for department in await Department.filter(code__in=departments).exclude(duty_mobile=""):
        try:
            await notify(
                channel="sms",
                recipient=department.duty_mobile,
                template=template,
                params=params,
                dedupe_key=f"{key}:{department.code}",
                urgent=kind == "escalate",
                to_citizen=False,
            )
            queued += 1
        except TongguanError:
            continue  # a malformed duty mobile in the reference data: the other departments still hear
    return queued
