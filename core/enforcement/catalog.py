"""The exemption list (免罚清单): which violation types may be spared a penalty, on which conditions.

Reference data, not code: a JSON file (core/enforcement/exemptions.json, or the city's own through
`TG_ENFORCEMENT_CATALOG`) read once per process and checked when read, so a broken list stops the start, not a
decision in the street.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError, model_validator

from core.errors import NotFoundError

DEFAULT_PATH = Path(__file__).with_name("exemptions.json")


class Cap(BaseModel):
    """A measured fact's upper bound for the violation to count as minor (e.g. at most 2 m² occupied)."""

    max: float = Field(gt=0)
    label: str = Field(min_length=1)
    unit: str = ""


class ViolationType(BaseModel):
    code: str = Field(pattern=r"^[A-Za-z0-9_-]{1,16}$")
    name: str = Field(min_length=1)
    basis: str = ""  # the legal basis
    conditions: str = ""  # the list's own words on when the exemption applies
    first_offence: bool  # 首违免罚 may apply
    minor: bool  # 轻微不罚 may apply
    correction_hours: float = Field(gt=0)  # the deadline for correcting, from the finding
    caps: dict[str, Cap] = Field(default_factory=dict)


class Catalog(BaseModel):
    version: str = Field(min_length=1)
    title: str = ""
    types: list[ViolationType] = Field(min_length=1)

    @model_validator(mode="after")
    def _codes_unique(self) -> Catalog:
        codes = [t.code for t in self.types]
        if len(codes) != len(set(codes)):
            raise ValueError("violation type codes must be unique")
        return self

    def names(self) -> dict[str, str]:
        """Type code → name, for histories and exports."""
        return {kind.code: kind.name for kind in self.types}

    def type(self, code: str) -> ViolationType:
        for kind in self.types:
            if kind.code == code:
                return kind
        raise NotFoundError("unknown_violation_type", f"violation type {code!r} is not on the exemption list")


def load_catalog(path: Path | None = None) -> Catalog:
    """The exemption list at `path` (default: the shipped example); ValueError when it is not a valid list."""
    path = path or DEFAULT_PATH
    try:
        return Catalog.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError, ValidationError) as exc:
        raise ValueError(f"the exemption list {path} cannot be used: {exc}") from exc


@lru_cache(maxsize=4)
def catalog_at(path: Path | None) -> Catalog:
    """The exemption list, read once per process and path."""
    return load_catalog(path)
