"""The small synthetic city as the tests see it (seeded once per backend by conftest)."""

import pytest
import shapely

from core.calendar.models import CalendarDay
from core.calendar.service import working_calendar
from core.catalog.models import CatalogVersion, Subclass, TimeLimit
from core.components.models import Component
from core.errors import ConflictError
from core.geo.service import get_spatial_index
from core.org.models import Department, RoutingRule
from core.org.service import route
from core.regions.models import Community, District, ResponsibilityGrid, RoadSegment, Street, UnitGrid
from core.seed import seed_city


async def test_small_city_has_every_level_of_regions(city):
    assert await District.all().count() == 2
    assert await Street.all().count() == 4
    assert await Community.all().count() == 8
    assert await UnitGrid.all().count() == 240
    assert await ResponsibilityGrid.all().count() == 6
    assert await RoadSegment.all().count() == 40


async def test_region_codes_nest_by_their_prefixes(city):
    for code, community in await UnitGrid.all().values_list("code", "community_id"):
        assert len(code) == 15 and code[:12] == community
    for code, street in await Community.all().values_list("code", "street_id"):
        assert len(code) == 12 and code[:9] == street
    for code, district in await Street.all().values_list("code", "district_id"):
        assert len(code) == 9 and code[:6] == district


async def test_every_unit_grid_belongs_to_a_responsibility_grid_of_its_street(city):
    rows = await UnitGrid.all().values_list("code", "responsibility_grid__street_id")
    assert all(street == code[:9] for code, street in rows)


async def test_the_catalog_is_installed_and_active_with_time_limits(city):
    version = await CatalogVersion.get(active=True)
    assert await Subclass.filter(catalog=version).count() == 237
    cover = await Subclass.get(catalog=version, kind="component", code="0101")
    assert cover.name == "上水井盖"
    assert await TimeLimit.filter(subclass=cover).count() == 3


async def test_every_subclass_routes_somewhere_in_every_street(city):
    subclasses = await Subclass.all().values_list("id", flat=True)
    grids = {code[:9]: code for code in await UnitGrid.all().values_list("code", flat=True)}
    for grid in grids.values():
        for sid in subclasses:
            decision = await route(subclass_id=sid, unit_grid=grid)
            assert decision.rule_kind in ("owner", "area")  # the generated rules cover everything, no fallback


async def test_each_district_has_one_fallback_unit_and_each_street_an_office(city):
    for district in await District.all().values_list("code", flat=True):
        assert await Department.filter(district_id=district, is_fallback=True).count() == 1
    for street in await Street.all().values_list("code", flat=True):
        assert await Department.filter(street_id=street, kind="street_office").count() == 1


async def test_components_lie_in_their_grid_and_district(city):
    index = await get_spatial_index()
    rows = await Component.all().values_list("code", "lon", "lat", "unit_grid_id", "owner_department_id")
    assert len(rows) == 500
    for code, lon, lat, grid, owner in rows:
        assert index.locate(lon, lat).unit_grid == grid
        assert code[:6] == grid[:6]
        assert owner


async def test_unit_grid_polygons_are_valid_and_add_up_to_their_district(city):
    for district in await District.all():
        grids = await UnitGrid.filter(code__startswith=district.code).values_list("geometry", flat=True)
        union = shapely.union_all([shapely.from_geojson(g) for g in grids])
        outline = shapely.from_geojson(district.geometry)
        assert union.symmetric_difference(outline).area < 1e-9 * max(outline.area, 1e-12) + 1e-12


async def test_the_calendar_knows_2025_national_day_and_marks_2027_provisional(city):
    from datetime import date

    calendar = await working_calendar()
    assert not calendar.is_working_day(date(2025, 10, 1))
    assert calendar.is_working_day(date(2025, 9, 28))  # a Sunday made a working day (调休)
    assert not await CalendarDay.filter(day__gte=date(2027, 1, 1), official=True).exists()
    assert await CalendarDay.filter(day__gte=date(2027, 1, 1), official=False).exists()


async def test_seeding_a_database_that_holds_a_city_is_refused(city):
    before = await RoutingRule.all().count()
    with pytest.raises(ConflictError) as refused:
        await seed_city(scale="small")
    assert refused.value.code == "already_seeded"
    assert await RoutingRule.all().count() == before
