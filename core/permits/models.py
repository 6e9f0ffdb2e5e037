"""Outdoor-advertising permits (户外广告设置许可): who holds them, where, until when."""

from tortoise import fields
from tortoise.models import Model

from core.fields import created_at


class AdCompany(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=128)
    contact_name = fields.CharField(max_length=64, default="")
    contact_phone = fields.CharField(max_length=20, default="")
    openid = fields.CharField(max_length=64, null=True)  # the contact's mini-program account, when bound
    created_at = created_at()

    class Meta:
        table = "ad_company"


class AdPermit(Model):
    id = fields.IntField(primary_key=True)
    number = fields.CharField(max_length=32, unique=True)
    company: fields.ForeignKeyRelation[AdCompany] = fields.ForeignKeyField(
        "tongguan.AdCompany", related_name="permits", on_delete=fields.RESTRICT
    )
    company_id: int
    site = fields.CharField(max_length=128)
    lon = fields.FloatField(null=True)
    lat = fields.FloatField(null=True)
    valid_to = fields.DateField(db_index=True)
    # The holder asked for a renewal (延续) through the mini-program; staff take it from there.
    renewal_requested_at = fields.DatetimeField(null=True)
    renewal_note = fields.CharField(max_length=256, null=True)
    created_at = created_at()

    class Meta:
        table = "ad_permit"
