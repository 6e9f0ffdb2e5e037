"""Patrols (巡查): check-ins at excavation sites and road segments, GPS tracks stored compactly, daily summaries."""

from tortoise import fields
from tortoise.models import Model

from core.fields import created_at


class CheckIn(Model):
    """A patrol check-in (巡查打卡) that met the geofence, accuracy and photo rules of its site."""

    id = fields.BigIntField(primary_key=True)
    staff: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "tongguan.StaffAccount", related_name="check_ins", on_delete=fields.RESTRICT
    )
    staff_id: int
    site_kind = fields.CharField(max_length=16)  # road_work / road_segment
    site_code = fields.CharField(max_length=32)  # the road work permit number or the road segment code
    day = fields.DateField()  # the China day of `at`
    at = fields.DatetimeField()  # when the phone took the check-in (it may arrive later, from offline sync)
    lon = fields.FloatField()  # WGS-84
    lat = fields.FloatField()
    accuracy_m = fields.FloatField()
    distance_m = fields.FloatField()  # from the site (its centre, or the road line)
    photos: list = fields.JSONField(default=list)
    note = fields.CharField(max_length=500, default="")
    created_at = created_at()

    class Meta:
        table = "patrol_check_in"
        indexes = (("staff_id", "day"), ("site_kind", "site_code", "day"))


class TrackHead(Model):
    """The last accepted point of one tracked subject (a worker or a vehicle): the next batch is checked against it."""

    id = fields.BigIntField(primary_key=True)
    subject_type = fields.CharField(max_length=8)  # staff / vehicle
    subject_id = fields.CharField(max_length=32)
    last_at = fields.DatetimeField()
    last_lon = fields.FloatField()
    last_lat = fields.FloatField()
    points = fields.BigIntField(default=0)
    updated_at = fields.DatetimeField()

    class Meta:
        table = "track_head"
        unique_together = (("subject_type", "subject_id"),)


class TrackChunk(Model):
    """One uploaded batch of track points of one subject and day, packed as delta-coded, compressed columns.

    A row per point would cost about 60 bytes plus index entries, and about 17,000 subjects reporting every 10-30 s
    make about 100 million points a day: points travel and rest in chunks (the format is in core/patrols/tracks.py).
    """

    id = fields.BigIntField(primary_key=True)
    subject_type = fields.CharField(max_length=8)
    subject_id = fields.CharField(max_length=32)
    day = fields.DateField()
    t0 = fields.DatetimeField()
    t1 = fields.DatetimeField()
    n = fields.IntField()
    spoofed = fields.IntField(default=0)  # points flagged as impossible (speed from the previous point)
    data = fields.BinaryField()
    received_at = fields.DatetimeField()

    class Meta:
        table = "track_chunk"
        indexes = (("subject_type", "subject_id", "day"), ("day", "subject_type"))


class PatrolDay(Model):
    """The patrol day of a worker: distance, time per unit grid and road segment, check-ins (made by a job)."""

    id = fields.BigIntField(primary_key=True)
    staff: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "tongguan.StaffAccount", related_name="patrol_days", on_delete=fields.CASCADE
    )
    staff_id: int
    day = fields.DateField()
    points = fields.IntField(default=0)
    spoofed = fields.IntField(default=0)
    distance_m = fields.FloatField(default=0.0)
    active_s = fields.IntField(default=0)  # time covered by points no more than the gap limit apart
    first_at = fields.DatetimeField(null=True)
    last_at = fields.DatetimeField(null=True)
    check_ins = fields.IntField(default=0)
    grids: dict = fields.JSONField(default=dict)  # unit grid code -> seconds
    roads: dict = fields.JSONField(default=dict)  # road segment code -> seconds
    computed_at = fields.DatetimeField()

    class Meta:
        table = "patrol_day"
        unique_together = (("staff", "day"),)
        indexes = (("day",),)
