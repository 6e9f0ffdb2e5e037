"""Accounts: citizens by WeChat identity; staff with roles scoped to departments and areas."""

from tortoise import fields
from tortoise.models import Model

from core.fields import created_at


class Citizen(Model):
    id = fields.IntField(primary_key=True)
    openid = fields.CharField(max_length=64, unique=True)
    unionid = fields.CharField(max_length=64, null=True, db_index=True)
    phone = fields.CharField(max_length=20, null=True)
    nickname = fields.CharField(max_length=64, default="")
    # The user's last message in the official-account chat: customer-service messages may follow for 48 hours.
    last_message_at = fields.DatetimeField(null=True)
    created_at = created_at()

    class Meta:
        table = "citizen"


class CitizenSession(Model):
    """A mini-program login: our own bearer token (stored hashed) and the WeChat session_key, which stays here."""

    id = fields.BigIntField(primary_key=True)
    citizen: fields.ForeignKeyRelation[Citizen] = fields.ForeignKeyField(
        "tongguan.Citizen", related_name="sessions", on_delete=fields.CASCADE
    )
    citizen_id: int
    token_hash = fields.CharField(max_length=64, unique=True)
    session_key = fields.CharField(max_length=64, default="")
    expires_at = fields.DatetimeField()
    revoked_at = fields.DatetimeField(null=True)
    created_at = created_at()

    class Meta:
        table = "citizen_session"


class ApiKey(Model):
    """A key for another system using Open311 (stored hashed, the key itself is shown once)."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=64, unique=True)
    prefix = fields.CharField(max_length=12)  # the key's first characters, to tell keys apart in lists
    key_hash = fields.CharField(max_length=64, unique=True)
    revoked_at = fields.DatetimeField(null=True)
    last_used_at = fields.DatetimeField(null=True)
    created_at = created_at()

    class Meta:
        table = "api_key"


class StaffAccount(Model):
    id = fields.IntField(primary_key=True)
    username = fields.CharField(max_length=64, unique=True)
    display_name = fields.CharField(max_length=64, default="")
    password_hash = fields.CharField(max_length=256)
    phone = fields.CharField(max_length=20, default="")
    active = fields.BooleanField(default=True)
    created_at = created_at()

    class Meta:
        table = "staff_account"


class StaffRole(Model):
    """One role of a staff member, optionally limited to a department and an area (district/street code)."""

    id = fields.IntField(primary_key=True)
    staff: fields.ForeignKeyRelation[StaffAccount] = fields.ForeignKeyField(
        "tongguan.StaffAccount", related_name="roles", on_delete=fields.CASCADE
    )
    role = fields.CharField(max_length=16)
    department: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "tongguan.Department", related_name="staff_roles", null=True, on_delete=fields.RESTRICT
    )
    area_code = fields.CharField(max_length=15, default="")

    class Meta:
        table = "staff_role"
        unique_together = (("staff", "role", "department", "area_code"),)


class StaffSession(Model):
    """A signed-in staff session: the hash of its refresh token. Revoking it ends every access token it issued."""

    id = fields.BigIntField(primary_key=True)
    staff: fields.ForeignKeyRelation[StaffAccount] = fields.ForeignKeyField(
        "tongguan.StaffAccount", related_name="sessions", on_delete=fields.CASCADE
    )
    refresh_hash = fields.CharField(max_length=64, unique=True)
    created_at = created_at()
    expires_at = fields.DatetimeField()
    revoked_at = fields.DatetimeField(null=True)
    user_agent = fields.CharField(max_length=255, default="")

    class Meta:
        table = "staff_session"
