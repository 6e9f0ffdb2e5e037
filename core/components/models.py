"""Coded street components (部件): 16-digit code = 6 district + 2 major + 2 minor + 6 serial."""

from tortoise import fields
from tortoise.models import Model

from core.fields import updated_at


class Component(Model):
    code = fields.CharField(max_length=16, primary_key=True)
    # Derivable from the code, kept as a column so "all 0101 covers" is an indexed query.
    subclass_code = fields.CharField(max_length=4, db_index=True)
    name = fields.CharField(max_length=64, default="")
    owner_department: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "tongguan.Department", related_name="owned_components", on_delete=fields.RESTRICT
    )  # 主管部门
    property_department: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "tongguan.Department", related_name="property_components", on_delete=fields.RESTRICT
    )  # 权属单位
    maintainer_department: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "tongguan.Department", related_name="maintained_components", on_delete=fields.RESTRICT
    )  # 养护单位
    state = fields.CharField(max_length=16, default="intact")  # intact / damaged / lost / occupied
    lon = fields.FloatField()
    lat = fields.FloatField()
    unit_grid: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "tongguan.UnitGrid", related_name="components", on_delete=fields.RESTRICT
    )
    updated_at = updated_at()

    class Meta:
        table = "component"
