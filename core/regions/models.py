"""Regions: district (区) → street (街道) → community (社区) → unit grid (单元网格); responsibility grids;
road segments (路长制).

Region rows use their official code as primary key, so imports, exports and foreign keys speak the same codes.
Geometries are GeoJSON text in WGS-84; point lookups use the in-process spatial index (core.geo.index).
"""

from tortoise import fields
from tortoise.models import Model


class District(Model):
    """区: GB/T 2260 six-digit code."""

    code = fields.CharField(max_length=6, primary_key=True)
    name = fields.CharField(max_length=64)
    geometry = fields.TextField()

    class Meta:
        table = "district"


class Street(Model):
    """街道: district code + 3 digits."""

    code = fields.CharField(max_length=9, primary_key=True)
    district: fields.ForeignKeyRelation[District] = fields.ForeignKeyField(
        "tongguan.District", related_name="streets", on_delete=fields.RESTRICT
    )
    name = fields.CharField(max_length=64)
    geometry = fields.TextField()

    class Meta:
        table = "street"


class Community(Model):
    """社区: street code + 3 digits."""

    code = fields.CharField(max_length=12, primary_key=True)
    street: fields.ForeignKeyRelation[Street] = fields.ForeignKeyField(
        "tongguan.Street", related_name="communities", on_delete=fields.RESTRICT
    )
    name = fields.CharField(max_length=64)
    geometry = fields.TextField()

    class Meta:
        table = "community"


class ResponsibilityGrid(Model):
    """责任网格 (监督网格): a set of unit grids within one street, patrolled by assigned inspectors."""

    code = fields.CharField(max_length=20, primary_key=True)
    name = fields.CharField(max_length=64)
    street: fields.ForeignKeyRelation[Street] = fields.ForeignKeyField(
        "tongguan.Street", related_name="responsibility_grids", on_delete=fields.RESTRICT
    )
    inspectors: fields.ManyToManyRelation = fields.ManyToManyField(
        "tongguan.StaffAccount", related_name="responsibility_grids", through="responsibility_grid_inspector"
    )

    class Meta:
        table = "responsibility_grid"


class UnitGrid(Model):
    """单元网格: community code + 3-digit serial (15 digits), the smallest area cases are located in."""

    code = fields.CharField(max_length=15, primary_key=True)
    community: fields.ForeignKeyRelation[Community] = fields.ForeignKeyField(
        "tongguan.Community", related_name="unit_grids", on_delete=fields.RESTRICT
    )
    responsibility_grid: fields.ForeignKeyNullableRelation[ResponsibilityGrid] = fields.ForeignKeyField(
        "tongguan.ResponsibilityGrid", related_name="unit_grids", null=True, on_delete=fields.SET_NULL
    )
    geometry = fields.TextField()
    area_m2 = fields.FloatField()

    class Meta:
        table = "unit_grid"


class RoadSegment(Model):
    """路长制 road segment: a stretch of road with its road chief (路长)."""

    code = fields.CharField(max_length=20, primary_key=True)
    name = fields.CharField(max_length=128)
    road_name = fields.CharField(max_length=64)
    district: fields.ForeignKeyRelation[District] = fields.ForeignKeyField(
        "tongguan.District", related_name="road_segments", on_delete=fields.RESTRICT
    )
    level = fields.CharField(max_length=16)  # city / district / street road chief
    chief_name = fields.CharField(max_length=64, default="")
    chief: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "tongguan.StaffAccount", related_name="road_segments", null=True, on_delete=fields.SET_NULL
    )
    geometry = fields.TextField()
    length_m = fields.FloatField()

    class Meta:
        table = "road_segment"
