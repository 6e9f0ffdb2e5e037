"""Installing and reading catalog versions."""

from __future__ import annotations

from tortoise.transactions import in_transaction

from core.catalog.models import CatalogVersion, MajorClass, Subclass, TimeLimit
from core.catalog.reference import Catalog
from core.errors import NotFoundError


async def install_catalog(*, catalog: Catalog, activate: bool = True) -> CatalogVersion:
    """Store a catalog version (all its classes and time limits) and optionally make it the active one."""
    async with in_transaction():
        version = await CatalogVersion.create(
            version=catalog.version,
            title=catalog.title,
            active=False,
            stage_limits={k: {"value": v.value, "unit": v.unit} for k, v in catalog.stage_limits.items()},
        )
        await MajorClass.bulk_create(
            [MajorClass(catalog=version, kind=m.kind, code=m.code, name=m.name) for m in catalog.majors]
        )
        major_ids = {(m.kind, m.code): m.id for m in await MajorClass.filter(catalog=version)}
        await Subclass.bulk_create(
            [
                Subclass(
                    catalog=version,
                    major_id=major_ids[(s.kind, s.code[:2])],
                    kind=s.kind,
                    code=s.code,
                    name=s.name,
                    keywords=list(s.keywords),
                    filing_condition=s.filing_condition,
                    closing_condition=s.closing_condition,
                    department_kind=s.department_kind,
                    check_distance_m=s.distance_m,
                    auto_dispatch=s.auto_dispatch,
                    duplicate_window_hours=s.duplicate_window_hours,
                )
                for s in catalog.subclasses
            ]
        )
        sub_ids = {(s.kind, s.code): s.id for s in await Subclass.filter(catalog=version)}
        await TimeLimit.bulk_create(
            [
                TimeLimit(subclass_id=sub_ids[(s.kind, s.code)], urgency=urgency, value=limit.value, unit=limit.unit)
                for s in catalog.subclasses
                for urgency, limit in s.time_limits.items()
            ]
        )
        if activate:
            await activate_catalog(version=catalog.version)
    return version


async def activate_catalog(*, version: str) -> None:
    """Make one catalog version the active one; cases filed earlier keep the version they were filed under."""
    target = await CatalogVersion.get_or_none(version=version)
    if target is None:
        raise NotFoundError("catalog_version_not_found", f"catalog version {version!r} does not exist")
    async with in_transaction():
        await CatalogVersion.filter(active=True).update(active=False)
        await CatalogVersion.filter(id=target.id).update(active=True)


async def active_catalog() -> CatalogVersion:
    """The active catalog version."""
    version = await CatalogVersion.get_or_none(active=True)
    if version is None:
        raise NotFoundError("no_active_catalog", "no catalog version is active; run `tongguan seed` or install one")
    return version


async def subclass_ids_by_code(*, kind: str | None = None) -> dict[tuple[str, str], int]:
    """(kind, code) → subclass id in the active catalog."""
    version = await active_catalog()
    query = Subclass.filter(catalog=version)
    if kind:
        query = query.filter(kind=kind)
    return {(k, c): i for i, k, c in await query.values_list("id", "kind", "code")}
