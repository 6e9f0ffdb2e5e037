"""Muck trucks of the synthetic city: transport companies, their trucks, and approved routes along its roads.

Deterministic from the seed. The reference city tracks 3,000+ trucks of 87 companies (DESIGN.md); the small city
gets three companies with a few trucks each. Routes are stretches of the city's own roads (consecutive road
segments of one road, merged), with the windows such cities approve: mostly at night.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

import numpy as np
import shapely
from shapely.ops import substring

from core.geo import synth
from core.muck.models import MuckCompany, MuckRoute, MuckTruck
from core.muck.service import forget_routes
from core.regions.service import to_geojson_many

# (companies, trucks in all) per scale
COUNTS = {"small": (3, 12), "city": (87, 3_045)}
MIN_FLEET = 5
# Approved daily windows (minutes after China midnight) and their shares: night transport, as most cities require.
WINDOWS = (((22 * 60, 5 * 60), 0.6), ((20 * 60, 6 * 60), 0.2), ((9 * 60, 16 * 60), 0.2))
CORRIDORS_M = (80.0, 100.0, 100.0, 150.0)
ROUTE_M = (1_500.0, 6_000.0)  # length of an approved stretch, where the road is long enough
SECOND_ROUTE = 0.2  # share of trucks with a second approved route
BRANDS = "鑫顺 恒通 宏达 金盛 万通 隆基 盛源 众鑫 华运 鼎力 诚信 安达 顺发 广通 天成 宇通 德胜 永利 兴达 通和".split()
KINDS = ("渣土运输有限公司", "土方工程有限公司", "建筑垃圾清运有限公司")
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚"
PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"


async def seed_muck(*, city: synth.SyntheticCity, scale: str, seed: int, today: date) -> dict[str, int]:
    """Write companies, trucks and routes for the synthetic city; returns their counts."""
    rng = np.random.default_rng(seed + 3)
    n_companies, n_trucks = COUNTS.get(scale, COUNTS["small"])
    names = _company_names(city, n_companies, rng)
    await MuckCompany.bulk_create(
        [
            MuckCompany(
                name=name,
                license_no=f"ZT{today.year}{k + 1:04d}",
                contact=_person(rng),
                phone="139" + "".join(str(d) for d in rng.integers(0, 10, 8)),
            )
            for k, name in enumerate(names)
        ]
    )
    company_ids = dict(await MuckCompany.filter(name__in=names).values_list("name", "id"))
    least = min(MIN_FLEET, n_trucks // n_companies)
    fleets = rng.multinomial(n_trucks - least * n_companies, rng.dirichlet(np.ones(n_companies))) + least
    serials = rng.choice(len(PLATE_LETTERS) * 10_000, size=n_trucks, replace=False)
    plates = [f"辽A{PLATE_LETTERS[s // 10_000]}{s % 10_000:04d}" for s in serials.tolist()]
    owners = np.repeat(np.arange(n_companies), fleets)
    await MuckTruck.bulk_create(
        [
            MuckTruck(plate=plate, company_id=company_ids[names[owner]], terminal_id=f"{seed % 1000:03d}{k + 1:09d}")
            for k, (plate, owner) in enumerate(zip(plates, owners.tolist(), strict=True))
        ]
    )
    truck_ids = dict(await MuckTruck.filter(plate__in=plates).values_list("plate", "id"))
    routes = _routes(city, [truck_ids[p] for p in plates], rng, today)
    await MuckRoute.bulk_create(routes)
    forget_routes()
    return {"muck companies": n_companies, "muck trucks": n_trucks, "muck routes": len(routes)}


def _company_names(city: synth.SyntheticCity, n: int, rng: np.random.Generator) -> list[str]:
    places = [d.name.removesuffix("新区").removesuffix("区") for d in city.districts]
    pool = [f"{p}{b}{k}" for p in places for b in BRANDS for k in KINDS]
    return [pool[i] for i in rng.choice(len(pool), size=min(n, len(pool)), replace=False)]


def _person(rng: np.random.Generator) -> str:
    return SURNAMES[rng.integers(len(SURNAMES))] + "".join(GIVEN[i] for i in rng.integers(len(GIVEN), size=2))


def _runs(city: synth.SyntheticCity) -> tuple[list[str], list[shapely.LineString]]:
    """Each road's segments merged into continuous lines (local metres), with the road's name."""
    by_road: dict[str, list[shapely.Geometry]] = defaultdict(list)
    for segment in city.road_segments:
        by_road[segment.road_name].append(segment.geometry)
    names, lines = [], []
    for road, geoms in by_road.items():
        local = synth.geometry_to_local(np.asarray(geoms, dtype=object), city.center)
        for part in shapely.get_parts(shapely.line_merge(shapely.multilinestrings(local))):
            names.append(road)
            lines.append(part)
    return names, lines


def _routes(city: synth.SyntheticCity, truck_ids: list[int], rng: np.random.Generator, today: date) -> list[MuckRoute]:
    names, runs = _runs(city)
    lengths = np.asarray(shapely.length(np.asarray(runs, dtype=object)), dtype=float)
    wanted = [truck for truck in truck_ids for _ in range(1 + int(rng.random() < SECOND_ROUTE))]
    picks = rng.choice(len(runs), size=len(wanted), p=lengths / lengths.sum())
    windows = rng.choice(len(WINDOWS), size=len(wanted), p=[share for _, share in WINDOWS])
    stretches = []
    for run in picks.tolist():
        length = min(rng.uniform(*ROUTE_M), lengths[run])
        start = rng.uniform(0.0, lengths[run] - length)
        stretches.append(substring(runs[run], start, start + length))
    texts = to_geojson_many(synth.geometry_from_local(np.asarray(stretches, dtype=object), city.center))
    routes = []
    for k, truck in enumerate(wanted):
        start_min, end_min = WINDOWS[windows[k]][0]
        routes.append(
            MuckRoute(
                truck_id=truck,
                name=f"{names[picks[k]]}运输线路",
                geometry=texts[k],
                corridor_m=float(rng.choice(CORRIDORS_M)),
                window_start_min=start_min,
                window_end_min=end_min,
                valid_from=today - timedelta(days=int(rng.integers(0, 60))),
                valid_to=today + timedelta(days=int(rng.integers(30, 180))),
            )
        )
    return routes
