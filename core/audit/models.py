"""Audit log: who read or changed what, and for which purpose."""

from tortoise import fields
from tortoise.models import Model


class AuditEntry(Model):
    id = fields.BigIntField(primary_key=True)
    at = fields.DatetimeField(auto_now_add=True, db_index=True)
    actor_type = fields.CharField(max_length=16)  # staff / citizen / system
    actor_id = fields.CharField(max_length=64)
    action = fields.CharField(max_length=64)
    object_type = fields.CharField(max_length=32)
    object_id = fields.CharField(max_length=64)
    purpose = fields.CharField(max_length=255, default="")
    detail: dict = fields.JSONField(default=dict)
    request_id = fields.CharField(max_length=64, default="")

    class Meta:
        table = "audit_entry"
        indexes = (("object_type", "object_id"),)
