"""In-memory nearest-neighbour index of face encodings (lenient enforcement, 柔性执法).

An officer photographs a party; dlib / face_recognition turns the face into a 128-d float encoding, and two photos
of the same person are taken to be the same person when their encodings are less than 0.6 apart (euclidean). Each
process keeps the register's encodings in memory behind `FaceIndex` and asks it for the k nearest to a new encoding;
the caller decides what "a match" is from the distances (`Match.distance` is euclidean, not squared).

Two implementations, chosen by register size (`make_index(..., size_hint=N)` with "auto"). Figures are from the
2-core machine, one BLAS thread (as the API processes run), on synthetic encodings (bench/README.md, "face_index"):

* `ExactIndex` — a float32 matrix searched by brute force: ``|x|² - 2 x·q + |q|²`` for every row (one matrix-vector
  product through BLAS, norms precomputed), `np.argpartition` for the k best, then their distances computed again
  directly (``|x - q|``) so the figures returned carry no cancellation error. Exact by construction, 512 bytes per
  encoding plus 12 for the norm and key (and the key → row dict; ~640 MiB of RSS per million), no build, every add /
  remove O(1) (amortised; the capacity doubles). Its cost is one pass over the whole matrix per query, bound by
  memory bandwidth: p50 / p99 2.2 / 2.4 ms at 100,000 encodings, 4.9 / 5.7 ms at 200,000 and 43 / 46–50 ms at a
  million. Hence `AUTO_IVF_FROM` = 200,000, where the exact p99 passes 5 ms.
* `IvfIndex` — faiss's IndexIVFFlat: k-means cells (≈ √N of them, from `size_hint`), each query scans the `nprobe`
  (48) cells nearest to it. The vectors are stored whole, so whatever is found is at its exact distance and the
  only error is a miss: the top-1 is never closer than the exact nearest. p50 / p99 0.5–0.6 / 0.6–0.7 ms at 100,000
  (316 cells) and 3.4–3.5 / 3.8–4.3 ms at a million (1,000 cells); a single-threaded build of 1.3 s and 16–17 s
  (at a million ~8 s of it the `add` that reaches `train_at` and trains the cells); ~680–745 MiB of RSS per
  million.

Recall means the share of queries for which the approximate index returns the same nearest key as the exact search
(recall@1). On the bench's synthetic encodings (identities drawn independently in all 128 dimensions, a person's
photos ~0.4 apart, different people ~1.5), the queries that decide what an officer sees are those whose exact nearest
is a match (< 0.6). For them IVF's recall@1 is 1.000 at 100,000 (900 queries) and 0.9994 at a million (9,000
queries; nprobe 32: 0.996, 64: 0.9999, at 2.3 and 4.5 ms p50). Over all queries it is 0.94–0.96. The misses are the
strangers', whose nearest (~1.1 away) is surrounded by many nearly as far; for them both indexes answer "no match".
HNSW (usearch) was tried first: at a million it reached only recall@1 0.91–0.93 at ~5 ms, 0.976 at 19 ms
(expansion_search 2048), after a 7–12 minute build, hence IVF. Real encodings are likely easier than these synthetic
ones, but that is untested here.

Keys are the register's non-negative int64 ids. Concurrency: searches may run concurrently with one another; an add
or remove must not overlap anything else on the same index — its owner serialises writes (e.g. does everything on
the event loop's thread, or holds a lock). faiss runs on one OpenMP thread (`IvfIndex` sets that for the process).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

DIM = 128
AUTO_IVF_FROM = 200_000
"""`make_index("auto", size_hint=N)` builds an IvfIndex from this many encodings on, an ExactIndex below."""

IVF_NPROBE = 48  # cells scanned per query
IVF_MIN_CELLS = 64
IVF_MAX_CELLS = 4096  # cells ≈ √N: 1,000 for a million encodings
IVF_TRAIN_PER_CELL = 40  # k-means wants ~40 points a cell (faiss warns below 39)


@dataclass(frozen=True)
class Match:
    """One neighbour: the register key and its euclidean (not squared) distance to the query."""

    key: int
    distance: float


class FaceIndex(Protocol):
    """The register's encodings in memory: add / replace, remove, k nearest."""

    name: str

    def add(self, keys: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        """Store `vectors[i]` under `keys[i]`; a key already there (or repeated in `keys`: last wins) is replaced."""
        ...

    def remove(self, keys: Iterable[int]) -> int:
        """Forget these keys; returns how many of them were there (unknown keys are ignored)."""
        ...

    def search(self, vector: NDArray[np.float32], k: int) -> list[Match]:
        """The k nearest encodings (fewer when the index holds fewer), nearest first."""
        ...

    def __len__(self) -> int: ...

    def memory_bytes(self) -> int:
        """Approximate bytes the index holds (its vectors and structures, not Python's per-object overhead)."""
        ...


# --- validation -----------------------------------------------------------------------------------------------


def _check_dim(dim: int) -> int:
    if not isinstance(dim, int | np.integer) or isinstance(dim, bool) or dim < 1:
        raise ValueError(f"dim must be a positive integer, got {dim!r}")
    return int(dim)


def _as_batch(keys: Any, vectors: Any, dim: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Keys as int64 (n,) ≥ 0 and vectors as float32 C-contiguous (n, dim), finite; duplicate keys: the last wins."""
    k = np.asarray(keys)
    if k.ndim != 1:
        raise ValueError(f"keys must be a 1-d array of integers, got shape {k.shape}")
    if k.size and not np.issubdtype(k.dtype, np.integer):
        raise ValueError(f"keys must be integers, got dtype {k.dtype}")
    k = k.astype(np.int64, copy=False)
    v = np.asarray(vectors)
    if v.ndim != 2 or v.shape[1] != dim:
        raise ValueError(f"vectors must have shape (n, {dim}), got {v.shape}")
    if v.shape[0] != k.shape[0]:
        raise ValueError(f"{k.shape[0]} keys for {v.shape[0]} vectors")
    if v.size and not (np.issubdtype(v.dtype, np.floating) or np.issubdtype(v.dtype, np.integer)):
        raise ValueError(f"vectors must be numbers, got dtype {v.dtype}")
    with np.errstate(over="ignore"):  # beyond float32 becomes inf, refused just below
        v = np.ascontiguousarray(v, dtype=np.float32)
    if not np.isfinite(v).all():
        raise ValueError("vectors must be finite (a NaN or an infinity was given, or a value beyond float32)")
    if k.size and int(k.min()) < 0:
        raise ValueError("keys must be non-negative")
    if k.size > 1:
        # Keep the last occurrence of each key, in the original order.
        _, first_in_reversed = np.unique(k[::-1], return_index=True)
        if first_in_reversed.size != k.size:
            keep = np.sort(k.size - 1 - first_in_reversed)
            k, v = k[keep], v[keep]
    return k, v


def _as_query(vector: Any, k: int, dim: int) -> NDArray[np.float32]:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    q = np.asarray(vector)
    if q.ndim == 2 and q.shape[0] == 1:
        q = q[0]
    if q.shape != (dim,):
        raise ValueError(f"the query must have shape ({dim},), got {q.shape}")
    if q.size and not (np.issubdtype(q.dtype, np.floating) or np.issubdtype(q.dtype, np.integer)):
        raise ValueError(f"the query must be numbers, got dtype {q.dtype}")
    with np.errstate(over="ignore"):
        q = np.ascontiguousarray(q, dtype=np.float32)
    if not np.isfinite(q).all():
        raise ValueError("the query must be finite")
    return q


def _as_keys(keys: Iterable[int]) -> NDArray[np.int64]:
    k = np.unique(np.fromiter((int(x) for x in keys), dtype=np.int64))
    return k


# --- exact ----------------------------------------------------------------------------------------------------


class ExactIndex:
    """Brute-force float32 search over a matrix whose capacity doubles as it fills; exact by construction.

    Rows 0..len-1 are live. `_rows` maps a key to its row, `_keys` a row to its key; removing a key moves the last
    row into its place, so the live rows stay contiguous and a search reads one slice of the matrix.
    """

    name = "exact"

    def __init__(self, dim: int = DIM, *, capacity: int = 1024) -> None:
        self.dim = _check_dim(dim)
        capacity = max(1, int(capacity))
        self._vectors: NDArray[np.float32] = np.zeros((capacity, self.dim), dtype=np.float32)
        self._norms: NDArray[np.float32] = np.zeros(capacity, dtype=np.float32)
        self._keys: NDArray[np.int64] = np.zeros(capacity, dtype=np.int64)
        self._rows: dict[int, int] = {}
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def capacity(self) -> int:
        return int(self._vectors.shape[0])

    def _reserve(self, needed: int) -> None:
        capacity = self.capacity
        if needed <= capacity:
            return
        while capacity < needed:
            capacity *= 2
        n = self._size
        vectors = np.zeros((capacity, self.dim), dtype=np.float32)
        vectors[:n] = self._vectors[:n]
        norms = np.zeros(capacity, dtype=np.float32)
        norms[:n] = self._norms[:n]
        keys = np.zeros(capacity, dtype=np.int64)
        keys[:n] = self._keys[:n]
        self._vectors, self._norms, self._keys = vectors, norms, keys

    def add(self, keys: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        k, v = _as_batch(keys, vectors, self.dim)
        if not k.size:
            return
        rows = self._rows
        existing = np.fromiter((rows.get(int(x), -1) for x in k), dtype=np.int64, count=k.size)
        old = existing >= 0
        if old.any():
            at = existing[old]
            self._vectors[at] = v[old]
            self._norms[at] = np.einsum("ij,ij->i", v[old], v[old])
        new = ~old
        count = int(new.sum())
        if count:
            self._reserve(self._size + count)
            start, stop = self._size, self._size + count
            self._vectors[start:stop] = v[new]
            self._norms[start:stop] = np.einsum("ij,ij->i", v[new], v[new])
            self._keys[start:stop] = k[new]
            rows.update(zip(k[new].tolist(), range(start, stop), strict=True))
            self._size = stop

    def remove(self, keys: Iterable[int]) -> int:
        removed = 0
        for key in _as_keys(keys).tolist():
            row = self._rows.pop(key, None)
            if row is None:
                continue
            removed += 1
            last = self._size - 1
            if row != last:
                moved = int(self._keys[last])
                self._vectors[row] = self._vectors[last]
                self._norms[row] = self._norms[last]
                self._keys[row] = moved
                self._rows[moved] = row
            self._size = last
        return removed

    def search(self, vector: NDArray[np.float32], k: int) -> list[Match]:
        q = _as_query(vector, k, self.dim)
        n = self._size
        if n == 0:
            return []
        matrix, norms, keys = self._vectors[:n], self._norms[:n], self._keys[:n]
        # |x - q|² = |x|² - 2 x·q + |q|²; |q|² is the same for every row, so it does not change the ranking.
        scores = matrix @ q
        scores *= -2.0
        scores += norms
        if k < n:
            best = np.argpartition(scores, k - 1)[:k]
        else:
            best = np.arange(n)
        # The k winners' distances again, directly: no cancellation error for near-identical encodings.
        diff = matrix[best] - q
        d2 = np.einsum("ij,ij->i", diff, diff)
        order = np.lexsort((keys[best], d2))
        dist = np.sqrt(np.maximum(d2[order], 0.0))
        return [Match(int(key), float(d)) for key, d in zip(keys[best][order].tolist(), dist.tolist(), strict=True)]

    def memory_bytes(self) -> int:
        arrays = self._vectors.nbytes + self._norms.nbytes + self._keys.nbytes
        # The key → row dict: ~120 bytes an entry (its slots and two int objects), from the RSS the bench measured.
        return int(arrays + 120 * len(self._rows))


# --- IVF (faiss) ----------------------------------------------------------------------------------------------


class IvfIndex:
    """faiss's inverted-file index (IndexIVFFlat): k-means cells, each query scans the `nprobe` nearest cells.

    The vectors are kept whole (float32, no compression), so what is found is found at its exact distance; only
    encodings in cells the query does not visit can be missed. Training needs data, so the first `train_at` encodings
    go into an ExactIndex (searched exactly); once that many have arrived, the cells are trained on them and
    everything moves over. Cells trained on the first load are kept as the register grows; a process that restarts
    trains on the register as it is then. Removal goes through a hash map of keys, not a scan of the cells.
    """

    name = "ivf"

    def __init__(self, dim: int = DIM, *, size_hint: int = 0, nprobe: int = IVF_NPROBE) -> None:
        import faiss  # the vendor library stays inside its adapter

        self._faiss: Any = faiss
        # One thread: a search is one query, and OpenMP's idle threads would spin on the cores the API needs.
        faiss.omp_set_num_threads(1)
        self.dim = _check_dim(dim)
        self.nlist = int(min(IVF_MAX_CELLS, max(IVF_MIN_CELLS, round(math.sqrt(max(size_hint, 1))))))
        self._nprobe = int(nprobe)
        self.train_at = IVF_TRAIN_PER_CELL * self.nlist
        self._pending: ExactIndex | None = ExactIndex(self.dim)
        self._index: Any = None
        self._keys: set[int] = set()

    def __len__(self) -> int:
        return len(self._pending) if self._pending is not None else len(self._keys)

    @property
    def trained(self) -> bool:
        return self._index is not None

    @property
    def nprobe(self) -> int:
        """Cells scanned per query: more finds more of the true neighbours, in proportion more time."""
        return self._nprobe

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        self._nprobe = int(value)
        if self._index is not None:
            self._index.nprobe = self._nprobe

    def add(self, keys: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        k, v = _as_batch(keys, vectors, self.dim)
        if not k.size:
            return
        if self._pending is not None:
            self._pending.add(k, v)
            if len(self._pending) >= self.train_at:
                self._train()
            return
        replaced = [int(x) for x in k.tolist() if int(x) in self._keys]
        if replaced:
            self._index.remove_ids(np.asarray(replaced, dtype=np.int64))
        self._index.add_with_ids(v, k)
        self._keys.update(k.tolist())

    def _train(self) -> None:
        assert self._pending is not None
        n = len(self._pending)
        vectors = self._pending._vectors[:n]
        keys = self._pending._keys[:n]
        faiss = self._faiss
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(self.dim), self.dim, self.nlist)
        index.set_direct_map_type(faiss.DirectMap.Hashtable)
        sample = vectors
        if n > IVF_TRAIN_PER_CELL * 2 * self.nlist:
            picks = np.random.default_rng(0).choice(n, IVF_TRAIN_PER_CELL * 2 * self.nlist, replace=False)
            sample = vectors[np.sort(picks)]
        index.train(np.ascontiguousarray(sample))
        index.add_with_ids(np.ascontiguousarray(vectors), np.ascontiguousarray(keys))
        index.nprobe = self._nprobe
        self._index, self._keys, self._pending = index, set(keys.tolist()), None

    def remove(self, keys: Iterable[int]) -> int:
        if self._pending is not None:
            return self._pending.remove(keys)
        present = [x for x in _as_keys(keys).tolist() if x in self._keys]
        if present:
            self._index.remove_ids(np.asarray(present, dtype=np.int64))
            self._keys.difference_update(present)
        return len(present)

    def search(self, vector: NDArray[np.float32], k: int) -> list[Match]:
        q = _as_query(vector, k, self.dim)
        if self._pending is not None:
            return self._pending.search(q, k)
        if not self._keys:
            return []
        d2, found = self._index.search(q[None, :], min(int(k), len(self._keys)))
        pairs = [(float(d), int(key)) for d, key in zip(d2[0].tolist(), found[0].tolist(), strict=True) if key >= 0]
        pairs.sort(key=lambda p: (p[0], p[1]))
        return [Match(key, math.sqrt(max(d, 0.0))) for d, key in pairs]

    def memory_bytes(self) -> int:
        if self._pending is not None:
            return self._pending.memory_bytes()
        # Vectors and ids in the cells, the centroids, the key hash map (~40 bytes an entry) and our key set.
        return int(len(self._keys) * (4 * self.dim + 8 + 40 + 60) + self.nlist * 4 * self.dim)


# --- choice ---------------------------------------------------------------------------------------------------

INDEXES: dict[str, type[ExactIndex] | type[IvfIndex]] = {"exact": ExactIndex, "ivf": IvfIndex}


def make_index(kind: str, *, size_hint: int = 0, dim: int = DIM) -> FaceIndex:
    """ "exact", "ivf", or "auto": exact below `AUTO_IVF_FROM` encodings (size_hint), IVF from there on."""
    if kind == "auto":
        kind = "ivf" if size_hint >= AUTO_IVF_FROM else "exact"
    if kind == "exact":
        return ExactIndex(dim, capacity=max(1024, size_hint))
    if kind == "ivf":
        return IvfIndex(dim, size_hint=size_hint)
    known = ", ".join([*INDEXES, "auto"])
    raise ValueError(f"unknown face index {kind!r}; known: {known}")
