"""Media: stored photos addressed by their content, each account's uploads of them, and resumable uploads."""

from tortoise import fields
from tortoise.models import Model

from core.fields import created_at, updated_at


class Blob(Model):
    """Cleaned photo bytes (oriented, metadata stripped), stored once under their sha256, with what EXIF said."""

    sha256 = fields.CharField(max_length=64, primary_key=True)
    # The sha256 of the bytes as uploaded: the same upload again is recognised without decoding it again.
    source_sha256 = fields.CharField(max_length=64, unique=True)
    size = fields.IntField()
    format = fields.CharField(max_length=8)
    width = fields.IntField()
    height = fields.IntField()
    # 64-bit difference hash in four 16-bit bands: photos within 3 bits share a band (pigeonhole), so a reused
    # photo is found through an index, not a scan.
    dhash = fields.BigIntField()
    dhash_b0 = fields.IntField(db_index=True)
    dhash_b1 = fields.IntField(db_index=True)
    dhash_b2 = fields.IntField(db_index=True)
    dhash_b3 = fields.IntField(db_index=True)
    taken_at = fields.DatetimeField(null=True)
    lon = fields.FloatField(null=True)
    lat = fields.FloatField(null=True)
    gps_accuracy_m = fields.FloatField(null=True)
    device = fields.CharField(max_length=128, default="")
    # Public sizes exist only after the PII pass (faces blurred); until then nothing of this photo is public.
    public_ready = fields.BooleanField(default=False)
    faces_blurred = fields.IntField(null=True)
    created_at = created_at()

    class Meta:
        table = "media_blob"


class Media(Model):
    """One account's upload of a photo: the id that reports, evidence and check-ins refer to."""

    id = fields.CharField(max_length=32, primary_key=True)
    blob: fields.ForeignKeyRelation[Blob] = fields.ForeignKeyField(
        "tongguan.Blob", related_name="uploads", on_delete=fields.RESTRICT
    )
    blob_id: str
    owner_type = fields.CharField(max_length=16)  # citizen / staff
    owner_id = fields.CharField(max_length=64)
    file_name = fields.CharField(max_length=128, default="")  # as the client named it, for display only
    created_at = created_at()

    class Meta:
        table = "media"
        unique_together = (("owner_type", "owner_id", "blob"),)


class Upload(Model):
    """A resumable upload: chunks arrive in order, each stored as it comes, until the client completes it."""

    id = fields.BigIntField(primary_key=True)
    owner_type = fields.CharField(max_length=16)
    owner_id = fields.CharField(max_length=64)
    client_id = fields.CharField(max_length=64)  # the client's upload id, unique per account
    file_name = fields.CharField(max_length=128, default="")
    total_size = fields.IntField()
    chunk_size = fields.IntField()
    chunk_hashes: list = fields.JSONField(default=list)  # sha256 of each received chunk, in order
    status = fields.CharField(max_length=10, default="open")  # open / completed
    media: fields.ForeignKeyNullableRelation[Media] = fields.ForeignKeyField(
        "tongguan.Media", related_name="uploads", null=True, on_delete=fields.SET_NULL
    )
    media_id: str | None
    created_at = created_at()
    updated_at = updated_at()

    class Meta:
        table = "media_upload"
        unique_together = (("owner_type", "owner_id", "client_id"),)


class UsedPhoto(Model):
    """A photo that proved a check-in or a check once: the same picture (or a near copy) cannot prove another."""

    blob_sha256 = fields.CharField(max_length=64, primary_key=True)
    used_for = fields.CharField(max_length=16)  # check_in / case_check / case_verify
    ref = fields.CharField(max_length=32)  # the check-in id or the case number
    used_at = fields.DatetimeField()

    class Meta:
        table = "used_photo"
