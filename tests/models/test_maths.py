"""The maths of each model, against direct calculations on tiny data."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares

from recs_assets.models import ALSRecommender, BPRRecommender, EASERecommender, ItemKNNRecommender
from recs_assets.models.item_knn import cosine_neighbours
from recs_assets.models.cooccurrence import top_k_cooccurrence
from recs_assets.models.inputs import binarized, interaction_matrix
from tests.models.conftest import INTERACTIONS, ITEMS, random_interactions


def test_ease_matches_the_closed_form_computed_directly():
    rng = np.random.default_rng(0)
    n_users, n_items, l2 = 40, 12, 7.0
    dense = (rng.random((n_users, n_items)) < 0.3).astype(float)
    dense[0] = 1.0  # every item has at least one user
    dense[np.arange(n_users), rng.integers(0, n_items, n_users)] = 1.0  # every user has an item
    users, items = np.nonzero(dense)
    frame = pl.DataFrame(
        {"user_id": [f"u{u:02d}" for u in users], "item_id": [f"i{i:02d}" for i in items], "strength": rng.uniform(1, 5, len(users))}
    )
    model = EASERecommender(l2=l2).fit(frame)

    B = ease_closed_form(dense, l2)
    order = [int(i[1:]) for i in model.item_ids]  # model's internal item order
    assert model.weights == pytest.approx(B[np.ix_(order, order)].astype(np.float32), abs=1e-6)

    expected_scores = dense @ B  # binarised X, whatever the strengths
    ids, scores = model.recommend([f"u{u:02d}" for u in range(n_users)], n_items, exclude_seen=False)
    for u in range(n_users):
        got = dict(zip(ids[u], scores[u], strict=True))
        assert [got[f"i{i:02d}"] for i in range(n_items)] == pytest.approx(expected_scores[u], abs=1e-5)


def ease_closed_form(dense: np.ndarray, l2: float) -> np.ndarray:
    P = np.linalg.inv(dense.T @ dense + l2 * np.eye(dense.shape[1]))
    B = -P / np.diag(P)[None, :]
    np.fill_diagonal(B, 0.0)
    return B


def in_model_order(model, frame: pl.DataFrame) -> np.ndarray:
    """The binarised user x item matrix with rows and columns in the model's internal order."""
    users = {u: i for i, u in enumerate(model.user_ids)}
    items = {v: j for j, v in enumerate(model.item_ids)}
    dense = np.zeros((model.n_users, model.n_items))
    dense[[users[u] for u in frame["user_id"]], [items[i] for i in frame["item_id"]]] = 1.0
    return dense


def test_ease_on_a_small_catalogue_says_it_is_exact():
    model = EASERecommender(l2=10.0).fit(INTERACTIONS)
    assert model.fit_notes == {"ease_mode": "exact", "dense_items": len(ITEMS), "n_items": len(ITEMS)}
    assert model.sparse_weights is None


def test_ease_above_max_dense_items_is_exact_on_the_head_and_first_order_elsewhere():
    frame = random_interactions(60, 20, 0.25, seed=1)
    l2, head = 7.0, 8
    model = EASERecommender(l2=l2, max_dense_items=head).fit(frame)
    X = in_model_order(model, frame)
    counts = X.sum(axis=0)
    assert (np.diff(counts) <= 0).all()  # the head is the most popular items

    assert model.weights == pytest.approx(ease_closed_form(X[:, :head], l2).astype(np.float32), abs=1e-6)
    first_order = (X.T @ X) / (counts[:, None] + l2)
    np.fill_diagonal(first_order, 0.0)
    first_order[:head, :head] = 0.0  # covered exactly
    assert model.sparse_weights.toarray() == pytest.approx(first_order, abs=1e-6)

    expected = X @ first_order
    expected[:, :head] += X[:, :head] @ ease_closed_form(X[:, :head], l2)
    ids, scores = model.recommend(list(model.user_ids), 20, exclude_seen=False)
    for u in range(model.n_users):
        got = dict(zip(ids[u], scores[u], strict=True))
        assert [got[item] for item in model.item_ids] == pytest.approx(expected[u], abs=1e-4), u

    notes = model.fit_notes
    assert notes["ease_mode"] == "exact_head_sparse_tail" and notes["dense_items"] == head and notes["n_items"] == 20
    assert "max_dense_items=8" in notes["reason"]
    assert json.loads(json.dumps(notes)) == notes  # fit for run metadata


def test_ease_sparse_part_keeps_each_items_k_largest_weights():
    frame = random_interactions(80, 30, 0.3, seed=2)
    full = EASERecommender(l2=5.0, max_dense_items=5, sparse_neighbours=100).fit(frame).sparse_weights.toarray()
    kept = EASERecommender(l2=5.0, max_dense_items=5, sparse_neighbours=3).fit(frame).sparse_weights.toarray()
    for row_full, row_kept in zip(full, kept, strict=True):
        assert (row_kept > 0).sum() == min(3, (row_full > 0).sum())
        expected = np.lexsort((np.arange(len(row_full)), -row_full))[:3]
        expected = expected[row_full[expected] > 0]
        assert set(np.flatnonzero(row_kept)) == set(expected)
        assert row_kept[expected] == pytest.approx(row_full[expected])


KNN_DATA = pl.DataFrame(
    {
        "user_id": ["u1", "u1", "u2", "u2", "u2", "u3", "u4"],
        "item_id": ["a", "b", "a", "b", "c", "a", "d"],
        "strength": [5.0, 1.0, 1.0, 2.0, 9.0, 1.0, 1.0],
    }
)


@pytest.mark.parametrize("shrinkage", [0.0, 1.5])
def test_item_knn_cosine_by_hand(shrinkage):
    # users per item: a = 3, b = 2, c = 1, d = 1; shared: ab = 2, ac = 1, bc = 1; d shares nothing
    s = shrinkage
    sim_ab = 2 / (math.sqrt(3) * math.sqrt(2) + s)
    sim_ac = 1 / (math.sqrt(3) * 1 + s)
    sim_bc = 1 / (math.sqrt(2) * 1 + s)
    model = ItemKNNRecommender(k=10, shrinkage=shrinkage).fit(KNN_DATA)

    ids, scores = model.similar_items(["a", "b", "c", "d"], 3)
    got = [dict((i, v) for i, v in zip(r_ids, r_scores, strict=True) if i is not None) for r_ids, r_scores in zip(ids, scores, strict=True)]
    assert got[0] == pytest.approx({"b": sim_ab, "c": sim_ac})
    assert got[1] == pytest.approx({"a": sim_ab, "c": sim_bc})
    assert got[2] == pytest.approx({"b": sim_bc, "a": sim_ac})
    assert got[3] == {}  # nothing in common with anyone: no neighbours, padded

    # user score = sum of similarities to the user's items (binarised, strengths ignored)
    ids, scores = model.recommend(["u1", "u3"], 2)
    assert ids[0, 0] == "c" and scores[0, 0] == pytest.approx(sim_ac + sim_bc)
    assert dict(zip(ids[1], scores[1], strict=True)) == pytest.approx({"b": sim_ab, "c": sim_ac})


def test_item_knn_keeps_only_k_neighbours():
    model = ItemKNNRecommender(k=1, shrinkage=0.0).fit(KNN_DATA)
    ids, _ = model.similar_items(["a", "c"], 3)
    assert list(ids[0]) == ["b", None, None]
    assert list(ids[1]) == ["b", None, None]  # sim(b, c) = 1/sqrt2 > sim(a, c) = 1/sqrt3


def test_item_knn_zero_score_items_fill_the_list_most_popular_first():
    model = ItemKNNRecommender().fit(KNN_DATA)
    ids, scores = model.recommend(["u4"], 3)  # u4's only item shares no users with anything
    assert list(ids[0]) == ["a", "b", "c"] and list(scores[0]) == [0.0, 0.0, 0.0]


@pytest.mark.parametrize(("k", "shrinkage"), [(3, 0.0), (5, 2.0), (100, 10.0)])
def test_item_knn_sparse_neighbours_equal_a_dense_brute_force(k, shrinkage):
    frame = random_interactions(50, 25, 0.15, seed=k)
    model = ItemKNNRecommender(k=k, shrinkage=shrinkage).fit(frame)
    X = in_model_order(model, frame)
    norms = np.sqrt(X.sum(axis=0))
    sims = (X.T @ X) / (norms[:, None] * norms[None, :] + shrinkage)
    np.fill_diagonal(sims, 0.0)
    expected = np.zeros_like(sims)
    for i, row in enumerate(sims):
        best = np.lexsort((np.arange(len(row)), -row))[:k]  # ties: the smaller (more popular) index
        best = best[row[best] > 0]
        expected[i, best] = row[best]
    assert model.similarity.toarray() == pytest.approx(expected, abs=1e-12)


def test_cooccurrence_blocks_do_not_change_the_result():
    frame = random_interactions(40, 30, 0.2, seed=9)
    X = binarized(interaction_matrix(frame)[0])
    one_block = cosine_neighbours(X, 4, 1.0)
    weigh = lambda rows, cols, shared: shared / (1.0 + rows + cols)  # noqa: E731
    whole = top_k_cooccurrence(X.T.tocsr(), X, 4, weigh)
    for block_pairs in (1, 7, 50):
        assert (top_k_cooccurrence(X.T.tocsr(), X, 4, weigh, block_pairs=block_pairs) != whole).nnz == 0
    assert one_block.nnz > 0 and (one_block.getnnz(axis=1) <= 4).all()


def test_als_uses_one_plus_alpha_times_strength_as_confidence():
    model = ALSRecommender(factors=4, regularization=0.1, alpha=3.0, iterations=5, seed=1).fit(INTERACTIONS)
    user_pos = {u: i for i, u in enumerate(model.user_ids)}
    item_pos = {i: j for j, i in enumerate(model.item_ids)}
    confidence = sp.csr_matrix(
        (
            1 + 3.0 * INTERACTIONS["strength"].to_numpy(),
            ([user_pos[u] for u in INTERACTIONS["user_id"]], [item_pos[i] for i in INTERACTIONS["item_id"]]),
        ),
        shape=(model.n_users, model.n_items),
        dtype=np.float32,
    )
    direct = AlternatingLeastSquares(factors=4, regularization=0.1, alpha=1.0, iterations=5, random_state=1, num_threads=1)
    direct.fit(confidence, show_progress=False)
    assert model.user_factors == pytest.approx(direct.user_factors, abs=1e-5)
    assert model.training_loss is not None and model.training_loss > 0


def test_bpr_keeps_implicits_extra_bias_column_and_reports_accuracy():
    model = BPRRecommender(factors=5, learning_rate=0.05, iterations=50).fit(INTERACTIONS)
    assert model.item_factors.shape == (len(ITEMS), 6)
    assert model.training_loss is None
    assert 0.5 < model.training_accuracy <= 1.0
