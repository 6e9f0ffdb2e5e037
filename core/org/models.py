"""Departments (city and district level) and the routing rules that send problems to them."""

from tortoise import fields
from tortoise.models import Model


class Department(Model):
    """A unit that handles cases: a city bureau, a utility company, a district bureau or a street office."""

    code = fields.CharField(max_length=20, primary_key=True)
    name = fields.CharField(max_length=128)
    level = fields.CharField(max_length=16)  # city / district / street
    kind = fields.CharField(max_length=32)  # department kind key, e.g. sanitation
    parent: fields.ForeignKeyNullableRelation["Department"] = fields.ForeignKeyField(
        "tongguan.Department", related_name="children", null=True, on_delete=fields.SET_NULL
    )
    district: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "tongguan.District", related_name="departments", null=True, on_delete=fields.RESTRICT
    )
    street: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "tongguan.Street", related_name="departments", null=True, on_delete=fields.RESTRICT
    )
    duty_phone = fields.CharField(max_length=32, default="")
    duty_mobile = fields.CharField(max_length=20, default="")  # 值班手机: SLA reminders and overdue notices by SMS
    is_fallback = fields.BooleanField(default=False)  # 属地兜底 unit of its district

    class Meta:
        table = "department"


class RoutingRule(Model):
    """Area (city, district, street or unit grid) × subclass → department, as 属主 (owner) or 属地 (area)."""

    id = fields.IntField(primary_key=True)
    subclass: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "tongguan.Subclass", related_name="routing_rules", on_delete=fields.CASCADE
    )
    area_level = fields.CharField(max_length=16)  # city / district / street / grid
    area_code = fields.CharField(max_length=15, default="")
    rule_kind = fields.CharField(max_length=8)  # owner (属主) / area (属地)
    department: fields.ForeignKeyRelation[Department] = fields.ForeignKeyField(
        "tongguan.Department", related_name="routing_rules", on_delete=fields.CASCADE
    )

    class Meta:
        table = "routing_rule"
        unique_together = (("subclass", "area_level", "area_code"),)
