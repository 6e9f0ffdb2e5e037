"""Routing: most specific rule wins; 先属主后属地 for components; 属地兜底 when nothing matches."""

from core.catalog.models import Subclass
from core.org.models import Department, RoutingRule
from core.org.service import route
from core.regions.models import UnitGrid


async def first_grid() -> str:
    return (await UnitGrid.all().order_by("code").first()).code


async def test_an_area_event_goes_to_the_unit_of_its_area(city):
    grid = await first_grid()
    garbage = await Subclass.get(kind="event", code="0102")  # 暴露垃圾
    decision = await route(subclass_id=garbage.id, unit_grid=grid)
    department = await Department.get(code=decision.department_code)
    assert decision.rule_kind == "area"
    assert department.district_id == grid[:6]
    assert decision.reason


async def test_a_known_component_goes_to_its_owner_first(city):
    grid = await first_grid()
    cover = await Subclass.get(kind="component", code="0101")
    decision = await route(subclass_id=cover.id, unit_grid=grid, component_owner="C05")
    assert (decision.department_code, decision.rule_kind) == ("C05", "owner")


async def test_a_grid_rule_overrides_the_street_and_district_rules(city):
    grid = await first_grid()
    garbage = await Subclass.get(kind="event", code="0102")
    other = await Department.filter(district_id=grid[:6]).exclude(kind="street_office").order_by("code").first()
    await RoutingRule.create(subclass=garbage, area_level="grid", area_code=grid, rule_kind="area", department=other)
    decision = await route(subclass_id=garbage.id, unit_grid=grid)
    assert decision.department_code == other.code
    assert "grid" in decision.reason


async def test_a_problem_no_rule_covers_goes_to_the_district_fallback(city):
    grid = await first_grid()
    garbage = await Subclass.get(kind="event", code="0102")
    await RoutingRule.filter(subclass=garbage).delete()
    decision = await route(subclass_id=garbage.id, unit_grid=grid)
    fallback = await Department.get(district_id=grid[:6], is_fallback=True)
    assert (decision.department_code, decision.rule_kind) == (fallback.code, "fallback")
