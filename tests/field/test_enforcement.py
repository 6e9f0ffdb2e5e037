"""Lenient enforcement (柔性执法) end to end: real face_recognition on face_recognition's own test photos.

Six photos of one person (obama*.jpg, 32bit.png) and one of another (biden.jpg): the same person is found again
from another photo, the other is not; decisions follow 轻微不罚 / 首违免罚 / the normal procedure and join the
party's history; bad photos, roles and purposes are refused with nothing stored.
"""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, timedelta
from pathlib import Path

import httpx
import pytest
from PIL import Image

from core import clock
from core.accounts.models import StaffAccount
from core.accounts.service import create_staff
from core.audit.models import AuditEntry
from core.enforcement import service
from core.enforcement.catalog import load_catalog
from core.enforcement.keys import keyring_from, new_key_line
from core.enforcement.models import Decision, FaceEncoding, FaceSearch, Party, Violation
from core.enforcement.register import FaceRegister
from core.media.models import Blob, Media
from core.regions.models import District
from core.seed import DEMO_PASSWORD
from core.settings import Settings
from field_app_api.enforcement import enforcement_of
from media.faces import read_face
from tests.asgi import serving
from tests.field.conftest import bearer
from tests.field.helpers import upload_photo
from tongguan.app import create_app

pytestmark = pytest.mark.slow

MINOR_FACTS = {"minor": True, "corrected": True, "harm": False}  # 轻微不罚 applies
FIRST_FACTS = {"minor": True, "corrected": True, "harm": True}  # harm, but minor and corrected: 首违免罚 only
CAPS = {kind.code: kind.caps for kind in load_catalog().types}


@pytest.fixture
async def officers(api) -> tuple[dict, dict]:
    """Bearer headers of the officers of two districts (two organs)."""
    codes = await District.all().order_by("code").limit(2).values_list("code", flat=True)
    return await bearer(api, f"officer-{codes[0]}"), await bearer(api, f"officer-{codes[1]}")


@pytest.fixture
def photo(test_images: Path):
    def read(name: str) -> bytes:
        return (test_images / name).read_bytes()

    return read


async def identify(api: httpx.AsyncClient, headers: dict, data: bytes, **form) -> httpx.Response:
    fields = {"purpose": "现场核实当事人身份", **{k: str(v) for k, v in form.items()}}
    return await api.post(
        "/field/v1/enforcement/identify", files={"photo": ("p.jpg", data, "image/jpeg")}, data=fields, headers=headers
    )


async def decide(api: httpx.AsyncClient, headers: dict, **body) -> httpx.Response:
    """A decision; facts without measures get the type's capped facts measured at half their caps."""
    body.setdefault("type", "SR01")
    facts = dict(body.get("facts", MINOR_FACTS))
    if "measures" not in facts and body["type"] in CAPS:
        facts["measures"] = {name: cap.max / 2 for name, cap in CAPS[body["type"]].items()}
    body["facts"] = facts
    return await api.post("/field/v1/enforcement/decisions", json=body, headers=headers)


async def register(api, headers, data: bytes, *, name: str = "张三", **body) -> dict:
    """Identify a photo of someone not in the register, and register them with a decision."""
    found = await identify(api, headers, data)
    assert found.status_code == 200, found.text
    assert found.json()["matched"] is False
    decided = await decide(api, headers, search=found.json()["search"], new_party={"name": name}, **body)
    assert decided.status_code == 201, decided.text
    return decided.json()


async def test_the_same_person_is_found_from_another_photo_and_a_stranger_is_not(api, officers, photo):
    officer, _ = officers
    first = await register(api, officer, photo("obama.jpg"), name="王某")
    assert first["party_created"] is True
    assert first["suggested"] == "minor" and first["outcome_name"] == "轻微不罚"

    for other in ("obama2.jpg", "obama3.jpg", "obama_partial_face2.jpg"):
        again = await identify(api, officer, photo(other))
        assert again.status_code == 200, again.text
        body = again.json()
        assert body["matched"] is True, other
        best = body["candidates"][0]
        assert best["party"]["id"] == first["party"]
        assert best["party"]["name"] == "王某"
        assert best["distance"] < 0.55 and 0.5 < best["confidence"] <= 1
        # The earlier decision is in the history the officer sees.
        assert [(h["type"], h["outcome"]) for h in best["party"]["history"]] == [("SR01", "minor")]

    stranger = await identify(api, officer, photo("biden.jpg"))
    assert stranger.status_code == 200
    assert stranger.json()["matched"] is False and stranger.json()["candidates"] == []


async def test_an_identify_never_answers_with_an_encoding_and_drops_the_photo(api, officers, photo):
    officer, _ = officers
    await register(api, officer, photo("obama.jpg"))
    response = await identify(api, officer, photo("obama3.jpg"))
    assert response.status_code == 200

    def numbers(node) -> list[list[float]]:
        if isinstance(node, dict):
            return [x for v in node.values() for x in numbers(v)]
        if isinstance(node, list):
            own = [node] if len(node) >= 64 and all(isinstance(v, float) for v in node) else []
            return own + [x for v in node for x in numbers(v)]
        return []

    assert numbers(response.json()) == []
    assert "encoding" not in response.text
    assert response.json()["photo"] is None
    # At rest the encoding is sealed: no row holds the floats in the clear.
    stored = await FaceEncoding.all().values_list("sealed", flat=True)
    assert stored and all(s.startswith("dev.") and len(s) > 600 for s in stored)


async def test_a_kept_photo_is_stored_as_evidence(api, officers, photo):
    officer, _ = officers
    response = await identify(api, officer, photo("obama.jpg"), keep="true")
    assert response.status_code == 200, response.text
    media_id = response.json()["photo"]
    assert media_id
    search = await FaceSearch.get(id=response.json()["search"])
    assert search.photo_id == media_id


async def test_first_offence_once_per_organ_then_the_normal_procedure(api, officers, photo):
    officer, other_organ = officers
    first = await register(api, officer, photo("obama.jpg"), facts=FIRST_FACTS)
    assert first["suggested"] == "first_offence" and first["earlier_violations"] == 0
    party = first["party"]

    again = await decide(api, officer, party=party, facts=FIRST_FACTS)
    assert again.status_code == 201, again.text
    assert again.json()["suggested"] == "normal" and again.json()["earlier_violations"] == 1
    assert "earlier_violation" in [g["code"] for g in again.json()["grounds"]]

    # Another type by the same organ, and the same type found by another organ, are first offences.
    other_type = await decide(api, officer, party=party, type="SR02", facts=FIRST_FACTS)
    assert other_type.json()["suggested"] == "first_offence"
    elsewhere = await decide(api, other_organ, party=party, facts=FIRST_FACTS)
    assert elsewhere.json()["suggested"] == "first_offence"


async def test_a_violation_older_than_the_window_does_not_count(api, officers, photo):
    officer, _ = officers
    first = await register(api, officer, photo("obama.jpg"), facts=FIRST_FACTS)
    await Violation.filter(party_id=first["party"]).update(found_at=clock.now() - timedelta(days=370))
    again = await decide(api, officer, party=first["party"], facts=FIRST_FACTS)
    assert again.json()["suggested"] == "first_offence"


async def test_facts_over_a_cap_or_with_harm_go_the_normal_way(api, officers, photo):
    officer, _ = officers
    party = (await register(api, officer, photo("obama.jpg")))["party"]
    big = await decide(api, officer, party=party, type="SR02", facts={**MINOR_FACTS, "measures": {"area_m2": 12}})
    assert big.json()["suggested"] == "normal"
    assert any("堆放面积超过清单上限" in g["text"] for g in big.json()["grounds"])
    late = await decide(api, officer, party=party, type="SR03", facts={**MINOR_FACTS, "corrected": False, "harm": True})
    assert late.json()["suggested"] == "normal"


async def test_an_override_needs_a_reason_and_is_stored(api, officers, photo):
    officer, _ = officers
    party = (await register(api, officer, photo("obama.jpg")))["party"]
    before = await Violation.all().count()
    refused = await decide(api, officer, party=party, type="SR03", outcome="normal")
    assert refused.status_code == 422
    assert refused.json()["code"] == "override_needs_reason"
    assert await Violation.all().count() == before

    done = await decide(api, officer, party=party, type="SR03", outcome="normal", reason="当事人拒不配合整改")
    assert done.status_code == 201
    assert done.json()["overridden"] is True and done.json()["suggested"] == "minor"
    decision = await Decision.get(id=done.json()["decision"])
    assert decision.outcome == "normal" and decision.override_reason == "当事人拒不配合整改"


async def test_an_identity_number_finds_the_party_registered_before(api, officers, photo):
    officer, _ = officers
    person = {"name": "李四", "id_type": "resident_id", "id_number": "210102199001011237"}
    first = await register(api, officer, photo("obama.jpg"), name="李四")
    second = await decide(api, officer, new_party=person)
    third = await decide(api, officer, new_party=person, type="SR02")
    assert second.json()["party_created"] is True and second.json()["party"] != first["party"]
    assert third.json()["party_created"] is False and third.json()["party"] == second.json()["party"]
    party = await Party.get(id=second.json()["party"])
    assert party.id_tail == "1237" and "210102" not in (party.id_sealed or "")


async def test_several_faces_the_largest_is_used_and_the_others_can_be_picked(api, officers, test_images):
    officer, _ = officers
    obama = Image.open(test_images / "obama.jpg").convert("RGB")
    biden = Image.open(test_images / "biden.jpg").convert("RGB")
    biden = biden.resize((biden.width // 2, biden.height // 2))  # smaller than obama's face
    canvas = Image.new("RGB", (obama.width + biden.width, max(obama.height, biden.height)), (200, 200, 200))
    canvas.paste(obama, (0, 0))
    canvas.paste(biden, (obama.width, 0))
    out = io.BytesIO()
    canvas.save(out, "JPEG", quality=92)
    group = out.getvalue()
    party = (await register(api, officer, (test_images / "biden.jpg").read_bytes(), name="赵某"))["party"]

    largest = await identify(api, officer, group)
    assert largest.status_code == 200, largest.text
    faces = largest.json()["faces"]
    assert len(faces) == 2 and largest.json()["chosen"] == 0
    assert faces[0]["right"] <= obama.width  # the largest face is obama's, on the left
    assert largest.json()["matched"] is False

    picked = await identify(api, officer, group, face=1)
    assert picked.json()["chosen"] == 1 and picked.json()["candidates"][0]["party"]["id"] == party

    missing = await identify(api, officer, group, face=5)
    assert missing.status_code == 422 and missing.json()["code"] == "no_such_face"


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (120, 130, 140)).save(out, "PNG")
    return out.getvalue()


def _tiny_face(test_images: Path) -> bytes:
    """obama.jpg shrunk into a wide street scene: HOG still finds the face, 44 px across at 1024 px a side."""
    obama = Image.open(test_images / "obama.jpg").convert("RGB")
    small = obama.resize((obama.width // 7, obama.height // 7))
    scene = Image.new("RGB", (1024, 768), (90, 100, 110))
    scene.paste(small, (400, 300))
    out = io.BytesIO()
    scene.save(out, "JPEG", quality=95)
    return out.getvalue()


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("no face", 422, "no_face"),
        ("tiny face", 422, "face_too_small"),
        ("not an image", 422, "unsupported_format"),
        ("huge image", 422, "too_many_pixels"),
        ("no purpose", 422, "purpose_required"),
        ("unknown case", 404, "case_not_found"),
        ("inspector", 403, "role_not_allowed"),
    ],
)
async def test_bad_identify_requests_are_refused_and_nothing_is_stored(api, officers, test_images, case, status, code):
    officer, _ = officers
    headers, form = officer, {}
    data = (test_images / "obama.jpg").read_bytes()
    if case == "no face":
        data = _png(800, 600)
    elif case == "tiny face":
        data = _tiny_face(test_images)
    elif case == "not an image":
        data = b"%PDF-1.7 this is not a photo" * 100
    elif case == "huge image":
        data = _png(9000, 5000)  # 45 MP: refused from the header
    elif case == "no purpose":
        form = {"purpose": "  "}
    elif case == "unknown case":
        form = {"case": "20990101999999"}
    elif case == "inspector":
        inspector = await StaffAccount.filter(username__startswith="inspector-").order_by("id").first()
        headers = await bearer(api, inspector.username)
    response = await identify(api, headers, data, **form)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code
    assert response.json()["title"]  # a Chinese sentence for the officer
    assert await FaceSearch.all().count() == 0
    assert await AuditEntry.filter(action="enforcement.face_search").count() == 0


async def test_another_officers_identify_result_cannot_be_used(api, officers, photo):
    mine, theirs = officers
    found = await identify(api, mine, photo("obama.jpg"))
    stolen = await decide(api, theirs, search=found.json()["search"], new_party={"name": "x"})
    assert stolen.status_code == 404 and stolen.json()["code"] == "search_not_found"
    assert await Party.all().count() == 0


async def test_an_expired_identify_result_cannot_register_a_party(api, officers, photo):
    officer, _ = officers
    found = await identify(api, officer, photo("obama.jpg"))
    await FaceSearch.filter(id=found.json()["search"]).update(held_until=clock.now() - timedelta(seconds=1))
    late = await decide(api, officer, search=found.json()["search"], new_party={"name": "x"})
    assert late.status_code == 409 and late.json()["code"] == "search_expired"
    assert await Party.all().count() == 0


async def test_decisions_refuse_bad_input_and_change_nothing(api, officers, photo):
    officer, _ = officers
    party = (await register(api, officer, photo("obama.jpg")))["party"]
    before = (await Violation.all().count(), await Decision.all().count())
    bad = [
        ({"party": party, "type": "XX99"}, 404, "unknown_violation_type"),
        ({"party": party, "outcome": "pardon", "reason": "x"}, 422, "bad_outcome"),
        ({"party": 999999}, 404, "party_not_found"),
        ({}, 422, "party_required"),
        ({"party": party, "lon": 116.39, "lat": 39.9}, 422, "outside_city"),
        ({"party": party, "photos": ["nosuchphoto"]}, 422, "unknown_photo"),
        ({"party": party, "found_at": (clock.now() + timedelta(hours=2)).isoformat()}, 422, "time_in_future"),
        ({"party": party, "facts": {**MINOR_FACTS, "measures": {"height_m": 1}}}, 422, "unknown_measure"),
        ({"party": party, "facts": {**MINOR_FACTS, "measures": {"area_m2": -1}}}, 422, "invalid_request"),
        ({"party": party, "type": "SR10", "outcome": "first_offence", "reason": "x"}, 422, "outcome_not_listed"),
        ({"new_party": {"id_type": "resident_id", "id_number": "210102199001011234"}}, 422, "bad_resident_id"),
    ]
    for body, status, code in bad:
        response = await decide(api, officer, **body)
        assert (response.status_code, response.json()["code"]) == (status, code), body
    assert (await Violation.all().count(), await Decision.all().count()) == before
    assert await Party.all().count() == 1


async def test_a_decision_keeps_its_evidence_and_place(api, officers, photo):
    officer, _ = officers
    party = (await register(api, officer, photo("obama.jpg")))["party"]
    evidence = await upload_photo(api, officer)
    letter = await upload_photo(api, officer)
    lon, lat = await _point_in_city()
    response = await decide(
        api,
        officer,
        party=party,
        photos=[evidence],
        commitment_photo=letter,
        lon=lon,
        lat=lat,
        address="中山路12号门前",
        education="已当面宣讲市容管理规定",
    )
    assert response.status_code == 201, response.text
    violation = await Violation.get(id=response.json()["violation"])
    assert violation.photos == [evidence] and violation.commitment_photo_id == letter
    assert violation.grid_code and violation.education == "已当面宣讲市容管理规定"
    assert violation.correction_deadline is not None


async def _point_in_city() -> tuple[float, float]:
    from core.regions.models import UnitGrid
    from tests.factories import interior_point

    grid = await UnitGrid.all().order_by("code").first()
    return await interior_point(grid.code)


async def test_views_of_a_party_need_a_purpose_and_are_audited(api, officers, photo):
    officer, _ = officers
    party = (await register(api, officer, photo("obama.jpg")))["party"]
    refused = await api.get(f"/field/v1/enforcement/parties/{party}", headers=officer)
    assert refused.status_code == 422 and refused.json()["code"] == "purpose_required"
    seen = await api.get(f"/field/v1/enforcement/parties/{party}", params={"purpose": "复核处理决定"}, headers=officer)
    assert seen.status_code == 200 and len(seen.json()["history"]) == 1
    reads = await AuditEntry.filter(action="enforcement.party.read", object_id=str(party))
    assert [r.purpose for r in reads] == ["复核处理决定"]
    searches = await AuditEntry.filter(action="enforcement.face_search")
    assert searches and all(s.purpose == "现场核实当事人身份" for s in searches)


async def test_another_process_sees_a_new_party_and_forgets_an_erased_one(api, officers, photo, test_images):
    """Another API process has an index of its own: what this one registers it finds at its next search, and an
    erase here reaches it too (through the change log, with no message between the processes)."""
    officer, _ = officers
    elsewhere = FaceRegister(keyring=api_state(api).register.keyring, kind="exact")
    encoding = read_face(photo("obama2.jpg"), engine=api_state(api).engine()).encoding
    assert await elsewhere.search(encoding, k=3) == []  # loaded, empty

    party = (await register(api, officer, photo("obama.jpg")))["party"]
    assert [hit[0] for hit in await elsewhere.search(encoding, k=3)] == [party]

    await create_staff(username="legal-admin", password=DEMO_PASSWORD, role="admin")
    admin = await bearer(api, "legal-admin")
    reason = {"reason": "当事人依法申请删除（2026）第1号"}
    erased = await api.post(f"/staff/v1/enforcement/parties/{party}/erase", json=reason, headers=admin)
    assert erased.status_code == 200, erased.text
    assert erased.json()["erased"]["encodings"] == 1
    assert await elsewhere.search(encoding, k=3) == []
    assert (await identify(api, officer, photo("obama2.jpg"))).json()["matched"] is False
    assert await Party.filter(id=party).count() == 0 and await Violation.filter(party_id=party).count() == 0
    assert await AuditEntry.filter(action="enforcement.party.erase", object_id=str(party)).count() == 1
    # Only administrators erase.
    again = await api.post(f"/staff/v1/enforcement/parties/{party}/erase", json=reason, headers=officer)
    assert again.status_code == 403


def api_state(api: httpx.AsyncClient):
    return enforcement_of(api._transport.app)


async def test_export_holds_the_identity_in_the_clear_but_no_encoding(api, officers, photo):
    officer, _ = officers
    person = {"name": "钱某", "id_type": "resident_id", "id_number": "210102198805056786", "phone": "13912345678"}
    found = await identify(api, officer, photo("obama.jpg"))
    party = (await decide(api, officer, search=found.json()["search"], new_party=person)).json()["party"]
    assert (await identify(api, officer, photo("obama2.jpg"))).json()["matched"] is True
    await create_staff(username="legal-admin", password=DEMO_PASSWORD, role="admin")
    admin = await bearer(api, "legal-admin")

    assert (await api.get(f"/staff/v1/enforcement/parties/{party}/export", headers=officer)).status_code == 403
    response = await api.get(
        f"/staff/v1/enforcement/parties/{party}/export", params={"purpose": "当事人查阅申请"}, headers=admin
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["party"]["id_number"] == "210102198805056786" and body["party"]["phone"] == "13912345678"
    assert body["face_encodings"]["count"] == 1  # counted, never exported
    assert [x["purpose"] for x in body["searches_that_found_the_party"]] == ["现场核实当事人身份"]
    assert len(body["violations"]) == 1 and body["violations"][0]["decision"]["outcome"] == "minor"
    assert "sealed" not in json.dumps(body) and "dev." not in json.dumps(body)
    # The officer's view masks the numbers.
    seen = await api.get(f"/field/v1/enforcement/parties/{party}", params={"purpose": "核对"}, headers=officer)
    assert seen.json()["id_number"] == "****6786" and seen.json()["phone"] == "****5678"


async def test_retention_deletes_parties_past_their_time_and_their_faces(api, officers, photo):
    officer, _ = officers
    old = (await register(api, officer, photo("obama.jpg"), name="旧")).get("party")
    kept = (await register(api, officer, photo("biden.jpg"), name="新")).get("party")
    await Party.filter(id=old).update(retain_until=clock.now() - timedelta(days=1))
    stale = await identify(api, officer, photo("biden.jpg"))  # shows the kept party; its hold expires
    await FaceSearch.filter(id=stale.json()["search"]).update(held_until=clock.now() - timedelta(minutes=1))

    first = await service.retention_job()
    assert first["parties"] == 1 and first["encodings"] == 1 and first["held_dropped"] >= 1
    again = await service.retention_job()
    assert again["parties"] == 0  # a second run finds nothing more to do
    assert await Party.filter(id=old).count() == 0 and await Party.filter(id=kept).count() == 1
    assert (await identify(api, officer, photo("obama3.jpg"))).json()["matched"] is False
    assert (await identify(api, officer, photo("biden.jpg"))).json()["candidates"][0]["party"]["id"] == kept
    assert await FaceSearch.filter(id=stale.json()["search"], held_sealed__not_isnull=True).count() == 0


async def test_a_decision_sets_retention_to_a_year_after_the_last_violation(api, officers, photo):
    officer, _ = officers
    party = (await register(api, officer, photo("obama.jpg")))["party"]
    row = await Party.get(id=party)
    assert timedelta(days=364) < row.retain_until - row.last_violation_at <= timedelta(days=366)


async def _officer(api: httpx.AsyncClient) -> dict:
    code = await District.all().order_by("code").first().values_list("code", flat=True)
    return await bearer(api, f"officer-{code}")


async def test_rotated_keys_reseal_everything_and_the_old_key_can_go(photo, city, tmp_path):
    k1, k2 = new_key_line("k1"), new_key_line("k2")

    def settings_with(keys: str) -> Settings:
        return Settings(database_url=city, var_dir=tmp_path, face_keys=keys, _env_file=None)

    first = create_app(settings_with(k1))
    async with serving(first) as api:
        officer = await _officer(api)
        person = {"name": "孙某", "id_type": "resident_id", "id_number": "210102197001012222"}
        found = await identify(api, officer, photo("obama.jpg"))
        party = (await decide(api, officer, search=found.json()["search"], new_party=person)).json()["party"]
        assert all(s.startswith("k1.") for s in await FaceEncoding.all().values_list("sealed", flat=True))

        rotated = keyring_from(settings_with(f"{k2},{k1}"))
        counts = await service.rekey_job(keyring=rotated)
        assert counts["encodings"] == 1 and counts["parties"] == 1
        assert all(s.startswith("k2.") for s in await FaceEncoding.all().values_list("sealed", flat=True))
        assert (await service.rekey_job(keyring=rotated))["encodings"] == 0  # nothing left under k1

    only_new = create_app(settings_with(k2))
    async with serving(only_new) as api:
        officer = await _officer(api)
        found = await identify(api, officer, photo("obama2.jpg"))
        assert found.json()["candidates"][0]["party"]["id"] == party
        await create_staff(username="rotation-admin", password=DEMO_PASSWORD, role="admin")
        export = await api.get(
            f"/staff/v1/enforcement/parties/{party}/export",
            params={"purpose": "核对"},
            headers=await bearer(api, "rotation-admin"),
        )
        assert export.json()["party"]["id_number"] == "210102197001012222"


async def test_a_value_sealed_with_a_dropped_key_is_a_clear_error_not_a_match(photo, city, tmp_path):
    first = create_app(Settings(database_url=city, var_dir=tmp_path, face_keys=new_key_line("k1"), _env_file=None))
    async with serving(first) as api:
        officer = await _officer(api)
        await register(api, officer, photo("obama.jpg"))
    second = create_app(Settings(database_url=city, var_dir=tmp_path, face_keys=new_key_line("k2"), _env_file=None))
    async with serving(second) as api:
        officer = await _officer(api)
        response = await identify(api, officer, photo("obama2.jpg"))
        assert response.status_code == 500 and response.json()["code"] == "face_key_missing"


async def test_an_identify_result_registers_one_party_only(api, officers, photo):
    officer, _ = officers
    found = await identify(api, officer, photo("obama.jpg"))
    first = await decide(api, officer, search=found.json()["search"], new_party={"name": "周某"})
    assert first.status_code == 201
    twice = await decide(api, officer, search=found.json()["search"], new_party={"name": "周某"})
    assert twice.status_code == 409 and twice.json()["code"] == "search_used"
    assert await Party.all().count() == 1
    # Naming the party it registered is the way to record a second violation with that photo.
    again = await decide(api, officer, search=found.json()["search"], party=first.json()["party"], type="SR02")
    assert again.status_code == 201 and await FaceEncoding.all().count() == 1


async def test_a_correction_is_recorded_on_time_or_late(api, officers, photo):
    officer, other_organ = officers
    decided = await register(api, officer, photo("obama.jpg"), facts={**MINOR_FACTS, "corrected": False})
    violation = decided["violation"]
    assert decided["suggested"] == "normal"
    url = f"/field/v1/enforcement/violations/{violation}/correction"
    assert (await api.post(url, json={}, headers=other_organ)).json()["code"] == "violation_not_found"
    after = await upload_photo(api, officer)
    done = await api.post(url, json={"photos": [after], "note": "已自行清理"}, headers=officer)
    assert done.status_code == 200, done.text
    assert done.json()["on_time"] is True
    row = await Violation.get(id=violation)
    assert row.corrected and after in row.photos and "已自行清理" in row.education
    assert (await api.post(url, json={}, headers=officer)).json()["code"] == "already_corrected"


async def test_a_time_with_another_zone_counts_in_the_first_offence_window(api, officers, photo):
    """SQLite compares stored times as text in China time: a time sent in UTC must be compared as the same moment."""
    officer, _ = officers
    half_an_hour_ago = (clock.now() - timedelta(minutes=30)).isoformat()
    party = (await register(api, officer, photo("obama.jpg"), facts=FIRST_FACTS, found_at=half_an_hour_ago))["party"]
    now_in_utc = clock.now().astimezone(UTC).isoformat()
    repeat = await decide(api, officer, party=party, facts=FIRST_FACTS, found_at=now_in_utc)
    assert repeat.status_code == 201, repeat.text
    assert repeat.json()["earlier_violations"] == 1 and repeat.json()["suggested"] == "normal"


async def test_a_face_joins_only_a_party_its_search_showed(api, officers, photo):
    officer, _ = officers
    person = {"name": "吴某", "id_type": "resident_id", "id_number": "210102199202023330"}
    known = await identify(api, officer, photo("obama.jpg"))
    party = (await decide(api, officer, search=known.json()["search"], new_party=person)).json()["party"]
    stranger = await identify(api, officer, photo("biden.jpg"))
    before = await FaceEncoding.all().count()
    named = await decide(api, officer, search=stranger.json()["search"], party=party)
    assert named.status_code == 409 and named.json()["code"] == "face_not_matched"
    # A mistyped identity number that belongs to someone else: the same refusal.
    typed = await decide(api, officer, search=stranger.json()["search"], new_party=person)
    assert typed.status_code == 409 and typed.json()["code"] == "face_not_matched"
    assert await FaceEncoding.all().count() == before
    # Without the face, the officer can still record the violation for the party the papers show.
    assert (await decide(api, officer, party=party)).status_code == 201


async def test_one_person_registered_twice_at_once_is_one_party(api, officers, photo):
    mine, theirs = officers
    first = await identify(api, mine, photo("obama.jpg"))
    second = await identify(api, theirs, photo("obama2.jpg"))
    assert not first.json()["matched"] and not second.json()["matched"]
    assert (await decide(api, mine, search=first.json()["search"], new_party={"name": "郑某"})).status_code == 201
    late = await decide(api, theirs, search=second.json()["search"], new_party={"name": "郑某"})
    assert late.status_code == 409 and late.json()["code"] == "party_matched"
    assert await Party.all().count() == 1


async def test_two_decisions_at_once_with_one_new_identity_number_make_one_party(api, officers):
    mine, theirs = officers
    person = {"name": "冯某", "id_type": "resident_id", "id_number": "210102198101014449"}
    answers = await asyncio.gather(decide(api, mine, new_party=person), decide(api, theirs, new_party=person))
    assert [a.status_code for a in answers] == [201, 201], [a.text for a in answers]
    assert len({a.json()["party"] for a in answers}) == 1
    assert sorted(a.json()["party_created"] for a in answers) == [False, True]


async def test_an_officer_opens_only_parties_of_their_searches_or_organ(api, officers, photo):
    officer, other_organ = officers
    party = (await register(api, officer, photo("obama.jpg")))["party"]
    params = {"purpose": "核对身份"}
    url = f"/field/v1/enforcement/parties/{party}"
    walked = await api.get(url, params=params, headers=other_organ)
    assert walked.status_code == 404 and walked.json()["code"] == "party_not_found"
    assert (await identify(api, other_organ, photo("obama3.jpg"))).json()["matched"] is True
    assert (await api.get(url, params=params, headers=other_organ)).status_code == 200


async def test_erasing_a_party_deletes_their_photos_too(api, officers, photo):
    officer, _ = officers
    found = await identify(api, officer, photo("obama.jpg"), keep="true")
    kept = found.json()["photo"]
    evidence = await upload_photo(api, officer)
    party = (
        await decide(api, officer, search=found.json()["search"], new_party={"name": "陈某"}, photos=[evidence])
    ).json()["party"]
    blobs = await Media.filter(id__in=[kept, evidence]).values_list("blob_id", flat=True)
    await create_staff(username="legal-admin", password=DEMO_PASSWORD, role="admin")
    admin = await bearer(api, "legal-admin")
    erased = await api.post(
        f"/staff/v1/enforcement/parties/{party}/erase", json={"reason": "依法删除申请"}, headers=admin
    )
    assert erased.json()["erased"]["photos"] == 2
    for _ in range(100):  # the embedded runner deletes the files with the `erase_media` job
        if not await Media.filter(id__in=[kept, evidence]).exists():
            break
        await asyncio.sleep(0.05)
    assert not await Media.filter(id__in=[kept, evidence]).exists()
    assert not await Blob.filter(sha256__in=list(blobs)).exists()
    media_root = api_state(api).settings.effective_media_root
    assert not [p for p in media_root.rglob("*") if p.is_file() and any(b in p.name for b in blobs)]
