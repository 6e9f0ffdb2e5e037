"""Problem catalog (部件/事件 classes), versioned: one version is active, old cases keep theirs."""

from tortoise import fields
from tortoise.models import Model

from core.fields import created_at


class CatalogVersion(Model):
    id = fields.IntField(primary_key=True)
    version = fields.CharField(max_length=32, unique=True)
    title = fields.CharField(max_length=128)
    active = fields.BooleanField(default=False)
    # stage → {"value", "unit"}: time limits of 受理, 核实, 立案, 派遣, 核查 and 结案
    stage_limits: dict = fields.JSONField(default=dict)
    created_at = created_at()

    class Meta:
        table = "catalog_version"


class MajorClass(Model):
    """大类: 2-digit code within its kind (component 部件 or event 事件)."""

    id = fields.IntField(primary_key=True)
    catalog: fields.ForeignKeyRelation[CatalogVersion] = fields.ForeignKeyField(
        "tongguan.CatalogVersion", related_name="majors", on_delete=fields.CASCADE
    )
    kind = fields.CharField(max_length=16)
    code = fields.CharField(max_length=2)
    name = fields.CharField(max_length=64)

    class Meta:
        table = "catalog_major"
        unique_together = (("catalog", "kind", "code"),)


class Subclass(Model):
    """小类: 4-digit code (major + minor) with its 立案条件, 结案条件 and who handles it."""

    id = fields.IntField(primary_key=True)
    catalog: fields.ForeignKeyRelation[CatalogVersion] = fields.ForeignKeyField(
        "tongguan.CatalogVersion", related_name="subclasses", on_delete=fields.CASCADE
    )
    major: fields.ForeignKeyRelation[MajorClass] = fields.ForeignKeyField(
        "tongguan.MajorClass", related_name="subclasses", on_delete=fields.CASCADE
    )
    kind = fields.CharField(max_length=16)
    code = fields.CharField(max_length=4)
    name = fields.CharField(max_length=64)
    keywords: list = fields.JSONField(default=list)
    filing_condition = fields.TextField()
    closing_condition = fields.TextField()
    department_kind = fields.CharField(max_length=32)
    check_distance_m = fields.IntField(default=50)
    auto_dispatch = fields.BooleanField(default=False)
    duplicate_window_hours = fields.IntField(default=72)

    class Meta:
        table = "catalog_subclass"
        unique_together = (("catalog", "kind", "code"),)


class TimeLimit(Model):
    """Disposal time limit of a subclass for one urgency, in 工作时 / 工作日 / 自然时."""

    id = fields.IntField(primary_key=True)
    subclass: fields.ForeignKeyRelation[Subclass] = fields.ForeignKeyField(
        "tongguan.Subclass", related_name="time_limits", on_delete=fields.CASCADE
    )
    urgency = fields.CharField(max_length=16)
    value = fields.IntField()
    unit = fields.CharField(max_length=16)

    class Meta:
        table = "catalog_time_limit"
        unique_together = (("subclass", "urgency"),)
