from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('tongguan', '0005_citizen_services')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ChatInbound',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('key', fields.CharField(unique=True, max_length=96)),
                ('openid', fields.CharField(db_index=True, max_length=64)),
                ('msg_type', fields.CharField(max_length=16)),
                ('event', fields.CharField(default='', max_length=32)),
                ('payload', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('sent_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('received_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('handled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('replies', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
            ],
            options={'table': 'chat_inbound', 'app': 'tongguan', 'pk_attr': 'id', 'table_description': 'One message or event from WeChat, stored once: its key is the MsgId, or FromUserName plus CreateTime'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ChatState',
            fields=[
                ('openid', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('state', fields.CharField(default='idle', max_length=24)),
                ('draft', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('subscribed', fields.BooleanField(default=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'chat_state', 'app': 'tongguan', 'pk_attr': 'openid', 'table_description': 'Where the conversation of a citizen stands (e.g. waiting for a photo) and the report being drafted.'},
            bases=['Model'],
        ),
    ]
