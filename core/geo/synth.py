"""A deterministic synthetic reference city (参考城市): districts, streets, communities, unit grids, responsibility
grids and road segments, built in memory from a seed with shapely and numpy (no database).

Everything is constructed in local metres around the centre (core.geo.projection.LocalProjection) and converted
to WGS-84 lon/lat at the end. Unit grids are Voronoi cells of a jittered lattice clipped to an irregular outline;
every higher level is a group of unit grids and its geometry is the exact union of its children.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import product

import numpy as np
import shapely
from shapely import STRtree
from shapely.geometry import LineString, MultiPolygon, Polygon
from shapely.ops import substring

from core.geo.projection import LocalProjection

DEFAULT_CENTER: tuple[float, float] = (123.43, 41.80)

# Vertices are snapped to 1 mm so that neighbouring cells share bit-identical edges and unions stay clean.
PRECISION_M = 0.001
# Roads are clipped this far inside the outline so that "segment inside the city" holds after reprojection.
ROAD_MARGIN_M = 2.0
# Where a road leaves the built-up area its segment ends at the ring expressway around the city.
OUTER_END_NAME = "绕城高速"
ROAD_LEVELS = ("city", "district", "street")


@dataclass(frozen=True)
class Scale:
    """How many regions of each kind the synthetic city has, and its area."""

    districts: int
    streets: int
    communities: int
    unit_grids: int
    responsibility_grids: int
    road_segments: int
    area_km2: float


CITY = Scale(9, 99, 1047, 51495, 1093, 4784, 765.0)
SMALL = Scale(2, 4, 8, 240, 6, 40, 3.0)


@dataclass(frozen=True)
class DistrictRec:
    """区 with its GB/T 2260 code."""

    code: str
    name: str
    geometry: Polygon | MultiPolygon


@dataclass(frozen=True)
class StreetRec:
    """街道: district code + 3 digits."""

    code: str
    district_code: str
    name: str
    geometry: Polygon | MultiPolygon


@dataclass(frozen=True)
class CommunityRec:
    """社区: street code + 3 digits."""

    code: str
    street_code: str
    name: str
    geometry: Polygon | MultiPolygon


@dataclass(frozen=True)
class UnitGridRec:
    """单元网格: community code + 3-digit serial."""

    code: str
    community_code: str
    geometry: Polygon
    area_m2: float


@dataclass(frozen=True)
class ResponsibilityGridRec:
    """责任网格: a set of unit grids inside one street."""

    code: str
    name: str
    street_code: str
    unit_grid_codes: tuple[str, ...]


@dataclass(frozen=True)
class RoadSegmentRec:
    """路长制 road segment between two cross roads."""

    code: str
    name: str
    road_name: str
    district_code: str
    level: str
    geometry: LineString
    length_m: float


@dataclass(frozen=True)
class SyntheticCity:
    """The whole synthetic city; all geometries in WGS-84 lon/lat."""

    scale: Scale
    seed: int
    center: tuple[float, float]
    boundary: Polygon
    districts: list[DistrictRec]
    streets: list[StreetRec]
    communities: list[CommunityRec]
    unit_grids: list[UnitGridRec]
    responsibility_grids: list[ResponsibilityGridRec]
    road_segments: list[RoadSegmentRec]


# --- reference words -------------------------------------------------------------------------------------------

# Shenyang's districts in GB/T 2260 order, with where each lies relative to the centre (fractions of the city's
# equivalent radius, east and north) so that the inner districts come out small and the outer ones large.
_DISTRICTS: tuple[tuple[str, str, tuple[float, float]], ...] = (
    ("210102", "和平区", (-0.12, -0.10)),
    ("210103", "沈河区", (0.13, 0.02)),
    ("210104", "大东区", (0.40, 0.28)),
    ("210105", "皇姑区", (-0.08, 0.34)),
    ("210106", "铁西区", (-0.45, -0.12)),
    ("210111", "苏家屯区", (-0.30, -0.80)),
    ("210112", "浑南区", (0.50, -0.45)),
    ("210113", "沈北新区", (0.15, 0.80)),
    ("210114", "于洪区", (-0.75, 0.30)),
)

# Street (街道) name stems per district, after the real ones, so a district's streets sound like that district.
_STREET_STEMS: dict[str, list[str]] = {
    "210102": "太原街 南湖 北市场 集贤 马路湾 新华 沈州 长白 浑河湾 南市场 西塔 八经 浑河站西 砂山".split(),
    "210103": "皇城 大西 滨河 风雨坛 朱剪炉 五里河 北站 大南 山东庙 万莲 东陵 泉园 南塔 马官桥 新北站".split(),
    "210104": "大北 小北 津桥 东站 二台子 上园 洮昌 文官 前进 万泉 东塔 长安 辽沈 新东 滂江".split(),
    "210105": "三台子 华山 辽河 塔湾 昆山 明廉 新乐 黄河 寿泉 北塔 北行 百鸟 亚明 陵东 鸭绿江".split(),
    "210106": "兴华 兴顺 笃工 工人村 七路 启工 霁虹 凌空 保工 重工 兴工 卫工 翟家 高花 大青 四方台 杨士 艳粉".split(),
    "210111": "民主 湖西 中兴 枫杨 林盛 八一 十里河 佟沟 王纲 姚千 陈相 永乐 红菱 沙河 白清 雪松".split(),
    "210112": "五三 浑河站东 东湖 汪家 深井子 白塔 祝家 王家湾 桃仙 高坎 李相 满堂 金卡 营城子 世纪".split(),
    "210113": "道义 正良 虎石台 新城子 财落 辉山 清水台 兴隆台 马刚 石佛寺 尹家 黄家 蒲河 宝山".split(),
    "210114": "迎宾 北陵 陵西 南阳湖 丁香湖 光辉 沙岭 造化 平罗 马三家 老边 大兴 永安 城东湖 北李官".split(),
}

_FIRST = "金银翠锦华新春秋阳和安康泰瑞丰兴福祥明清文德长永光育兰桂松柏枫梅盛嘉悦景碧紫云"
_SECOND = "园苑城湖庭林河湾桥泉山都里家府轩居坊亭台岭源溪峰"

_COMMUNITY_WORDS = (
    "阳光 锦绣 幸福 和谐 富民 文苑 春城 翠湖 枫林 金桥 银河 松山 园丁 "
    "光明 百合 碧塘 丽都 紫荆 新村 北园 南园 东苑 西苑 桂林 乐业 安居 "
    "兴业 华府 绿岛 河畔 滨江 龙江 青年 三好 胜利 文化 工农 团结 民安 "
    "惠民 振兴 向阳 朝阳 红旗 建设 友谊 育才 书香 泰山 怒江 岐山 珠江 "
    "长江 黄山 八经 九经 十纬 砂山 南湖 北陵 长青 万柳 宁山 铁山 怀远 "
    "西江 太湖 巢湖 洪湖 珠林"
).split()

# South–north roads are 街 and west–east roads are 路, as in Shenyang.
_NS_STEMS = (
    "黄河 长江 珠江 淮河 松花江 辽河 鸭绿江 嫩江 牡丹江 汉江 湘江 赣江 "
    "闽江 岷江 嘉陵江 图们江 怒江 澜沧江 北京 南京 青年 三好 五爱 惠工 "
    "砂山 北陵 望花 滂江 文艺 中央 沈中 天坛 太原 民族 正阳 杭州 苏州 "
    "广州 福州 温州 扬州 徐州 郑州 兰州 柳州 锦州 通化 集安 延边 珲春 "
    "敦化 洮南 白城 双辽 梅河 辉南 抚松 靖宇 长岭 乾安 怀德 农安 德惠 "
    "榆树 舒兰 蛟河 桦甸 磐石 伊通 东丰 东辽 西丰 昌图 康平"
).split()
_EW_STEMS = (
    "泰山 华山 黄山 嵩山 崇山 岐山 昆山 衡山 恒山 庐山 峨眉 天山 燕山 "
    "太行 千山 凤凰 九华 五台 祁连 秦岭 武夷 井冈 雁荡 普陀 沈州 沈辽 "
    "建设 光荣 胜利 文化 市府 北海 东陵 大东 小北 保工 卫工 兴工 重工 "
    "启工 肇工 兴华 艳粉 南阳湖 丁香 浑南 世纪 创新 智慧 全运 营盘 "
    "抚顺 本溪 丹东 营口 鞍山 铁岭 阜新 辽阳 盘锦 海城 盖州 凤城 宽甸 "
    "桓仁 新宾 清原 法库 新民 辽中 黑山 北镇 义县 凌海 兴城 绥中"
).split()

_DIGITS = "零一二三四五六七八九"


def _numeral(n: int) -> str:
    """Chinese numeral for 1–99."""
    tens, ones = divmod(n, 10)
    if tens == 0:
        return _DIGITS[ones]
    return ("" if tens == 1 else _DIGITS[tens]) + "十" + (_DIGITS[ones] if ones else "")


def _combos(first: str, second: str) -> list[str]:
    return [a + b for a, b in product(first, second)]


def _name_pool(curated: Iterable[str], rng: np.random.Generator, *, fallback: Iterable[str] = ()) -> list[str]:
    """Curated words first (shuffled), then generated ones (shuffled), without duplicates."""
    head = list(dict.fromkeys(curated))
    tail = [w for w in dict.fromkeys(fallback) if w not in set(head)]
    return [head[i] for i in rng.permutation(len(head))] + [tail[i] for i in rng.permutation(len(tail))]


# --- projection ------------------------------------------------------------------------------------------------


def to_local_m(lon, lat, center: tuple[float, float] = DEFAULT_CENTER) -> tuple[np.ndarray, np.ndarray]:
    """WGS-84 (lon, lat) → local (x, y) metres around `center`; scalars or arrays."""
    return LocalProjection(*center).to_m(lon, lat)


def from_local_m(x, y, center: tuple[float, float] = DEFAULT_CENTER) -> tuple[np.ndarray, np.ndarray]:
    """Local (x, y) metres around `center` → WGS-84 (lon, lat)."""
    return LocalProjection(*center).to_deg(x, y)


def geometry_to_local(geom, center: tuple[float, float] = DEFAULT_CENTER):
    """A lon/lat geometry (or array of them) in local metres."""
    proj = LocalProjection(*center)
    return shapely.transform(geom, lambda c: np.column_stack(proj.to_m(c[:, 0], c[:, 1])))


def geometry_from_local(geom, center: tuple[float, float] = DEFAULT_CENTER):
    """A local-metre geometry (or array of them) in lon/lat."""
    proj = LocalProjection(*center)
    return shapely.transform(geom, lambda c: np.column_stack(proj.to_deg(c[:, 0], c[:, 1])))


def local_area_m2(geom, center: tuple[float, float] = DEFAULT_CENTER):
    """Area in square metres of a lon/lat geometry (or array of them)."""
    return shapely.area(geometry_to_local(geom, center))


# --- build -----------------------------------------------------------------------------------------------------


def build_city(scale: Scale = CITY, *, seed: int = 42, center: tuple[float, float] = DEFAULT_CENTER) -> SyntheticCity:
    """Build the synthetic city for `scale`; the same seed always gives the same city."""
    _check_scale(scale)
    rng_outline, rng_points, rng_regions, rng_names, rng_roads = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5)
    )
    outline = _outline(scale.area_km2 * 1e6, rng_outline)
    r_eq = math.sqrt(outline.area / math.pi)
    xy, spacing = _lattice_points(outline, scale.unit_grids, rng_points)
    cells = _voronoi_cells(outline, xy)

    # Denser regions near the centre: the same number of children covers fewer, smaller cells there.
    r2 = (xy**2).sum(axis=1) / r_eq**2
    weight = 1.0 / (0.7 + 0.6 * np.minimum(r2, 2.0))

    district_of = _districts_of_cells(xy, scale.districts, r_eq, rng_regions)
    street_of, street_parent = _split(xy, weight, district_of, scale.districts, scale.streets, spacing, rng_regions)
    comm_of, comm_parent = _split(xy, weight, street_of, scale.streets, scale.communities, spacing, rng_regions)
    resp_of, resp_parent = _split(
        xy, weight, street_of, scale.streets, scale.responsibility_grids, spacing, rng_regions
    )

    comm_groups = _groups(comm_of, scale.communities)
    comm_geoms = _unions([cells[g] for g in comm_groups])
    street_geoms = _unions([comm_geoms[g] for g in _groups(comm_parent, scale.streets)])
    district_geoms = _unions([street_geoms[g] for g in _groups(street_parent, scale.districts)])

    district_codes = [code for code, _, _ in _DISTRICTS[: scale.districts]]
    street_codes = _child_codes(district_codes, street_parent)
    comm_codes = _child_codes(street_codes, comm_parent)
    # Unit grids are numbered in reading order (north to south, west to east) inside their community.
    grid_code = np.empty(len(xy), dtype=object)
    for c, g in enumerate(comm_groups):
        for serial, i in enumerate(g[_reading_order(xy[g], spacing)], start=1):
            grid_code[i] = f"{comm_codes[c]}{serial:03d}"

    street_names = _street_names(district_codes, street_parent, rng_names)
    comm_names = _community_names(comm_parent, scale.streets, rng_names)

    def to_deg(geoms: np.ndarray) -> list:
        return list(geometry_from_local(np.asarray(geoms, dtype=object), center))

    cells_deg = to_deg(cells)
    areas = shapely.area(cells)
    grid_order = np.argsort(grid_code.astype(str), kind="stable")
    unit_grids = [
        UnitGridRec(grid_code[i], grid_code[i][:12], cells_deg[i], float(areas[i])) for i in grid_order.tolist()
    ]

    resp_recs: list[ResponsibilityGridRec] = []
    serial_in_street = _local_serials(resp_parent)
    for r, g in enumerate(_groups(resp_of, scale.responsibility_grids)):
        street = int(resp_parent[r])
        code = f"{street_codes[street]}R{serial_in_street[r]:02d}"
        members = tuple(sorted(grid_code[g].tolist()))
        resp_recs.append(
            ResponsibilityGridRec(
                code, f"{street_names[street]}第{serial_in_street[r]}责任网格", street_codes[street], members
            )
        )

    segments = _road_segments(outline, scale.road_segments, r_eq, rng_roads)
    seg_lines = np.array([s[3] for s in segments], dtype=object)
    seg_district = _district_of_lines(seg_lines, district_geoms)
    seg_deg = to_deg(seg_lines)
    seg_len = shapely.length(seg_lines)
    per_district: dict[int, int] = {}
    road_recs = []
    for k, (road_name, level, name, _) in enumerate(segments):
        d = int(seg_district[k])
        per_district[d] = per_district.get(d, 0) + 1
        road_recs.append(
            RoadSegmentRec(
                f"{district_codes[d]}L{per_district[d]:04d}",
                name,
                road_name,
                district_codes[d],
                level,
                seg_deg[k],
                float(seg_len[k]),
            )
        )

    district_deg, street_deg, comm_deg = to_deg(district_geoms), to_deg(street_geoms), to_deg(comm_geoms)
    return SyntheticCity(
        scale=scale,
        seed=seed,
        center=center,
        boundary=geometry_from_local(outline, center),
        districts=[DistrictRec(c, _DISTRICTS[i][1], district_deg[i]) for i, c in enumerate(district_codes)],
        streets=[
            StreetRec(c, district_codes[int(street_parent[i])], street_names[i], street_deg[i])
            for i, c in enumerate(street_codes)
        ],
        communities=[
            CommunityRec(c, street_codes[int(comm_parent[i])], comm_names[i], comm_deg[i])
            for i, c in enumerate(comm_codes)
        ],
        unit_grids=unit_grids,
        responsibility_grids=resp_recs,
        road_segments=road_recs,
    )


def city_summary(city: SyntheticCity) -> dict[str, int | float]:
    """Counts and sizes of a synthetic city, for the CLI to print."""
    grid_areas = np.array([g.area_m2 for g in city.unit_grids])
    per_comm = np.unique([g.community_code for g in city.unit_grids], return_counts=True)[1]
    seg_len = np.array([s.length_m for s in city.road_segments]) if city.road_segments else np.zeros(1)
    return {
        "districts": len(city.districts),
        "streets": len(city.streets),
        "communities": len(city.communities),
        "unit_grids": len(city.unit_grids),
        "responsibility_grids": len(city.responsibility_grids),
        "road_segments": len(city.road_segments),
        "area_km2": round(float(local_area_m2(city.boundary, city.center)) / 1e6, 3),
        "unit_grid_area_km2": round(float(grid_areas.sum()) / 1e6, 3),
        "unit_grid_m2_min": round(float(grid_areas.min()), 1),
        "unit_grid_m2_mean": round(float(grid_areas.mean()), 1),
        "unit_grid_m2_max": round(float(grid_areas.max()), 1),
        "grids_per_community_min": int(per_comm.min()),
        "grids_per_community_mean": round(float(per_comm.mean()), 1),
        "grids_per_community_max": int(per_comm.max()),
        "road_km": round(float(seg_len.sum()) / 1000, 1),
        "segment_m_min": round(float(seg_len.min()), 1),
        "segment_m_mean": round(float(seg_len.mean()), 1),
        "segment_m_max": round(float(seg_len.max()), 1),
    }


def _check_scale(scale: Scale) -> None:
    if not 1 <= scale.districts <= len(_DISTRICTS):
        raise ValueError(f"districts must be 1..{len(_DISTRICTS)}")
    if not scale.districts <= scale.streets <= scale.communities <= scale.unit_grids:
        raise ValueError("need districts <= streets <= communities <= unit_grids")
    if not scale.streets <= scale.responsibility_grids <= scale.unit_grids:
        raise ValueError("need streets <= responsibility_grids <= unit_grids")
    if scale.road_segments < 1 or scale.area_km2 <= 0:
        raise ValueError("need at least one road segment and a positive area")


# --- outline and unit grids ------------------------------------------------------------------------------------


def _outline(area_m2: float, rng: np.random.Generator) -> Polygon:
    """A star-shaped, lobed outline around the origin with exactly the requested area."""
    theta = np.linspace(0.0, 2 * math.pi, 720, endpoint=False)
    log_r = np.zeros_like(theta)
    for k in range(2, 8):
        log_r += rng.uniform(0.03, 0.14) / k**0.7 * np.cos(k * theta + rng.uniform(0, 2 * math.pi))
    for k in range(8, 17):
        log_r += rng.uniform(0.0, 0.012) * np.cos(k * theta + rng.uniform(0, 2 * math.pi))
    r = np.exp(log_r)
    unit = Polygon(np.column_stack([r * np.cos(theta), r * np.sin(theta)]))
    r *= math.sqrt(area_m2 / unit.area)
    return shapely.set_precision(Polygon(np.column_stack([r * np.cos(theta), r * np.sin(theta)])), PRECISION_M)


def _lattice_points(outline: Polygon, n: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Exactly n jittered-lattice points inside the outline, and the lattice spacing."""
    shapely.prepare(outline)
    minx, miny, maxx, maxy = outline.bounds
    spacing = math.sqrt(outline.area / n) * 0.985
    while True:
        gx, gy = np.meshgrid(np.arange(minx, maxx + spacing, spacing), np.arange(miny, maxy + spacing, spacing))
        x = gx.ravel() + rng.uniform(-0.35, 0.35, gx.size) * spacing
        y = gy.ravel() + rng.uniform(-0.35, 0.35, gy.size) * spacing
        inside = shapely.contains_xy(outline, x, y)
        if inside.sum() >= n:
            xy = np.column_stack([x[inside], y[inside]])
            # Dropping a few random points leaves some larger cells, like real grids of uneven blocks.
            drop = rng.choice(len(xy), len(xy) - n, replace=False)
            return np.delete(xy, drop, axis=0), spacing
        spacing *= 0.99


def _voronoi_cells(outline: Polygon, xy: np.ndarray) -> np.ndarray:
    """Voronoi cells of the points clipped to the outline, one Polygon per point, in point order."""
    if len(xy) == 1:
        return np.array([outline], dtype=object)
    diagram = shapely.voronoi_polygons(shapely.multipoints(xy), extend_to=outline, ordered=True)
    cells = shapely.get_parts(diagram)
    shapely.prepare(outline)
    edge = ~shapely.contains_properly(outline, cells)
    cells[edge] = shapely.intersection(cells[edge], outline)
    cells = shapely.set_precision(cells, PRECISION_M)
    return _single_polygons(cells, xy)


def _single_polygons(cells: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Give the stray pieces of cells cut in two by a concave outline to the neighbour they share most edge with."""
    multi = np.flatnonzero(shapely.get_type_id(cells) != shapely.GeometryType.POLYGON)
    orphans: list[Polygon] = []
    for i in multi.tolist():
        parts = [p for p in shapely.get_parts(cells[i]) if p.geom_type == "Polygon" and p.area > 0]
        own = next((p for p in parts if p.contains(shapely.Point(xy[i]))), max(parts, key=lambda p: p.area))
        cells[i] = own
        orphans.extend(p for p in parts if p is not own)
    if not orphans:
        return cells
    tree = STRtree(cells)
    # A piece touching its neighbours only at points would make any of them a MultiPolygon; it is left out,
    # a gap of a few square metres at most, never seen with the smooth outlines _outline draws.
    for piece in orphans:
        candidates = tree.query(piece, predicate="intersects")
        shared = shapely.length(shapely.intersection(shapely.boundary(cells[candidates]), piece.boundary))
        for j in candidates[np.argsort(-shared, kind="stable")].tolist():
            merged = shapely.coverage_union_all([cells[j], piece])
            if merged.geom_type == "Polygon":
                cells[j] = merged
                break
    return cells


# --- hierarchy -------------------------------------------------------------------------------------------------


def _groups(labels: np.ndarray, n: int) -> list[np.ndarray]:
    """Indices of each label 0..n-1, ascending."""
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n + 1))
    return [order[bounds[k] : bounds[k + 1]] for k in range(n)]


def _nearest(points: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    d2 = ((points[:, None, :] - seeds[None, :, :]) ** 2).sum(axis=2)
    return np.argmin(d2, axis=1)


def _reading_order(xy: np.ndarray, band: float) -> np.ndarray:
    """Indices ordering points in rows of height `band` from north to south, west to east in each row."""
    rows = np.floor((xy[:, 1].max() - xy[:, 1]) / band)
    return np.lexsort((xy[:, 0], rows))


def _distinct_seed_cells(xy: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """For each target the nearest point not already taken by an earlier target."""
    taken: list[int] = []
    for t in targets:
        d2 = ((xy - t) ** 2).sum(axis=1)
        d2[taken] = np.inf
        taken.append(int(np.argmin(d2)))
    return np.array(taken)


def _districts_of_cells(xy: np.ndarray, n: int, r_eq: float, rng: np.random.Generator) -> np.ndarray:
    anchors = np.array([a for _, _, a in _DISTRICTS[:n]]) + rng.uniform(-0.04, 0.04, (n, 2))
    seeds = _distinct_seed_cells(xy, anchors * r_eq)
    return _nearest(xy, xy[seeds])


def _allocate(weights: np.ndarray, total: int, caps: np.ndarray) -> np.ndarray:
    """Split `total` into integers roughly proportional to `weights`, each in 1..cap."""
    quota = weights / weights.sum() * total
    counts = np.clip(np.floor(quota).astype(int), 1, caps)
    while counts.sum() < total:
        room = np.where(counts < caps, quota - counts, -np.inf)
        counts[int(np.argmax(room))] += 1
    while counts.sum() > total:
        excess = np.where(counts > 1, counts - quota, -np.inf)
        counts[int(np.argmax(excess))] -= 1
    return counts


def _cluster(xy: np.ndarray, w: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Nearest-seed labels 0..k-1, none empty; seeds from a few weighted Lloyd steps, then snapped to cells."""
    if k == 1:
        return np.zeros(len(xy), dtype=int)
    seeds = xy[rng.choice(len(xy), k, replace=False, p=w / w.sum())]
    # Few iterations on purpose: sizes even out somewhat but stay uneven, as real communities are.
    for _ in range(3):
        labels = _nearest(xy, seeds)
        mass = np.bincount(labels, w, minlength=k)
        ok = mass > 0
        cx = np.bincount(labels, w * xy[:, 0], minlength=k)
        cy = np.bincount(labels, w * xy[:, 1], minlength=k)
        seeds[ok] = np.column_stack([cx[ok] / mass[ok], cy[ok] / mass[ok]])
    return _nearest(xy, xy[_distinct_seed_cells(xy, seeds)])


def _split(
    xy: np.ndarray,
    w: np.ndarray,
    parent_of: np.ndarray,
    n_parents: int,
    n_children: int,
    spacing: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Cluster each parent's cells into children; returns child of each cell and parent of each child.

    Children are numbered parent by parent, in reading order inside the parent.
    """
    groups = _groups(parent_of, n_parents)
    counts = _allocate(np.array([w[g].sum() for g in groups]), n_children, np.array([len(g) for g in groups]))
    child_of = np.empty(len(xy), dtype=int)
    offset = 0
    for g, k in zip(groups, counts.tolist(), strict=True):
        local = _cluster(xy[g], w[g], k, rng)
        size = np.bincount(local, minlength=k)
        centroids = np.column_stack([np.bincount(local, xy[g, 0]), np.bincount(local, xy[g, 1])]) / size[:, None]
        rank = np.empty(k, dtype=int)
        rank[_reading_order(centroids, spacing * math.sqrt(len(g) / k))] = np.arange(k)
        child_of[g] = offset + rank[local]
        offset += k
    return child_of, np.repeat(np.arange(n_parents), counts)


def _unions(groups: list[np.ndarray]) -> np.ndarray:
    """Union of each group of edge-matched polygons."""
    out = np.empty(len(groups), dtype=object)
    for k, geoms in enumerate(groups):
        union = shapely.coverage_union_all(geoms)
        if not union.is_valid:
            union = shapely.union_all(geoms)
        if union.geom_type == "MultiPolygon" and len(union.geoms) == 1:
            union = union.geoms[0]
        out[k] = union
    return out


def _local_serials(parent: np.ndarray) -> np.ndarray:
    """1-based serial of each child within its parent (children are stored parent by parent)."""
    first = np.searchsorted(parent, parent)
    return np.arange(len(parent)) - first + 1


def _child_codes(parent_codes: list[str], parent: np.ndarray) -> list[str]:
    serials = _local_serials(parent)
    return [f"{parent_codes[p]}{s:03d}" for p, s in zip(parent.tolist(), serials.tolist(), strict=True)]


def _street_names(district_codes: list[str], street_parent: np.ndarray, rng: np.random.Generator) -> list[str]:
    """Unique street names, each district's drawn from its own stems first."""
    own = {code: _name_pool(_STREET_STEMS[code], rng) for code in district_codes}
    spare = _name_pool([s for stems in _STREET_STEMS.values() for s in stems], rng, fallback=_combos(_FIRST, _SECOND))
    used: set[str] = set()
    names = []
    for d in street_parent.tolist():
        stem = next((s for s in own[district_codes[d]] if s not in used), None)
        if stem is None:
            stem = next(s for s in spare if s not in used)
        used.add(stem)
        names.append(f"{stem}街道")
    return names


def _community_names(comm_parent: np.ndarray, n_streets: int, rng: np.random.Generator) -> list[str]:
    """Community names unique within each street, and across the city while the word pool lasts."""
    pool = _name_pool(_COMMUNITY_WORDS, rng, fallback=_combos(_FIRST, _SECOND))
    names = []
    cursor = 0
    used_in: list[set[str]] = [set() for _ in range(n_streets)]
    for s in comm_parent.tolist():
        while pool[cursor % len(pool)] in used_in[s]:
            cursor += 1
        word = pool[cursor % len(pool)]
        cursor += 1
        used_in[s].add(word)
        names.append(f"{word}社区")
    return names


# --- roads -----------------------------------------------------------------------------------------------------


@dataclass
class _Road:
    name: str
    level: str
    line: LineString


@dataclass
class _Block:
    run: int
    start: float
    end: float
    start_name: str
    end_name: str
    prev: int
    next: int
    alive: bool = True


def _road_segments(
    outline: Polygon, target: int, r_eq: float, rng: np.random.Generator
) -> list[tuple[str, str, str, LineString]]:
    """(road name, level, segment name, line in metres) for exactly `target` segments along a road network."""
    inner = outline.buffer(-ROAD_MARGIN_M)
    # A grid of spacing s gives about 2·A/s² blocks; aim a third above target and merge blocks down to it.
    spacing = math.sqrt(2 * outline.area / (1.35 * target))
    for _ in range(30):
        roads = _road_network(outline, spacing, r_eq, rng)
        runs, run_road = _runs(roads, inner, target, min_length=0.3 * spacing)
        blocks = _blocks(runs, run_road, roads)
        if len(blocks) >= target:
            break
        spacing *= 0.9 * math.sqrt(len(blocks) / (1.35 * target))
    else:
        raise RuntimeError("could not lay out enough road blocks")
    _merge_blocks(blocks, len(blocks) - target)

    out: list[tuple[str, str, str, LineString]] = []
    seen: dict[str, int] = {}
    for b in blocks:
        if not b.alive:
            continue
        road = roads[run_road[b.run]]
        name = f"{road.name}({b.start_name}—{b.end_name})"
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name}第{seen[name]}段"
        out.append((road.name, road.level, name, substring(runs[b.run], b.start, b.end)))
    return out


def _road_network(outline: Polygon, spacing: float, r_eq: float, rng: np.random.Generator) -> list[_Road]:
    """Ring roads, then west–east 路 from north to south, then south–north 街 from west to east."""
    minx, miny, maxx, maxy = outline.bounds
    half = math.hypot(maxx - minx, maxy - miny) / 2 + spacing
    roads: list[_Road] = []

    n_rings = min(2, int(r_eq / 6000))
    for i in range(n_rings):
        theta = np.linspace(0, 2 * math.pi, 361)
        radius = r_eq * 0.9 * (i + 1) / (n_rings + 1) * (1 + 0.05 * np.sin(2 * theta + rng.uniform(0, 6.3)))
        ring = LineString(np.column_stack([radius * np.cos(theta), radius * np.sin(theta)]))
        roads.append(_Road(f"{_numeral(i + 2)}环路", "city", ring))

    families = []
    for stems, suffixes, numbered in ((_EW_STEMS, ("大路", "路"), "纬路"), (_NS_STEMS, ("大街", "街"), "经街")):
        stops: list[float] = []
        v = -half
        while v < half:
            stops.append(v)
            # Blocks are shorter in the centre than at the edge of town.
            v += spacing * rng.uniform(0.8, 1.2) * (0.8 + 0.4 * min(1.0, abs(v) / r_eq))
        families.append((stems, suffixes, numbered, np.array(stops)))

    used: set[str] = set()
    for f, (stems, (big, small), numbered, offsets) in enumerate(families):
        # South–north roads use the frame turned a quarter clockwise, so their offsets grow west to east.
        angle = rng.uniform(-0.12, 0.12) - (math.pi / 2 if f == 1 else 0.0)
        ca, sa = math.cos(angle), math.sin(angle)
        u = np.linspace(-half, half, max(3, int(2 * half / (2.5 * spacing)) + 1))
        # West–east roads are listed north to south (offset descending), south–north ones west to east.
        order = np.argsort(-offsets) if f == 0 else np.argsort(offsets)
        phase = int(rng.integers(4))
        levels = [
            "city" if (i + phase) % 4 == 0 else ("district" if rng.random() < 0.45 else "street")
            for i in range(len(offsets))
        ]
        central = [i for i in order.tolist() if levels[i] == "street" and abs(offsets[i]) < 0.4 * r_eq][:12]
        if f == 0:
            central = central[::-1]  # 纬路 are numbered from the south
        pool = iter(_name_pool(stems, rng, fallback=_combos(_FIRST, "平安宁昌盛兴华明德顺泰和")))
        for i in order.tolist():
            v = offsets[i] + rng.uniform(-0.1, 0.1, len(u)) * spacing
            x, y = u * ca - v * sa, u * sa + v * ca
            if i in central:
                name = f"{_numeral(central.index(i) + 1)}{numbered}"
            else:
                name = next(s for s in pool if s + big not in used and s + small not in used)
                name += big if levels[i] == "city" else small
            used.add(name)
            roads.append(_Road(name, levels[i], LineString(np.column_stack([x, y]))))
    return roads


def _runs(roads: list[_Road], inner: Polygon, target: int, *, min_length: float) -> tuple[list[LineString], list[int]]:
    """Continuous pieces of each road inside the city; stubs dropped, the longest kept if more than `target`."""
    clipped = shapely.line_merge(shapely.intersection(np.array([r.line for r in roads], dtype=object), inner))
    parts, owner = shapely.get_parts(clipped, return_index=True)
    keep = (shapely.get_type_id(parts) == shapely.GeometryType.LINESTRING) & (shapely.length(parts) >= min_length)
    parts, owner = parts[keep], owner[keep]
    lengths = shapely.length(parts)
    if len(parts) > target:
        longest = np.sort(np.argsort(-lengths, kind="stable")[:target])
        parts, owner = parts[longest], owner[longest]
    return list(parts), owner.tolist()


def _blocks(runs: list[LineString], run_road: list[int], roads: list[_Road]) -> list[_Block]:
    """Pieces of each run between consecutive crossings with other roads, linked along the run."""
    arr = np.array(runs, dtype=object)
    i, j = STRtree(arr).query(arr, predicate="intersects")
    roads_i, roads_j = np.array(run_road)[i], np.array(run_road)[j]
    pair = (i < j) & (roads_i != roads_j)
    i, j = i[pair], j[pair]
    points, which = shapely.get_parts(shapely.intersection(arr[i], arr[j]), return_index=True)
    is_point = shapely.get_type_id(points) == shapely.GeometryType.POINT
    points, which = points[is_point], which[is_point]
    i, j = i[which], j[which]
    pos_i = shapely.line_locate_point(arr[i], points)
    pos_j = shapely.line_locate_point(arr[j], points)

    cuts: list[list[tuple[float, str]]] = [[] for _ in runs]
    for a, b, pa, pb in zip(i.tolist(), j.tolist(), pos_i.tolist(), pos_j.tolist(), strict=True):
        cuts[a].append((pa, roads[run_road[b]].name))
        cuts[b].append((pb, roads[run_road[a]].name))

    blocks: list[_Block] = []
    for r, line in enumerate(runs):
        length = line.length
        marks = sorted(cuts[r])
        if line.is_closed and marks:
            # A ring wholly inside the city starts and ends at its first crossing instead of an arbitrary vertex.
            d0, first = marks[0]
            head, tail = substring(line, d0, length), substring(line, 0, d0)
            line = LineString(list(head.coords) + list(tail.coords)[1:])
            runs[r] = line
            marks = [(0.0, first), *sorted(((p - d0) % length, n) for p, n in marks[1:]), (length, first)]
        else:
            marks = [(0.0, OUTER_END_NAME), *marks, (length, OUTER_END_NAME)]
        # Crossings closer than a metre are one junction.
        stops = [marks[0]]
        for p, n in marks[1:]:
            if p - stops[-1][0] >= 1.0:
                stops.append((p, n))
            elif p == length:
                stops[-1] = (p, n)
        base = len(blocks)
        for k in range(len(stops) - 1):
            blocks.append(
                _Block(
                    r,
                    stops[k][0],
                    stops[k + 1][0],
                    stops[k][1],
                    stops[k + 1][1],
                    base + k - 1 if k else -1,
                    base + k + 1 if k < len(stops) - 2 else -1,
                )
            )
    return blocks


def _merge_blocks(blocks: list[_Block], merges: int) -> None:
    """Join neighbouring blocks, shortest combined length first, until `merges` joins are done."""
    heap = [(b.end - blocks[b.prev].start, b.prev, k) for k, b in enumerate(blocks) if b.prev >= 0]
    heapq.heapify(heap)
    while merges > 0:
        total, a, b = heapq.heappop(heap)
        left, right = blocks[a], blocks[b]
        # Entries go stale when either side has grown since; skip them.
        if not (left.alive and right.alive and left.next == b and total == right.end - left.start):
            continue
        left.end, left.end_name, left.next = right.end, right.end_name, right.next
        right.alive = False
        if right.next >= 0:
            blocks[right.next].prev = a
            heapq.heappush(heap, (blocks[right.next].end - left.start, a, right.next))
        if left.prev >= 0:
            heapq.heappush(heap, (left.end - blocks[left.prev].start, left.prev, a))
        merges -= 1


def _district_of_lines(lines: np.ndarray, districts: np.ndarray) -> np.ndarray:
    """Index of the district containing each line's midpoint."""
    mids = shapely.line_interpolate_point(lines, 0.5, normalized=True)
    tree = STRtree(districts)
    out = np.full(len(lines), -1, dtype=int)
    point_idx, district_idx = tree.query(mids, predicate="intersects")
    # Lowest district index written last, so a midpoint on a shared border goes to it.
    order = np.lexsort((-district_idx, point_idx))
    out[point_idx[order]] = district_idx[order]
    missing = np.flatnonzero(out < 0)
    if len(missing):
        out[missing] = tree.query_nearest(mids[missing], all_matches=False)[1]
    return out


def random_points_in(
    geoms: np.ndarray, gi: np.ndarray, rng: np.random.Generator, *, decimals: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A uniform random point inside geoms[i] for each i in `gi` (rejection sampling in the bounding boxes).

    With `decimals`, points are rounded before the test, so they stay inside once written with that precision.
    """
    bounds = shapely.bounds(geoms[gi])
    lon, lat = np.empty(len(gi)), np.empty(len(gi))
    todo = np.arange(len(gi))
    while len(todo):
        b = bounds[todo]
        x, y = rng.uniform(b[:, 0], b[:, 2]), rng.uniform(b[:, 1], b[:, 3])
        if decimals is not None:
            x, y = np.round(x, decimals), np.round(y, decimals)
        inside = shapely.contains_xy(geoms[gi[todo]], x, y)
        lon[todo[inside]], lat[todo[inside]] = x[inside], y[inside]
        todo = todo[~inside]
    return lon, lat
