"""Offline sync (离线同步): each operation a field device sent, under its client UUID, with the answer it got."""

from tortoise import fields
from tortoise.models import Model

from core.fields import created_at


class SyncOp(Model):
    """One applied (or finally refused) operation: the same UUID again returns this answer."""

    id = fields.BigIntField(primary_key=True)
    staff: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "tongguan.StaffAccount", related_name="sync_ops", on_delete=fields.CASCADE
    )
    staff_id: int
    client_id = fields.CharField(max_length=36)  # the device's UUID for the operation
    op = fields.CharField(max_length=24)
    content_hash = fields.CharField(max_length=64)
    status = fields.IntField()  # the HTTP status the item got (200, 201, 403, 404, 409, 422)
    result: dict = fields.JSONField(default=dict)
    done_at = fields.DatetimeField()  # when the device says it did it
    created_at = created_at()

    class Meta:
        table = "sync_op"
        unique_together = (("staff", "client_id"),)
