"""Point → unit grid → community, street, district, responsibility grid; nearest road segment."""

import numpy as np
import shapely

from core.geo.datum import Datum, from_wgs84
from core.geo.index import linear_scan_locate
from core.geo.service import get_spatial_index
from core.regions.models import RoadSegment, UnitGrid
from tests.factories import interior_point


async def test_a_point_inside_a_grid_finds_the_grid_and_its_parents(city):
    grid = await UnitGrid.all().order_by("code").first()
    lon, lat = await interior_point(grid.code)
    where = (await get_spatial_index()).locate(lon, lat)
    assert where.unit_grid == grid.code
    assert (where.community, where.street, where.district) == (grid.code[:12], grid.code[:9], grid.code[:6])
    assert where.responsibility_grid == grid.responsibility_grid_id


async def test_a_wechat_gcj02_point_is_converted_before_lookup(city):
    grid = await UnitGrid.all().order_by("-code").first()
    lon, lat = await interior_point(grid.code)
    index = await get_spatial_index()
    gcj_lon, gcj_lat = from_wgs84(lon, lat, Datum.GCJ02)
    assert index.locate(gcj_lon, gcj_lat, Datum.GCJ02).unit_grid == grid.code
    # Read as if it were WGS-84, the same numbers land hundreds of metres away: in another grid or outside.
    misread = index.locate(gcj_lon, gcj_lat)
    assert misread is None or misread.unit_grid != grid.code


async def test_points_outside_the_city_find_nothing(city):
    index = await get_spatial_index()
    assert index.locate(116.40, 39.90) is None  # Beijing
    assert list(index.locate_many(np.array([116.40, 0.0]), np.array([39.90, 0.0]))) == [-1, -1]


async def test_bulk_lookup_agrees_with_single_lookup_and_with_a_linear_scan(city):
    index = await get_spatial_index()
    rng = np.random.default_rng(3)
    minx, miny, maxx, maxy = shapely.total_bounds(index.grid_geoms)
    lons, lats = rng.uniform(minx, maxx, 300), rng.uniform(miny, maxy, 300)
    bulk = index.locate_many(lons, lats)
    assert (bulk >= 0).sum() > 100  # most of the bounding box is city
    for lon, lat, i in zip(lons, lats, bulk, strict=True):
        single = index.locate(lon, lat)
        assert (single.unit_grid if single else None) == (index.grid_codes[i] if i >= 0 else None)
        assert linear_scan_locate(index.grid_geoms, lon, lat) == i


async def test_the_nearest_road_segment_is_found_within_a_distance(city):
    road = await RoadSegment.all().order_by("code").first()
    line = shapely.from_geojson(road.geometry)
    mid = line.interpolate(0.5, normalized=True)
    index = await get_spatial_index()
    hit = index.nearest_road(mid.x, mid.y, max_distance_m=30)
    assert hit is not None and hit.code == road.code and hit.distance_m < 1
    # ~0.001° of latitude is ~111 m: too far for a 30 m radius unless another road passes there.
    far = index.nearest_road(mid.x, mid.y + 0.001, max_distance_m=30)
    assert far is None or far.code != road.code


async def test_the_index_is_built_once_per_process(city):
    assert await get_spatial_index() is await get_spatial_index()


async def test_points_on_shared_edges_get_the_same_single_answer_from_both_lookups(city):
    index = await get_spatial_index()
    corners = shapely.get_coordinates(shapely.boundary(index.grid_geoms[:40]))
    bulk = index.locate_many(corners[:, 0], corners[:, 1])
    for (lon, lat), i in zip(corners, bulk, strict=True):
        touching = [j for j, g in enumerate(index.grid_geoms) if g.intersects(shapely.Point(lon, lat))]
        assert i == min(touching)
        assert index.locate(lon, lat).unit_grid == index.grid_codes[i]


async def test_a_database_without_grids_locates_nothing_instead_of_failing(db):
    index = await get_spatial_index()
    assert len(index) == 0
    assert index.locate(123.43, 41.80) is None
    assert list(index.locate_many(np.array([123.43]), np.array([41.80]))) == [-1]
    assert index.nearest_road(123.43, 41.80, max_distance_m=100) is None
