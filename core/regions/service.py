"""Regions: bulk writing (seed), GeoJSON import of unit grids (validated, all-or-nothing) and export."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely import STRtree
from tortoise.models import Model
from tortoise.transactions import in_transaction

from core.bulk import insert_rows
from core.geo.projection import LocalProjection
from core.geo.service import forget_spatial_index, parse_geojson_many
from core.importing import ImportRejected, ImportReport, Progress, RowError
from core.regions.mapdata import forget_map_cache
from core.regions.models import Community, District, ResponsibilityGrid, Street, UnitGrid
from core.settings import get_settings

# Shared edges of neighbouring grids intersect with zero area; floating-point noise stays far below 1 m².
OVERLAP_TOLERANCE_M2 = 1.0


def rounded(geoms: Sequence[shapely.Geometry] | np.ndarray) -> np.ndarray:
    """Geometries with coordinates rounded to 1e-7° (≈ 1 cm), vertex order kept, as they are stored."""
    return shapely.set_precision(np.asarray(geoms, dtype=object), 1e-7, mode="pointwise")


def to_geojson_many(geoms: Sequence[shapely.Geometry] | np.ndarray) -> list[str]:
    """Shapely geometries → compact GeoJSON strings of their stored (rounded) form."""
    return list(shapely.to_geojson(rounded(geoms)))


def projection() -> LocalProjection:
    settings = get_settings()
    return LocalProjection(settings.city_center_lon, settings.city_center_lat)


def areas_m2(geoms: np.ndarray, proj: LocalProjection) -> np.ndarray:
    """Areas in square metres of WGS-84 geometries."""
    return shapely.area(shapely.transform(geoms, lambda c: np.column_stack(proj.to_m(c[:, 0], c[:, 1]))))


async def import_grids_geojson(*, path: Path, progress: Progress | None = None) -> ImportReport:
    """Import unit grids from a GeoJSON FeatureCollection; raises ImportRejected (nothing written) on any bad row.

    Each feature's `code` (15 digits) names its community, street and district; features may carry
    `district_name`, `street_name`, `community_name`, `responsibility_grid` and `responsibility_grid_name`.
    New codes are added, existing codes get the new geometry; parent geometries are recomputed as unions.
    """
    report = ImportReport(kind="grids")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        report.add(RowError(0, "bad_json", f"file is not valid JSON: {exc}"))
        raise ImportRejected(report) from exc
    features = doc.get("features") if isinstance(doc, dict) and doc.get("type") == "FeatureCollection" else None
    if not isinstance(features, list):
        report.add(RowError(0, "not_feature_collection", "file must be a GeoJSON FeatureCollection"))
        raise ImportRejected(report)
    report.rows_read = len(features)
    rows = _parse_features(features, report)
    if progress:  # checking and writing each count for half of the bar
        progress(len(features) // 2)
    proj = projection()
    if rows:
        _check_extent_and_overlaps(rows, report, proj)
        await _check_overlaps_with_stored(rows, report, proj)
    if not report.ok:
        raise ImportRejected(report)
    await _write_grids(rows, proj)
    report.rows_written = len(rows)
    forget_spatial_index()
    forget_map_cache()
    if progress:
        progress(len(features) - len(features) // 2)
    return report


def _parse_features(features: list, report: ImportReport) -> list[dict]:
    rows: list[dict] = []
    seen: dict[str, int] = {}
    for n, feature in enumerate(features, start=1):
        props = (feature or {}).get("properties") or {} if isinstance(feature, dict) else {}
        code = str(props.get("code", "")).strip()
        if len(code) != 15 or not code.isdigit():
            report.add(RowError(n, "bad_code", "unit grid code must be 15 digits (6+3+3+3)", "code", code))
            continue
        if code in seen:
            report.add(RowError(n, "duplicate_code", f"code already used by feature {seen[code]}", "code", code))
            continue
        seen[code] = n
        try:
            geom = shapely.from_geojson(json.dumps(feature["geometry"]))
        except Exception as exc:  # shapely raises GEOSException, TypeError or KeyError on junk
            report.add(RowError(n, "bad_geometry", f"geometry cannot be read: {exc}", "geometry", code))
            continue
        if geom.geom_type not in ("Polygon", "MultiPolygon") or geom.is_empty:
            report.add(RowError(n, "bad_geometry", f"geometry must be a Polygon, not {geom.geom_type}", "geometry"))
            continue
        if not geom.is_valid:
            reason = shapely.is_valid_reason(geom)
            report.add(RowError(n, "invalid_polygon", f"polygon is invalid: {reason}", "geometry", code))
            continue
        rows.append({"n": n, "code": code, "geom": geom, "props": props})
    return rows


def _check_extent_and_overlaps(rows: list[dict], report: ImportReport, proj: LocalProjection) -> None:
    settings = get_settings()
    geoms = np.asarray([r["geom"] for r in rows], dtype=object)
    cx, cy = proj.to_m(shapely.get_x(shapely.centroid(geoms)), shapely.get_y(shapely.centroid(geoms)))
    far = np.hypot(cx, cy) > settings.city_radius_km * 1000
    for r, is_far in zip(rows, far, strict=True):
        if is_far:
            report.add(
                RowError(
                    r["n"],
                    "outside_city",
                    f"grid lies more than {settings.city_radius_km} km from the city centre",
                    "geometry",
                    r["code"],
                )
            )
    tree = STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    pairs = left < right
    left, right = left[pairs], right[pairs]
    if len(left):
        overlap = areas_m2(shapely.intersection(geoms[left], geoms[right]), proj)
        for i, j, area in zip(left, right, overlap, strict=True):
            if area > OVERLAP_TOLERANCE_M2:
                a, b = rows[i], rows[j]
                report.add(
                    RowError(
                        b["n"],
                        "overlap",
                        f"overlaps grid {a['code']} (feature {a['n']}) by {area:.0f} m²",
                        "geometry",
                        b["code"],
                    )
                )


async def _check_overlaps_with_stored(rows: list[dict], report: ImportReport, proj: LocalProjection) -> None:
    incoming = {r["code"] for r in rows}
    stored = [(c, g) for c, g in await UnitGrid.all().values_list("code", "geometry") if c not in incoming]
    if not stored:
        return
    stored_geoms = parse_geojson_many([g for _, g in stored])
    geoms = np.asarray([r["geom"] for r in rows], dtype=object)
    new_idx, old_idx = STRtree(stored_geoms).query(geoms, predicate="intersects")
    if not len(new_idx):
        return
    overlap = areas_m2(shapely.intersection(geoms[new_idx], stored_geoms[old_idx]), proj)
    for i, j, area in zip(new_idx, old_idx, overlap, strict=True):
        if area > OVERLAP_TOLERANCE_M2:
            r = rows[i]
            report.add(
                RowError(
                    r["n"], "overlap", f"overlaps stored grid {stored[j][0]} by {area:.0f} m²", "geometry", r["code"]
                )
            )


async def _write_grids(rows: list[dict], proj: LocalProjection) -> None:
    geoms = rounded([r["geom"] for r in rows])
    texts = to_geojson_many(geoms)
    areas = areas_m2(geoms, proj)
    async with in_transaction() as conn:
        await _create_missing_parents(rows)
        existing = set(await UnitGrid.filter(code__in=[r["code"] for r in rows]).values_list("code", flat=True))
        fresh = []
        for r, text, area in zip(rows, texts, areas, strict=True):
            rgrid = r["props"].get("responsibility_grid") or None
            if r["code"] in existing:
                await UnitGrid.filter(code=r["code"]).update(
                    geometry=text, area_m2=float(area), responsibility_grid_id=rgrid
                )
            else:
                fresh.append((r["code"], r["code"][:12], rgrid, text, float(area)))
        await insert_rows(
            conn, "unit_grid", ["code", "community_id", "responsibility_grid_id", "geometry", "area_m2"], fresh
        )
        await refresh_parent_geometries(community_codes={r["code"][:12] for r in rows})


async def _create_missing_parents(rows: list[dict]) -> None:
    """Create the districts, streets, communities and responsibility grids that the file names but we lack."""
    empty = '{"type":"GeometryCollection","geometries":[]}'  # filled by refresh_parent_geometries
    levels: list[tuple[type[Model], int, str, str | None]] = [
        (District, 6, "district_name", None),
        (Street, 9, "street_name", "district_id"),
        (Community, 12, "community_name", "street_id"),
    ]
    for model, width, name_key, parent_key in levels:
        wanted: dict[str, str] = {}
        for r in rows:  # the first feature that names a region names it
            code, name = r["code"][:width], r["props"].get(name_key)
            if code not in wanted or (name and wanted[code] == code):
                wanted[code] = name or code
        have = set(await model.filter(code__in=list(wanted)).values_list("code", flat=True))
        for code in sorted(set(wanted) - have):
            parent: dict[str, Any] = {parent_key: code[: width - 3]} if parent_key else {}
            await model.create(code=code, name=wanted[code], geometry=empty, **parent)
    rgrids = {
        str(r["props"]["responsibility_grid"]): (r["props"].get("responsibility_grid_name"), r["code"][:9])
        for r in rows
        if r["props"].get("responsibility_grid")
    }
    have = set(await ResponsibilityGrid.filter(code__in=list(rgrids)).values_list("code", flat=True))
    for code in sorted(set(rgrids) - have):
        name, street = rgrids[code]
        await ResponsibilityGrid.create(code=code, name=name or code, street_id=street)


async def refresh_parent_geometries(*, community_codes: set[str]) -> None:
    """Recompute community, street and district outlines as the union of their unit grids."""
    streets = {c[:9] for c in community_codes}
    districts = {c[:6] for c in community_codes}
    for model, codes in ((Community, community_codes), (Street, streets), (District, districts)):
        for code in sorted(codes):
            texts = await UnitGrid.filter(code__startswith=code).values_list("geometry", flat=True)
            outline = shapely.union_all(parse_geojson_many([str(t) for t in texts]))
            await model.filter(code=code).update(geometry=to_geojson_many([outline])[0])


async def export_grids_geojson(*, path: Path, progress: Progress | None = None) -> int:
    """Write every unit grid as a GeoJSON FeatureCollection in the import format; returns the feature count."""
    districts = dict(await District.all().values_list("code", "name"))
    streets = dict(await Street.all().values_list("code", "name"))
    communities = dict(await Community.all().values_list("code", "name"))
    rgrids = dict(await ResponsibilityGrid.all().values_list("code", "name"))
    grids = await UnitGrid.all().order_by("code").values_list("code", "geometry", "responsibility_grid_id", "area_m2")
    with path.open("w", encoding="utf-8") as fh:
        fh.write('{"type":"FeatureCollection","features":[\n')
        for i, (code, geometry, rgrid, area) in enumerate(grids):
            props = {
                "code": code,
                "district_name": districts.get(code[:6], ""),
                "street_name": streets.get(code[:9], ""),
                "community_name": communities.get(code[:12], ""),
                "responsibility_grid": rgrid,
                "responsibility_grid_name": rgrids.get(rgrid, "") if rgrid else "",
                "area_m2": round(area, 1),
            }
            sep = ",\n" if i else ""
            fh.write(
                f'{sep}{{"type":"Feature","properties":{json.dumps(props, ensure_ascii=False)},"geometry":{geometry}}}'
            )
            if progress and i % 5000 == 4999:
                progress(5000)
        fh.write("\n]}\n")
    if progress:
        progress(len(grids) % 5000)
    return len(grids)
