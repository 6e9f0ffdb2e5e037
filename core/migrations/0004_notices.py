from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('tongguan', '0003_media')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AdCompany',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(max_length=128)),
                ('contact_name', fields.CharField(default='', max_length=64)),
                ('contact_phone', fields.CharField(default='', max_length=20)),
                ('openid', fields.CharField(null=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'ad_company', 'app': 'tongguan', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AdPermit',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('number', fields.CharField(unique=True, max_length=32)),
                ('company', fields.ForeignKeyField('tongguan.AdCompany', source_field='company_id', db_constraint=True, to_field='id', related_name='permits', on_delete=OnDelete.RESTRICT)),
                ('site', fields.CharField(max_length=128)),
                ('lon', fields.FloatField(null=True)),
                ('lat', fields.FloatField(null=True)),
                ('valid_to', fields.DateField(db_index=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'ad_permit', 'app': 'tongguan', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ChannelPause',
            fields=[
                ('channel', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=16)),
                ('until', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('reason', fields.CharField(max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'notice_channel_pause', 'app': 'tongguan', 'pk_attr': 'channel', 'table_description': 'A channel stopped until a moment: the SMS account is out of credit or service (operators are alerted).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Notice',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('channel', fields.CharField(max_length=16)),
                ('recipient', fields.CharField(max_length=64)),
                ('template', fields.CharField(max_length=48)),
                ('params', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('urgent', fields.BooleanField(default=False)),
                ('to_citizen', fields.BooleanField(default=True)),
                ('dedupe_key', fields.CharField(unique=True, max_length=160)),
                ('status', fields.CharField(default='pending', db_index=True, max_length=10)),
                ('attempts', fields.IntField(default=0)),
                ('next_attempt_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('provider_id', fields.CharField(default='', max_length=64)),
                ('error_code', fields.CharField(default='', max_length=64)),
                ('error_message', fields.TextField(default='', unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'notice', 'app': 'tongguan', 'indexes': [Index(fields=['recipient', 'sent_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OptOut',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('channel', fields.CharField(max_length=16)),
                ('recipient', fields.CharField(max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'notice_opt_out', 'app': 'tongguan', 'unique_together': (('channel', 'recipient'),), 'pk_attr': 'id', 'table_description': 'A recipient who asked for no more messages on a channel (退订).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SubscribeGrant',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('openid', fields.CharField(max_length=64)),
                ('template_id', fields.CharField(max_length=64)),
                ('remaining', fields.IntField(default=0)),
            ],
            options={'table': 'notice_subscribe_grant', 'app': 'tongguan', 'unique_together': (('openid', 'template_id'),), 'pk_attr': 'id', 'table_description': 'One-time authorisations a mini-program user gave for a subscribe-message template: each is used once.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Citizen',
            name='last_message_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Department',
            name='duty_mobile',
            field=fields.CharField(default='', max_length=20),
        ),
        ops.AddField(
            model_name='Report',
            name='notify_sms',
            field=fields.BooleanField(default=False),
        ),
    ]
