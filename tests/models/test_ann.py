"""The nearest-neighbour index: exact search is exact, HNSW is exact where it must be, files round-trip."""

from __future__ import annotations

import numpy as np
import pytest

from recs_assets.models.ann import VectorIndex


def _brute_force(items: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(queries @ items.T), axis=1, kind="stable")[:, :k]


@pytest.fixture(scope="module")
def vectors() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(300, 16)).astype(np.float32), rng.normal(size=(20, 16)).astype(np.float32)


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_top_k_is_the_exact_top_k_on_a_small_set(kind, vectors):
    items, queries = vectors
    # 300 vectors with ef_search 300 >= the catalogue: the HNSW search visits everything it can reach, so it must be exact.
    index = VectorIndex(kind, hnsw_m=16, ef_construction=200, ef_search=300).build(items)
    rows, scores = index.search(queries, 10)
    assert np.array_equal(rows, _brute_force(items, queries, 10))
    assert np.allclose(scores, np.take_along_axis(queries @ items.T, rows, axis=1), atol=1e-4)


def test_known_neighbours_by_hand():
    items = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7], [-1.0, 0.0]], dtype=np.float32)
    ids, scores = VectorIndex("hnsw").build(items, ["east", "north", "northeast", "west"]).search_ids(np.array([[1.0, 0.1]]), 3)
    assert ids[0].tolist() == ["east", "northeast", "north"]


def test_asking_for_more_than_there_is_pads():
    rows, scores = VectorIndex().build(np.eye(3, dtype=np.float32)).search(np.eye(3, dtype=np.float32)[:1], 5)
    assert rows[0, 3:].tolist() == [-1, -1] and np.isinf(scores[0, 3:]).all()
    assert rows[0, 0] == 0


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_save_and_load_give_the_same_answers(kind, vectors, tmp_path):
    items, queries = vectors
    index = VectorIndex(kind).build(items, [f"i{n}" for n in range(len(items))])
    index.save(tmp_path / "items.faiss")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["items.faiss", "items.faiss.ids.npz"]
    loaded = VectorIndex.load(tmp_path / "items.faiss")
    assert loaded.kind == kind
    assert np.array_equal(loaded.search_ids(queries, 5)[0], index.search_ids(queries, 5)[0])


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="kind"):
        VectorIndex("annoy")
    with pytest.raises(ValueError, match="NaN"):
        VectorIndex().build(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="ids"):
        VectorIndex().build(np.eye(2), ["only one"])
    with pytest.raises(RuntimeError, match="build"):
        VectorIndex().search(np.eye(2), 1)
    with pytest.raises(ValueError, match="shape"):
        VectorIndex().build(np.eye(2)).search(np.eye(3), 1)
