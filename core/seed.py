"""`tongguan seed`: a deterministic synthetic reference city written into an empty database.

Geography comes from core.geo.synth, the catalog and departments from the shipped reference data, the
calendar from the shipped holiday file; routing rules are generated so that every (area, subclass) resolves,
and components are scattered over the grids with owners taken from those rules.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
from tortoise.transactions import in_transaction

from core.accounts.models import StaffAccount, StaffRole
from core.accounts.service import hash_password
from core.bulk import insert_rows
from core.calendar.service import store_calendar_days
from core.calendar.workdays import calendar_days, official_years
from core.catalog.reference import Catalog, load_catalog, load_department_templates
from core.catalog.service import install_catalog, subclass_ids_by_code
from core.components.service import DB_COLUMNS as COMPONENT_COLUMNS
from core.errors import ConflictError, ValidationFailed
from core.geo import synth
from core.geo.service import forget_spatial_index
from core.org.models import Department, RoutingRule
from core.progress import NoProgress, ProgressSink
from core.regions.models import District
from core.regions.service import areas_m2, projection, rounded, to_geojson_many

SCALES = {"small": synth.SMALL, "city": synth.CITY}
DEFAULT_COMPONENTS = {"small": 500, "city": 100_000}
COMPONENT_CHUNK = 50_000
# Share of states in a maintained inventory: almost everything is intact.
STATE_WEIGHTS = {"intact": 0.95, "damaged": 0.03, "lost": 0.01, "occupied": 0.01}
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
# Every demo staff account signs in with this password; `seed` is for demos and tests, never for production.
DEMO_PASSWORD = "tongguan-demo"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰志红斌鹏辉建国宇浩"


async def seed_city(
    *, scale: str = "small", components: int | None = None, seed: int = 42, progress: ProgressSink | None = None
) -> dict[str, int | str]:
    """Build the synthetic city into an empty database; returns counts of what was written."""
    progress = progress or NoProgress()
    if scale not in SCALES:
        raise ValidationFailed("bad_scale", f"scale must be one of {', '.join(SCALES)}")
    if await District.exists():
        raise ConflictError("already_seeded", "the database already holds a city; seed only an empty database")
    n_components = DEFAULT_COMPONENTS[scale] if components is None else components
    progress.phase("building geography")
    city = await asyncio.to_thread(synth.build_city, SCALES[scale], seed=seed)
    progress.phase("catalog and calendar")
    catalog = load_catalog()
    await install_catalog(catalog=catalog, activate=True)
    days = calendar_days()
    await store_calendar_days(days=days, official_years=official_years())
    progress.phase("regions", total=len(city.unit_grids))
    await _write_regions(city, seed, progress)
    progress.phase("departments and routing rules")
    departments, rules = await _write_departments_and_rules(city, catalog)
    progress.phase("components", total=n_components)
    await _write_components(city, catalog, n_components, seed, progress)
    progress.phase("staff accounts")
    staff = await _write_staff(city)
    forget_spatial_index()
    return {
        "scale": scale,
        "districts": len(city.districts),
        "streets": len(city.streets),
        "communities": len(city.communities),
        "unit grids": len(city.unit_grids),
        "responsibility grids": len(city.responsibility_grids),
        "road segments": len(city.road_segments),
        "subclasses": len(catalog.subclasses),
        "departments": departments,
        "routing rules": rules,
        "components": n_components,
        "calendar days": len(days),
        "staff accounts": staff,
    }


async def _write_staff(city: synth.SyntheticCity) -> int:
    """Demo staff: a city-wide dispatcher and duty chief, a dispatcher per district, an inspector per
    responsibility grid and a handler per department, all with the password DEMO_PASSWORD."""
    # One argon2 hash for all: hashing a few hundred passwords would take longer than the rest of the seed.
    password_hash = hash_password(DEMO_PASSWORD)
    accounts: list[tuple[str, str, str, str | None, str]] = [
        ("dispatcher", "市级派遣员", "dispatcher", None, ""),
        ("chief", "值班长", "duty_chief", None, ""),
    ]
    accounts += [(f"dispatcher-{d.code}", f"{d.name}派遣员", "dispatcher", None, d.code) for d in city.districts]
    accounts += [
        (f"inspector-{r.code}", f"监督员{r.code}", "inspector", None, r.street_code) for r in city.responsibility_grids
    ]
    departments = await Department.all().values_list("code", "name")
    accounts += [(f"handler-{code}", f"{name}处置员", "handler", code, "") for code, name in departments]
    async with in_transaction() as conn:
        await StaffAccount.bulk_create(
            [StaffAccount(username=u, display_name=n, password_hash=password_hash) for u, n, *_ in accounts]
        )
        ids = dict(await StaffAccount.all().values_list("username", "id"))
        await StaffRole.bulk_create(
            [StaffRole(staff_id=ids[u], role=r, department_id=dep, area_code=area) for u, _, r, dep, area in accounts]
        )
        await insert_rows(
            conn,
            "responsibility_grid_inspector",
            ("responsibility_grid_id", "staffaccount_id"),
            [(r.code, ids[f"inspector-{r.code}"]) for r in city.responsibility_grids],
        )
    return len(accounts)


def _phone(rng: np.random.Generator) -> str:
    return f"024-{rng.integers(22_000_000, 89_999_999)}"


def _mobile(rng: np.random.Generator) -> str:
    """A made-up mainland mobile number (synthetic city only)."""
    return "139" + "".join(str(d) for d in rng.integers(0, 10, 8))


def _person(rng: np.random.Generator) -> str:
    return SURNAMES[rng.integers(len(SURNAMES))] + "".join(GIVEN[i] for i in rng.integers(len(GIVEN), size=2))


async def _write_regions(city: synth.SyntheticCity, seed: int, progress: ProgressSink) -> None:
    rng = np.random.default_rng(seed)
    rgrid_of = {g: r.code for r in city.responsibility_grids for g in r.unit_grid_codes}
    async with in_transaction() as conn:
        levels: list[tuple[str, str | None, Sequence[synth.DistrictRec | synth.StreetRec | synth.CommunityRec]]] = [
            ("district", None, city.districts),
            ("street", "district_id", city.streets),
            ("community", "street_id", city.communities),
        ]
        for table, parent, records in levels:
            texts = to_geojson_many([r.geometry for r in records])
            cols = ["code", "name", "geometry"] + ([parent] if parent else [])
            rows = [
                (r.code, r.name, t, *([r.code[: len(r.code) - 3]] if parent else []))
                for r, t in zip(records, texts, strict=True)
            ]
            await insert_rows(conn, table, cols, rows)
        await insert_rows(
            conn,
            "responsibility_grid",
            ["code", "name", "street_id"],
            [(r.code, r.name, r.street_code) for r in city.responsibility_grids],
        )
        # Areas are computed the way an import computes them, so export → import round-trips exactly.
        grid_geoms = rounded([g.geometry for g in city.unit_grids])
        texts = to_geojson_many(grid_geoms)
        areas = areas_m2(grid_geoms, projection())
        step = 5000
        for start in range(0, len(city.unit_grids), step):
            chunk = city.unit_grids[start : start + step]
            await insert_rows(
                conn,
                "unit_grid",
                ["code", "community_id", "responsibility_grid_id", "geometry", "area_m2"],
                [
                    (g.code, g.community_code, rgrid_of.get(g.code), t, float(a))
                    for g, t, a in zip(chunk, texts[start : start + step], areas[start : start + step], strict=True)
                ],
            )
            progress.advance(len(chunk))
        roads = city.road_segments
        road_texts = to_geojson_many([r.geometry for r in roads])
        await insert_rows(
            conn,
            "road_segment",
            ["code", "name", "road_name", "district_id", "level", "chief_name", "geometry", "length_m"],
            [
                (r.code, r.name, r.road_name, r.district_code, r.level, _person(rng), t, float(r.length_m))
                for r, t in zip(roads, road_texts, strict=True)
            ],
        )


async def _write_departments_and_rules(city: synth.SyntheticCity, catalog: Catalog) -> tuple[int, int]:
    """City units, each district's bureaus and one street office per street; rules for every (area, subclass)."""
    templates = load_department_templates()
    rng = np.random.default_rng(len(city.unit_grids))
    rows: list[tuple] = []
    city_by_kind: dict[str, str] = {}
    for d in templates.city_departments:
        rows.append((d.code, d.name, "city", d.kind, None, None, None, d.duty_phone, _mobile(rng), False))
        city_by_kind.setdefault(d.kind, d.code)
    district_by_kind: dict[tuple[str, str], str] = {}
    street_office: dict[str, str] = {}
    office = next(t for t in templates.district_departments if t.level == "street")
    bureaus = [t for t in templates.district_departments if t.level == "district"]
    for district in city.districts:
        fallback = f"{district.code}{templates.fallback.code}"
        for t in bureaus:
            code = f"{district.code}{t.code}"
            name = t.name_for(district=district.name)
            rows.append(
                (
                    code,
                    name,
                    "district",
                    t.kind,
                    city_by_kind.get(t.kind),
                    district.code,
                    None,
                    _phone(rng),
                    _mobile(rng),
                    t.fallback,
                )
            )
            district_by_kind.setdefault((district.code, t.kind), code)
        # One street office per street (the template's S01..S11 assume 11 streets a district; the city decides).
        for street in (s for s in city.streets if s.district_code == district.code):
            code = f"{street.code}S"
            name = office.name_for(district=district.name, street=street.name.removesuffix("街道"))
            rows.append(
                (
                    code,
                    name,
                    "street",
                    office.kind,
                    fallback,
                    district.code,
                    street.code,
                    _phone(rng),
                    _mobile(rng),
                    False,
                )
            )
            street_office[street.code] = code
    subclass_ids = await subclass_ids_by_code()
    rules: list[tuple] = []
    for s in catalog.subclasses:
        entry = templates.routing_for(s.department_kind)
        sid = subclass_ids[(s.kind, s.code)]
        if entry.level == "city":
            rules.append((sid, "city", "", entry.rule, city_by_kind[s.department_kind]))
        elif entry.level == "district":
            for district in city.districts:
                dept = district_by_kind[(district.code, s.department_kind)]
                rules.append((sid, "district", district.code, entry.rule, dept))
        else:
            for street_code, office_code in street_office.items():
                rules.append((sid, "street", street_code, entry.rule, office_code))
    async with in_transaction() as conn:
        await insert_rows(
            conn,
            "department",
            [
                "code",
                "name",
                "level",
                "kind",
                "parent_id",
                "district_id",
                "street_id",
                "duty_phone",
                "duty_mobile",
                "is_fallback",
            ],
            rows,
        )
        await insert_rows(
            conn, "routing_rule", ["subclass_id", "area_level", "area_code", "rule_kind", "department_id"], rules
        )
    return len(rows), len(rules)


async def _write_components(
    city: synth.SyntheticCity, catalog: Catalog, total: int, seed: int, progress: ProgressSink
) -> None:
    """Scatter `total` components over the grids, area-weighted, with owners from the routing rules."""
    if total <= 0:
        return
    rng = np.random.default_rng(seed + 1)
    comp_subclasses = [s for s in catalog.subclasses if s.kind == "component"]
    owners = await _owner_table()
    # Sample inside the stored (rounded) outlines, so every point lies in its grid as the index sees it.
    grids = rounded([g.geometry for g in city.unit_grids])
    grid_codes = [g.code for g in city.unit_grids]
    weights = np.asarray([g.area_m2 for g in city.unit_grids], dtype=float)
    weights /= weights.sum()
    states = list(STATE_WEIGHTS)
    state_p = np.asarray(list(STATE_WEIGHTS.values()))
    serial: dict[tuple[str, str], int] = defaultdict(int)
    now = datetime.now(UTC)
    done = 0
    while done < total:
        n = min(COMPONENT_CHUNK, total - done)
        gi = rng.choice(len(grids), size=n, p=weights)
        lon, lat = synth.random_points_in(grids, gi, rng)
        si = rng.integers(len(comp_subclasses), size=n)
        st = rng.choice(len(states), size=n, p=state_p)
        rows = []
        for k in range(n):
            grid = grid_codes[gi[k]]
            sub = comp_subclasses[si[k]]
            key = (grid[:6], sub.code)
            serial[key] += 1
            owner = owners(sub.code, grid)
            code = f"{grid[:6]}{sub.code}{serial[key]:06d}"
            rows.append(
                (code, sub.code, sub.name, owner, owner, owner, states[st[k]], float(lon[k]), float(lat[k]), grid, now)
            )
        async with in_transaction() as conn:
            await insert_rows(
                conn,
                "component",
                [*COMPONENT_COLUMNS, "updated_at"],
                rows,
            )
        done += n
        progress.advance(n)


async def _owner_table():
    """A fast in-memory (component subclass, grid) → owner department lookup built from the routing rules."""
    rules = await RoutingRule.filter(subclass__kind="component", subclass__catalog__active=True).values_list(
        "subclass__code", "area_level", "area_code", "department_id"
    )
    table: dict[tuple[str, str], str] = {}
    for code, level, area, dept in rules:
        table[(code, area if level != "city" else "")] = dept

    def owner(subclass_code: str, grid: str) -> str:
        for area in (grid, grid[:9], grid[:6], ""):
            if (subclass_code, area) in table:
                return table[(subclass_code, area)]
        raise KeyError(f"no owner rule for {subclass_code} in {grid}")

    return owner
