"""Reports (上报): what a channel received, kept as received, before and after it becomes part of a case."""

from tortoise import fields
from tortoise.models import Model

from core.fields import created_at

SOURCES = ("miniapp", "official_account", "field_app", "hotline", "open311", "camera", "sensor")
# received → cased (opened a case) | merged (joined an open case) | queued (a person must decide) | rejected
STATUSES = ("received", "cased", "merged", "queued", "rejected")


class Report(Model):
    id = fields.BigIntField(primary_key=True)
    source = fields.CharField(max_length=16)
    reporter_type = fields.CharField(max_length=16)  # citizen / staff / system
    reporter_id = fields.CharField(max_length=64, default="")
    anonymous = fields.BooleanField(default=False)
    # The client's key for "this submission"; a replay with the same key returns the first report.
    idempotency_key = fields.CharField(max_length=64, null=True)
    content_hash = fields.CharField(max_length=64)
    text = fields.TextField(default="")
    address = fields.CharField(max_length=256, default="")
    photos: list = fields.JSONField(default=list)
    media_url = fields.CharField(max_length=512, null=True)  # a photo elsewhere (Open311 media_url), not fetched
    # The point as received, in the datum the channel gave, and the WGS-84 point after location.
    datum = fields.CharField(max_length=8)
    raw_lon = fields.FloatField()
    raw_lat = fields.FloatField()
    lon = fields.FloatField(null=True)
    lat = fields.FloatField(null=True)
    accuracy_m = fields.FloatField(null=True)
    unit_grid = fields.CharField(max_length=15, null=True)
    community = fields.CharField(max_length=12, null=True)
    street = fields.CharField(max_length=9, null=True)
    district = fields.CharField(max_length=6, null=True)
    road_segment = fields.CharField(max_length=32, null=True)
    subclass: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "tongguan.Subclass", related_name="reports", null=True, on_delete=fields.RESTRICT
    )
    subclass_id: int | None
    component_code = fields.CharField(max_length=16, null=True)
    urgency = fields.CharField(max_length=8, default="normal")
    # Set when the subclass came from the text, not from the reporter.
    classify_rule = fields.CharField(max_length=128, default="")
    classify_confidence = fields.FloatField(null=True)
    status = fields.CharField(max_length=12, default="received", db_index=True)
    status_reason = fields.CharField(max_length=255, default="")
    case: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "tongguan.Case", related_name="reports", null=True, on_delete=fields.RESTRICT
    )
    case_id: int | None
    notify_sms = fields.BooleanField(default=False)  # the reporter asked for progress by SMS (to their phone)
    flagged = fields.BooleanField(default=False)  # e.g. content review asked for a person's look
    created_at = created_at()
    processed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "report"
        unique_together = (("source", "reporter_type", "reporter_id", "idempotency_key"),)
        indexes = (("reporter_type", "reporter_id"), ("created_at",))
