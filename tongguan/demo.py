"""`tongguan demo`: a few simulated days of a city's closed loop on the embedded default, in seconds.

Citizens and inspectors report (some reports repeat a problem already reported, some points lie outside the
city and are refused); the pipeline turns reports into cases; inspectors verify and check, dispatchers accept,
register, dispatch and close, department crews fix (some late, some asking for an extension, some failing the
check and reworking); the SLA sweep reminds and escalates. Every step goes through the same services as the
API; only the clock is simulated, hour by hour.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import shapely

from core import clock
from core.accounts.models import StaffAccount, StaffRole
from core.cases import service as cases
from core.cases.flows import sla_sweep
from core.cases.models import Case, CaseTask
from core.cases.workflow import Actor, RoleGrant, Status
from core.catalog.models import Subclass
from core.catalog.service import active_catalog
from core.errors import TongguanError
from core.geo.synth import random_points_in
from core.notices.models import Notice
from core.regions.models import UnitGrid
from core.reports.models import Report
from core.reports.service import NewReport, submit_report
from core.settings import Settings
from jobs.embedded import EmbeddedRunner

CITIZEN_SOURCES = ("miniapp", "miniapp", "official_account", "hotline")
DUPLICATE_SHARE = 0.12
OUTSIDE_SHARE = 0.03
UNTYPED_SHARE = 0.3  # citizens who describe the problem without choosing a type
NOT_FOUND_SHARE = 0.08  # the inspector finds nothing on the spot
REWORK_SHARE = 0.12  # the check fails and the department must go back
EXTENSION_SHARE = 0.08
SLOW_SHARE = 0.15  # crews that take longer than the limit
RATE_SHARE = 0.6


@dataclass
class Cast:
    """The people of the simulation, as workflow actors."""

    dispatcher: Actor
    chief: Actor
    inspectors: dict[int, Actor]
    handlers: dict[str, Actor]
    fallback_inspector: Actor


@dataclass
class Tally:
    reports: int = 0
    refused: int = 0
    actions: int = 0
    refused_actions: int = 0
    plans: dict[int, datetime] = field(default_factory=dict)  # case id → when its crew reports the fix


async def _cast() -> Cast:
    grants: dict[int, list[RoleGrant]] = {}
    for staff_id, role, department, area in await StaffRole.all().values_list(
        "staff_id", "role", "department_id", "area_code"
    ):
        grants.setdefault(staff_id, []).append(RoleGrant(role, department, area))
    names = dict(await StaffAccount.filter(active=True).values_list("id", "display_name"))

    def actor(staff_id: int) -> Actor:
        return Actor(kind="staff", id=str(staff_id), name=names.get(staff_id, ""), grants=tuple(grants[staff_id]))

    by_role: dict[str, list[int]] = {}
    for staff_id, roles in grants.items():
        for grant in roles:
            by_role.setdefault(grant.role, []).append(staff_id)
    city_wide = [i for i in by_role.get("dispatcher", []) if any(not g.area_code for g in grants[i])]
    chiefs = by_role.get("duty_chief", [])
    if not city_wide or not chiefs or not by_role.get("inspector"):
        raise TongguanError("demo_needs_staff", "the demo needs a city-wide dispatcher, a duty chief and inspectors")
    inspectors = {i: actor(i) for i in by_role["inspector"]}
    handlers = {g.department_code: actor(i) for i in by_role.get("handler", []) for g in grants[i] if g.department_code}
    return Cast(
        dispatcher=actor(city_wide[0]),
        chief=actor(chiefs[0]),
        inspectors=inspectors,
        handlers=handlers,
        fallback_inspector=next(iter(inspectors.values())),
    )


async def run_demo(
    *,
    settings: Settings,
    reports: int,
    days: int,
    seed: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Simulate `days` days ending now with about `reports` reports; returns the summary figures."""
    rng = random.Random(seed)
    cast = await _cast()
    catalog = await active_catalog()
    subclasses = await Subclass.filter(catalog=catalog).values_list("id", "kind", "code", "name", "keywords")
    grids = await UnitGrid.all().order_by("code").values_list("code", "geometry")
    geoms = shapely.from_geojson(np.asarray([g[1] for g in grids], dtype=object))
    np_rng = np.random.default_rng(seed)
    runner = EmbeddedRunner(settings)
    tally = Tally()
    hours = days * 24
    start = clock.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours)
    per_hour = _hourly_counts(reports, hours, rng)
    recent: list[NewReport] = []
    first_report_id = await Report.all().order_by("-id").first()
    first_id = first_report_id.id + 1 if first_report_id else 1
    first_case = await Case.all().order_by("-id").first()
    first_case_id = first_case.id + 1 if first_case else 1
    try:
        for hour in range(hours + 1):
            moment = start + timedelta(hours=hour)
            clock.simulate(moment)
            n = per_hour[hour] if hour < hours else 0
            lons, lats = random_points_in(geoms, np_rng.integers(0, len(grids), n), np_rng, decimals=6)
            for i in range(n):
                new = _new_report(rng, subclasses, float(lons[i]), float(lats[i]), recent, hour, i)
                recent = ([*recent, new])[-50:]
                tally.reports += 1
                try:
                    await submit_report(new)
                except TongguanError:
                    tally.refused += 1
            await runner.run_pending()
            await _work_the_queues(rng, cast, tally, moment, first_case_id)
            await sla_sweep()
            await runner.run_pending()
            if progress:
                progress(hour, hours)
    finally:
        clock.simulate(None)
    return await _summary(tally, first_id, first_case_id, start)


def _hourly_counts(total: int, hours: int, rng: random.Random) -> list[int]:
    """Reports per hour: busy daytime, quiet nights."""
    weights = [3.0 if 8 <= (h % 24) < 20 else 0.5 for h in range(hours)]
    counts = [0] * (hours + 1)
    for h in rng.choices(range(hours), weights=weights, k=total):
        counts[h] += 1
    return counts


def _new_report(
    rng: random.Random, subclasses: list, lon: float, lat: float, recent: list[NewReport], hour: int, i: int
) -> NewReport:
    key = f"demo-{hour:05d}-{i:04d}-{rng.randrange(1 << 30):x}"
    if recent and rng.random() < DUPLICATE_SHARE:
        # Someone else reports the same problem a few metres away.
        same = rng.choice(recent)
        return NewReport(
            **{**same.__dict__, "reporter_id": str(rng.randrange(1, 5000)), "idempotency_key": key},
        )
    if rng.random() < OUTSIDE_SHARE:
        lon, lat = lon + 1.5, lat + 1.5  # far outside the city: the intake refuses it
    _id, kind, code, name, keywords = rng.choice(subclasses)
    phrase = rng.choice(list(keywords) or [name])
    citizen = rng.random() < 0.7
    untyped = citizen and rng.random() < UNTYPED_SHARE
    return NewReport(
        source=rng.choice(CITIZEN_SOURCES) if citizen else "field_app",
        reporter_type="citizen" if citizen else "staff",
        reporter_id=str(rng.randrange(1, 5000)),
        lon=lon,
        lat=lat,
        text=f"{phrase}，请尽快处理",
        subclass=None if untyped else f"{kind}:{code}",
        urgency=rng.choices(("urgent", "normal", "routine"), weights=(1, 6, 3))[0],
        idempotency_key=key,
    )


async def _act(tally: Tally, case_id: int, action: str, actor: Actor, **kwargs) -> bool:
    tally.actions += 1
    try:
        await cases.act(case_id=case_id, action=action, actor=actor, **kwargs)
    except TongguanError:
        tally.refused_actions += 1
        return False
    return True


async def _work_the_queues(rng: random.Random, cast: Cast, tally: Tally, now: datetime, first_case: int) -> None:
    """One simulated hour of everyone's work on the cases of this demo run."""
    mine = Case.filter(id__gte=first_case, is_open=True)
    for task in await CaseTask.filter(case_id__gte=first_case, status="open", kind="verify"):
        inspector = cast.inspectors.get(task.inspector_id or 0, cast.fallback_inspector)
        result = "not_found" if rng.random() < NOT_FOUND_SHARE else "confirmed"
        await _act(tally, task.case_id, "verify", inspector, detail={"result": result})
    for case in await mine.filter(status=Status.PENDING_ACCEPT):
        await _act(tally, case.id, "accept", cast.dispatcher)
    for case in await mine.filter(status=Status.ACCEPTED):
        if case.verified is False:
            await _act(tally, case.id, "reject", cast.dispatcher, note="现场核实未发现问题")
        elif case.stage == "register":
            await _act(tally, case.id, "register", cast.dispatcher)
    for case in await mine.filter(status=Status.REGISTERED):
        await _act(tally, case.id, "dispatch", cast.dispatcher)
    for case in await mine.filter(status__in=(Status.DISPATCHED, Status.PROCESSING)):
        await _crew(rng, cast, tally, case, now)
    for case in await mine.filter(status=Status.FIXED):
        task = await CaseTask.filter(case_id=case.id, kind="check", status="open").first()
        inspector = cast.inspectors.get((task.inspector_id if task else 0) or 0, cast.fallback_inspector)
        if rng.random() < REWORK_SHARE:
            await _act(tally, case.id, "check_fail", inspector, note="现场仍未处理到位")
            tally.plans.pop(case.id, None)
        else:
            await _act(tally, case.id, "check_pass", inspector)
    for case in await mine.filter(status=Status.CHECKED):
        if await _act(tally, case.id, "close", cast.dispatcher) and rng.random() < RATE_SHARE:
            await _rate(rng, tally, case)


async def _crew(rng: random.Random, cast: Cast, tally: Tally, case: Case, now: datetime) -> None:
    crew = cast.handlers.get(case.department_id or "")
    if crew is None:
        return
    if case.paused_at is not None:
        approver = cast.chief if case.extensions else cast.dispatcher
        await _act(tally, case.id, "approve_extension", approver)
        return
    plan = tally.plans.get(case.id)
    if plan is None:
        # Most crews finish within the limit; some take longer than allowed.
        allowed = (case.stage_deadline - now).total_seconds() / 3600 if case.stage_deadline else 24
        factor = rng.uniform(1.1, 2.0) if rng.random() < SLOW_SHARE else rng.uniform(0.1, 0.8)
        tally.plans[case.id] = plan = now + timedelta(hours=max(1.0, allowed * factor))
        if case.status == Status.DISPATCHED:
            await _act(tally, case.id, "start", crew)
        if rng.random() < EXTENSION_SHARE and case.stage_unit:
            amount = 1 if case.stage_unit == "working_day" else 4
            await _act(tally, case.id, "request_extension", crew, note="需协调材料", detail={"amount": amount})
        return
    if now >= plan:
        await _act(tally, case.id, "feedback", crew, note="已处置完毕")


async def _rate(rng: random.Random, tally: Tally, case: Case) -> None:
    reporter = await Report.filter(case_id=case.id, reporter_type="citizen").order_by("id").first()
    if reporter is None:
        return
    satisfaction = rng.choices(("satisfied", "basic", "unsatisfied"), weights=(7, 2, 1))[0]
    await _act(tally, case.id, "rate", Actor.citizen(reporter.reporter_id), detail={"satisfaction": satisfaction})


async def _summary(tally: Tally, first_report: int, first_case: int, start: datetime) -> dict:
    reports = Report.filter(id__gte=first_report)
    mine = Case.filter(id__gte=first_case)
    closed = await mine.filter(status=Status.CLOSED).count()
    on_time = await mine.filter(status=Status.CLOSED, dispose_overdue=False).count()
    return {
        "reports": tally.reports,
        "refused_reports": tally.refused,
        "accepted_reports": await reports.count(),
        "cases": await mine.count(),
        "merged_duplicates": await reports.filter(status="merged").count(),
        "waiting_for_a_person": await reports.filter(status="queued").count(),
        "dispatched": await mine.filter(dispatched_at__isnull=False).count(),
        "closed": closed,
        "rejected": await mine.filter(status=Status.REJECTED).count(),
        "reworked": await mine.filter(rework_count__gt=0).count(),
        "extended": await mine.filter(extensions__gt=0).count(),
        "overdue": await mine.filter(dispose_overdue=True).count(),
        "escalated": await mine.filter(escalation_level__gt=0).count(),
        "open": await mine.filter(is_open=True).count(),
        "on_time_close_rate": round(on_time / closed, 4) if closed else None,
        "notices_sent": await Notice.filter(status="sent", created_at__gte=start).count(),
        "actions": tally.actions,
        "refused_actions": tally.refused_actions,
        "period": f"{clock.china(start).date().isoformat()}..{clock.now().date().isoformat()}",
    }
