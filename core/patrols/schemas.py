"""The patrol day as staff and the worker read it (the field app and the staff API answer the same shape)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel

from core.patrols.models import PatrolDay


class PatrolDayOut(BaseModel):
    staff_id: int
    staff_name: str = ""
    day: date
    points: int
    spoofed: int
    distance_m: float
    active_s: int
    first_at: datetime | None
    last_at: datetime | None
    check_ins: int
    grids: dict[str, int]  # unit grid code → seconds
    roads: dict[str, int]  # road segment code → seconds
    computed_at: datetime

    @classmethod
    def of(cls, row: PatrolDay, *, staff_name: str = "") -> PatrolDayOut:
        values = {name: getattr(row, name) for name in cls.model_fields if name != "staff_name"}
        return cls(**values, staff_name=staff_name)
