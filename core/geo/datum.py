"""Geodetic datums (坐标系) of incoming points and conversion to and from WGS-84.

Every point is stored in WGS-84 (see DESIGN.md, "Locations"). GCJ-02 is the obfuscated datum mandated for
maps published in mainland China (WeChat, Amap, Tencent); BD-09 is Baidu's further offset on top of GCJ-02.
The forward formulas are the widely reproduced ones (eviltransform, coordtransform, PRCoords); the inverses
are solved numerically because the forward offsets have no closed-form inverse.

Argument order is always (lon, lat).
"""

from collections.abc import Callable
from enum import StrEnum
from math import pi
from typing import TypeAlias

import numpy as np

__all__ = [
    "Datum",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "from_wgs84",
    "from_wgs84_many",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "out_of_china",
    "to_wgs84",
    "to_wgs84_many",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]


class Datum(StrEnum):
    """Datum an incoming point is expressed in."""

    WGS84 = "wgs84"
    GCJ02 = "gcj02"
    BD09 = "bd09"
    # CGCS2000 and WGS-84 agree to a few centimetres, far below phone and map accuracy, so no shift is applied.
    CGCS2000 = "cgcs2000"


# GCJ-02 computes its offset on the Krasovsky 1940 ellipsoid.
_KRASOVSKY_A = 6378245.0
_KRASOVSKY_EE = 0.00669342162296594323

# Baidu's constant shift and the angular frequency of its wobble (pi * 3000 / 180).
_BD_DLON = 0.0065
_BD_DLAT = 0.006
_BD_X_PI = pi * 3000.0 / 180.0

# Rough box the GCJ-02 algorithm treats as China; outside it GCJ-02 is WGS-84.
_CHINA_MIN_LON, _CHINA_MAX_LON = 72.004, 137.8347
_CHINA_MIN_LAT, _CHINA_MAX_LAT = 0.8293, 55.8271

_INVERSE_TOLERANCE_DEG = 1e-7
_INVERSE_MAX_ITERATIONS = 30

_Transform: TypeAlias = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def out_of_china(lon: float, lat: float) -> bool:
    """Return True when the point lies outside the box where GCJ-02 applies its offset."""
    return not (_CHINA_MIN_LON <= lon <= _CHINA_MAX_LON and _CHINA_MIN_LAT <= lat <= _CHINA_MAX_LAT)


def _out_of_china_many(lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
    """Element-wise out_of_china."""
    return ~((lons >= _CHINA_MIN_LON) & (lons <= _CHINA_MAX_LON) & (lats >= _CHINA_MIN_LAT) & (lats <= _CHINA_MAX_LAT))


def _gcj02_offset(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 minus WGS-84 at a WGS-84 point, in degrees, ignoring the China box."""
    x = lon - 105.0
    y = lat - 35.0
    # Shared periodic term of both axes; the coefficients are the published constants.
    wobble_x = (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
    dlat_m = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    dlat_m = dlat_m + wobble_x
    dlat_m = dlat_m + (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
    dlat_m = dlat_m + (160.0 * np.sin(y / 12.0 * pi) + 320.0 * np.sin(y * pi / 30.0)) * 2.0 / 3.0
    dlon_m = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    dlon_m = dlon_m + wobble_x
    dlon_m = dlon_m + (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
    dlon_m = dlon_m + (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0

    # Metres to degrees with the meridian and parallel radii of curvature at this latitude.
    rad_lat = lat / 180.0 * pi
    magic = 1.0 - _KRASOVSKY_EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat_m * 180.0) / ((_KRASOVSKY_A * (1.0 - _KRASOVSKY_EE)) / (magic * sqrt_magic) * pi)
    dlon = (dlon_m * 180.0) / (_KRASOVSKY_A / sqrt_magic * np.cos(rad_lat) * pi)
    return dlon, dlat


def _wgs84_to_gcj02_many(lons: np.ndarray, lats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Array-wise wgs84_to_gcj02."""
    dlon, dlat = _gcj02_offset(lons, lats)
    outside = _out_of_china_many(lons, lats)
    return lons + np.where(outside, 0.0, dlon), lats + np.where(outside, 0.0, dlat)


def _gcj02_to_bd09_many(lons: np.ndarray, lats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Array-wise gcj02_to_bd09."""
    radius = np.sqrt(lons * lons + lats * lats) + 0.00002 * np.sin(lats * _BD_X_PI)
    theta = np.arctan2(lats, lons) + 0.000003 * np.cos(lons * _BD_X_PI)
    return radius * np.cos(theta) + _BD_DLON, radius * np.sin(theta) + _BD_DLAT


def _wgs84_to_bd09_many(lons: np.ndarray, lats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Array-wise wgs84_to_bd09."""
    return _gcj02_to_bd09_many(*_wgs84_to_gcj02_many(lons, lats))


def _invert_many(forward: _Transform, lons: np.ndarray, lats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve forward(result) == (lons, lats) element-wise."""
    # Neither offset has a closed-form inverse; the usual one-step "subtract the offset at the shifted point"
    # is off by up to a few metres. Both offsets change slowly with position (their Jacobian is the identity
    # plus ~1e-3), so the fixed-point step guess += target - forward(guess) contracts ~1000x per round and
    # reaches the tolerance in 2-4 rounds. Each element stops on its own so array and scalar calls agree.
    result_lons = lons.copy()
    result_lats = lats.copy()
    active = np.arange(lons.size)
    for _ in range(_INVERSE_MAX_ITERATIONS):
        fwd_lons, fwd_lats = forward(result_lons[active], result_lats[active])
        err_lons = lons[active] - fwd_lons
        err_lats = lats[active] - fwd_lats
        pending = (np.abs(err_lons) >= _INVERSE_TOLERANCE_DEG) | (np.abs(err_lats) >= _INVERSE_TOLERANCE_DEG)
        active = active[pending]
        if active.size == 0:
            break
        result_lons[active] += err_lons[pending]
        result_lats[active] += err_lats[pending]
    return result_lons, result_lats


def _as_flat_arrays(lons: np.ndarray, lats: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """Broadcast to a common shape and flatten, returning that shape to restore later."""
    lons_b, lats_b = np.broadcast_arrays(np.asarray(lons, dtype=np.float64), np.asarray(lats, dtype=np.float64))
    return lons_b.ravel().copy(), lats_b.ravel().copy(), lons_b.shape


def _scalar(transform: _Transform, lon: float, lat: float) -> tuple[float, float]:
    """Apply an array transform to one point."""
    lons, lats = transform(np.array([lon], dtype=np.float64), np.array([lat], dtype=np.float64))
    return float(lons[0]), float(lats[0])


def _scalar_inverse(forward: _Transform, lon: float, lat: float) -> tuple[float, float]:
    """Invert an array transform at one point."""
    return _scalar(lambda lons, lats: _invert_many(forward, lons, lats), lon, lat)


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """Convert a WGS-84 point to GCJ-02."""
    return _scalar(_wgs84_to_gcj02_many, lon, lat)


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """Convert a GCJ-02 point to WGS-84, accurate to 1e-7 degrees."""
    return _scalar_inverse(_wgs84_to_gcj02_many, lon, lat)


def gcj02_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    """Convert a GCJ-02 point to BD-09."""
    return _scalar(_gcj02_to_bd09_many, lon, lat)


def bd09_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """Convert a BD-09 point to GCJ-02, accurate to 1e-7 degrees."""
    return _scalar_inverse(_gcj02_to_bd09_many, lon, lat)


def wgs84_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    """Convert a WGS-84 point to BD-09."""
    return _scalar(_wgs84_to_bd09_many, lon, lat)


def bd09_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """Convert a BD-09 point to WGS-84, accurate to 1e-7 degrees."""
    return _scalar_inverse(_wgs84_to_bd09_many, lon, lat)


def _parse_datum(datum: Datum | str) -> Datum:
    """Return the Datum named by datum, or raise ValueError."""
    try:
        return Datum(datum)
    except ValueError:
        known = ", ".join(member.value for member in Datum)
        raise ValueError(f"unknown datum {datum!r}; expected one of: {known}") from None


def to_wgs84_many(lons: np.ndarray, lats: np.ndarray, datum: Datum | str) -> tuple[np.ndarray, np.ndarray]:
    """Convert arrays of points in datum to WGS-84."""
    parsed = _parse_datum(datum)
    flat_lons, flat_lats, shape = _as_flat_arrays(lons, lats)
    match parsed:
        case Datum.WGS84 | Datum.CGCS2000:
            out_lons, out_lats = flat_lons, flat_lats
        case Datum.GCJ02:
            out_lons, out_lats = _invert_many(_wgs84_to_gcj02_many, flat_lons, flat_lats)
        case Datum.BD09:
            out_lons, out_lats = _invert_many(_wgs84_to_bd09_many, flat_lons, flat_lats)
    return out_lons.reshape(shape), out_lats.reshape(shape)


def from_wgs84_many(lons: np.ndarray, lats: np.ndarray, datum: Datum | str) -> tuple[np.ndarray, np.ndarray]:
    """Convert arrays of WGS-84 points to datum."""
    parsed = _parse_datum(datum)
    flat_lons, flat_lats, shape = _as_flat_arrays(lons, lats)
    match parsed:
        case Datum.WGS84 | Datum.CGCS2000:
            out_lons, out_lats = flat_lons, flat_lats
        case Datum.GCJ02:
            out_lons, out_lats = _wgs84_to_gcj02_many(flat_lons, flat_lats)
        case Datum.BD09:
            out_lons, out_lats = _wgs84_to_bd09_many(flat_lons, flat_lats)
    return out_lons.reshape(shape), out_lats.reshape(shape)


def to_wgs84(lon: float, lat: float, datum: Datum | str) -> tuple[float, float]:
    """Convert one point in datum to WGS-84."""
    match _parse_datum(datum):
        case Datum.WGS84 | Datum.CGCS2000:
            return float(lon), float(lat)
        case Datum.GCJ02:
            return gcj02_to_wgs84(lon, lat)
        case Datum.BD09:
            return bd09_to_wgs84(lon, lat)


def from_wgs84(lon: float, lat: float, datum: Datum | str) -> tuple[float, float]:
    """Convert one WGS-84 point to datum."""
    match _parse_datum(datum):
        case Datum.WGS84 | Datum.CGCS2000:
            return float(lon), float(lat)
        case Datum.GCJ02:
            return wgs84_to_gcj02(lon, lat)
        case Datum.BD09:
            return wgs84_to_bd09(lon, lat)
