from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('tongguan', '0002_cases')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Blob',
            fields=[
                ('sha256', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('source_sha256', fields.CharField(unique=True, max_length=64)),
                ('size', fields.IntField()),
                ('format', fields.CharField(max_length=8)),
                ('width', fields.IntField()),
                ('height', fields.IntField()),
                ('dhash', fields.BigIntField()),
                ('dhash_b0', fields.IntField(db_index=True)),
                ('dhash_b1', fields.IntField(db_index=True)),
                ('dhash_b2', fields.IntField(db_index=True)),
                ('dhash_b3', fields.IntField(db_index=True)),
                ('taken_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('lon', fields.FloatField(null=True)),
                ('lat', fields.FloatField(null=True)),
                ('gps_accuracy_m', fields.FloatField(null=True)),
                ('device', fields.CharField(default='', max_length=128)),
                ('public_ready', fields.BooleanField(default=False)),
                ('faces_blurred', fields.IntField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'media_blob', 'app': 'tongguan', 'pk_attr': 'sha256', 'table_description': 'Cleaned photo bytes (oriented, metadata stripped), stored once under their sha256, with what EXIF said.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Media',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=32)),
                ('blob', fields.ForeignKeyField('tongguan.Blob', source_field='blob_id', db_constraint=True, to_field='sha256', related_name='uploads', on_delete=OnDelete.RESTRICT)),
                ('owner_type', fields.CharField(max_length=16)),
                ('owner_id', fields.CharField(max_length=64)),
                ('file_name', fields.CharField(default='', max_length=128)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'media', 'app': 'tongguan', 'unique_together': (('owner_type', 'owner_id', 'blob'),), 'pk_attr': 'id', 'table_description': "One account's upload of a photo: the id that reports, evidence and check-ins refer to."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Upload',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('owner_type', fields.CharField(max_length=16)),
                ('owner_id', fields.CharField(max_length=64)),
                ('client_id', fields.CharField(max_length=64)),
                ('file_name', fields.CharField(default='', max_length=128)),
                ('total_size', fields.IntField()),
                ('chunk_size', fields.IntField()),
                ('chunk_hashes', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('status', fields.CharField(default='open', max_length=10)),
                ('media', fields.ForeignKeyField('tongguan.Media', source_field='media_id', null=True, db_constraint=True, to_field='id', related_name='uploads', on_delete=OnDelete.SET_NULL)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'media_upload', 'app': 'tongguan', 'unique_together': (('owner_type', 'owner_id', 'client_id'),), 'pk_attr': 'id', 'table_description': 'A resumable upload: chunks arrive in order, each stored as it comes, until the client completes it.'},
            bases=['Model'],
        ),
    ]
