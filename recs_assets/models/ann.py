"""Nearest-neighbour search over item vectors (faiss): exact inner product, or HNSW for big catalogues.

A retrieval model turns a user into a vector and wants the items whose vectors score highest against
it (inner product). Exact search reads every item for every query, which is fine for thousands of
items and too slow for millions; HNSW (a navigable small-world graph) answers in roughly logarithmic
time, missing a few of the true top items (benchmarks/retrieval.py measures how many).

`VectorIndex` holds the vectors with their ids, searches in batches, and saves to / loads from a
faiss index file plus an .npz of ids (no pickle).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Self

import numpy as np

from recs_assets.arguments import positive_int

KINDS = ("exact", "hnsw")


def _faiss():
    # Imported on first use: faiss takes a moment to load and most of the library never needs it.
    import faiss

    return faiss


class VectorIndex:
    """Inner-product top-k over item vectors: `kind` "exact" (IndexFlatIP) or "hnsw" (IndexHNSWFlat).

    `hnsw_m` is the graph degree, `ef_construction` / `ef_search` the candidate list sizes when
    building and searching (bigger: slower, closer to exact). `threads` caps faiss's OpenMP threads.
    """

    def __init__(self, kind: str = "exact", hnsw_m: int = 32, ef_construction: int = 80, ef_search: int = 128,
                 threads: int = 1) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
        self.kind = kind
        self.hnsw_m = positive_int(hnsw_m, "hnsw_m")
        self.ef_construction = positive_int(ef_construction, "ef_construction")
        self.ef_search = positive_int(ef_search, "ef_search")
        self.threads = positive_int(threads, "threads")
        self._index = None
        self._ids: np.ndarray | None = None

    @property
    def ids(self) -> np.ndarray | None:
        return self._ids

    def __len__(self) -> int:
        return 0 if self._ids is None else len(self._ids)

    @property
    def dim(self) -> int:
        return 0 if self._index is None else int(self._index.d)

    def build(self, vectors: np.ndarray, ids: np.ndarray | list[str] | None = None) -> Self:
        """Index these vectors (rows); `ids` name them (default: row numbers as str)."""
        faiss = _faiss()
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] == 0:
            raise ValueError(f"vectors must be a 2-d array with at least one column; got shape {vectors.shape}")
        if not np.isfinite(vectors).all():
            raise ValueError("vectors contain NaN or infinite values")
        ids = np.arange(len(vectors)).astype(str) if ids is None else np.asarray(ids, dtype=str)
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        faiss.omp_set_num_threads(self.threads)
        d = vectors.shape[1]
        if self.kind == "exact":
            index = faiss.IndexFlatIP(d)
        else:
            index = faiss.IndexHNSWFlat(d, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.ef_construction
        index.add(vectors)
        self._index, self._ids = index, ids
        return self

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(row numbers (queries, k), int64, -1 = none; scores, float32, -inf = none), best first."""
        if self._index is None:
            raise RuntimeError("the index is empty: call build(vectors) first")
        faiss = _faiss()
        k = positive_int(k, "k")
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise ValueError(f"queries must have shape (n, {self.dim}); got {queries.shape}")
        faiss.omp_set_num_threads(self.threads)
        if self.kind == "hnsw":
            self._index.hnsw.efSearch = max(self.ef_search, k)
        scores, rows = self._index.search(queries, min(k, len(self)))
        if rows.shape[1] < k:  # fewer vectors than k: pad
            pad = k - rows.shape[1]
            rows = np.hstack([rows, np.full((len(rows), pad), -1, dtype=rows.dtype)])
            scores = np.hstack([scores, np.full((len(scores), pad), -np.inf, dtype=scores.dtype)])
        scores = np.where(rows >= 0, scores, -np.inf).astype(np.float32)
        return rows.astype(np.int64), scores

    def search_ids(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """As `search`, with item ids (object array, None = none) instead of row numbers."""
        rows, scores = self.search(queries, k)
        assert self._ids is not None
        out = np.full(rows.shape, None, dtype=object)
        out[rows >= 0] = self._ids[rows[rows >= 0]]
        return out, scores

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write `<path>` (the faiss index) and `<path>.ids.npz` (ids and settings), each atomically."""
        if self._index is None:
            raise RuntimeError("the index is empty: call build(vectors) first")
        faiss = _faiss()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        settings = {k: getattr(self, k) for k in ("kind", "hnsw_m", "ef_construction", "ef_search", "threads")}

        def write_ids(handle) -> None:
            np.savez(handle, ids=self._ids, settings=np.array(json.dumps(settings)))

        def write_index(handle) -> None:
            handle.write(faiss.serialize_index(self._index).tobytes())

        # Each file is written next to its target and renamed, so a crash never leaves half an index.
        for target, write in ((path, write_index), (Path(f"{path}.ids.npz"), write_ids)):
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            try:
                with os.fdopen(fd, "wb") as handle:
                    write(handle)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Self:
        faiss = _faiss()
        with np.load(f"{path}.ids.npz", allow_pickle=False) as archive:
            ids, settings = archive["ids"], json.loads(str(archive["settings"]))
        index = cls(**settings)
        index._index = faiss.read_index(str(path))
        index._ids = ids
        if index._index.ntotal != len(ids):
            raise ValueError(f"{path}: the index holds {index._index.ntotal} vectors but {len(ids)} ids")
        return index

    # Serialised to / from bytes, so a model can keep its index inside its own .npz.
    def to_bytes(self) -> np.ndarray:
        if self._index is None:
            raise RuntimeError("the index is empty: call build(vectors) first")
        return _faiss().serialize_index(self._index)

    @classmethod
    def from_bytes(cls, data: np.ndarray, ids: np.ndarray, **settings) -> Self:
        index = cls(**settings)
        index._index = _faiss().deserialize_index(np.asarray(data, dtype=np.uint8))
        index._ids = np.asarray(ids, dtype=str)
        return index
