import math

import numpy as np
import pytest

from core.geo.datum import (
    Datum,
    bd09_to_gcj02,
    bd09_to_wgs84,
    from_wgs84,
    from_wgs84_many,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    out_of_china,
    to_wgs84,
    to_wgs84_many,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

EARTH_RADIUS_M = 6_371_008.8
SHENYANG = (123.43, 41.80)

# googollee/eviltransform python/test.py, TESTS: (wgs_lon, wgs_lat, gcj_lon, gcj_lat); there stored as (lat, lon).
EVILTRANSFORM_PAIRS = [
    pytest.param(121.5272106, 31.1774276, 121.531541859215, 31.17530398364597, id="shanghai"),
    pytest.param(113.912316, 22.543847, 113.9171764808363, 22.540796131694766, id="shenzhen"),
    pytest.param(116.377817, 39.911954, 116.38404722455657, 39.91334545536069, id="beijing"),
]

# wandergis/coordtransform test/app.js (and README): every function applied to (116.404, 39.915).
COORDTRANSFORM_INPUT = (116.404, 39.915)
COORDTRANSFORM_WGS84_TO_GCJ02 = (116.41024449916938, 39.91640428150164)
COORDTRANSFORM_GCJ02_TO_BD09 = (116.41036949371029, 39.92133699351021)
# coordtransform inverts with the one-step approximation, a few centimetres off the exact inverse.
COORDTRANSFORM_GCJ02_TO_WGS84 = (116.39775550083061, 39.91359571849836)
COORDTRANSFORM_BD09_TO_GCJ02 = (116.39762729119315, 39.90865673957631)
ONE_STEP_APPROXIMATION_DEG = 2e-6


def haversine_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h))


def east_north_m(origin: tuple[float, float], point: tuple[float, float]) -> tuple[float, float]:
    """Local east/north displacement, good enough for offsets of a few kilometres."""
    east = math.radians(point[0] - origin[0]) * EARTH_RADIUS_M * math.cos(math.radians(origin[1]))
    north = math.radians(point[1] - origin[1]) * EARTH_RADIUS_M
    return east, north


def mainland_grid() -> list[tuple[float, float]]:
    """A coarse grid over mainland China plus a dense one around Shenyang."""
    coarse = [(lon, lat) for lon in np.arange(74.0, 135.5, 1.5) for lat in np.arange(18.0, 54.0, 1.0)]
    shenyang = [(lon, lat) for lon in np.arange(122.9, 124.0, 0.05) for lat in np.arange(41.4, 42.2, 0.05)]
    return [(float(lon), float(lat)) for lon, lat in coarse + shenyang]


OUTSIDE_CHINA = [
    pytest.param(139.6917, 35.6895, id="tokyo"),
    pytest.param(-0.1276, 51.5072, id="london"),
    pytest.param(-74.0060, 40.7128, id="new_york"),
    pytest.param(151.2093, -33.8688, id="sydney"),
]


@pytest.mark.parametrize(("wgs_lon", "wgs_lat", "gcj_lon", "gcj_lat"), EVILTRANSFORM_PAIRS)
def test_wgs84_to_gcj02_matches_eviltransform_reference(wgs_lon, wgs_lat, gcj_lon, gcj_lat):
    assert wgs84_to_gcj02(wgs_lon, wgs_lat) == pytest.approx((gcj_lon, gcj_lat), abs=1e-9)


@pytest.mark.parametrize(("wgs_lon", "wgs_lat", "gcj_lon", "gcj_lat"), EVILTRANSFORM_PAIRS)
def test_gcj02_to_wgs84_recovers_eviltransform_reference_within_a_centimetre(wgs_lon, wgs_lat, gcj_lon, gcj_lat):
    assert haversine_m(gcj02_to_wgs84(gcj_lon, gcj_lat), (wgs_lon, wgs_lat)) < 0.01


def test_wgs84_to_gcj02_matches_coordtransform_reference():
    assert wgs84_to_gcj02(*COORDTRANSFORM_INPUT) == pytest.approx(COORDTRANSFORM_WGS84_TO_GCJ02, abs=1e-9)


def test_gcj02_to_bd09_matches_coordtransform_reference():
    assert gcj02_to_bd09(*COORDTRANSFORM_INPUT) == pytest.approx(COORDTRANSFORM_GCJ02_TO_BD09, abs=1e-9)


def test_bd09_to_gcj02_inverts_the_coordtransform_reference_exactly():
    assert bd09_to_gcj02(*COORDTRANSFORM_GCJ02_TO_BD09) == pytest.approx(COORDTRANSFORM_INPUT, abs=1e-7)


def test_inverses_stay_within_the_one_step_approximation_of_coordtransform():
    assert gcj02_to_wgs84(*COORDTRANSFORM_INPUT) == pytest.approx(
        COORDTRANSFORM_GCJ02_TO_WGS84, abs=ONE_STEP_APPROXIMATION_DEG
    )
    assert bd09_to_gcj02(*COORDTRANSFORM_INPUT) == pytest.approx(
        COORDTRANSFORM_BD09_TO_GCJ02, abs=ONE_STEP_APPROXIMATION_DEG
    )


def test_gcj02_to_wgs84_is_more_accurate_than_the_one_step_approximation():
    exact = gcj02_to_wgs84(*COORDTRANSFORM_INPUT)
    exact_error = haversine_m(wgs84_to_gcj02(*exact), COORDTRANSFORM_INPUT)
    one_step_error = haversine_m(wgs84_to_gcj02(*COORDTRANSFORM_GCJ02_TO_WGS84), COORDTRANSFORM_INPUT)
    assert exact_error < 0.01 < one_step_error


def test_gcj02_in_shenyang_is_offset_a_few_hundred_metres_north_east():
    east, north = east_north_m(SHENYANG, wgs84_to_gcj02(*SHENYANG))
    assert 300 < east < 700
    assert 150 < north < 400


def test_bd09_in_shenyang_is_offset_further_north_east_than_gcj02():
    gcj = wgs84_to_gcj02(*SHENYANG)
    bd = wgs84_to_bd09(*SHENYANG)
    east, north = east_north_m(gcj, bd)
    assert 400 < east < 700
    assert 500 < north < 800
    assert haversine_m(SHENYANG, bd) > haversine_m(SHENYANG, gcj) + 500


def test_wgs84_to_gcj02_to_wgs84_round_trips_within_a_metre_across_china():
    worst = max(haversine_m(gcj02_to_wgs84(*wgs84_to_gcj02(*point)), point) for point in mainland_grid())
    assert worst < 1.0


def test_wgs84_to_bd09_to_wgs84_round_trips_within_a_metre_across_china():
    worst = max(haversine_m(bd09_to_wgs84(*wgs84_to_bd09(*point)), point) for point in mainland_grid())
    assert worst < 1.0


def test_gcj02_to_bd09_to_gcj02_round_trips_within_a_metre_across_china():
    worst = max(haversine_m(bd09_to_gcj02(*gcj02_to_bd09(*point)), point) for point in mainland_grid())
    assert worst < 1.0


@pytest.mark.parametrize(("lon", "lat"), OUTSIDE_CHINA)
def test_points_outside_china_are_unchanged_by_gcj02(lon, lat):
    assert out_of_china(lon, lat)
    assert wgs84_to_gcj02(lon, lat) == (lon, lat)
    assert gcj02_to_wgs84(lon, lat) == (lon, lat)


def test_shenyang_beijing_and_urumqi_are_inside_china():
    assert not out_of_china(*SHENYANG)
    assert not out_of_china(116.404, 39.915)
    assert not out_of_china(87.6168, 43.8256)


@pytest.mark.parametrize("datum", [Datum.WGS84, Datum.CGCS2000, "wgs84", "cgcs2000"])
def test_wgs84_and_cgcs2000_points_pass_through_unchanged(datum):
    assert to_wgs84(*SHENYANG, datum) == SHENYANG
    assert from_wgs84(*SHENYANG, datum) == SHENYANG


def test_to_wgs84_and_from_wgs84_dispatch_on_datum_given_as_enum_or_string():
    gcj = wgs84_to_gcj02(*SHENYANG)
    bd = wgs84_to_bd09(*SHENYANG)
    assert from_wgs84(*SHENYANG, Datum.GCJ02) == gcj
    assert from_wgs84(*SHENYANG, "bd09") == bd
    assert to_wgs84(*gcj, "gcj02") == gcj02_to_wgs84(*gcj)
    assert to_wgs84(*bd, Datum.BD09) == bd09_to_wgs84(*bd)


@pytest.mark.parametrize("datum", ["wgs-84", "GCJ02 ", "baidu", ""])
def test_unknown_datum_is_rejected(datum):
    with pytest.raises(ValueError, match="unknown datum"):
        to_wgs84(*SHENYANG, datum)
    with pytest.raises(ValueError, match="unknown datum"):
        from_wgs84(*SHENYANG, datum)
    with pytest.raises(ValueError, match="unknown datum"):
        to_wgs84_many(np.array([SHENYANG[0]]), np.array([SHENYANG[1]]), datum)
    with pytest.raises(ValueError, match="unknown datum"):
        from_wgs84_many(np.array([SHENYANG[0]]), np.array([SHENYANG[1]]), datum)


def mixed_points() -> tuple[np.ndarray, np.ndarray]:
    """Random points across and around China, plus fixed points outside it."""
    rng = np.random.default_rng(20240601)
    lons = np.concatenate([rng.uniform(60.0, 150.0, 500), [139.6917, -0.1276, SHENYANG[0]]])
    lats = np.concatenate([rng.uniform(-5.0, 60.0, 500), [35.6895, 51.5072, SHENYANG[1]]])
    return lons, lats


@pytest.mark.parametrize("datum", list(Datum))
def test_from_wgs84_many_equals_scalar_conversion_element_wise(datum):
    lons, lats = mixed_points()
    out_lons, out_lats = from_wgs84_many(lons, lats, datum)
    expected = np.array([from_wgs84(lon, lat, datum) for lon, lat in zip(lons, lats, strict=True)])
    np.testing.assert_allclose(out_lons, expected[:, 0], rtol=0, atol=1e-9)
    np.testing.assert_allclose(out_lats, expected[:, 1], rtol=0, atol=1e-9)


@pytest.mark.parametrize("datum", list(Datum))
def test_to_wgs84_many_equals_scalar_conversion_element_wise(datum):
    lons, lats = mixed_points()
    out_lons, out_lats = to_wgs84_many(lons, lats, datum)
    expected = np.array([to_wgs84(lon, lat, datum) for lon, lat in zip(lons, lats, strict=True)])
    np.testing.assert_allclose(out_lons, expected[:, 0], rtol=0, atol=1e-9)
    np.testing.assert_allclose(out_lats, expected[:, 1], rtol=0, atol=1e-9)


def test_vectorized_conversion_keeps_points_outside_china_unchanged_for_gcj02():
    lons = np.array([139.6917, SHENYANG[0], -0.1276])
    lats = np.array([35.6895, SHENYANG[1], 51.5072])
    gcj_lons, gcj_lats = from_wgs84_many(lons, lats, Datum.GCJ02)
    assert (gcj_lons[[0, 2]] == lons[[0, 2]]).all()
    assert (gcj_lats[[0, 2]] == lats[[0, 2]]).all()
    assert gcj_lons[1] != lons[1]


def test_vectorized_conversion_keeps_the_input_shape_and_leaves_inputs_untouched():
    lons = np.full((3, 4), SHENYANG[0])
    lats = np.full((3, 4), SHENYANG[1])
    out_lons, out_lats = to_wgs84_many(lons, lats, Datum.BD09)
    assert out_lons.shape == out_lats.shape == (3, 4)
    assert (lons == SHENYANG[0]).all()
    assert (lats == SHENYANG[1]).all()
