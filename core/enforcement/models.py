"""The violator register of lenient enforcement (柔性执法): parties, their face encodings, violations, decisions.

Identity (names, identity numbers, phones) and face encodings live in separate tables; encodings and identity
numbers are sealed with the face keys (core/enforcement/keys.py) and never leave through the API. Everything of
a party is deleted together: by the retention job, or on a legal request (erase).
"""

from tortoise import fields
from tortoise.models import Model


class Party(Model):
    """A party (相对人) an officer dealt with: a person or a business, with identity where known."""

    id = fields.BigIntField(primary_key=True)
    kind = fields.CharField(max_length=16, default="person")  # person / business
    name = fields.CharField(max_length=64, default="")
    id_type = fields.CharField(max_length=16, default="")  # resident_id / passport / business_license / other
    id_sealed = fields.TextField(null=True)  # the identity number, sealed
    id_hash = fields.CharField(max_length=64, null=True, unique=True)  # keyed hash, to find a party by number
    id_tail = fields.CharField(max_length=4, default="")  # last characters, for masked display
    phone_sealed = fields.TextField(null=True)
    phone_tail = fields.CharField(max_length=4, default="")
    created_at = fields.DatetimeField(auto_now_add=True)
    created_by_id = fields.BigIntField(null=True)  # the officer (staff id) who registered the party
    last_violation_at = fields.DatetimeField(null=True)
    retain_until = fields.DatetimeField(db_index=True)  # then the retention job deletes the party and all its data

    class Meta:
        table = "enf_party"


class FaceEncoding(Model):
    """One face encoding (人脸特征) of a party: 128 float32 numbers, sealed, with no identity here."""

    id = fields.BigIntField(primary_key=True)
    party: fields.ForeignKeyRelation[Party] = fields.ForeignKeyField(
        "tongguan.Party", related_name="encodings", on_delete=fields.CASCADE, db_index=True
    )
    sealed = fields.TextField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "enf_face_encoding"


class FaceIndexChange(Model):
    """An encoding added to or removed from the register, in order: every process replays these into its index."""

    seq = fields.BigIntField(primary_key=True)
    encoding_id = fields.BigIntField()
    party_id = fields.BigIntField()
    added = fields.BooleanField()
    at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        table = "enf_face_index_change"


class FaceSearch(Model):
    """One identify request (人脸比对): who searched, for which purpose and case, and which parties were shown.

    The encoding is held, sealed, for `face_hold_minutes` so that a decision can register a new party from it;
    then it is dropped (retention job), as it is at once when a decision uses it.
    """

    id = fields.UUIDField(primary_key=True)
    officer_id = fields.BigIntField(db_index=True)
    organ = fields.CharField(max_length=32, default="")  # the officer's department (执法机关)
    purpose = fields.CharField(max_length=255)
    case_id = fields.BigIntField(null=True)
    at = fields.DatetimeField(auto_now_add=True, db_index=True)
    faces: list = fields.JSONField(default=list)  # boxes [top, right, bottom, left] in photo pixels, largest first
    chosen = fields.IntField(default=0)
    candidates: list = fields.JSONField(default=list)  # [{party, distance}], nearest first
    held_sealed = fields.TextField(null=True)
    held_until = fields.DatetimeField(null=True, db_index=True)
    photo_id = fields.CharField(max_length=32, null=True)  # the photo, when kept as evidence (Media id)

    class Meta:
        table = "enf_face_search"


class FaceSearchHit(Model):
    """A party an identify request showed: what an export lists and what lets the officer open the party."""

    id = fields.BigIntField(primary_key=True)
    search_id = fields.UUIDField(db_index=True)
    party_id = fields.BigIntField(db_index=True)
    officer_id = fields.BigIntField()
    at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "enf_face_search_hit"


class Violation(Model):
    """A violation (违法行为) an officer found, of a type on the exemption list (免罚清单)."""

    id = fields.BigIntField(primary_key=True)
    party: fields.ForeignKeyRelation[Party] = fields.ForeignKeyField(
        "tongguan.Party", related_name="violations", on_delete=fields.CASCADE
    )
    type_code = fields.CharField(max_length=16)
    organ = fields.CharField(max_length=32)  # the finding officer's department (执法机关)
    officer_id = fields.BigIntField()
    officer_name = fields.CharField(max_length=64, default="")
    found_at = fields.DatetimeField()
    lon = fields.FloatField(null=True)  # WGS-84
    lat = fields.FloatField(null=True)
    address = fields.CharField(max_length=255, default="")
    grid_code = fields.CharField(max_length=15, null=True)
    case_id = fields.BigIntField(null=True)
    search_id = fields.UUIDField(null=True)  # the identify request that found the party
    photos: list = fields.JSONField(default=list)  # Media ids of the evidence
    facts: dict = fields.JSONField(default=dict)  # minor, corrected, corrected_promptly, harm, measures
    correction_deadline = fields.DatetimeField(null=True)
    corrected = fields.BooleanField(default=False)
    corrected_at = fields.DatetimeField(null=True)
    education = fields.TextField(default="")  # 教育记录
    commitment_photo_id = fields.CharField(max_length=32, null=True)  # the signed commitment letter (承诺书), Media
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "enf_violation"
        indexes = (("party_id", "type_code", "found_at"),)


class Decision(Model):
    """The decision on a violation (处理决定): what the rules suggested and what the officer decided."""

    id = fields.BigIntField(primary_key=True)
    violation: fields.OneToOneRelation[Violation] = fields.OneToOneField(
        "tongguan.Violation", related_name="decision", on_delete=fields.CASCADE
    )
    suggested = fields.CharField(max_length=16)  # first_offence / minor / normal
    outcome = fields.CharField(max_length=16)
    grounds: list = fields.JSONField(default=list)  # codes of why the rules suggested what they did
    override_reason = fields.TextField(default="")
    officer_id = fields.BigIntField()
    decided_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "enf_decision"
