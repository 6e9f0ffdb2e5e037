"""Scheduled reminders: outdoor-ad permits that expire soon (30 days before, and again 7 days before)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from core.permits.models import AdCompany, AdPermit
from core.progress import NoProgress, ProgressSink
from notifications.service import Planned, notify_many

FIRST_NOTICE_DAYS = 30
SECOND_NOTICE_DAYS = 7
BATCH = 2000


@dataclass
class ReminderRun:
    permits: int = 0
    planned: int = 0
    queued: int = 0
    refused: dict[str, int] = field(default_factory=dict)


def stage_for(days_left: int, *, first: int = FIRST_NOTICE_DAYS, second: int = SECOND_NOTICE_DAYS) -> int | None:
    """Which notice a permit with `days_left` is due for: the 30-day one, the 7-day one, or none."""
    if 0 <= days_left <= second:
        return second
    if days_left <= first:
        return first
    return None


async def remind_ads(
    *, today: date, dry_run: bool = False, first_days: int = FIRST_NOTICE_DAYS, progress: ProgressSink | None = None
) -> ReminderRun:
    """Queue the expiry notices due today: an SMS to the company contact and, when the contact has the
    mini-program bound, a subscribe message. One per permit, expiry date and stage, however often this runs."""
    progress = progress or NoProgress()
    run = ReminderRun()
    query = AdPermit.filter(valid_to__gte=today, valid_to__lte=today + timedelta(days=first_days)).order_by("id")
    total = await query.count()
    progress.phase("ad permits expiring", total=total)
    companies: dict[int, AdCompany] = {}
    for offset in range(0, total, BATCH):
        permits = await query.offset(offset).limit(BATCH)
        missing = {p.company_id for p in permits} - companies.keys()
        companies.update({c.id: c for c in await AdCompany.filter(id__in=list(missing))})
        planned = []
        for permit in permits:
            stage = stage_for((permit.valid_to - today).days, first=first_days)
            if stage is None:
                continue
            company = companies[permit.company_id]
            params = {
                "company": company.name[:35],
                "site": permit.site[:20],
                "valid_to": permit.valid_to.isoformat(),
                "days": str((permit.valid_to - today).days),
            }
            key = f"ad_permit:{permit.id}:{permit.valid_to.isoformat()}:{stage}"
            planned.append(Planned("sms", company.contact_phone, "ad_permit_expiring", params, f"{key}:sms"))
            if company.openid:
                planned.append(Planned("wechat_subscribe", company.openid, "ad_permit_expiring", params, f"{key}:wx"))
        run.permits += len(permits)
        run.planned += len(planned)
        queued, refused = await notify_many(planned, dry_run=dry_run)
        run.queued += queued
        for _, code in refused:
            run.refused[code] = run.refused.get(code, 0) + 1
        progress.advance(len(permits))
    return run
