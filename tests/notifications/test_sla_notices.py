"""Departments' duty mobiles hear of a stage about to run out, and of an overdue case with its superior."""

from datetime import timedelta

from core.cases.flows import sla_sweep
from core.cases.models import Case
from core.notices.models import Notice
from core.org.models import Department
from core.outbox.models import OutboxEntry
from core.regions.models import UnitGrid
from core.reports.flows import process_report
from core.reports.service import NewReport, submit_report
from notifications.sla_notices import notify_departments
from tests.factories import interior_point


async def dispatched_case() -> Case:
    grid = (await UnitGrid.all().order_by("code").first()).code
    lon, lat = await interior_point(grid)
    report, _ = await submit_report(
        NewReport(
            source="field_app",
            reporter_type="staff",
            reporter_id="3",
            lon=lon,
            lat=lat,
            text="暴露垃圾",
            subclass="event:0102",
        )
    )
    await process_report(report_id=report.id)
    case = await Case.get()
    assert case.status == "dispatched"
    return case


async def run_sla_notices() -> None:
    for entry in await OutboxEntry.filter(task="sla_notices", status="pending").order_by("id"):
        await notify_departments(**entry.args)
        await OutboxEntry.filter(id=entry.id).update(status="done")


async def test_the_duty_mobiles_hear_of_the_reminder_and_of_the_escalation(city):
    case = await dispatched_case()
    department = await Department.get(code=case.department_id)

    await sla_sweep(now=(case.stage_warn_at + timedelta(minutes=1)).isoformat())
    await sla_sweep(now=(case.stage_warn_at + timedelta(minutes=1)).isoformat())  # once, however often it runs
    await run_sla_notices()
    reminder = await Notice.get(template="sla_reminder")
    assert reminder.recipient == department.duty_mobile and not reminder.urgent and not reminder.to_citizen
    assert reminder.params["number"] == case.number and reminder.params["stage"] == "处置"

    await sla_sweep(now=(case.stage_deadline + timedelta(minutes=1)).isoformat())
    await run_sla_notices()
    overdue = await Notice.filter(template="sla_overdue").order_by("id")
    recipients = {n.recipient for n in overdue}
    assert department.duty_mobile in recipients and len(recipients) == 2  # the department and its superior
    assert all(n.urgent for n in overdue)
    assert await Notice.filter(template="sla_reminder").count() == 1
