"""This process's in-memory index of the register's face encodings: loaded at start, kept current from the log.

Every write that adds or removes an encoding (a decision, the retention job, an erase) appends a row to
`enf_face_index_change` in its own transaction. Before each search the process replays the rows it has not seen,
so every API process on every machine answers from the register as committed, with no message that can be lost.

PostgreSQL hands out sequence numbers at insert, not at commit: a transaction that commits late can leave a row
behind a higher number already read. So each catch-up also re-reads the rows written from `RECENT_S` seconds
before the previous read (a write transaction here lasts milliseconds; the machines' clocks must agree within
that margin). Replaying is idempotent: an add replaces, a removal of an absent key does nothing, and an add whose
encoding row is gone is skipped (the row is deleted with its removal, in one transaction). A process that fell so
far behind that the log was pruned past its position (a week without a search) loads the register anew.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

import numpy as np
from numpy.typing import NDArray
from tortoise.expressions import Q

from core import clock
from core.enforcement.index import FaceIndex, make_index
from core.enforcement.keys import Keyring
from core.enforcement.models import FaceEncoding, FaceIndexChange

log = logging.getLogger("tongguan.enforcement")
DIM = 128
FACE_LABEL = "face"
RECENT_S = 60
RETRY_LOAD_S = 30
LOAD_PAGE = 20_000


def pack(encoding: NDArray[np.float32]) -> bytes:
    vector = np.asarray(encoding, dtype="<f4")
    if vector.shape != (DIM,) or not np.isfinite(vector).all():
        raise ValueError(f"a face encoding has {DIM} finite numbers, not shape {vector.shape}")
    return vector.tobytes()


def unpack(raw: bytes) -> NDArray[np.float32]:
    return np.frombuffer(raw, dtype="<f4").astype(np.float32)


class FaceRegister:
    """The index of one process, with the party each encoding belongs to."""

    def __init__(self, *, keyring: Keyring, kind: str = "auto") -> None:
        self.keyring = keyring
        self.kind = kind
        self.index: FaceIndex | None = None
        self.party_of: dict[int, int] = {}
        self.seq = 0
        self.read_at = clock.now()
        self._lock = asyncio.Lock()
        self._failure: tuple[float, Exception] | None = None

    async def search(self, encoding: NDArray[np.float32], *, k: int) -> list[tuple[int, int, float]]:
        """(party, encoding, distance) of the `k` nearest encodings, nearest first, from the register as committed."""
        index = await self.current()
        matches = index.search(np.asarray(encoding, dtype=np.float32), k)
        return [(self.party_of[m.key], m.key, m.distance) for m in matches if m.key in self.party_of]

    async def current(self) -> FaceIndex:
        """The index, loaded on first use and brought up to date with the change log."""
        async with self._lock:
            if self.index is None:
                if self._failure is not None and time.monotonic() - self._failure[0] < RETRY_LOAD_S:
                    # A load that failed (a key missing, the database away) is not retried by every request in a
                    # queue behind the lock: the same error for a while, then one new attempt.
                    raise self._failure[1]
                try:
                    await self._load()
                except Exception as exc:
                    self._failure = (time.monotonic(), exc)
                    raise
                self._failure = None
            else:
                await self._catch_up()
            assert self.index is not None
            return self.index

    async def _load(self) -> None:
        started = time.perf_counter()
        # The log's position and the time first: whatever commits while the encodings are read is replayed after.
        read_at = clock.now()
        top = await _seq_at("-seq")
        count = await FaceEncoding.all().count()
        index = make_index(self.kind, size_hint=count)
        party_of: dict[int, int] = {}
        last = 0
        while True:
            rows = (
                await FaceEncoding.filter(id__gt=last)
                .order_by("id")
                .limit(LOAD_PAGE)
                .values_list("id", "party_id", "sealed")
            )
            if not rows:
                break
            last = rows[-1][0]
            keys, vectors = await asyncio.to_thread(self._open_rows, rows)
            # Off the event loop: training the IVF cells and filling them takes seconds, and the API serves meanwhile.
            await asyncio.to_thread(index.add, keys, vectors)
            party_of.update((row[0], row[1]) for row in rows)
        self.index, self.party_of = index, party_of
        self.seq, self.read_at = (top if top is not None else 0), read_at
        await self._catch_up()
        log.info(
            "face register loaded",
            extra={
                "fields": {
                    "encodings": len(index),
                    "index": index.name,
                    "ms": round(1000 * (time.perf_counter() - started)),
                }
            },
        )

    async def _catch_up(self) -> None:
        assert self.index is not None
        oldest = await _seq_at("seq")
        if oldest is not None and oldest > self.seq + 1:
            # Rows after our position were pruned before we saw them (or rolled back: a harmless reload).
            log.info("face register behind the pruned change log; reloading")
            await self._load()
            return
        read_at = clock.now()
        # Rows numbered below our position that committed after our last read are in this window.
        since = self.read_at - timedelta(seconds=RECENT_S)
        changes = (
            await FaceIndexChange.filter(Q(seq__gt=self.seq) | Q(at__gte=since))
            .order_by("seq")
            .values_list("seq", "encoding_id", "party_id", "added")
        )
        added = {enc for _, enc, _, is_add in changes if is_add}
        sealed = dict(await FaceEncoding.filter(id__in=added).values_list("id", "sealed")) if added else {}
        # Everything is opened before anything is applied: a value that does not open (a key dropped too early)
        # fails this catch-up whole, and the next one tries the same rows again.
        opened = {
            enc: self._open_rows([(enc, party, sealed[enc])])
            for _, enc, party, is_add in changes
            if is_add and enc in sealed
        }
        for seq, encoding_id, party_id, is_add in changes:
            if is_add and encoding_id in opened:
                # An add whose row is gone was removed since; its removal is in the log too.
                self.index.add(*opened[encoding_id])
                self.party_of[encoding_id] = party_id
            elif not is_add:
                self.index.remove([encoding_id])
                self.party_of.pop(encoding_id, None)
            self.seq = max(self.seq, seq)
        self.read_at = read_at

    def _open_rows(self, rows: list[tuple[int, int, str]]) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        keys = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        vectors = np.empty((len(rows), DIM), dtype=np.float32)
        for i, (_, _, sealed) in enumerate(rows):
            vectors[i] = unpack(self.keyring.open(sealed, label=FACE_LABEL))
        return keys, vectors


async def _seq_at(order: str) -> int | None:
    """The first or last position of the change log (order "seq" or "-seq"); None when it is empty."""
    row = await FaceIndexChange.all().order_by(order).only("seq").first()
    return row.seq if row else None
