from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('tongguan', '0007_field')]

    initial = False

    operations = [
        ops.CreateModel(
            name='FaceIndexChange',
            fields=[
                ('seq', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('encoding_id', fields.BigIntField()),
                ('party_id', fields.BigIntField()),
                ('added', fields.BooleanField()),
                ('at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'enf_face_index_change', 'app': 'tongguan', 'pk_attr': 'seq', 'table_description': 'An encoding added to or removed from the register, in order: every process replays these into its index.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='FaceSearch',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('officer_id', fields.BigIntField(db_index=True)),
                ('organ', fields.CharField(default='', max_length=32)),
                ('purpose', fields.CharField(max_length=255)),
                ('case_id', fields.BigIntField(null=True)),
                ('at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=True)),
                ('faces', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('chosen', fields.IntField(default=0)),
                ('candidates', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('held_sealed', fields.TextField(null=True, unique=False)),
                ('held_until', fields.DatetimeField(null=True, db_index=True, auto_now=False, auto_now_add=False)),
                ('photo_id', fields.CharField(null=True, max_length=32)),
            ],
            options={'table': 'enf_face_search', 'app': 'tongguan', 'pk_attr': 'id', 'table_description': 'One identify request (人脸比对): who searched, for which purpose and case, and which parties were shown.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='FaceSearchHit',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('search_id', fields.UUIDField(db_index=True)),
                ('party_id', fields.BigIntField(db_index=True)),
                ('officer_id', fields.BigIntField()),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'enf_face_search_hit', 'app': 'tongguan', 'pk_attr': 'id', 'table_description': 'A party an identify request showed: what an export lists and what lets the officer open the party.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Party',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('kind', fields.CharField(default='person', max_length=16)),
                ('name', fields.CharField(default='', max_length=64)),
                ('id_type', fields.CharField(default='', max_length=16)),
                ('id_sealed', fields.TextField(null=True, unique=False)),
                ('id_hash', fields.CharField(null=True, unique=True, max_length=64)),
                ('id_tail', fields.CharField(default='', max_length=4)),
                ('phone_sealed', fields.TextField(null=True, unique=False)),
                ('phone_tail', fields.CharField(default='', max_length=4)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('created_by_id', fields.BigIntField(null=True)),
                ('last_violation_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('retain_until', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'enf_party', 'app': 'tongguan', 'pk_attr': 'id', 'table_description': 'A party (相对人) an officer dealt with: a person or a business, with identity where known.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='FaceEncoding',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('party', fields.ForeignKeyField('tongguan.Party', source_field='party_id', db_index=True, db_constraint=True, to_field='id', related_name='encodings', on_delete=OnDelete.CASCADE)),
                ('sealed', fields.TextField(unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'enf_face_encoding', 'app': 'tongguan', 'pk_attr': 'id', 'table_description': 'One face encoding (人脸特征) of a party: 128 float32 numbers, sealed, with no identity here.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Violation',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('party', fields.ForeignKeyField('tongguan.Party', source_field='party_id', db_constraint=True, to_field='id', related_name='violations', on_delete=OnDelete.CASCADE)),
                ('type_code', fields.CharField(max_length=16)),
                ('organ', fields.CharField(max_length=32)),
                ('officer_id', fields.BigIntField()),
                ('officer_name', fields.CharField(default='', max_length=64)),
                ('found_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('lon', fields.FloatField(null=True)),
                ('lat', fields.FloatField(null=True)),
                ('address', fields.CharField(default='', max_length=255)),
                ('grid_code', fields.CharField(null=True, max_length=15)),
                ('case_id', fields.BigIntField(null=True)),
                ('search_id', fields.UUIDField(null=True)),
                ('photos', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('facts', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('correction_deadline', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('corrected', fields.BooleanField(default=False)),
                ('corrected_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('education', fields.TextField(default='', unique=False)),
                ('commitment_photo_id', fields.CharField(null=True, max_length=32)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'enf_violation', 'app': 'tongguan', 'indexes': [Index(fields=['party_id', 'type_code', 'found_at'])], 'pk_attr': 'id', 'table_description': 'A violation (违法行为) an officer found, of a type on the exemption list (免罚清单).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Decision',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('violation', fields.OneToOneField('tongguan.Violation', source_field='violation_id', db_constraint=True, to_field='id', related_name='decision', on_delete=OnDelete.CASCADE)),
                ('suggested', fields.CharField(max_length=16)),
                ('outcome', fields.CharField(max_length=16)),
                ('grounds', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('override_reason', fields.TextField(default='', unique=False)),
                ('officer_id', fields.BigIntField()),
                ('decided_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'enf_decision', 'app': 'tongguan', 'pk_attr': 'id', 'table_description': 'The decision on a violation (处理决定): what the rules suggested and what the officer decided.'},
            bases=['Model'],
        ),
    ]
