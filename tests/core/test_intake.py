"""The intake pipeline: a report becomes a routed case, joins a duplicate, or waits for a person."""

import pytest

from core.cases.models import Case, CaseEvent, CaseTask
from core.errors import ConflictError, NotFoundError, ValidationFailed
from core.geo.datum import from_wgs84
from core.regions.models import UnitGrid
from core.reports.flows import process_report
from core.reports.models import Report
from core.reports.service import NewReport, submit_report
from tests.factories import interior_point


async def a_grid() -> str:
    return (await UnitGrid.all().order_by("code").first()).code


async def citizen_report(grid: str, **overrides) -> NewReport:
    lon, lat = await interior_point(grid)
    glon, glat = from_wgs84(lon, lat, "gcj02")
    fields = dict(
        source="miniapp",
        reporter_type="citizen",
        reporter_id="1",
        lon=glon,
        lat=glat,
        datum="gcj02",
        text="路边有一堆暴露垃圾没人清理",
        subclass="event:0102",
    )
    fields.update(overrides)
    return NewReport(**fields)


async def test_a_citizen_report_becomes_a_routed_case_waiting_for_verification(city):
    grid = await a_grid()
    report, created = await submit_report(await citizen_report(grid))
    assert created and report.status == "received"

    assert await process_report(report_id=report.id) == "cased"

    report = await Report.get(id=report.id)
    case = await Case.get(id=report.case_id)
    assert case.unit_grid == grid
    assert case.department_id and case.routing_reason
    # 暴露垃圾 is dispatched without a person once an inspector confirmed it (核实).
    assert case.status == "accepted" and case.stage == "verify"
    task = await CaseTask.get(case_id=case.id)
    assert task.kind == "verify" and task.status == "open" and task.due_at == case.stage_deadline
    actions = [e.action for e in await CaseEvent.filter(case_id=case.id).order_by("id")]
    assert actions == ["report", "accept"]


async def test_processing_a_report_twice_opens_one_case(city):
    report, _ = await submit_report(await citizen_report(await a_grid()))
    await process_report(report_id=report.id)
    assert await process_report(report_id=report.id) == "done"
    assert await Case.all().count() == 1


async def test_a_second_report_of_the_same_problem_nearby_joins_the_open_case(city):
    grid = await a_grid()
    first, _ = await submit_report(await citizen_report(grid))
    second, _ = await submit_report(await citizen_report(grid, reporter_id="2", text="这里垃圾好多"))
    await process_report(report_id=first.id)
    assert await process_report(report_id=second.id) == "merged"
    case = await Case.get()
    assert case.report_count == 2
    assert (await Report.get(id=second.id)).case_id == case.id


async def test_text_without_a_chosen_subclass_is_classified_and_the_rule_kept(city):
    report, _ = await submit_report(await citizen_report(await a_grid(), subclass=None, text="小区门口的路灯不亮了"))
    assert await process_report(report_id=report.id) == "cased"
    report = await Report.get(id=report.id)
    assert "路灯" in report.classify_rule and report.classify_confidence > 0.5


async def test_text_that_matches_no_rule_waits_for_a_dispatcher(city):
    report, _ = await submit_report(await citizen_report(await a_grid(), subclass=None, text="你好"))
    assert await process_report(report_id=report.id) == "queued"
    report = await Report.get(id=report.id)
    assert report.status_reason.startswith("unclassified") and report.case_id is None


async def test_a_replayed_idempotency_key_returns_the_first_report_and_other_content_is_refused(city):
    new = await citizen_report(await a_grid(), idempotency_key="client-key-0001")
    first, created = await submit_report(new)
    again, created_again = await submit_report(new)
    assert created and not created_again and again.id == first.id
    with pytest.raises(ConflictError) as refused:
        await submit_report(await citizen_report(await a_grid(), idempotency_key="client-key-0001", text="别的问题"))
    assert refused.value.code == "idempotency_key_reused"
    assert await Report.all().count() == 1


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"subclass": "event:9999"}, "unknown_subclass"),
        ({"subclass": "垃圾"}, "unknown_subclass"),
        ({"datum": "mars"}, "unknown_datum"),
        ({"lon": 116.39, "lat": 39.9, "datum": "wgs84"}, "outside_city"),
        ({"lon": float("nan")}, "bad_point"),
        ({"source": "fax"}, "unknown_source"),
        ({"photos": ["../../etc/passwd"]}, "bad_photos"),
    ],
)
async def test_bad_input_is_refused_and_nothing_is_stored(city, overrides, code):
    with pytest.raises((ValidationFailed, NotFoundError)) as refused:
        await submit_report(await citizen_report(await a_grid(), **overrides))
    assert refused.value.code == code
    assert await Report.all().count() == 0


async def test_a_report_that_routes_nowhere_waits_for_a_dispatcher_with_the_reason(city):
    from core.catalog.models import Subclass
    from core.org.models import Department, RoutingRule

    grid = await a_grid()
    garbage = await Subclass.get(kind="event", code="0102")
    await RoutingRule.filter(subclass=garbage).delete()
    await Department.filter(district_id=grid[:6], is_fallback=True).update(is_fallback=False)
    report, _ = await submit_report(await citizen_report(grid, source="field_app", reporter_type="staff"))

    assert await process_report(report_id=report.id) == "cased"
    case = await Case.get(id=(await Report.get(id=report.id)).case_id)
    # Even an auto-dispatched subclass stops at 待受理 when nobody is responsible: a person must choose.
    assert case.status == "pending_accept" and case.department_id is None
    assert case.routing_reason.startswith("no_route")
