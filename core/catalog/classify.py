"""Classifying a report's free text into one catalog subclass (小类) by the catalog's keywords and names."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from core.catalog.models import Subclass
from core.catalog.service import active_catalog

# Matched weight at which the evidence counts as full: a three-character phrase (垃圾桶, 小广告, 红绿灯)
# already names a problem, a lone two-character word (垃圾, 积水) only leans towards one.
FULL_EVIDENCE = 3.0
# A subclass name is the catalog's own label for the problem, so it outweighs a keyword of the same length.
NAME_WEIGHT = 1.5
# Report.classify_rule is a 128-character column.
RULE_MAX_LENGTH = 128

_NOT_TEXT = re.compile(r"[\W_]+")
_BRACKETED = re.compile(r"\([^)]*\)")


def normalise(text: str) -> str:
    """The text as matched: NFKC, lower-case, no whitespace, punctuation or symbols (ＬＥＤ屏，坏了 → led屏坏了)."""
    return _NOT_TEXT.sub("", unicodedata.normalize("NFKC", text).lower())


@dataclass(frozen=True)
class ClassifierEntry:
    """One subclass as the classifier needs it; (kind, code) identifies it, since the two kinds reuse codes."""

    subclass_id: int
    kind: str
    code: str
    name: str
    keywords: tuple[str, ...]


@dataclass(frozen=True)
class Classification:
    """The subclass a text was classified into, how sure, and the rule that decided it (stored with the report).

    The rule lists the winner's hits as matched, heaviest first: "name:污水井盖 + keyword:井盖丢失".
    """

    subclass_id: int
    kind: str
    code: str
    rule: str
    confidence: float


@dataclass(frozen=True)
class _Term:
    text: str
    entry: int
    source: str  # "name" or "keyword"
    weight: float


class Classifier:
    """Substring rules over normalised text: each subclass's keywords and name are phrases to look for.

    Scoring. Every phrase found in the text is a hit, except one that lies inside a longer hit (in 垃圾桶满了 the
    hit is 垃圾桶满了, not also 垃圾桶 and 垃圾): the longer phrase is the more specific reading. A subclass scores
    the sum of its distinct hits' weights; a keyword weighs its length in characters, a name NAME_WEIGHT times
    that, and a phrase repeated in the text counts once.

    Confidence = evidence × lead, where evidence = min(1, best / FULL_EVIDENCE) and lead = 1 − (runner_up / best)²,
    best and runner_up being the two highest subclass scores (runner_up 0 when only one subclass was hit). So one
    three-character keyword and no rival gives 1.0, a lone two-character keyword 0.67, a runner-up at half the
    winner's score costs a quarter, and an exact tie (井盖丢失 is a keyword of ten cover subclasses) gives 0.

    Negation is out of scope: 没有垃圾 matches 垃圾 and 不是路灯不亮 matches 路灯不亮 like any other text.
    Stripping punctuation joins clauses, which lets 路灯，不亮 match 路灯不亮 and, rarely, makes a phrase across
    a sentence break.
    """

    def __init__(self, entries: Iterable[ClassifierEntry], *, min_confidence: float = 0.5) -> None:
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be within 0..1, not {min_confidence}")
        self.min_confidence = min_confidence
        self._entries = tuple(entries)
        terms: dict[str, dict[int, _Term]] = {}
        for index, entry in enumerate(self._entries):
            # Names first: when a keyword repeats the name, the name's weight and label win.
            for text in _name_variants(entry.name):
                terms.setdefault(text, {}).setdefault(index, _Term(text, index, "name", NAME_WEIGHT * len(text)))
            for keyword in entry.keywords:
                text = normalise(keyword)
                if text:
                    terms.setdefault(text, {}).setdefault(index, _Term(text, index, "keyword", float(len(text))))
        self._terms = {text: tuple(by_entry.values()) for text, by_entry in terms.items()}
        # Phrase lengths by first character: the scan tries only lengths some phrase starting there has.
        lengths: dict[str, set[int]] = {}
        for text in self._terms:
            lengths.setdefault(text[0], set()).add(len(text))
        self._lengths = {first: tuple(sorted(ns)) for first, ns in lengths.items()}

    def classify(self, text: str) -> Classification | None:
        """The best subclass for this text, or None when no phrase matches or confidence < min_confidence."""
        hits: dict[int, dict[str, _Term]] = {}
        for phrase in self._phrases(normalise(text)):
            for term in self._terms[phrase]:
                hits.setdefault(term.entry, {})[phrase] = term
        if not hits:
            return None
        scores = sorted(
            ((sum(t.weight for t in found.values()), -index) for index, found in hits.items()), reverse=True
        )
        best, winner = scores[0][0], -scores[0][1]
        runner_up = scores[1][0] if len(scores) > 1 else 0.0
        confidence = round(min(1.0, best / FULL_EVIDENCE) * (1.0 - (runner_up / best) ** 2), 3)
        if confidence < self.min_confidence:
            return None
        entry = self._entries[winner]
        return Classification(
            subclass_id=entry.subclass_id,
            kind=entry.kind,
            code=entry.code,
            rule=_rule(hits[winner].values()),
            confidence=confidence,
        )

    def _phrases(self, text: str) -> set[str]:
        """The distinct phrases found in normalised text, leaving out those inside a longer found phrase."""
        spans: set[tuple[int, int]] = set()
        for start, first in enumerate(text):
            for n in self._lengths.get(first, ()):
                if text[start : start + n] in self._terms:
                    spans.add((start, start + n))
        kept: set[str] = set()
        furthest = -1
        # By start, longest first: a span is inside an earlier one exactly when an earlier one reaches as far.
        for start, end in sorted(spans, key=lambda span: (span[0], -span[1])):
            if end > furthest:
                kept.add(text[start:end])
                furthest = end
        return kept


def _name_variants(name: str) -> set[str]:
    # 变压器（箱） is looked for as 变压器箱 and as 变压器: citizens rarely write the bracketed part.
    folded = unicodedata.normalize("NFKC", name)
    return {normalise(folded), normalise(_BRACKETED.sub("", folded))} - {""}


def _rule(terms: Iterable[_Term]) -> str:
    # Heaviest hit first; whole hits only, as many as fit the column.
    rule = ""
    for term in sorted(terms, key=lambda t: (-t.weight, t.text)):
        part = f"{term.source}:{term.text}"
        candidate = f"{rule} + {part}" if rule else part
        if len(candidate) > RULE_MAX_LENGTH:
            break
        rule = candidate
    return rule


async def load_classifier(*, min_confidence: float = 0.5) -> Classifier:
    """A classifier over the subclasses of the active catalog version."""
    version = await active_catalog()
    rows = (
        await Subclass.filter(catalog=version)
        .order_by("kind", "code")
        .values_list("id", "kind", "code", "name", "keywords")
    )
    return Classifier(
        (
            ClassifierEntry(subclass_id=id_, kind=kind, code=code, name=name, keywords=tuple(keywords or ()))
            for id_, kind, code, name, keywords in rows
        ),
        min_confidence=min_confidence,
    )


if __name__ == "__main__":
    # Throughput check: python -m core.catalog.classify
    import random
    import time

    from core.catalog.reference import load_catalog

    catalog = load_catalog()
    classifier = Classifier(
        ClassifierEntry(i, s.kind, s.code, s.name, s.keywords) for i, s in enumerate(catalog.subclasses, start=1)
    )
    rng = random.Random(7)
    keywords = [k for s in catalog.subclasses for k in s.keywords]
    fillers = ["您好，", "我家楼下", "幸福路和建设路路口", "已经好几天了，", "麻烦尽快处理一下！", "今天早上", "附近"]
    texts = [
        "".join(rng.sample(fillers, 3)) + rng.choice(keywords) + rng.choice(fillers) + "谢谢" for _ in range(20_000)
    ]
    started = time.perf_counter()
    matched = sum(classifier.classify(t) is not None for t in texts)
    elapsed = time.perf_counter() - started
    mean_length = sum(map(len, texts)) / len(texts)
    print(
        f"{len(texts)} texts (mean {mean_length:.0f} chars) in {elapsed:.3f} s: "
        f"{len(texts) / elapsed:,.0f} texts/s, {matched} classified"
    )
