"""Cases (案卷): what the city works on, their timeline, inspector tasks and approval requests."""

from tortoise import fields
from tortoise.models import Model

from core.fields import created_at, updated_at


class Case(Model):
    id = fields.BigIntField(primary_key=True)
    number = fields.CharField(max_length=20, unique=True)  # readable: yyyymmdd + daily sequence
    subclass: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "tongguan.Subclass", related_name="cases", on_delete=fields.RESTRICT
    )
    subclass_id: int
    urgency = fields.CharField(max_length=8, default="normal")
    source = fields.CharField(max_length=16)
    description = fields.TextField(default="")
    address = fields.CharField(max_length=256, default="")
    lon = fields.FloatField()
    lat = fields.FloatField()
    unit_grid = fields.CharField(max_length=15, db_index=True)
    community = fields.CharField(max_length=12)
    street = fields.CharField(max_length=9, db_index=True)
    district = fields.CharField(max_length=6, db_index=True)
    responsibility_grid = fields.CharField(max_length=32, null=True)
    road_segment = fields.CharField(max_length=32, null=True, db_index=True)
    component_code = fields.CharField(max_length=16, null=True, db_index=True)
    department: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "tongguan.Department", related_name="cases", null=True, on_delete=fields.RESTRICT
    )
    department_id: str | None
    routing_kind = fields.CharField(max_length=8, default="")  # owner / area / fallback / manual
    routing_reason = fields.CharField(max_length=255, default="")
    status = fields.CharField(max_length=16, db_index=True)
    # Open while the case is being worked on (not closed, rejected or voided): the duplicate lookup's filter.
    is_open = fields.BooleanField(default=True)
    suspended_from = fields.CharField(max_length=16, null=True)
    # The SLA clock (跑表计时) of the current stage.
    stage = fields.CharField(max_length=12, null=True)
    stage_seq = fields.IntField(default=0)
    stage_unit = fields.CharField(max_length=16, null=True)
    stage_started_at = fields.DatetimeField(null=True)
    stage_deadline = fields.DatetimeField(null=True, db_index=True)
    stage_warn_at = fields.DatetimeField(null=True, db_index=True)
    stage_warned = fields.BooleanField(default=False)
    stage_overdue = fields.BooleanField(default=False)
    paused_at = fields.DatetimeField(null=True)
    escalation_level = fields.IntField(default=0)
    dispose_overdue = fields.BooleanField(default=False)
    extensions = fields.IntField(default=0)
    rework_count = fields.IntField(default=0)
    report_count = fields.IntField(default=1)
    verified = fields.BooleanField(null=True)  # 核实 result when a citizen reported it
    satisfaction = fields.CharField(max_length=16, null=True)  # satisfied / basic / unsatisfied
    rating_comment = fields.CharField(max_length=255, default="")
    opened_at = created_at()
    accepted_at = fields.DatetimeField(null=True)
    registered_at = fields.DatetimeField(null=True)
    dispatched_at = fields.DatetimeField(null=True)
    fixed_at = fields.DatetimeField(null=True)
    closed_at = fields.DatetimeField(null=True)
    updated_at = updated_at()

    class Meta:
        table = "case_file"
        # The duplicate lookup: open cases of one subclass in a latitude band (then longitude and time).
        indexes = (
            ("subclass_id", "is_open", "lat"),
            ("department_id", "status"),
            ("is_open", "status"),
            # the evaluation's period filters
            ("registered_at",),
            ("opened_at",),
        )


class CaseEvent(Model):
    """One step in the timeline of a case: who did what, when, with a note and photos."""

    id = fields.BigIntField(primary_key=True)
    case: fields.ForeignKeyRelation[Case] = fields.ForeignKeyField(
        "tongguan.Case", related_name="events", on_delete=fields.CASCADE
    )
    case_id: int
    action = fields.CharField(max_length=24)
    from_status = fields.CharField(max_length=16, null=True)
    to_status = fields.CharField(max_length=16)
    actor_type = fields.CharField(max_length=16)  # staff / citizen / system
    actor_id = fields.CharField(max_length=64, default="")
    actor_name = fields.CharField(max_length=64, default="")
    note = fields.TextField(default="")
    media: list = fields.JSONField(default=list)
    detail: dict = fields.JSONField(default=dict)
    at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "case_event"
        indexes = (("case_id", "id"), ("action", "at"))


class CaseTask(Model):
    """A task of an inspector on a case: 核实 (verify a citizen report) or 核查 (check a fix)."""

    id = fields.BigIntField(primary_key=True)
    case: fields.ForeignKeyRelation[Case] = fields.ForeignKeyField(
        "tongguan.Case", related_name="tasks", on_delete=fields.CASCADE
    )
    case_id: int
    kind = fields.CharField(max_length=8)  # verify / check
    round = fields.IntField(default=1)
    inspector: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "tongguan.StaffAccount", related_name="tasks", null=True, on_delete=fields.SET_NULL
    )
    inspector_id: int | None
    responsibility_grid = fields.CharField(max_length=32, null=True, db_index=True)
    status = fields.CharField(max_length=10, default="open")  # open / done / cancelled
    due_at = fields.DatetimeField(null=True)
    result = fields.CharField(max_length=12, null=True)  # verify: confirmed / not_found; check: passed / failed
    on_time = fields.BooleanField(null=True)
    created_at = created_at()
    done_at = fields.DatetimeField(null=True)

    class Meta:
        table = "case_task"
        unique_together = (("case", "kind", "round"),)
        indexes = (("inspector_id", "status"),)


class CaseRequest(Model):
    """A request that waits for approval: 延期 (extension) or 挂账 (suspension). The clock stops meanwhile."""

    id = fields.BigIntField(primary_key=True)
    case: fields.ForeignKeyRelation[Case] = fields.ForeignKeyField(
        "tongguan.Case", related_name="requests", on_delete=fields.CASCADE
    )
    case_id: int
    kind = fields.CharField(max_length=12)  # extension / suspension
    status = fields.CharField(max_length=10, default="pending", db_index=True)  # pending / approved / refused
    reason = fields.TextField()
    hours = fields.FloatField(null=True)  # extension asked, in the stage's unit (hours or days)
    requested_by = fields.CharField(max_length=64)
    decided_by = fields.CharField(max_length=64, null=True)
    decision_note = fields.TextField(default="")
    created_at = created_at()
    decided_at = fields.DatetimeField(null=True)

    class Meta:
        table = "case_request"


class CaseCounter(Model):
    """The last case number given out on one day."""

    day = fields.CharField(max_length=8, primary_key=True)
    value = fields.IntField(default=0)

    class Meta:
        table = "case_counter"
