import re
import time
from collections import Counter, defaultdict

import numpy as np
import pytest
import shapely
from shapely import STRtree
from shapely.geometry import box

from core.geo import synth
from core.geo.synth import CITY, SMALL, Scale, SyntheticCity, build_city, city_summary, local_area_m2

HAN = re.compile(r"^[\u4e00-\u9fff]+$")
# A medium city: enough grids per community and roads per district to see the shape of the full one.
MEDIUM = Scale(4, 12, 60, 3000, 70, 260, 40.0)


@pytest.fixture(scope="module")
def small() -> SyntheticCity:
    return build_city(SMALL)


@pytest.fixture(scope="module")
def medium() -> SyntheticCity:
    return build_city(MEDIUM, seed=7)


def grid_areas(city: SyntheticCity) -> np.ndarray:
    return local_area_m2(np.array([g.geometry for g in city.unit_grids]), city.center)


def relative_difference(a: shapely.Geometry, b: shapely.Geometry, center: tuple[float, float]) -> float:
    """Area where a and b differ, relative to the area of a."""
    return float(local_area_m2(shapely.symmetric_difference(a, b), center) / local_area_m2(a, center))


def check_counts_and_codes(city: SyntheticCity) -> None:
    scale = city.scale
    assert len(city.districts) == scale.districts
    assert len(city.streets) == scale.streets
    assert len(city.communities) == scale.communities
    assert len(city.unit_grids) == scale.unit_grids
    assert len(city.responsibility_grids) == scale.responsibility_grids
    assert len(city.road_segments) == scale.road_segments

    levels = [
        (city.districts, None, 6),
        (city.streets, "district_code", 9),
        (city.communities, "street_code", 12),
        (city.unit_grids, "community_code", 15),
    ]
    parents: list[str] = []
    for records, parent_field, length in levels:
        codes = [r.code for r in records]
        assert len(set(codes)) == len(codes)
        assert all(re.fullmatch(rf"\d{{{length}}}", c) for c in codes)
        if parent_field is None:
            assert codes == [code for code, _, _ in synth._DISTRICTS[: scale.districts]]
        else:
            children: dict[str, list[str]] = defaultdict(list)
            for r in records:
                assert r.code[: len(getattr(r, parent_field))] == getattr(r, parent_field)
                children[getattr(r, parent_field)].append(r.code[-3:])
            # Every parent has children, numbered 001, 002, … without gaps.
            assert set(children) == set(parents)
            for serials in children.values():
                assert sorted(serials) == [f"{n:03d}" for n in range(1, len(serials) + 1)]
        parents = codes


def check_tiling(city: SyntheticCity) -> None:
    grids = np.array([g.geometry for g in city.unit_grids])
    assert (shapely.get_type_id(grids) == shapely.GeometryType.POLYGON).all()
    assert shapely.is_valid(grids).all()
    areas = local_area_m2(grids, city.center)
    city_area = float(local_area_m2(city.boundary, city.center))
    assert areas.sum() == pytest.approx(city_area, rel=1e-4)
    assert city_area / 1e6 == pytest.approx(city.scale.area_km2, rel=0.01)
    np.testing.assert_allclose([g.area_m2 for g in city.unit_grids], areas, rtol=1e-6)


def check_no_overlaps(city: SyntheticCity, sample: int) -> None:
    grids = np.array([g.geometry for g in city.unit_grids])
    rng = np.random.default_rng(0)
    picked = rng.choice(len(grids), min(sample, len(grids)), replace=False)
    left, right = STRtree(grids).query(grids[picked], predicate="intersects")
    left = picked[left]
    pairs = left != right
    left, right = left[pairs], right[pairs]
    # Neighbours share edges: most touch along a line, and none overlaps by more than noise.
    assert len(left) >= 4 * len(picked)
    overlap = local_area_m2(shapely.intersection(grids[left], grids[right]), city.center)
    assert (overlap <= 1e-6 * local_area_m2(grids[left], city.center)).all()


def check_nesting(city: SyntheticCity, *, sample: int | None = None) -> None:
    rng = np.random.default_rng(1)
    grids_of: dict[str, list[shapely.Geometry]] = defaultdict(list)
    for g in city.unit_grids:
        grids_of[g.community_code].append(g.geometry)
    communities = city.communities
    streets = city.streets
    if sample is not None:
        communities = [communities[i] for i in rng.choice(len(communities), sample, replace=False)]
        streets = [streets[i] for i in rng.choice(len(streets), min(sample, len(streets)), replace=False)]
    for c in communities:
        assert relative_difference(c.geometry, shapely.union_all(grids_of[c.code]), city.center) < 1e-9
    comms_of: dict[str, list[shapely.Geometry]] = defaultdict(list)
    for c in city.communities:
        comms_of[c.street_code].append(c.geometry)
    for s in streets:
        assert relative_difference(s.geometry, shapely.union_all(comms_of[s.code]), city.center) < 1e-9
    streets_of: dict[str, list[shapely.Geometry]] = defaultdict(list)
    for s in city.streets:
        streets_of[s.district_code].append(s.geometry)
    for d in city.districts:
        assert relative_difference(d.geometry, shapely.union_all(streets_of[d.code]), city.center) < 1e-9
    districts = shapely.union_all([d.geometry for d in city.districts])
    # Snapping to 1 mm moves cut points on the outline by under a millimetre.
    assert relative_difference(city.boundary, districts, city.center) < 1e-6


def test_small_city_has_exact_counts_and_well_formed_sequential_codes(small):
    check_counts_and_codes(small)


def test_medium_city_has_exact_counts_and_well_formed_sequential_codes(medium):
    check_counts_and_codes(medium)


def test_unit_grids_tile_the_city_without_gaps(small, medium):
    check_tiling(small)
    check_tiling(medium)


def test_neighbouring_unit_grids_do_not_overlap(small, medium):
    check_no_overlaps(small, 60)
    check_no_overlaps(medium, 300)


def test_unit_grids_are_irregular_polygons(medium):
    areas = np.array([g.area_m2 for g in medium.unit_grids])
    vertices = shapely.get_num_coordinates([g.geometry for g in medium.unit_grids])
    assert areas.std() / areas.mean() > 0.1
    assert len(set(vertices.tolist())) > 3


def test_every_level_is_the_union_of_its_children(small, medium):
    check_nesting(small)
    check_nesting(medium)


def test_community_sizes_vary_and_communities_are_mostly_contiguous(medium):
    per_community = Counter(g.community_code for g in medium.unit_grids)
    sizes = np.array(list(per_community.values()))
    assert sizes.min() >= 1
    assert sizes.std() / sizes.mean() > 0.1
    kinds = Counter(c.geometry.geom_type for c in medium.communities)
    assert kinds["Polygon"] >= 0.9 * len(medium.communities)


def test_each_unit_grid_is_in_exactly_one_responsibility_grid_of_its_street(small, medium):
    for city in (small, medium):
        members = [code for r in city.responsibility_grids for code in r.unit_grid_codes]
        assert Counter(members) == Counter(g.code for g in city.unit_grids)
        street_codes = {s.code for s in city.streets}
        codes = [r.code for r in city.responsibility_grids]
        assert len(set(codes)) == len(codes)
        per_street: dict[str, list[int]] = defaultdict(list)
        for r in city.responsibility_grids:
            assert r.street_code in street_codes
            assert re.fullmatch(rf"{r.street_code}R\d{{2,}}", r.code)
            assert all(code[:9] == r.street_code for code in r.unit_grid_codes)
            assert r.unit_grid_codes
            per_street[r.street_code].append(int(r.code[10:]))
        assert set(per_street) == street_codes
        for serials in per_street.values():
            assert sorted(serials) == list(range(1, len(serials) + 1))


def test_names_are_chinese_and_unique_where_required(medium):
    assert [d.name for d in medium.districts] == ["和平区", "沈河区", "大东区", "皇姑区"]
    street_names = [s.name for s in medium.streets]
    assert len(set(street_names)) == len(street_names)
    assert all(HAN.match(n) and n.endswith("街道") for n in street_names)
    by_street: dict[str, list[str]] = defaultdict(list)
    for c in medium.communities:
        assert HAN.match(c.name) and c.name.endswith("社区")
        by_street[c.street_code].append(c.name)
    for names in by_street.values():
        assert len(set(names)) == len(names)
    street_name = {s.code: s.name for s in medium.streets}
    for r in medium.responsibility_grids:
        assert r.name == f"{street_name[r.street_code]}第{int(r.code[10:])}责任网格"


def test_city_scale_uses_the_nine_real_district_codes():
    assert [code for code, _, _ in synth._DISTRICTS] == [
        "210102", "210103", "210104", "210105", "210106", "210111", "210112", "210113", "210114",
    ]  # fmt: skip
    assert [name for _, name, _ in synth._DISTRICTS][-1] == "于洪区"


def test_road_segments_lie_inside_the_city_with_realistic_names(small, medium):
    for city in (small, medium):
        assert len(city.road_segments) == city.scale.road_segments
        codes = [r.code for r in city.road_segments]
        assert len(set(codes)) == len(codes)
        shapely.prepare(city.boundary)
        level_of_road: dict[str, str] = {}
        for r in city.road_segments:
            assert r.geometry.geom_type == "LineString"
            assert city.boundary.contains(r.geometry)
            assert re.fullmatch(rf"{r.district_code}L\d{{4}}", r.code)
            assert r.level in {"city", "district", "street"}
            assert HAN.match(r.road_name) and r.road_name[-1] in "路街"
            assert re.fullmatch(rf"{re.escape(r.road_name)}\([\u4e00-\u9fff]+—[\u4e00-\u9fff]+\)(第\d+段)?", r.name)
            # One road name means one road: it never changes level.
            assert level_of_road.setdefault(r.road_name, r.level) == r.level
            assert r.length_m == pytest.approx(float(shapely.length(synth.geometry_to_local(r.geometry))), rel=1e-6)
        assert len(level_of_road) >= 8
        assert len({r.name for r in city.road_segments}) == len(city.road_segments)


def test_road_segment_lengths_are_a_few_hundred_metres_to_a_kilometre_and_a_half(medium):
    lengths = np.array([r.length_m for r in medium.road_segments])
    assert lengths.min() >= 100
    assert lengths.max() <= 1500
    assert 300 <= np.median(lengths) <= 1000


def test_road_segment_district_is_the_one_containing_its_midpoint(small, medium):
    for city in (small, medium):
        districts = {d.code: d.geometry for d in city.districts}
        for r in city.road_segments:
            middle = r.geometry.interpolate(0.5, normalized=True)
            assert districts[r.district_code].intersects(middle)


def test_same_seed_gives_the_same_city(small):
    again = build_city(SMALL)
    for attr in ("districts", "streets", "communities", "unit_grids", "road_segments"):
        a, b = getattr(small, attr), getattr(again, attr)
        assert [r.code for r in a] == [r.code for r in b]
        assert [getattr(r, "name", "") for r in a] == [getattr(r, "name", "") for r in b]
        assert [r.geometry.wkb for r in a[::7]] == [r.geometry.wkb for r in b[::7]]
    assert small.responsibility_grids == again.responsibility_grids
    assert small.boundary.wkb == again.boundary.wkb


def test_different_seed_gives_a_different_city(small):
    other = build_city(SMALL, seed=43)
    check_counts_and_codes(other)
    check_tiling(other)
    assert other.boundary.wkb != small.boundary.wkb
    assert [g.geometry.wkb for g in other.unit_grids[:20]] != [g.geometry.wkb for g in small.unit_grids[:20]]


def test_center_moves_the_city(small):
    moved = build_city(SMALL, center=(116.40, 39.90))
    assert moved.boundary.centroid.distance(shapely.Point(116.40, 39.90)) < 0.02
    assert small.boundary.centroid.distance(shapely.Point(*synth.DEFAULT_CENTER)) < 0.02
    assert [g.area_m2 for g in moved.unit_grids] == pytest.approx([g.area_m2 for g in small.unit_grids])


def test_small_city_builds_in_well_under_a_second():
    started = time.perf_counter()
    build_city(SMALL, seed=5)
    assert time.perf_counter() - started < 1.0


def test_city_summary_reports_counts_and_areas(small):
    summary = city_summary(small)
    assert summary["unit_grids"] == 240
    assert summary["road_segments"] == 40
    assert summary["area_km2"] == pytest.approx(3.0, rel=0.01)
    assert summary["unit_grid_area_km2"] == pytest.approx(summary["area_km2"], rel=1e-3)
    assert summary["grids_per_community_min"] <= summary["grids_per_community_mean"]
    assert summary["grids_per_community_mean"] == 30.0


def test_local_metres_round_trip():
    x, y = synth.to_local_m(123.44, 41.81)
    assert float(x) == pytest.approx(831.0, rel=0.01)
    assert float(y) == pytest.approx(1112.0, rel=0.01)
    lon, lat = synth.from_local_m(x, y)
    assert (float(lon), float(lat)) == pytest.approx((123.44, 41.81))


def test_cell_cut_in_two_by_a_concave_outline_gives_its_stray_piece_to_a_neighbour():
    # A U-shaped outline: the top of the right arm is nearest the point at the top of the left arm.
    outline = shapely.union_all([box(0, 0, 300, 100), box(0, 100, 40, 300), box(260, 100, 300, 300)])
    points = np.array([[150.0, 50.0], [20.0, 290.0], [20.0, 150.0]])
    cells = synth._voronoi_cells(outline, points)
    assert (shapely.get_type_id(cells) == shapely.GeometryType.POLYGON).all()
    assert shapely.area(cells).sum() == pytest.approx(outline.area)
    assert shapely.contains_xy(cells, points[:, 0], points[:, 1]).all()


@pytest.mark.parametrize(
    "scale",
    [
        Scale(0, 1, 1, 10, 1, 1, 1.0),
        Scale(10, 10, 10, 100, 10, 10, 1.0),
        Scale(2, 4, 3, 240, 6, 40, 3.0),
        Scale(2, 4, 8, 240, 2, 40, 3.0),
    ],
)
def test_inconsistent_scales_are_refused(scale):
    with pytest.raises(ValueError):
        build_city(scale)


@pytest.mark.slow
def test_reference_city_scale_builds_fast_with_exact_counts_and_nesting():
    started = time.perf_counter()
    city = build_city(CITY)
    elapsed = time.perf_counter() - started
    assert elapsed < 20
    check_counts_and_codes(city)
    check_tiling(city)
    check_no_overlaps(city, 500)
    check_nesting(city, sample=40)
    summary = city_summary(city)
    assert summary["area_km2"] == pytest.approx(765.0, rel=0.01)
    assert 300 <= summary["segment_m_mean"] <= 1500
    assert summary["segment_m_max"] <= 1500
    assert summary["grids_per_community_max"] > 1.5 * summary["grids_per_community_min"]
