"""Small model helpers shared by the domain modules."""

from __future__ import annotations

from tortoise import fields


def created_at() -> fields.DatetimeField:
    return fields.DatetimeField(auto_now_add=True)


def updated_at() -> fields.DatetimeField:
    return fields.DatetimeField(auto_now=True)
