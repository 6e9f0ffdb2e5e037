"""Each process's face index follows the register through the change log, whatever order writers commit in."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from core import clock
from core.enforcement.keys import keyring_from
from core.enforcement.models import FaceEncoding, FaceIndexChange, Party
from core.enforcement.register import FACE_LABEL, FaceRegister, pack
from core.settings import Settings

KEYRING = keyring_from(Settings(_env_file=None))


def face(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.09, 128).astype(np.float32)


async def add_face(party: Party, vector: np.ndarray, *, seq: int | None = None) -> FaceEncoding:
    row = await FaceEncoding.create(party_id=party.id, sealed=KEYRING.seal(pack(vector), label=FACE_LABEL))
    extra = {"seq": seq} if seq is not None else {}
    await FaceIndexChange.create(encoding_id=row.id, party_id=party.id, added=True, **extra)
    return row


async def test_a_change_that_commits_after_a_higher_numbered_one_is_still_found(db):
    party = await Party.create(retain_until=clock.now() + timedelta(days=365))
    register = FaceRegister(keyring=KEYRING, kind="exact")
    # Writer B took number 1000 and committed first; this process read it.
    b = await add_face(party, face(2), seq=1000)
    assert [hit[1] for hit in await register.search(face(2), k=1)] == [b.id]
    # Writer A, which took 999 before B, commits now; the next search comes two minutes later.
    a = await add_face(party, face(1), seq=999)
    clock.simulate(clock.now() + timedelta(minutes=2))
    try:
        hits = await register.search(face(1), k=1)
    finally:
        clock.simulate(None)
    assert hits[0][1] == a.id and hits[0][2] < 1e-3


async def test_a_removal_reaches_a_process_that_loaded_before_it(db):
    party = await Party.create(retain_until=clock.now() + timedelta(days=365))
    row = await add_face(party, face(3))
    register = FaceRegister(keyring=KEYRING, kind="exact")
    assert [hit[1] for hit in await register.search(face(3), k=1)] == [row.id]
    await FaceEncoding.filter(id=row.id).delete()
    await FaceIndexChange.create(encoding_id=row.id, party_id=party.id, added=False)
    assert await register.search(face(3), k=1) == []


async def test_a_process_behind_the_pruned_log_loads_the_register_anew(db):
    party = await Party.create(retain_until=clock.now() + timedelta(days=365))
    register = FaceRegister(keyring=KEYRING, kind="exact")
    assert await register.search(face(4), k=1) == []  # loaded at position 0
    rows = [await add_face(party, face(5 + i)) for i in range(3)]
    # A week passes without a search here, and the log is pruned down to its newest row.
    newest = await FaceIndexChange.all().order_by("-seq").first()
    await FaceIndexChange.filter(seq__lt=newest.seq).delete()
    found = {hit[1] for i in range(3) for hit in await register.search(face(5 + i), k=1)}
    assert found == {r.id for r in rows}
