"""What the rules suggest for a violation: 轻微不罚, 首违免罚, or the normal procedure.

行政处罚法 art. 33: a violation that is minor, corrected promptly and caused no harm *shall not* be penalised
(轻微不罚); a first violation whose harm is minor and that was corrected promptly *may* go unpenalised (首违免罚).
So 轻微不罚, the stronger ground, is suggested when both apply. Both need the correction made promptly (及时改正:
within the deadline the list sets). "First" means: no violation of the same type by the same party found by the
same organ within the window (12 months by default), whatever was decided then.
A suggestion is never a decision: the officer confirms it or overrides it with a reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from core.enforcement.catalog import ViolationType
from core.errors import ValidationFailed

MINOR = "minor"  # 轻微不罚
FIRST_OFFENCE = "first_offence"  # 首违免罚
NORMAL = "normal"  # 按一般程序处理
OUTCOMES = (MINOR, FIRST_OFFENCE, NORMAL)


@dataclass(frozen=True)
class Facts:
    """What the officer found: the violation minor, corrected (promptly: within the deadline), any harm done."""

    minor: bool
    corrected: bool
    corrected_promptly: bool
    harm: bool
    measures: dict[str, float] = field(default_factory=dict)  # e.g. {"area_m2": 1.5}, checked against the caps


@dataclass(frozen=True)
class Suggestion:
    outcome: str
    grounds: tuple[str, ...]  # codes, in the order they were decided; texts in messages.GROUNDS


def allowed(kind: ViolationType, outcome: str) -> bool:
    """Whether an outcome may be decided for a type: an exemption only where the list grants it."""
    return outcome == NORMAL or (outcome == MINOR and kind.minor) or (outcome == FIRST_OFFENCE and kind.first_offence)


def check_measures(kind: ViolationType, facts: Facts) -> None:
    """Measured facts are numbers the type's caps know, not negative, not NaN; anything else is refused."""
    for name, value in facts.measures.items():
        if name not in kind.caps:
            known = ", ".join(kind.caps) or "none"
            raise ValidationFailed("unknown_measure", f"{kind.code} has no cap named {name!r} (caps: {known})")
        if not math.isfinite(value) or value < 0:
            raise ValidationFailed("unknown_measure", f"{name} must be a number of zero or more")


def suggest(kind: ViolationType, facts: Facts, *, earlier: int) -> Suggestion:
    """The suggestion for a violation of `kind` with these facts, `earlier` violations of it within the window.

    A capped fact that was not measured cannot show the violation minor: "minor" on the list means within its caps.
    """
    grounds: list[str] = []
    over = [name for name, cap in kind.caps.items() if facts.measures.get(name, math.inf) > cap.max]
    grounds += [f"cap_exceeded:{name}" if name in facts.measures else f"cap_not_measured:{name}" for name in over]
    minor = facts.minor and not over
    if not facts.minor:
        grounds.append("not_minor")
    if not facts.corrected:
        grounds.append("not_corrected")
    elif not facts.corrected_promptly:
        grounds.append("not_prompt")
    if facts.harm:
        grounds.append("harm")
    if earlier:
        grounds.append("earlier_violation")
    if kind.minor and minor and facts.corrected and facts.corrected_promptly and not facts.harm:
        return Suggestion(MINOR, (*grounds, "minor_applies"))
    if kind.first_offence and minor and facts.corrected and facts.corrected_promptly and not earlier:
        return Suggestion(FIRST_OFFENCE, (*grounds, "first_offence_applies"))
    if not kind.minor:
        grounds.append("minor_not_listed")
    if not kind.first_offence:
        grounds.append("first_offence_not_listed")
    return Suggestion(NORMAL, tuple(grounds))
