"""Reference data read from JSON files: the problem catalog (部件/事件 classes) and the department templates."""

from __future__ import annotations

import json
import re
import string
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

DATA_DIR = Path(__file__).parent / "data"
CATALOG_PATH = DATA_DIR / "catalog_v1.json"
DEPARTMENTS_PATH = DATA_DIR / "departments.json"

KINDS = ("component", "event")
URGENCIES = ("urgent", "normal", "routine")
# Clocked stages other than disposal (处置), whose limit comes from the subclass and the urgency.
STAGES = ("accept", "verify", "register", "dispatch", "check", "close")
TIME_UNITS = frozenset({"working_hour", "working_day", "natural_hour"})
LEVELS = ("city", "district", "street")
RULES = ("owner", "area")

_MAJOR_CODE = re.compile(r"\d{2}")
_SUBCLASS_CODE = re.compile(r"\d{4}")
_KIND_KEY = re.compile(r"[a-z][a-z0-9_]*")
_CITY_CODE = re.compile(r"C\d{2}")
_DISTRICT_CODE = re.compile(r"[SD]\d{2}")
_PHONE = re.compile(r"0\d{2,3}-\d{7,8}")
_PLACEHOLDERS = frozenset({"district", "street"})


@dataclass(frozen=True)
class Major:
    """A major class (大类) of components or events."""

    kind: str
    code: str
    name: str


@dataclass(frozen=True)
class TimeLimit:
    """A disposal time limit: a count of working hours, working days or natural hours."""

    value: int
    unit: str


@dataclass(frozen=True)
class Subclass:
    """A subclass (小类) with its filing and closing conditions (立案/结案条件), time limits and owner kind."""

    kind: str
    code: str
    name: str
    keywords: tuple[str, ...]
    filing_condition: str
    closing_condition: str
    time_limits: Mapping[str, TimeLimit] = field(hash=False)
    department_kind: str
    distance_m: int
    # A case of this subclass from a trusted source is accepted, registered and dispatched without a person.
    auto_dispatch: bool = False
    # Reports of this subclass within distance_m and this many hours of an open case join that case.
    duplicate_window_hours: int = 72

    @property
    def major_code(self) -> str:
        """The 2-digit major class code this subclass belongs to."""
        return self.code[:2]


@dataclass(frozen=True)
class Catalog:
    """One version of the problem catalog."""

    version: str
    title: str
    majors: tuple[Major, ...]
    subclasses: tuple[Subclass, ...]
    # Time limits of the stages around disposal (受理, 核实, 立案, 派遣, 核查, 结案), the same for every subclass.
    stage_limits: Mapping[str, TimeLimit] = field(default_factory=dict, hash=False)

    def majors_of(self, kind: str) -> tuple[Major, ...]:
        """The major classes of one kind (component or event), in file order."""
        return tuple(m for m in self.majors if m.kind == kind)

    def subclasses_of(self, kind: str) -> tuple[Subclass, ...]:
        """The subclasses of one kind (component or event), in file order."""
        return tuple(s for s in self.subclasses if s.kind == kind)

    def subclass(self, kind: str, code: str) -> Subclass:
        """The subclass with this kind and code; KeyError if there is none."""
        for s in self.subclasses:
            if s.kind == kind and s.code == code:
                return s
        raise KeyError(f"no {kind} subclass {code!r} in catalog {self.version}")

    def department_kinds(self) -> frozenset[str]:
        """Every department kind some subclass is handled by."""
        return frozenset(s.department_kind for s in self.subclasses)


@dataclass(frozen=True)
class DepartmentKind:
    """A kind of department (环卫, 供水, 街道办事处, ...) that subclasses and routing refer to by key."""

    key: str
    name: str


@dataclass(frozen=True)
class CityDepartment:
    """A city-level unit: a municipal bureau or a utility company."""

    code: str
    name: str
    kind: str
    duty_phone: str


@dataclass(frozen=True)
class DistrictDepartmentTemplate:
    """A unit every district has: a street office (S..) per street or a district bureau (D..)."""

    code: str
    name_pattern: str
    kind: str
    fallback: bool = False

    @property
    def level(self) -> str:
        """`street` for street offices, `district` for district bureaus and centres."""
        return "street" if self.code.startswith("S") else "district"

    def name_for(self, *, district: str, street: str = "") -> str:
        """The unit's name in one district (and street, for street offices)."""
        return self.name_pattern.format(district=district, street=street)


@dataclass(frozen=True)
class RoutingEntry:
    """Where a department kind sits and how a unit is chosen: by owner (先属主) or by area (先属地)."""

    department_kind: str
    level: str
    rule: str


@dataclass(frozen=True)
class DepartmentTemplates:
    """Department kinds, the city units, the per-district unit template and the routing by kind."""

    version: str
    title: str
    department_kinds: tuple[DepartmentKind, ...]
    city_departments: tuple[CityDepartment, ...]
    district_departments: tuple[DistrictDepartmentTemplate, ...]
    routing: tuple[RoutingEntry, ...]

    def kind_keys(self) -> frozenset[str]:
        """The keys of all department kinds."""
        return frozenset(k.key for k in self.department_kinds)

    @property
    def fallback(self) -> DistrictDepartmentTemplate:
        """The district unit that takes what routes nowhere else (属地兜底)."""
        return next(d for d in self.district_departments if d.fallback)

    def routing_for(self, department_kind: str) -> RoutingEntry:
        """The routing entry of a department kind; KeyError if it has none."""
        for entry in self.routing:
            if entry.department_kind == department_kind:
                return entry
        raise KeyError(f"no routing entry for department kind {department_kind!r}")

    def units_at(self, level: str, kind: str) -> tuple[CityDepartment | DistrictDepartmentTemplate, ...]:
        """The city units or district/street templates of one kind at one level."""
        if level == "city":
            return tuple(d for d in self.city_departments if d.kind == kind)
        return tuple(d for d in self.district_departments if d.level == level and d.kind == kind)


def load_catalog(path: Path | str | None = None, *, department_kinds: Collection[str] | None = None) -> Catalog:
    """Read and validate a catalog file (default: v1); department kinds default to those in departments.json."""
    source = Path(path) if path is not None else CATALOG_PATH
    data = _read(source)
    if department_kinds is None:
        department_kinds = load_department_templates().kind_keys()
    known_kinds = frozenset(department_kinds)
    where = source.name

    majors: list[Major] = []
    for i, raw in enumerate(_list(data, "majors", where)):
        item = f"{where}: majors[{i}]"
        kind = _kind(raw, item)
        code = _str(raw, "code", item)
        if not _MAJOR_CODE.fullmatch(code):
            raise ValueError(f"{item}: major code {code!r} must be 2 digits")
        if any(m.kind == kind and m.code == code for m in majors):
            raise ValueError(f"{where}: {kind} major {code} is duplicated")
        majors.append(Major(kind=kind, code=code, name=_str(raw, "name", item)))

    subclasses: list[Subclass] = []
    seen: set[tuple[str, str]] = set()
    major_codes = {(m.kind, m.code) for m in majors}
    for i, raw in enumerate(_list(data, "subclasses", where)):
        item = f"{where}: subclasses[{i}]"
        kind = _kind(raw, item)
        code = _str(raw, "code", item)
        item = f"{where}: {kind} subclass {code}"
        if not _SUBCLASS_CODE.fullmatch(code):
            raise ValueError(f"{item}: code must be 4 digits (2-digit major + 2-digit minor)")
        if (kind, code[:2]) not in major_codes:
            raise ValueError(f"{item}: there is no {kind} major {code[:2]}")
        if (kind, code) in seen:
            raise ValueError(f"{item}: code is duplicated")
        seen.add((kind, code))
        department_kind = _str(raw, "department_kind", item)
        if department_kind not in known_kinds:
            raise ValueError(f"{item}: unknown department kind {department_kind!r}")
        subclasses.append(
            Subclass(
                kind=kind,
                code=code,
                name=_str(raw, "name", item),
                keywords=_keywords(raw, item),
                filing_condition=_str(raw, "filing_condition", item),
                closing_condition=_str(raw, "closing_condition", item),
                time_limits=_time_limits(raw, item),
                department_kind=department_kind,
                distance_m=_positive_int(raw, "distance_m", item),
                auto_dispatch=_bool(raw, "auto_dispatch", item, default=False),
                duplicate_window_hours=_positive_int(raw, "duplicate_window_hours", item, default=72),
            )
        )
    return Catalog(
        version=_str(data, "version", where),
        title=_str(data, "title", where),
        majors=tuple(majors),
        subclasses=tuple(subclasses),
        stage_limits=_stage_limits(data, where),
    )


def load_department_templates(path: Path | str | None = None) -> DepartmentTemplates:
    """Read and validate a department template file (default: departments.json next to this module)."""
    source = Path(path) if path is not None else DEPARTMENTS_PATH
    data = _read(source)
    where = source.name

    kinds: list[DepartmentKind] = []
    for i, raw in enumerate(_list(data, "department_kinds", where)):
        item = f"{where}: department_kinds[{i}]"
        key = _str(raw, "key", item)
        if not _KIND_KEY.fullmatch(key):
            raise ValueError(f"{item}: key {key!r} must be snake_case")
        if any(k.key == key for k in kinds):
            raise ValueError(f"{where}: department kind {key!r} is duplicated")
        kinds.append(DepartmentKind(key=key, name=_str(raw, "name", item)))
    known = {k.key for k in kinds}

    city: list[CityDepartment] = []
    for i, raw in enumerate(_list(data, "city_departments", where)):
        code = _str(raw, "code", f"{where}: city_departments[{i}]")
        item = f"{where}: city department {code}"
        if not _CITY_CODE.fullmatch(code):
            raise ValueError(f"{item}: code must be C followed by 2 digits")
        if any(d.code == code for d in city):
            raise ValueError(f"{item}: code is duplicated")
        phone = _str(raw, "duty_phone", item)
        if not _PHONE.fullmatch(phone):
            raise ValueError(f"{item}: duty phone {phone!r} is not an area code and landline like 024-22724110")
        kind = _known_kind(raw, known, item)
        city.append(CityDepartment(code=code, name=_str(raw, "name", item), kind=kind, duty_phone=phone))

    district: list[DistrictDepartmentTemplate] = []
    for i, raw in enumerate(_list(data, "district_departments", where)):
        code = _str(raw, "code", f"{where}: district_departments[{i}]")
        item = f"{where}: district department {code}"
        if not _DISTRICT_CODE.fullmatch(code):
            raise ValueError(f"{item}: code must be S (street office) or D (district unit) followed by 2 digits")
        if any(d.code == code for d in district):
            raise ValueError(f"{item}: code is duplicated")
        unit = DistrictDepartmentTemplate(
            code=code,
            name_pattern=_str(raw, "name_pattern", item),
            kind=_known_kind(raw, known, item),
            fallback=_bool(raw, "fallback", item),
        )
        _check_pattern(unit, item)
        district.append(unit)
    fallbacks = [d.code for d in district if d.fallback]
    if len(fallbacks) != 1:
        raise ValueError(f"{where}: exactly one district department must be the fallback, found {fallbacks or 'none'}")
    if not fallbacks[0].startswith("D"):
        raise ValueError(f"{where}: the fallback {fallbacks[0]} must be a district unit (D..), not a street office")

    templates = DepartmentTemplates(
        version=_str(data, "version", where),
        title=_str(data, "title", where),
        department_kinds=tuple(kinds),
        city_departments=tuple(city),
        district_departments=tuple(district),
        routing=(),
    )
    routing: list[RoutingEntry] = []
    for i, raw in enumerate(_list(data, "routing", where)):
        item = f"{where}: routing[{i}]"
        kind = _known_kind(raw, known, item, key="department_kind")
        level = _choice(raw, "level", LEVELS, item)
        rule = _choice(raw, "rule", RULES, item)
        if any(r.department_kind == kind for r in routing):
            raise ValueError(f"{item}: department kind {kind!r} is routed twice")
        if not templates.units_at(level, kind):
            raise ValueError(f"{item}: no {level}-level department of kind {kind!r} to route to")
        routing.append(RoutingEntry(department_kind=kind, level=level, rule=rule))
    return replace(templates, routing=tuple(routing))


def _read(source: Path) -> dict[str, Any]:
    """The JSON object in a file, or ValueError naming the file."""
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source.name}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{source.name}: the top level must be an object")
    return data


def _field(raw: Any, key: str, where: str) -> Any:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: must be an object")
    if key not in raw:
        raise ValueError(f"{where}: missing {key!r}")
    return raw[key]


def _str(raw: Any, key: str, where: str) -> str:
    value = _field(raw, key, where)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: {key!r} must be a non-empty string")
    return value


def _list(raw: Any, key: str, where: str) -> list[Any]:
    value = _field(raw, key, where)
    if not isinstance(value, list):
        raise ValueError(f"{where}: {key!r} must be a list")
    return value


def _positive_int(raw: Any, key: str, where: str, *, default: int | None = None) -> int:
    value = raw.get(key, default) if default is not None and isinstance(raw, dict) else _field(raw, key, where)
    # bool is an int subclass; `true` in a file is a typo, not 1
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{where}: {key!r} must be a positive integer, got {value!r}")
    return value


def _bool(raw: Any, key: str, where: str, *, default: bool = False) -> bool:
    value = raw.get(key, default) if isinstance(raw, dict) else None
    if not isinstance(value, bool):
        raise ValueError(f"{where}: {key!r} must be true or false")
    return value


def _choice(raw: Any, key: str, allowed: Collection[str], where: str) -> str:
    value = _str(raw, key, where)
    if value not in allowed:
        raise ValueError(f"{where}: {key} {value!r} is not one of {', '.join(allowed)}")
    return value


def _kind(raw: Any, where: str) -> str:
    return _choice(raw, "kind", KINDS, where)


def _known_kind(raw: Any, known: Collection[str], where: str, key: str = "kind") -> str:
    value = _str(raw, key, where)
    if value not in known:
        raise ValueError(f"{where}: unknown department kind {value!r}")
    return value


def _keywords(raw: Any, where: str) -> tuple[str, ...]:
    value = _list(raw, "keywords", where)
    if not value or not all(isinstance(k, str) and k.strip() for k in value):
        raise ValueError(f"{where}: 'keywords' must be a non-empty list of non-empty strings")
    return tuple(value)


def _time_limit(raw: Any, item: str) -> TimeLimit:
    unit = _str(raw, "unit", item)
    if unit not in TIME_UNITS:
        raise ValueError(f"{item}: unit {unit!r} is not one of {', '.join(sorted(TIME_UNITS))}")
    return TimeLimit(value=_positive_int(raw, "value", item), unit=unit)


def _stage_limits(data: Any, where: str) -> Mapping[str, TimeLimit]:
    value = _field(data, "stage_limits", where)
    if not isinstance(value, dict) or set(value) != set(STAGES):
        got = sorted(value) if isinstance(value, dict) else value
        raise ValueError(f"{where}: 'stage_limits' must have exactly the stages {', '.join(STAGES)}, got {got}")
    return MappingProxyType({stage: _time_limit(value[stage], f"{where}: stage limit {stage!r}") for stage in STAGES})


def _time_limits(raw: Any, where: str) -> Mapping[str, TimeLimit]:
    value = _field(raw, "time_limits", where)
    if not isinstance(value, dict) or set(value) != set(URGENCIES):
        got = sorted(value) if isinstance(value, dict) else value
        raise ValueError(f"{where}: 'time_limits' must have exactly the urgencies {', '.join(URGENCIES)}, got {got}")
    limits: dict[str, TimeLimit] = {}
    for urgency in URGENCIES:
        limits[urgency] = _time_limit(value[urgency], f"{where}: time limit {urgency!r}")
    return MappingProxyType(limits)


def _check_pattern(unit: DistrictDepartmentTemplate, where: str) -> None:
    """A name pattern uses only {district} and {street}, and a street office names its street."""
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(unit.name_pattern) if name is not None}
    except ValueError as exc:
        raise ValueError(f"{where}: name pattern {unit.name_pattern!r} is malformed ({exc})") from exc
    if not names <= _PLACEHOLDERS:
        raise ValueError(f"{where}: name pattern may use only {{district}} and {{street}}, got {sorted(names)}")
    if unit.level == "street" and ("street" not in names or unit.kind != "street_office"):
        raise ValueError(f"{where}: a street unit (S..) must be a street_office named by {{street}}")
    if unit.level == "district" and "district" not in names:
        raise ValueError(f"{where}: a district unit (D..) must be named by {{district}}")
