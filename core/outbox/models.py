"""The outbox: follow-up work stored in the same transaction as the change that needs it."""

from tortoise import fields
from tortoise.models import Model

from core.fields import created_at

# pending → queued (handed to rq) → done; dead after too many attempts (an operator looks at it)
STATUSES = ("pending", "queued", "done", "dead")


class OutboxEntry(Model):
    id = fields.BigIntField(primary_key=True)
    task = fields.CharField(max_length=64)
    args: dict = fields.JSONField(default=dict)
    # One entry per piece of work: writing the same key twice is a no-op, so a retried change adds no job.
    dedupe_key = fields.CharField(max_length=160, unique=True)
    status = fields.CharField(max_length=8, default="pending")
    attempts = fields.IntField(default=0)
    available_at = fields.DatetimeField()
    handed_at = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField(null=True)
    last_error = fields.TextField(default="")
    created_at = created_at()

    class Meta:
        table = "outbox"
        indexes = (("status", "available_at"),)
