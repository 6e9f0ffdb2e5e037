from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('tongguan', '0006_chat')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CheckIn',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('staff', fields.ForeignKeyField('tongguan.StaffAccount', source_field='staff_id', db_constraint=True, to_field='id', related_name='check_ins', on_delete=OnDelete.RESTRICT)),
                ('site_kind', fields.CharField(max_length=16)),
                ('site_code', fields.CharField(max_length=32)),
                ('day', fields.DateField()),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('lon', fields.FloatField()),
                ('lat', fields.FloatField()),
                ('accuracy_m', fields.FloatField()),
                ('distance_m', fields.FloatField()),
                ('photos', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('note', fields.CharField(default='', max_length=500)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'patrol_check_in', 'app': 'tongguan', 'indexes': [Index(fields=['staff_id', 'day']), Index(fields=['site_kind', 'site_code', 'day'])], 'pk_attr': 'id', 'table_description': "A patrol check-in (巡查打卡) that met the geofence, accuracy and photo rules of its site."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='MuckCompany',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(unique=True, max_length=128)),
                ('license_no', fields.CharField(default='', max_length=64)),
                ('contact', fields.CharField(default='', max_length=64)),
                ('phone', fields.CharField(default='', max_length=20)),
                ('active', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'muck_company', 'app': 'tongguan', 'pk_attr': 'id', 'table_description': 'A registered muck transport company (渣土运输企业).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='MuckTruck',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('plate', fields.CharField(unique=True, max_length=16)),
                ('company', fields.ForeignKeyField('tongguan.MuckCompany', source_field='company_id', db_constraint=True, to_field='id', related_name='trucks', on_delete=OnDelete.RESTRICT)),
                ('terminal_id', fields.CharField(null=True, unique=True, max_length=32)),
                ('active', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'muck_truck', 'app': 'tongguan', 'pk_attr': 'id', 'table_description': 'A registered truck, known by its plate and the id of its GPS terminal.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='MuckAlert',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('key', fields.CharField(unique=True, max_length=64)),
                ('truck', fields.ForeignKeyField('tongguan.MuckTruck', source_field='truck_id', db_constraint=True, to_field='id', related_name='alerts', on_delete=OnDelete.CASCADE)),
                ('rule', fields.CharField(max_length=16)),
                ('day', fields.DateField()),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('lon', fields.FloatField()),
                ('lat', fields.FloatField()),
                ('detail', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('report_id', fields.BigIntField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'muck_alert', 'app': 'tongguan', 'indexes': [Index(fields=['day', 'rule'])], 'pk_attr': 'id', 'table_description': 'A broken rule (off the route, outside the window, no cover photo): once per truck, rule and day.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='MuckCover',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('truck', fields.ForeignKeyField('tongguan.MuckTruck', source_field='truck_id', db_constraint=True, to_field='id', related_name='covers', on_delete=OnDelete.CASCADE)),
                ('media_id', fields.CharField(max_length=32)),
                ('day', fields.DateField()),
                ('taken_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'muck_cover', 'app': 'tongguan', 'indexes': [Index(fields=['truck_id', 'day'])], 'pk_attr': 'id', 'table_description': 'A photo of the closed cover (密闭) of a truck, the proof a loaded truck may drive that day.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='MuckRoute',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('truck', fields.ForeignKeyField('tongguan.MuckTruck', source_field='truck_id', db_constraint=True, to_field='id', related_name='routes', on_delete=OnDelete.CASCADE)),
                ('name', fields.CharField(default='', max_length=128)),
                ('geometry', fields.TextField(unique=False)),
                ('corridor_m', fields.FloatField(default=100.0)),
                ('window_start_min', fields.IntField()),
                ('window_end_min', fields.IntField()),
                ('valid_from', fields.DateField()),
                ('valid_to', fields.DateField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'muck_route', 'app': 'tongguan', 'pk_attr': 'id', 'table_description': 'An approved route of a truck (核准路线) with its corridor width, daily time window and validity.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PatrolDay',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('staff', fields.ForeignKeyField('tongguan.StaffAccount', source_field='staff_id', db_constraint=True, to_field='id', related_name='patrol_days', on_delete=OnDelete.CASCADE)),
                ('day', fields.DateField()),
                ('points', fields.IntField(default=0)),
                ('spoofed', fields.IntField(default=0)),
                ('distance_m', fields.FloatField(default=0.0)),
                ('active_s', fields.IntField(default=0)),
                ('first_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('check_ins', fields.IntField(default=0)),
                ('grids', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('roads', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('computed_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'patrol_day', 'app': 'tongguan', 'unique_together': (('staff', 'day'),), 'indexes': [Index(fields=['day'])], 'pk_attr': 'id', 'table_description': 'The patrol day of a worker: distance, time per unit grid and road segment, check-ins (made by a job, rerunnable).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SyncOp',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('staff', fields.ForeignKeyField('tongguan.StaffAccount', source_field='staff_id', db_constraint=True, to_field='id', related_name='sync_ops', on_delete=OnDelete.CASCADE)),
                ('client_id', fields.CharField(max_length=36)),
                ('op', fields.CharField(max_length=24)),
                ('content_hash', fields.CharField(max_length=64)),
                ('status', fields.IntField()),
                ('result', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('done_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'sync_op', 'app': 'tongguan', 'unique_together': (('staff', 'client_id'),), 'pk_attr': 'id', 'table_description': 'One applied (or finally refused) operation: the same UUID again returns this answer.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='TrackChunk',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('subject_type', fields.CharField(max_length=8)),
                ('subject_id', fields.CharField(max_length=32)),
                ('day', fields.DateField()),
                ('t0', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('t1', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('n', fields.IntField()),
                ('spoofed', fields.IntField(default=0)),
                ('data', fields.BinaryField()),
                ('received_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'track_chunk', 'app': 'tongguan', 'indexes': [Index(fields=['subject_type', 'subject_id', 'day']), Index(fields=['day', 'subject_type'])], 'pk_attr': 'id', 'table_description': 'One uploaded batch of track points of one subject and day, packed as delta-coded, compressed columns.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='TrackHead',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('subject_type', fields.CharField(max_length=8)),
                ('subject_id', fields.CharField(max_length=32)),
                ('last_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_lon', fields.FloatField()),
                ('last_lat', fields.FloatField()),
                ('points', fields.BigIntField(default=0)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'track_head', 'app': 'tongguan', 'unique_together': (('subject_type', 'subject_id'),), 'pk_attr': 'id', 'table_description': 'The last accepted point of one tracked subject (a worker or a vehicle): the next batch is checked against it.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='UsedPhoto',
            fields=[
                ('blob_sha256', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('used_for', fields.CharField(max_length=16)),
                ('ref', fields.CharField(max_length=32)),
                ('used_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'used_photo', 'app': 'tongguan', 'pk_attr': 'blob_sha256', 'table_description': 'A photo that proved a check-in or a check once: the same picture (or a near copy) cannot prove another.'},
            bases=['Model'],
        ),
    ]
