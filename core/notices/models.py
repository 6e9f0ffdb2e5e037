"""Notices: SMS and WeChat messages to send, each once, with what happened; opt-outs and subscribe grants."""

from tortoise import fields
from tortoise.models import Model

from core.fields import created_at

CHANNELS = ("sms", "wechat_subscribe", "wechat_template", "wechat_kf")
# pending → ready (rules passed, in a worker's batch) → sending (the provider call is under way) → sent | failed
# (dead, an operator looks) | unknown (the provider may have it: reconcile);
# deferred (quiet hours, rate limits: later, not dropped); cancelled (opted out, no authorisation)
STATUSES = ("pending", "deferred", "ready", "sending", "sent", "failed", "unknown", "cancelled")


class Notice(Model):
    id = fields.BigIntField(primary_key=True)
    channel = fields.CharField(max_length=16)
    recipient = fields.CharField(max_length=64)  # a phone number or an openid
    template = fields.CharField(max_length=48)
    params: dict = fields.JSONField(default=dict)
    urgent = fields.BooleanField(default=False)
    to_citizen = fields.BooleanField(default=True)  # quiet hours protect citizens, not duty phones
    # The one key per message that may ever be sent: a retry, a crashed worker or a second reminder run finds it.
    dedupe_key = fields.CharField(max_length=160, unique=True)
    status = fields.CharField(max_length=10, default="pending", db_index=True)
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField(db_index=True)
    provider_id = fields.CharField(max_length=64, default="")
    error_code = fields.CharField(max_length=64, default="")
    error_message = fields.TextField(default="")
    created_at = created_at()
    sent_at = fields.DatetimeField(null=True)

    class Meta:
        table = "notice"
        # The per-number limits count recent sends of one recipient.
        indexes = (("recipient", "sent_at"),)


class OptOut(Model):
    """A recipient who asked for no more messages on a channel (退订)."""

    id = fields.IntField(primary_key=True)
    channel = fields.CharField(max_length=16)
    recipient = fields.CharField(max_length=64)
    created_at = created_at()

    class Meta:
        table = "notice_opt_out"
        unique_together = (("channel", "recipient"),)


class SubscribeGrant(Model):
    """One-time authorisations a mini-program user gave for a subscribe-message template: each is used once."""

    id = fields.IntField(primary_key=True)
    openid = fields.CharField(max_length=64)
    template_id = fields.CharField(max_length=64)
    remaining = fields.IntField(default=0)

    class Meta:
        table = "notice_subscribe_grant"
        unique_together = (("openid", "template_id"),)


class ChannelPause(Model):
    """A channel stopped until a moment: the SMS account is out of credit or service (operators are alerted)."""

    channel = fields.CharField(max_length=16, primary_key=True)
    until = fields.DatetimeField()
    reason = fields.CharField(max_length=64)
    created_at = created_at()

    class Meta:
        table = "notice_channel_pause"
