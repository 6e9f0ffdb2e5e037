"""Classifying report text into a catalog subclass by the shipped catalog's keywords and names."""

from __future__ import annotations

import pytest

from core.catalog.classify import RULE_MAX_LENGTH, Classifier, ClassifierEntry, load_classifier
from core.catalog.models import Subclass
from core.catalog.reference import load_catalog


def _entries() -> list[ClassifierEntry]:
    return [
        ClassifierEntry(subclass_id=i, kind=s.kind, code=s.code, name=s.name, keywords=s.keywords)
        for i, s in enumerate(load_catalog().subclasses, start=1)
    ]


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier(_entries())


@pytest.fixture(scope="module")
def lenient() -> Classifier:
    """The same rules with no threshold, to compare confidences below the default."""
    return Classifier(_entries(), min_confidence=0.0)


@pytest.mark.parametrize(
    ("text", "kind", "code"),
    [
        ("幸福路口的污水井盖丢失了，晚上很危险", "component", "0102"),  # 污水井盖
        ("小区门口的垃圾没人收，都臭了", "event", "0102"),  # 暴露垃圾
        ("路边有一堆垃圾", "event", "0102"),
        ("垃圾桶满了，垃圾撒了一地", "event", "0114"),  # 垃圾满溢
        ("饭店门口占道经营，桌子摆到人行道上", "event", "0504"),  # 店外经营
        ("墙上贴满了小广告，很难看", "event", "0201"),  # 非法小广告
        ("有人在单元门口乱贴广告", "event", "0201"),
        ("建设路的路灯不亮，晚上很黑", "component", "0120"),  # 路灯
        ("十字路口红绿灯不亮了", "component", "0211"),  # 交通信号灯
        ("有辆僵尸车在路边停了半年", "event", "0123"),  # 废弃车辆
        ("旁边工地扬尘很大", "event", "0302"),  # 工地扬尘
        ("夜间施工太吵了，半夜施工吵得睡不着", "event", "0301"),  # 施工扰民
        ("自来水管破裂，路面跑水", "event", "0402"),  # 自来水管破裂
        ("有人在路边烧垃圾，冒黑烟", "event", "0108"),  # 焚烧垃圾树叶
    ],
)
def test_a_citizen_sentence_classifies_as_its_subclass(classifier: Classifier, text: str, kind: str, code: str) -> None:
    result = classifier.classify(text)
    assert result is not None, text
    assert (result.kind, result.code) == (kind, code)
    assert 0.5 <= result.confidence <= 1.0


def test_text_about_a_missing_manhole_cover_classifies_as_the_cover_subclass(classifier: Classifier) -> None:
    result = classifier.classify("幸福路口的污水井盖丢失了，晚上很危险")
    assert result is not None
    assert (result.kind, result.code) == ("component", "0102")
    assert result.rule == "name:污水井盖 + keyword:井盖丢失"


def test_the_rule_names_the_keyword_that_matched(classifier: Classifier) -> None:
    result = classifier.classify("建设路的路灯不亮，晚上很黑")
    assert result is not None
    assert result.rule == "keyword:路灯不亮"


def test_a_phrase_inside_a_longer_match_does_not_count_on_its_own(classifier: Classifier) -> None:
    # 垃圾桶满了 (垃圾满溢) holds 垃圾桶 (垃圾箱) and 垃圾 (暴露垃圾), which would otherwise be rivals.
    result = classifier.classify("垃圾桶满了")
    assert result is not None
    assert (result.kind, result.code, result.rule, result.confidence) == ("event", "0114", "keyword:垃圾桶满了", 1.0)


def test_a_phrase_repeated_in_the_text_counts_once(classifier: Classifier) -> None:
    assert classifier.classify("垃圾垃圾垃圾") == classifier.classify("垃圾")


def test_a_subclass_name_outweighs_a_keyword_of_the_same_length(classifier: Classifier) -> None:
    result = classifier.classify("工地扬尘")
    assert result is not None
    assert (result.code, result.rule) == ("0302", "name:工地扬尘")


def test_full_width_letters_spaces_and_punctuation_do_not_hide_a_keyword(classifier: Classifier) -> None:
    assert classifier.classify("ＬＥＤ 屏幕花屏") == classifier.classify("led屏幕花屏")
    lamp = classifier.classify("路灯，不亮")
    assert lamp is not None
    assert lamp.rule == "keyword:路灯不亮"


@pytest.mark.parametrize("text", ["今天天气真好，出去走走", "asdfqwer 1234", "！！！", ""])
def test_text_about_nothing_in_the_catalog_returns_none(classifier: Classifier, text: str) -> None:
    assert classifier.classify(text) is None


def test_a_keyword_shared_by_several_subclasses_alone_returns_none(classifier: Classifier, lenient: Classifier) -> None:
    # 井盖丢失 is a keyword of every cover subclass; without the cover's kind any choice would be a guess.
    assert classifier.classify("井盖丢失了") is None
    tie = lenient.classify("井盖丢失了")
    assert tie is not None
    assert tie.confidence == 0.0


def test_an_ambiguous_text_gets_lower_confidence_than_a_clear_one(lenient: Classifier) -> None:
    clear = lenient.classify("垃圾桶满了")
    # 路灯 (a component subclass name) is a rival phrase, though a weaker one.
    ambiguous = lenient.classify("路灯下面的垃圾桶满了")
    assert clear is not None
    assert ambiguous is not None
    assert (ambiguous.kind, ambiguous.code) == (clear.kind, clear.code)
    assert ambiguous.confidence < clear.confidence


def test_a_rule_with_many_hits_fits_the_report_column() -> None:
    keywords = tuple(f"很长的关键词第{n}号呀" for n in "一二三四五六七八九十")
    classifier = Classifier([ClassifierEntry(subclass_id=1, kind="event", code="9901", name="测试", keywords=keywords)])
    result = classifier.classify("".join(keywords))
    assert result is not None
    assert 0 < len(result.rule) <= RULE_MAX_LENGTH
    assert result.rule.startswith("keyword:")


def test_a_threshold_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError):
        Classifier([], min_confidence=1.5)


async def test_the_loaded_classifier_returns_ids_of_the_active_catalog(city: str) -> None:
    classifier = await load_classifier()
    result = classifier.classify("幸福路口的污水井盖丢失了")
    cover = await Subclass.get(kind="component", code="0102", catalog__active=True)
    assert result is not None
    assert (result.subclass_id, result.kind, result.code) == (cover.id, "component", "0102")
