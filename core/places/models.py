"""Public places citizens look for (公厕, 公园, 道路施工) and shops (好店铺) with their 门前三包 duty areas.

Points are WGS-84 (lon, lat), like every stored point; `nearby` queries convert from the caller's datum.
"""

from tortoise import fields
from tortoise.models import Model

from core.fields import created_at

PARK_KINDS = ("pocket", "community", "city", "country")  # 口袋公园, 社区公园, 综合公园, 郊野公园


class Toilet(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=128)
    address = fields.CharField(max_length=256, default="")
    district = fields.CharField(max_length=6, default="")
    lon = fields.FloatField()
    lat = fields.FloatField(db_index=True)
    open_hours = fields.CharField(max_length=64, default="")  # e.g. 全天 or 06:00-22:00
    accessible = fields.BooleanField(default=False)  # 无障碍
    baby_room = fields.BooleanField(default=False)  # 母婴室
    created_at = created_at()

    class Meta:
        table = "toilet"


class Park(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=128)
    kind = fields.CharField(max_length=12, default="pocket")  # one of PARK_KINDS
    address = fields.CharField(max_length=256, default="")
    district = fields.CharField(max_length=6, default="")
    lon = fields.FloatField()
    lat = fields.FloatField(db_index=True)
    area_m2 = fields.FloatField(null=True)
    open_hours = fields.CharField(max_length=64, default="")
    created_at = created_at()

    class Meta:
        table = "park"


class RoadWork(Model):
    """A road excavation or works site (道路施工/掘路), with its period, detour note and patrol geofence."""

    id = fields.IntField(primary_key=True)
    permit_no = fields.CharField(max_length=32, unique=True)
    name = fields.CharField(max_length=128)
    road = fields.CharField(max_length=128, default="")
    district = fields.CharField(max_length=6, default="")
    contractor = fields.CharField(max_length=128, default="")
    lon = fields.FloatField()
    lat = fields.FloatField(db_index=True)
    radius_m = fields.FloatField(default=100.0)  # the geofence patrol check-ins must fall within
    starts_on = fields.DateField()
    ends_on = fields.DateField(db_index=True)
    detour = fields.CharField(max_length=256, default="")  # 绕行提示
    created_at = created_at()

    class Meta:
        table = "road_work"


class Shop(Model):
    """A street-front shop with its QR code plate and 门前三包 duty area (a GeoJSON polygon, WGS-84)."""

    id = fields.IntField(primary_key=True)
    qr = fields.CharField(max_length=32, unique=True)
    name = fields.CharField(max_length=128)
    address = fields.CharField(max_length=256, default="")
    street = fields.CharField(max_length=9, default="")
    lon = fields.FloatField()
    lat = fields.FloatField()
    features: list = fields.JSONField(default=list)  # e.g. ["好店铺", "门前三包示范"]
    duty_area: dict = fields.JSONField(null=True)  # GeoJSON Polygon
    duty_note = fields.CharField(max_length=256, default="")  # 门前三包 duties in words
    owner_openid = fields.CharField(max_length=64, null=True, db_index=True)
    created_at = created_at()

    class Meta:
        table = "shop"
