"""The rules of lenient enforcement, the exemption list and the sealing of face data, without a database."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from core import clock
from core.enforcement import rules
from core.enforcement.catalog import load_catalog
from core.enforcement.keys import SealError, keyring_from, new_key_line
from core.enforcement.service import confidence, months_after, months_before, resident_id_valid
from core.errors import NotFoundError, ValidationFailed
from core.settings import Settings

CATALOG = load_catalog()
STALLS = CATALOG.type("SR01")  # both exemptions, cap 2 m²
MUCK = CATALOG.type("SR05")  # 首违免罚 only
ROADSIDE = CATALOG.type("SR10")  # 轻微不罚 only


def facts(**changes) -> rules.Facts:
    measured = {"area_m2": 1.0, "length_m": 1.0}  # within the caps of the types used here
    base = {"minor": True, "corrected": True, "corrected_promptly": True, "harm": False, "measures": measured}
    return rules.Facts(**{**base, **changes})


def test_minor_corrected_promptly_and_harmless_is_not_penalised():
    assert rules.suggest(STALLS, facts(), earlier=0).outcome == rules.MINOR
    # 轻微不罚 does not depend on history: it is the law's "shall not".
    assert rules.suggest(STALLS, facts(), earlier=3).outcome == rules.MINOR


def test_a_first_offence_with_minor_harm_is_spared_and_a_repeat_is_not():
    harmed = facts(harm=True)
    assert rules.suggest(STALLS, harmed, earlier=0).outcome == rules.FIRST_OFFENCE
    repeat = rules.suggest(STALLS, harmed, earlier=1)
    assert repeat.outcome == rules.NORMAL and "earlier_violation" in repeat.grounds


def test_uncorrected_or_serious_violations_take_the_normal_procedure():
    assert rules.suggest(STALLS, facts(corrected=False, corrected_promptly=False), earlier=0).outcome == rules.NORMAL
    assert rules.suggest(STALLS, facts(minor=False), earlier=0).outcome == rules.NORMAL
    # Both exemptions need the correction made promptly (及时改正).
    late = rules.suggest(STALLS, facts(corrected_promptly=False), earlier=0)
    assert late.outcome == rules.NORMAL and "not_prompt" in late.grounds


def test_a_measure_over_its_cap_is_not_minor_whatever_the_officer_ticked():
    over = rules.suggest(STALLS, facts(measures={"area_m2": 2.5}), earlier=0)
    assert over.outcome == rules.NORMAL and "cap_exceeded:area_m2" in over.grounds
    assert rules.suggest(STALLS, facts(measures={"area_m2": 2.0}), earlier=0).outcome == rules.MINOR
    unmeasured = rules.suggest(STALLS, facts(measures={}), earlier=0)
    assert unmeasured.outcome == rules.NORMAL and "cap_not_measured:area_m2" in unmeasured.grounds
    assert rules.suggest(CATALOG.type("SR04"), facts(measures={}), earlier=0).outcome == rules.MINOR  # no caps


@pytest.mark.parametrize("measures", [{"height_m": 1.0}, {"area_m2": -1.0}, {"area_m2": float("nan")}])
def test_measures_the_caps_do_not_know_or_that_are_no_amount_are_refused(measures):
    with pytest.raises(ValidationFailed) as refused:
        rules.check_measures(STALLS, facts(measures=measures))
    assert refused.value.code == "unknown_measure"


def test_an_exemption_may_be_decided_only_where_the_list_grants_it():
    assert rules.allowed(STALLS, rules.MINOR) and rules.allowed(STALLS, rules.FIRST_OFFENCE)
    assert not rules.allowed(MUCK, rules.MINOR) and not rules.allowed(ROADSIDE, rules.FIRST_OFFENCE)
    assert rules.allowed(ROADSIDE, rules.NORMAL)


def test_only_the_exemptions_the_list_allows_for_a_type_are_suggested():
    assert rules.suggest(MUCK, facts(), earlier=0).outcome == rules.FIRST_OFFENCE  # not on the 轻微不罚 list
    off_list = rules.suggest(ROADSIDE, facts(harm=True), earlier=0)
    assert off_list.outcome == rules.NORMAL and "first_offence_not_listed" in off_list.grounds


def test_an_unknown_type_is_refused_and_a_broken_list_stops_the_start(tmp_path):
    with pytest.raises(NotFoundError) as refused:
        CATALOG.type("NOPE")
    assert refused.value.code == "unknown_violation_type"
    broken = tmp_path / "list.json"
    broken.write_text(json.dumps({"version": "x", "types": [{"code": "A", "name": "a"}]}), encoding="utf-8")
    with pytest.raises(ValueError, match="cannot be used"):
        load_catalog(broken)


def test_twelve_months_are_calendar_months():
    at = datetime(2026, 3, 31, 10, 0, tzinfo=clock.CHINA)
    assert months_before(at, 12) == datetime(2025, 3, 31, 10, 0, tzinfo=clock.CHINA)
    assert months_before(at, 1) == datetime(2026, 2, 28, 10, 0, tzinfo=clock.CHINA)
    assert months_after(datetime(2024, 2, 29, tzinfo=clock.CHINA), 12) == datetime(2025, 2, 28, tzinfo=clock.CHINA)


def test_confidence_is_a_half_at_the_threshold_and_rises_as_faces_come_closer():
    assert confidence(0.55, 0.55)[0] == 0.5
    assert confidence(0.30, 0.55) == (pytest.approx(0.998, abs=0.002), "high")
    assert confidence(0.45, 0.55)[1] == "medium" and confidence(0.52, 0.55)[1] == "low"


def test_sealed_values_open_only_with_their_label_and_a_configured_key():
    ring = keyring_from(Settings(face_keys=new_key_line("k1"), _env_file=None))
    sealed = ring.seal(b"\x01\x02", label="face")
    assert sealed.startswith("k1.") and ring.open(sealed, label="face") == b"\x01\x02"
    assert ring.seal(b"\x01\x02", label="face") != sealed  # a fresh nonce every time
    with pytest.raises(SealError) as wrong_label:
        ring.open(sealed, label="id_number")
    assert wrong_label.value.code == "face_key_mismatch"
    other = keyring_from(Settings(face_keys=new_key_line("k2"), _env_file=None))
    with pytest.raises(SealError) as missing:
        other.open(sealed, label="face")
    assert missing.value.code == "face_key_missing"


def test_a_rotated_keyring_reads_old_values_and_seals_with_the_new_key():
    old = new_key_line("k1")
    sealed = keyring_from(Settings(face_keys=old, _env_file=None)).seal(b"x", label="face")
    rotated = keyring_from(Settings(face_keys=f"{new_key_line('k2')},{old}", _env_file=None))
    assert rotated.open(sealed, label="face") == b"x"
    assert rotated.seal(b"x", label="face").startswith("k2.")


@pytest.mark.parametrize(
    "keys", ["k1", "k1:short", "bad id:" + "A" * 44, new_key_line("k1") + "," + new_key_line("k1")]
)
def test_a_malformed_key_list_is_refused(keys):
    with pytest.raises(ValueError, match="TG_FACE_KEYS"):
        keyring_from(Settings(face_keys=keys, _env_file=None))


def test_production_needs_face_keys_of_its_own():
    strong = "s" * 40
    with pytest.raises(ValueError, match="TG_FACE_KEYS"):
        Settings(env="production", secret_key=strong, _env_file=None)
    Settings(env="production", secret_key=strong, face_keys=new_key_line("k1"), _env_file=None)


def test_resident_id_numbers_carry_a_check_digit():
    assert resident_id_valid("11010519491231002X")  # GB 11643's own example
    assert resident_id_valid("210102197001012222")
    assert not resident_id_valid("210102197001012223")  # one digit off
    assert not resident_id_valid("21010219700101222")  # 17 characters
    assert not resident_id_valid("21010219700101222A")
