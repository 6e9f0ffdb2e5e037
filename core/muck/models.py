"""Muck trucks (控渣土): registered transport companies, their trucks, approved routes and time windows, alerts."""

from tortoise import fields
from tortoise.models import Model

from core.fields import created_at


class MuckCompany(Model):
    """A registered muck transport company (渣土运输企业)."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=128, unique=True)
    license_no = fields.CharField(max_length=64, default="")
    contact = fields.CharField(max_length=64, default="")
    phone = fields.CharField(max_length=20, default="")
    active = fields.BooleanField(default=True)
    created_at = created_at()

    class Meta:
        table = "muck_company"


class MuckTruck(Model):
    """A registered truck, known by its plate and the id of its GPS terminal."""

    id = fields.IntField(primary_key=True)
    plate = fields.CharField(max_length=16, unique=True)
    company: fields.ForeignKeyRelation[MuckCompany] = fields.ForeignKeyField(
        "tongguan.MuckCompany", related_name="trucks", on_delete=fields.RESTRICT
    )
    company_id: int
    terminal_id = fields.CharField(max_length=32, null=True, unique=True)
    active = fields.BooleanField(default=True)
    # Where the off-route rule stands: positions come a few at a time, so a run off the corridor spans batches.
    track_at = fields.DatetimeField(null=True)  # the newest position the rules have seen
    off_route_since = fields.DatetimeField(null=True)  # start of the current run off every corridor; None: on route
    off_route_s = fields.FloatField(default=0.0)  # seconds of that run spent moving
    created_at = created_at()

    class Meta:
        table = "muck_truck"


class MuckRoute(Model):
    """An approved route of a truck (核准路线) with its corridor width, daily time window and validity."""

    id = fields.IntField(primary_key=True)
    truck: fields.ForeignKeyRelation[MuckTruck] = fields.ForeignKeyField(
        "tongguan.MuckTruck", related_name="routes", on_delete=fields.CASCADE
    )
    truck_id: int
    name = fields.CharField(max_length=128, default="")
    geometry = fields.TextField()  # GeoJSON LineString, WGS-84
    corridor_m = fields.FloatField(default=100.0)  # off the route = farther than this from the line
    window_start_min = fields.IntField()  # minutes after China midnight; a window may run past midnight
    window_end_min = fields.IntField()
    valid_from = fields.DateField()
    valid_to = fields.DateField()
    created_at = created_at()

    class Meta:
        table = "muck_route"


class MuckCover(Model):
    """A photo of the closed cover (密闭) of a truck, the proof a loaded truck may drive that day."""

    id = fields.BigIntField(primary_key=True)
    truck: fields.ForeignKeyRelation[MuckTruck] = fields.ForeignKeyField(
        "tongguan.MuckTruck", related_name="covers", on_delete=fields.CASCADE
    )
    truck_id: int
    media_id = fields.CharField(max_length=32)
    day = fields.DateField()
    taken_at = fields.DatetimeField()
    created_at = created_at()

    class Meta:
        table = "muck_cover"
        indexes = (("truck_id", "day"),)


class MuckAlert(Model):
    """A broken rule (off the route, outside the window, no cover photo): once per truck, rule and day."""

    id = fields.BigIntField(primary_key=True)
    key = fields.CharField(max_length=64, unique=True)
    truck: fields.ForeignKeyRelation[MuckTruck] = fields.ForeignKeyField(
        "tongguan.MuckTruck", related_name="alerts", on_delete=fields.CASCADE
    )
    truck_id: int
    rule = fields.CharField(max_length=16)  # off_route / off_hours / no_cover
    day = fields.DateField()
    at = fields.DatetimeField()
    lon = fields.FloatField()
    lat = fields.FloatField()
    detail: dict = fields.JSONField(default=dict)
    report_id = fields.BigIntField(null=True)
    created_at = created_at()

    class Meta:
        table = "muck_alert"
        indexes = (("day", "rule"),)
