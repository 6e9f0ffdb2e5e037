"""Official-account chat (公众号): what WeChat pushed to us, once each, and each citizen's conversation."""

from tortoise import fields
from tortoise.models import Model

from core.fields import created_at, updated_at


class ChatInbound(Model):
    """One message or event from WeChat, stored once: its key is the MsgId, or FromUserName plus CreateTime
    for events, so a retry of the same push (WeChat tries three times) finds the row already there."""

    id = fields.BigIntField(primary_key=True)
    key = fields.CharField(max_length=96, unique=True)
    openid = fields.CharField(max_length=64, db_index=True)
    msg_type = fields.CharField(max_length=16)  # text, image, voice, location, event, ...
    event = fields.CharField(max_length=32, default="")
    payload: dict = fields.JSONField(default=dict)  # the fields we use, as WeChat sent them
    sent_at = fields.DatetimeField()  # CreateTime
    received_at = created_at()
    # Set with the conversation step, in its transaction: a job run again sends these same replies, once each.
    handled_at = fields.DatetimeField(null=True)
    replies: list = fields.JSONField(default=list)

    class Meta:
        table = "chat_inbound"


class ChatState(Model):
    """Where the conversation of a citizen stands (e.g. waiting for a photo) and the report being drafted."""

    openid = fields.CharField(max_length=64, primary_key=True)
    state = fields.CharField(max_length=24, default="idle")
    draft: dict = fields.JSONField(default=dict)
    expires_at = fields.DatetimeField(null=True)
    subscribed = fields.BooleanField(default=True)  # false after unsubscribe: nothing more is sent
    updated_at = updated_at()

    class Meta:
        table = "chat_state"
