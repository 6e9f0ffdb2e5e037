"""What the rules suggest for a violation: 轻微不罚, 首违免罚, or the normal procedure.

行政处罚法 art. 33: a violation that is minor, corrected promptly and caused no harm *shall not* be penalised
(轻微不罚); a first violation whose harm is minor and that was corrected promptly *may* go unpenalised (首违免罚).
So 轻微不罚, the stronger ground, is suggested when both apply. "First" means: no violation of the same type by
the same party found by the same organ within the window (12 months by default), whatever was decided then.
A suggestion is never a decision: the officer confirms it or overrides it with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.enforcement.catalog import ViolationType

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


def suggest(kind: ViolationType, facts: Facts, *, earlier: int) -> Suggestion:
    """The suggestion for a violation of `kind` with these facts, `earlier` violations of it within the window."""
    grounds: list[str] = []
    over = [name for name, cap in kind.caps.items() if facts.measures.get(name, 0.0) > cap.max]
    grounds += [f"cap_exceeded:{name}" for name in over]
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
    if kind.first_offence and minor and facts.corrected and not earlier:
        return Suggestion(FIRST_OFFENCE, (*grounds, "first_offence_applies"))
    if not kind.minor:
        grounds.append("minor_not_listed")
    if not kind.first_offence:
        grounds.append("first_offence_not_listed")
    return Suggestion(NORMAL, tuple(grounds))
