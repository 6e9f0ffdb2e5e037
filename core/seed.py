"""`tongguan seed`: a deterministic synthetic reference city written into an empty database.

Geography comes from core.geo.synth, the catalog and departments from the shipped reference data, the
calendar from the shipped holiday file; routing rules are generated so that every (area, subclass) resolves,
and components are scattered over the grids with owners taken from those rules. Public places follow: toilets,
road works and shops along the road segments, parks inside the grids.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import shapely
from tortoise.transactions import in_transaction

from core import clock
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
from core.muck.seed import seed_muck
from core.org.models import Department, RoutingRule
from core.places.messages import PARK_KIND_NAMES
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


@dataclass(frozen=True)
class PlaceCounts:
    """How many public places of each kind a synthetic city gets."""

    toilets: int
    parks: dict[str, int]  # by Park kind
    road_works: tuple[int, int, int]  # under way today, finished, planned
    shops: int


# City scale after the reference city (DESIGN.md): 3,070 pocket parks, 437 excavation sites, 56,782 shops; the
# toilets and the other parks are plausible for 10 M people. The small city gets a few dozen of each.
PLACE_COUNTS = {
    "small": PlaceCounts(
        toilets=36, parks={"pocket": 18, "community": 8, "city": 3, "country": 1}, road_works=(8, 4, 4), shops=60
    ),
    "city": PlaceCounts(
        toilets=3_600,
        parks={"pocket": 3_070, "community": 420, "city": 48, "country": 12},
        road_works=(437, 220, 90),
        shops=56_782,
    ),
}
# Centre line to kerb by road level, in metres: what sits beside a road starts this far from its line.
ROAD_HALF_WIDTH_M = {"city": 15.0, "district": 10.0, "street": 6.0}
TOILET_HOURS = (("全天", 0.6), ("06:00-22:00", 0.25), ("05:30-23:00", 0.15))
PARK_HOURS = {"pocket": "全天", "community": "全天", "city": "05:00-22:00", "country": "06:00-18:00"}
PARK_AREA_M2 = {"pocket": (200, 3_000), "community": (10_000, 60_000), "city": (1e5, 9e5), "country": (1e6, 6e6)}
WORKS = ("给水管道维修", "燃气管道改造", "电力电缆敷设", "通信管线施工", "雨污分流改造", "热力管网改造", "道路大修")
CONTRACTORS = ("市第一市政工程公司", "市第二市政工程公司", "市燃气工程公司", "市供水工程公司", "市电力工程公司")
DETOURS = (
    "施工期间半幅通行，请减速慢行。",
    "施工路段禁止机动车通行，请绕行相邻道路。",
    "人行道临时改道，请注意安全。",
    "夜间施工，请注意警示灯。",
)
SHOP_KINDS = (
    "便利店 超市 面馆 饺子馆 水果店 药房 理发店 五金店 花店 茶叶店 烧烤店 早餐店 面包房 洗衣店 眼镜店 粮油店".split()
)
SHOP_BRANDS = "鑫福兴顺和佳美家金诚信德康乐惠丰源盛隆"
# Every shop has 门前三包 duties; some carry awards (好店铺 is the city's good-shop list).
SHOP_FEATURES = (("好店铺", 0.35), ("诚信经营", 0.25), ("门前三包示范", 0.15), ("垃圾分类示范", 0.1))
DUTY_NOTE = "店门前 {width} 米宽至路缘石：市容整洁、环境卫生、秩序良好"  # the 门前三包 duties of one shop
# A duty area's GeoJSON, written by hand: %-formatting is 3x faster than json.dumps for 56,782 shops.
DUTY_AREA = '{"type":"Polygon","coordinates":[[' + ",".join(["[%.7f,%.7f]"] * 5) + "]]}"


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
    # The stored (rounded) outlines: points sampled inside them lie in their grid as the index sees it.
    grids = rounded([g.geometry for g in city.unit_grids])
    progress.phase("regions", total=len(city.unit_grids))
    await _write_regions(city, grids, seed, progress)
    progress.phase("departments and routing rules")
    departments, rules = await _write_departments_and_rules(city, catalog)
    progress.phase("components", total=n_components)
    await _write_components(city, grids, catalog, n_components, seed, progress)
    progress.phase("public places")
    places = await _write_places(city, grids, PLACE_COUNTS[scale], seed, clock.now().date())
    progress.phase("staff accounts")
    staff = await _write_staff(city)
    progress.phase("muck trucks")
    muck = await seed_muck(city=city, scale=scale, seed=seed, today=clock.now().date())
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
        **places,
        **muck,
    }


async def _write_staff(city: synth.SyntheticCity) -> int:
    """Demo staff: a city-wide dispatcher and duty chief, a dispatcher and an enforcement officer per district, an
    inspector per responsibility grid and a handler per department, all with the password DEMO_PASSWORD."""
    # One argon2 hash for all: hashing a few hundred passwords would take longer than the rest of the seed.
    password_hash = hash_password(DEMO_PASSWORD)
    accounts: list[tuple[str, str, str, str | None, str]] = [
        ("dispatcher", "市级派遣员", "dispatcher", None, ""),
        ("chief", "值班长", "duty_chief", None, ""),
    ]
    accounts += [(f"dispatcher-{d.code}", f"{d.name}派遣员", "dispatcher", None, d.code) for d in city.districts]
    # An enforcement officer per district: the district's enforcement bureau is the organ (执法机关) of 首违免罚.
    accounts += [(f"officer-{d.code}", f"{d.name}执法队员", "officer", None, d.code) for d in city.districts]
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


async def _write_regions(city: synth.SyntheticCity, grids: np.ndarray, seed: int, progress: ProgressSink) -> None:
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
        texts = to_geojson_many(grids)
        areas = areas_m2(grids, projection())
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
    city: synth.SyntheticCity, grids: np.ndarray, catalog: Catalog, total: int, seed: int, progress: ProgressSink
) -> None:
    """Scatter `total` components over the grids, area-weighted, with owners from the routing rules."""
    if total <= 0:
        return
    rng = np.random.default_rng(seed + 1)
    comp_subclasses = [s for s in catalog.subclasses if s.kind == "component"]
    owners = await _owner_table()
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


@dataclass(frozen=True)
class _Roadside:
    """Points beside road segments, with the road's direction there (local metres) and the grid each lies in."""

    road: np.ndarray  # index into city.road_segments
    lon: np.ndarray
    lat: np.ndarray
    grid: np.ndarray  # index into city.unit_grids
    tangent: np.ndarray  # (n, 2) unit vectors along the road
    normal: np.ndarray  # (n, 2) unit vectors from the road towards the point
    setback: np.ndarray  # metres from the kerb to the point


class _Places:
    """What every kind of public place is placed with: the roads' pieces in local metres and a grid lookup."""

    def __init__(self, city: synth.SyntheticCity, grids: np.ndarray, rng: np.random.Generator) -> None:
        self.city, self.grids, self.rng = city, grids, rng
        self.tree = shapely.STRtree(grids)
        roads = city.road_segments
        lines = synth.geometry_to_local(np.asarray([r.geometry for r in roads], dtype=object), city.center)
        # Every straight piece of every road, end to end in one array: a point at some distance along a road is
        # found with one searchsorted for all points (shapely's interpolation per point is ~20x slower).
        coords, line_of = shapely.get_coordinates(lines, return_index=True)
        self.piece_start = coords[:-1]
        self.piece_vec = coords[1:] - coords[:-1]
        self.piece_vec[line_of[1:] != line_of[:-1]] = 0.0  # the jump from one road to the next is no piece
        self.piece_len = np.linalg.norm(self.piece_vec, axis=1)
        self.piece_end_at = np.cumsum(self.piece_len)  # distance from the first road's start to each piece's end
        first_vertex = np.searchsorted(line_of, np.arange(len(roads)))
        self.road_start_at = np.concatenate(([0.0], self.piece_end_at))[first_vertex]
        self.lengths = np.bincount(line_of[1:], weights=self.piece_len, minlength=len(roads))
        self.half_width = np.asarray([ROAD_HALF_WIDTH_M.get(r.level, 8.0) for r in roads], dtype=float)

    def grid_of(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Index of the grid holding each point, -1 outside the city."""
        point_idx, grid_idx = self.tree.query(shapely.points(lon, lat), predicate="intersects")
        out = np.full(len(lon), -1, dtype=int)
        # Reversed, so that a point on a shared edge takes the first grid the tree lists.
        out[point_idx[::-1]] = grid_idx[::-1]
        return out

    def roadside(self, n: int, setback_m: tuple[float, float] | None) -> _Roadside:
        """n points along the roads (longer roads get more): `setback_m` (low, high) beyond the kerb on either
        side, or on the centre line when it is None."""
        parts: list[_Roadside] = []
        have = 0
        while have < n:
            want = int((n - have) * 1.1) + 8  # a few fall outside the city near its edge
            road = self.rng.choice(len(self.lengths), size=want, p=self.lengths / self.lengths.sum())
            at = self.road_start_at[road] + self.rng.uniform(0.1, 0.9, size=want) * self.lengths[road]
            piece = np.minimum(np.searchsorted(self.piece_end_at, at), len(self.piece_len) - 1)
            piece_len = np.maximum(self.piece_len[piece], 1e-9)
            tangent = self.piece_vec[piece] / piece_len[:, None]
            here = self.piece_start[piece] + tangent * (at - (self.piece_end_at[piece] - piece_len))[:, None]
            side = self.rng.choice((-1.0, 1.0), size=want)
            normal = np.column_stack((-tangent[:, 1], tangent[:, 0])) * side[:, None]
            if setback_m is None:
                setback = offset = np.zeros(want)
            else:
                setback = self.rng.uniform(*setback_m, size=want)
                offset = self.half_width[road] + setback
            xy = here + normal * offset[:, None]
            lon, lat = synth.from_local_m(xy[:, 0], xy[:, 1], self.city.center)
            grid = self.grid_of(lon, lat)
            keep = np.flatnonzero(grid >= 0)[: n - have]
            parts.append(
                _Roadside(road[keep], lon[keep], lat[keep], grid[keep], tangent[keep], normal[keep], setback[keep])
            )
            have += len(keep)
        return _Roadside(*(np.concatenate([getattr(p, f) for p in parts]) for f in _Roadside.__dataclass_fields__))

    def in_grids(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """n points inside the grids, area-weighted, with their grid indexes."""
        weights = np.asarray([g.area_m2 for g in self.city.unit_grids], dtype=float)
        gi = self.rng.choice(len(self.grids), size=n, p=weights / weights.sum())
        lon, lat = synth.random_points_in(self.grids, gi, self.rng)
        return lon, lat, gi


async def _write_places(
    city: synth.SyntheticCity, grids: np.ndarray, counts: PlaceCounts, seed: int, today: date
) -> dict[str, int]:
    """Toilets, road works and shops beside the roads, parks inside the grids; road works dated around `today`."""
    places = _Places(city, grids, np.random.default_rng(seed + 2))
    now = clock.now()
    async with in_transaction() as conn:
        toilets = _toilet_rows(places, counts.toilets, now)
        await insert_rows(
            conn,
            "toilet",
            ("name", "address", "district", "lon", "lat", "open_hours", "accessible", "baby_room", "created_at"),
            toilets,
        )
        parks = _park_rows(places, counts.parks, now)
        await insert_rows(
            conn,
            "park",
            ("name", "kind", "address", "district", "lon", "lat", "area_m2", "open_hours", "created_at"),
            parks,
        )
        works = _road_work_rows(places, counts.road_works, today, now)
        await insert_rows(
            conn,
            "road_work",
            (
                "permit_no",
                "name",
                "road",
                "district",
                "contractor",
                "lon",
                "lat",
                "radius_m",
                "starts_on",
                "ends_on",
                "detour",
                "created_at",
            ),
            works,
        )
        shops = _shop_rows(places, counts.shops, now)
        await insert_rows(
            conn,
            "shop",
            (
                "qr",
                "name",
                "address",
                "street",
                "lon",
                "lat",
                "features",
                "duty_area",
                "duty_note",
                "owner_openid",
                "created_at",
            ),
            shops,
        )
    return {
        "toilets": len(toilets),
        "parks": len(parks),
        "pocket parks": counts.parks.get("pocket", 0),
        "road works": len(works),
        "road works under way": counts.road_works[0],
        "shops": len(shops),
    }


def _house_numbers(rng: np.random.Generator, n: int) -> list[int]:
    return rng.integers(1, 400, size=n).tolist()


def _toilet_rows(places: _Places, n: int, now: datetime) -> list[tuple]:
    rng, roads, grids = places.rng, places.city.road_segments, places.city.unit_grids
    at = places.roadside(n, (3.0, 12.0))
    hours = rng.choice(len(TOILET_HOURS), size=n, p=[p for _, p in TOILET_HOURS])
    accessible, baby_room = rng.random(n) < 0.7, rng.random(n) < 0.3
    seen: dict[str, int] = defaultdict(int)
    rows = []
    for k, house in enumerate(_house_numbers(rng, n)):
        road = roads[at.road[k]].road_name
        seen[road] += 1
        name = f"{road}公厕" if seen[road] == 1 else f"{road}{seen[road]}号公厕"
        rows.append(
            (
                name,
                f"{road}{house}号旁",
                grids[at.grid[k]].code[:6],
                float(at.lon[k]),
                float(at.lat[k]),
                TOILET_HOURS[hours[k]][0],
                bool(accessible[k]),
                bool(baby_room[k]),
                now,
            )
        )
    return rows


def _park_rows(places: _Places, counts: dict[str, int], now: datetime) -> list[tuple]:
    rng, grids = places.rng, places.city.unit_grids
    communities = {c.code: c.name for c in places.city.communities}
    streets = {s.code: s.name for s in places.city.streets}
    seen: dict[str, int] = defaultdict(int)
    rows = []
    for kind, n in counts.items():
        lon, lat, gi = places.in_grids(n)
        low, high = PARK_AREA_M2[kind]
        areas = np.round(rng.uniform(low, high, size=n), -1)
        for k in range(n):
            code = grids[gi[k]].code
            community, street = communities[code[:12]], streets[code[:9]]
            stem = community.removesuffix("社区") if kind in ("pocket", "community") else street.removesuffix("街道")
            label = PARK_KIND_NAMES[kind] if kind in ("pocket", "country") else "公园"
            seen[stem + label] += 1
            number = seen[stem + label]
            name = f"{stem}{label}" if number == 1 else f"{stem}{number}号{label}"
            rows.append(
                (name, kind, f"{street}{community}", code[:6], float(lon[k]), float(lat[k]), float(areas[k]),
                 PARK_HOURS[kind], now)
            )  # fmt: skip
    return rows


def _road_work_rows(places: _Places, counts: tuple[int, int, int], today: date, now: datetime) -> list[tuple]:
    """Works under way today, finished in the last two months, and planned for the coming month."""
    rng, roads, grids = places.rng, places.city.road_segments, places.city.unit_grids
    underway, finished, planned = counts
    n = underway + finished + planned
    at = places.roadside(n, None)
    # Days from today: under way (started, not ended), finished (ended), planned (not started).
    spans = rng.integers(10, 90, size=n)
    starts, ends = np.empty(n, dtype=int), np.empty(n, dtype=int)
    starts[:underway] = -rng.integers(1, 60, size=underway)
    ends[:underway] = rng.integers(3, 90, size=underway)
    done = slice(underway, underway + finished)
    ends[done] = -rng.integers(1, 60, size=finished)
    starts[done] = ends[done] - spans[done]
    later = slice(underway + finished, n)
    starts[later] = rng.integers(1, 30, size=planned)
    ends[later] = starts[later] + spans[later]
    work = rng.integers(len(WORKS), size=n)
    contractor = rng.integers(len(CONTRACTORS), size=n)
    detour = rng.integers(len(DETOURS), size=n)
    radius = rng.choice((50.0, 80.0, 100.0, 150.0, 200.0), size=n)
    serial: dict[str, int] = defaultdict(int)
    rows = []
    for k in range(n):
        district = grids[at.grid[k]].code[:6]
        serial[district] += 1
        road = roads[at.road[k]].road_name
        rows.append(
            (
                f"JL{district}{serial[district]:05d}",
                f"{road}{WORKS[work[k]]}工程",
                road,
                district,
                CONTRACTORS[contractor[k]],
                float(at.lon[k]),
                float(at.lat[k]),
                float(radius[k]),
                today + timedelta(days=int(starts[k])),
                today + timedelta(days=int(ends[k])),
                DETOURS[detour[k]],
                now,
            )
        )
    return rows


def _shop_rows(places: _Places, n: int, now: datetime) -> list[tuple]:
    """Shops facing the road, each with its 门前三包 duty area: the pavement from its front to the kerb."""
    rng, roads, grids, center = places.rng, places.city.road_segments, places.city.unit_grids, places.city.center
    at = places.roadside(n, (3.0, 8.0))
    width = rng.uniform(6.0, 14.0, size=n)
    # Corners in local metres: along the front (± half the width), then at the kerb; counter-clockwise
    # (RFC 7946) whichever side of the road the shop is on.
    front = np.column_stack(synth.to_local_m(at.lon, at.lat, center))
    half = at.tangent * (width / 2)[:, None]
    kerb = -at.normal * at.setback[:, None]
    left_side = (at.normal[:, 0] * at.tangent[:, 1] - at.normal[:, 1] * at.tangent[:, 0] < 0)[:, None]
    corners = [front + half, front - half, front - half + kerb, front + half + kerb]
    corners[1], corners[3] = np.where(left_side, corners[1], corners[3]), np.where(left_side, corners[3], corners[1])
    ring = np.column_stack([np.column_stack(synth.from_local_m(c[:, 0], c[:, 1], center)) for c in corners])
    flags = rng.random((n, len(SHOP_FEATURES))) < np.asarray([p for _, p in SHOP_FEATURES])
    masks = (flags * (1 << np.arange(len(SHOP_FEATURES)))).sum(axis=1).tolist()
    features = [
        json.dumps([name for bit, (name, _) in enumerate(SHOP_FEATURES) if mask >> bit & 1], ensure_ascii=False)
        for mask in range(1 << len(SHOP_FEATURES))
    ]
    notes = {
        w: f"门前三包责任区：店门前 {w} 米宽，至路缘石。包市容整洁、包环境卫生、包秩序良好。" for w in range(6, 15)
    }
    kinds = rng.integers(len(SHOP_KINDS), size=n).tolist()
    brands = rng.integers(len(SHOP_BRANDS), size=(n, 2)).tolist()
    surnames = rng.integers(len(SURNAMES), size=n).tolist()
    by_surname = (rng.random(n) < 0.4).tolist()
    # Column by column, then zipped: a row-by-row loop with every field formatted in it takes twice as long.
    road_names = [roads[k].road_name for k in at.road.tolist()]
    columns = (
        [f"SHOP-{k:06d}" for k in range(1, n + 1)],
        [
            (f"{SURNAMES[s]}记" if named else SHOP_BRANDS[b[0]] + SHOP_BRANDS[b[1]]) + SHOP_KINDS[k]
            for s, named, b, k in zip(surnames, by_surname, brands, kinds, strict=True)
        ],
        [f"{road}{house}号" for road, house in zip(road_names, _house_numbers(rng, n), strict=True)],
        [grids[k].code[:9] for k in at.grid.tolist()],
        np.round(at.lon, 7).tolist(),
        np.round(at.lat, 7).tolist(),
        [features[m] for m in masks],
        [DUTY_AREA % (*c, c[0], c[1]) for c in ring.tolist()],  # per shop: lon0, lat0, ..., lon3, lat3
        [notes[w] for w in np.round(width).astype(int).tolist()],
        [None] * n,
        [now] * n,
    )
    return list(zip(*columns, strict=True))
