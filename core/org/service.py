"""Routing: which department a problem goes to, and why.

部件 (component) problems go first to the component's owner (先属主后属地); 事件 (event) problems first to
the area (先属地后属主). Rules are data: the most specific rule for the problem's place wins (unit grid, then
street, then district, then city-wide); when no rule matches, the district's fallback unit takes it (属地兜底).
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import NotFoundError
from core.org.models import Department, RoutingRule

AREA_LEVELS = ("grid", "street", "district", "city")


@dataclass(frozen=True)
class RoutingDecision:
    """Where a problem goes, with the reason stored beside the case."""

    department_code: str
    rule_kind: str  # owner / area / fallback
    reason: str


def area_codes(unit_grid: str) -> dict[str, str]:
    """The area code at each level for a 15-digit unit grid code."""
    return {"grid": unit_grid, "street": unit_grid[:9], "district": unit_grid[:6], "city": ""}


async def route(*, subclass_id: int, unit_grid: str, component_owner: str | None = None) -> RoutingDecision:
    """Decide the department for a problem of this subclass in this unit grid."""
    if component_owner:
        return RoutingDecision(component_owner, "owner", f"部件权属: component owner {component_owner}")
    codes = area_codes(unit_grid)
    rules = await RoutingRule.filter(subclass_id=subclass_id, area_code__in=list(codes.values())).values_list(
        "area_level", "area_code", "department_id", "rule_kind"
    )
    by_level = {level: (code, dept, kind) for level, code, dept, kind in rules if codes.get(level) == code}
    for level in AREA_LEVELS:
        if level in by_level:
            code, dept, kind = by_level[level]
            return RoutingDecision(dept, kind, f"rule {kind} at {level} {code or 'city'}")
    fallback = await Department.get_or_none(district_id=codes["district"], is_fallback=True)
    if fallback is None:
        raise NotFoundError(
            "no_route", f"no routing rule and no fallback unit for subclass {subclass_id} in grid {unit_grid}"
        )
    return RoutingDecision(fallback.code, "fallback", f"属地兜底: district {codes['district']} fallback unit")
