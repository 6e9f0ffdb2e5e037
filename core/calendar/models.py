"""Working-day calendar: the exceptions to "Monday to Friday", per year."""

from tortoise import fields
from tortoise.models import Model


class CalendarDay(Model):
    """A public holiday (法定节假日) or a make-up working day (调休上班)."""

    day = fields.DateField(primary_key=True)
    kind = fields.CharField(max_length=8)  # holiday / workday
    name = fields.CharField(max_length=32)
    official = fields.BooleanField(default=True)  # False while only a provisional schedule is known

    class Meta:
        table = "calendar_day"
