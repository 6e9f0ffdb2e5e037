from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('tongguan', '0004_notices')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ApiKey',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(unique=True, max_length=64)),
                ('prefix', fields.CharField(max_length=12)),
                ('key_hash', fields.CharField(unique=True, max_length=64)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'api_key', 'app': 'tongguan', 'pk_attr': 'id', 'table_description': 'A key for another system using Open311 (stored hashed, the key itself is shown once).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='CitizenSession',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('citizen', fields.ForeignKeyField('tongguan.Citizen', source_field='citizen_id', db_constraint=True, to_field='id', related_name='sessions', on_delete=OnDelete.CASCADE)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('session_key', fields.CharField(default='', max_length=64)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'citizen_session', 'app': 'tongguan', 'pk_attr': 'id', 'table_description': 'A mini-program login: our own bearer token (stored hashed) and the WeChat session_key, which stays here.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Park',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(max_length=128)),
                ('kind', fields.CharField(default='pocket', max_length=12)),
                ('address', fields.CharField(default='', max_length=256)),
                ('district', fields.CharField(default='', max_length=6)),
                ('lon', fields.FloatField()),
                ('lat', fields.FloatField(db_index=True)),
                ('area_m2', fields.FloatField(null=True)),
                ('open_hours', fields.CharField(default='', max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'park', 'app': 'tongguan', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RoadWork',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('permit_no', fields.CharField(unique=True, max_length=32)),
                ('name', fields.CharField(max_length=128)),
                ('road', fields.CharField(default='', max_length=128)),
                ('district', fields.CharField(default='', max_length=6)),
                ('contractor', fields.CharField(default='', max_length=128)),
                ('lon', fields.FloatField()),
                ('lat', fields.FloatField(db_index=True)),
                ('radius_m', fields.FloatField(default=100.0)),
                ('starts_on', fields.DateField()),
                ('ends_on', fields.DateField(db_index=True)),
                ('detour', fields.CharField(default='', max_length=256)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'road_work', 'app': 'tongguan', 'pk_attr': 'id', 'table_description': 'A road excavation or works site (道路施工/掘路), with its period, detour note and patrol geofence.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Shop',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('qr', fields.CharField(unique=True, max_length=32)),
                ('name', fields.CharField(max_length=128)),
                ('address', fields.CharField(default='', max_length=256)),
                ('street', fields.CharField(default='', max_length=9)),
                ('lon', fields.FloatField()),
                ('lat', fields.FloatField()),
                ('features', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('duty_area', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('duty_note', fields.CharField(default='', max_length=256)),
                ('owner_openid', fields.CharField(null=True, db_index=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'shop', 'app': 'tongguan', 'pk_attr': 'id', 'table_description': 'A street-front shop with its QR code plate and 门前三包 duty area (a GeoJSON polygon, WGS-84).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Toilet',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(max_length=128)),
                ('address', fields.CharField(default='', max_length=256)),
                ('district', fields.CharField(default='', max_length=6)),
                ('lon', fields.FloatField()),
                ('lat', fields.FloatField(db_index=True)),
                ('open_hours', fields.CharField(default='', max_length=64)),
                ('accessible', fields.BooleanField(default=False)),
                ('baby_room', fields.BooleanField(default=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'toilet', 'app': 'tongguan', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='AdPermit',
            name='renewal_note',
            field=fields.CharField(null=True, max_length=256),
        ),
        ops.AddField(
            model_name='AdPermit',
            name='renewal_requested_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Report',
            name='media_url',
            field=fields.CharField(null=True, max_length=512),
        ),
    ]
