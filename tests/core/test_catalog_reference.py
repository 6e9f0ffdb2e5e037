"""The shipped catalog and department templates, and how the loader refuses broken files."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from core.catalog.reference import (
    CATALOG_PATH,
    DEPARTMENTS_PATH,
    TIME_UNITS,
    URGENCIES,
    Catalog,
    DepartmentTemplates,
    load_catalog,
    load_department_templates,
)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="module")
def templates() -> DepartmentTemplates:
    return load_department_templates()


@pytest.fixture()
def catalog_data() -> dict[str, Any]:
    return json.loads(CATALOG_PATH.read_text(encoding="utf-8"))


@pytest.fixture()
def departments_data() -> dict[str, Any]:
    return json.loads(DEPARTMENTS_PATH.read_text(encoding="utf-8"))


def _write(tmp_path: Path, data: dict[str, Any], name: str = "broken.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def _subclass(data: dict[str, Any], kind: str, code: str) -> dict[str, Any]:
    return next(s for s in data["subclasses"] if s["kind"] == kind and s["code"] == code)


def test_catalog_has_237_subclasses_over_7_component_and_6_event_majors(catalog: Catalog) -> None:
    assert catalog.version == "v1"
    assert len(catalog.subclasses) == 237
    assert [m.name for m in catalog.majors_of("component")] == [
        "公用设施",
        "道路交通",
        "市容环境",
        "园林绿化",
        "房屋土地",
        "其他设施",
        "扩展部件",
    ]
    assert [m.name for m in catalog.majors_of("event")] == [
        "市容环境",
        "宣传广告",
        "施工管理",
        "突发事件",
        "街面秩序",
        "扩展事件",
    ]
    assert len(catalog.subclasses_of("component")) + len(catalog.subclasses_of("event")) == 237


def test_every_major_class_has_subclasses(catalog: Catalog) -> None:
    for major in catalog.majors:
        assert any(s.major_code == major.code for s in catalog.subclasses_of(major.kind)), major


def test_component_0101_is_the_water_supply_manhole_cover_and_event_0102_is_exposed_garbage(catalog: Catalog) -> None:
    cover = catalog.subclass("component", "0101")
    assert cover.name == "上水井盖"
    assert cover.department_kind == "water_supply"
    assert cover.time_limits["urgent"].unit == "natural_hour"
    garbage = catalog.subclass("event", "0102")
    assert garbage.name == "暴露垃圾"
    assert garbage.department_kind == "sanitation"


def test_component_and_event_codes_follow_the_standard_order_at_the_start(catalog: Catalog) -> None:
    components = [s.name for s in catalog.subclasses_of("component")][:4]
    events = [s.name for s in catalog.subclasses_of("event")][:8]
    assert components == ["上水井盖", "污水井盖", "雨水井盖", "雨水箅子"]
    assert events[0] == "私搭乱建"
    assert events[7] == "焚烧垃圾树叶"


def test_an_unknown_subclass_code_raises_key_error(catalog: Catalog) -> None:
    with pytest.raises(KeyError, match="9999"):
        catalog.subclass("event", "9999")


def test_every_subclass_has_keywords_conditions_and_three_time_limits(catalog: Catalog) -> None:
    for s in catalog.subclasses:
        assert 3 <= len(s.keywords) <= 6, s.code
        assert s.filing_condition and s.closing_condition, s.code
        assert tuple(s.time_limits) == URGENCIES, s.code
        assert all(limit.value > 0 and limit.unit in TIME_UNITS for limit in s.time_limits.values()), s.code
        assert 10 <= s.distance_m <= 200, s.code


def test_a_duplicate_subclass_code_is_refused(tmp_path: Path, catalog_data: dict[str, Any]) -> None:
    duplicate = copy.deepcopy(_subclass(catalog_data, "event", "0102"))
    catalog_data["subclasses"].append(duplicate)
    with pytest.raises(ValueError, match="event subclass 0102: code is duplicated"):
        load_catalog(_write(tmp_path, catalog_data))


def test_the_same_code_in_component_and_event_is_not_a_duplicate(catalog: Catalog) -> None:
    assert catalog.subclass("component", "0102").name != catalog.subclass("event", "0102").name


def test_a_bad_time_limit_unit_is_refused(tmp_path: Path, catalog_data: dict[str, Any]) -> None:
    _subclass(catalog_data, "component", "0101")["time_limits"]["normal"]["unit"] = "minute"
    with pytest.raises(ValueError, match="component subclass 0101: time limit 'normal': unit 'minute'"):
        load_catalog(_write(tmp_path, catalog_data))


def test_a_missing_urgency_is_refused(tmp_path: Path, catalog_data: dict[str, Any]) -> None:
    del _subclass(catalog_data, "event", "0101")["time_limits"]["routine"]
    with pytest.raises(ValueError, match="event subclass 0101: 'time_limits' must have exactly the urgencies"):
        load_catalog(_write(tmp_path, catalog_data))


def test_an_unknown_department_kind_is_refused(tmp_path: Path, catalog_data: dict[str, Any]) -> None:
    _subclass(catalog_data, "event", "0102")["department_kind"] = "garbage_police"
    with pytest.raises(ValueError, match="event subclass 0102: unknown department kind 'garbage_police'"):
        load_catalog(_write(tmp_path, catalog_data))


def test_a_code_without_its_major_is_refused(tmp_path: Path, catalog_data: dict[str, Any]) -> None:
    _subclass(catalog_data, "event", "0101")["code"] = "0901"
    with pytest.raises(ValueError, match="event subclass 0901: there is no event major 09"):
        load_catalog(_write(tmp_path, catalog_data))


def test_a_code_that_is_not_four_digits_is_refused(tmp_path: Path, catalog_data: dict[str, Any]) -> None:
    _subclass(catalog_data, "component", "0101")["code"] = "011"
    with pytest.raises(ValueError, match="component subclass 011: code must be 4 digits"):
        load_catalog(_write(tmp_path, catalog_data))


def test_a_file_that_is_not_json_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "catalog_bad.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match=r"catalog_bad\.json: not valid JSON"):
        load_catalog(path)


def test_there_are_22_city_units_and_42_units_per_district_with_exactly_one_fallback(
    templates: DepartmentTemplates,
) -> None:
    assert [d.code for d in templates.city_departments] == [f"C{i:02d}" for i in range(1, 23)]
    assert len(templates.district_departments) == 42
    streets = [d for d in templates.district_departments if d.level == "street"]
    bureaus = [d for d in templates.district_departments if d.level == "district"]
    assert [d.code for d in streets] == [f"S{i:02d}" for i in range(1, 12)]
    assert [d.code for d in bureaus] == [f"D{i:02d}" for i in range(1, 32)]
    assert all(d.kind == "street_office" for d in streets)
    assert [d.code for d in templates.district_departments if d.fallback] == [templates.fallback.code]
    assert templates.fallback.name_for(district="和平区") == "和平区城市管理局"
    assert 9 * len(templates.district_departments) == 378


def test_a_street_office_template_is_named_by_its_street(templates: DepartmentTemplates) -> None:
    office = templates.district_departments[0]
    assert office.name_for(district="和平区", street="北市场") == "北市场街道办事处"


def test_every_catalog_department_kind_routes_to_a_template_at_its_level(
    catalog: Catalog, templates: DepartmentTemplates
) -> None:
    for kind in catalog.department_kinds():
        entry = templates.routing_for(kind)
        assert templates.units_at(entry.level, kind), kind


def test_components_of_utilities_route_by_owner_and_street_problems_by_area(templates: DepartmentTemplates) -> None:
    assert (templates.routing_for("water_supply").level, templates.routing_for("water_supply").rule) == (
        "city",
        "owner",
    )
    assert (templates.routing_for("street_office").level, templates.routing_for("street_office").rule) == (
        "street",
        "area",
    )


def test_two_fallback_units_are_refused(tmp_path: Path, departments_data: dict[str, Any]) -> None:
    departments_data["district_departments"][-1]["fallback"] = True
    with pytest.raises(ValueError, match="exactly one district department must be the fallback"):
        load_department_templates(_write(tmp_path, departments_data))


def test_a_routing_entry_with_no_unit_at_its_level_is_refused(tmp_path: Path, departments_data: dict[str, Any]) -> None:
    entry = next(r for r in departments_data["routing"] if r["department_kind"] == "water_supply")
    entry["level"] = "street"
    with pytest.raises(ValueError, match="no street-level department of kind 'water_supply'"):
        load_department_templates(_write(tmp_path, departments_data))


def test_a_department_of_unknown_kind_is_refused(tmp_path: Path, departments_data: dict[str, Any]) -> None:
    departments_data["city_departments"][0]["kind"] = "ministry_of_magic"
    with pytest.raises(ValueError, match="city department C01: unknown department kind 'ministry_of_magic'"):
        load_department_templates(_write(tmp_path, departments_data))


def test_a_duplicate_department_code_is_refused(tmp_path: Path, departments_data: dict[str, Any]) -> None:
    departments_data["district_departments"][12]["code"] = "D01"
    with pytest.raises(ValueError, match="district department D01: code is duplicated"):
        load_department_templates(_write(tmp_path, departments_data))
