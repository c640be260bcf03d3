"""Our ranking metrics against Evidently 0.7's recommender metrics on the same recommendations.

Definitions and which ones match are documented in recs_assets/evaluation/evidently_check.py. In short:
precision, recall, hit rate, MRR and NDCG (also with graded gains) must agree to 1e-6 on full top-k
lists; MAP agrees only while no user has more than k relevant items, because Evidently divides a
user's AP by the number of relevant items n and we divide by min(k, n).

Slow: importing Evidently alone takes seconds, and each Report run about a second.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import polars as pl
import pytest

from recs_assets.evaluation import average_precision_at_k, evaluate, label
from recs_assets.evaluation.evidently_check import evidently_frame, evidently_recsys_metrics

# find_spec, not importorskip: importing evidently costs seconds even when slow tests are deselected.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("evidently") is None, reason="evidently is not installed"),
]

K = 10
N_USERS = 50
N_ITEMS = 30
TOL = 1e-6
MATCHING = ("ndcg", "precision", "recall", "mrr", "hit_rate", "map")


def make_data(
    seed: int = 7,
    truth_sizes: tuple[int, int] = (1, 5),
    graded: bool = False,
    n_big_truth_users: int = 0,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Deterministic random top-K lists and truth sets.

    - users u00..u44 get a full top-10 list of distinct items (no padding, no rank gaps);
    - users u45..u49 get no recommendations at all but have truth (they must count as zeros);
    - users x0..x4 get recommendations but no truth (they must not count);
    - truth: 1-5 items per user, drawn so that about half of them overlap the user's list, which
      leaves a good share of users with no hit; optionally graded gains 1-3, and optionally the first
      `n_big_truth_users` users get 12-15 relevant items (> K).
    """
    rng = np.random.default_rng(seed)
    items = [f"i{j:02d}" for j in range(N_ITEMS)]
    rec_rows, truth_rows = [], []
    for u in range(N_USERS):
        user = f"u{u:02d}"
        ranked = list(rng.permutation(items)[:K]) if u < 45 else []
        for rank, item in enumerate(ranked, start=1):
            rec_rows.append((user, item, rank))
        if u < n_big_truth_users:
            n_truth = int(rng.integers(12, 16))
        else:
            n_truth = int(rng.integers(truth_sizes[0], truth_sizes[1] + 1))
        if rng.random() < 0.5 or not ranked:
            pool = [i for i in items if i not in ranked]  # a user with no hit
        else:
            pool = items
        chosen = rng.choice(pool, size=min(n_truth, len(pool)), replace=False)
        for item in chosen:
            gain = float(rng.integers(1, 4)) if graded else 1.0
            truth_rows.append((user, str(item), gain))
    for x in range(5):
        for rank, item in enumerate(rng.permutation(items)[:K], start=1):
            rec_rows.append((f"x{x}", str(item), rank))
    recs = pl.DataFrame(rec_rows, schema={"user_id": pl.String, "item_id": pl.String, "rank": pl.Int64}, orient="row")
    truth = pl.DataFrame(truth_rows, schema={"user_id": pl.String, "item_id": pl.String, "gain": pl.Float64}, orient="row")
    return recs, truth


def assert_agree(ours: dict[str, float], theirs: dict[str, float], names=MATCHING) -> None:
    for name in names:
        key = label(name, K)
        assert theirs[key] == pytest.approx(ours[key], abs=TOL), f"{key}: ours {ours[key]} vs evidently {theirs[key]}"


@pytest.fixture(scope="module")
def binary_case():
    recs, truth = make_data()
    return recs, truth, evaluate(recs, truth, K), evidently_recsys_metrics(recs, truth, K)


def test_the_dataset_exercises_the_edge_cases(binary_case):
    recs, truth, ours, _ = binary_case
    hits = recs.join(truth, on=["user_id", "item_id"]).get_column("user_id").unique()
    truth_users = truth.get_column("user_id").unique()
    assert ours["users_evaluated"] == N_USERS
    assert 10 <= truth_users.len() - hits.len() <= 40  # plenty of users with no hit, and of users with hits
    assert set(truth_users) - set(recs.get_column("user_id")) == {f"u{u}" for u in range(45, 50)}
    assert 0.0 < ours[label("precision", K)] < 1.0 and 0.0 < ours[label("ndcg", K)] < 1.0


def test_binary_relevance_all_metrics_agree(binary_case):
    _, _, ours, theirs = binary_case
    assert set(theirs) == {label(name, K) for name in MATCHING}
    # MAP matches here because every user has <= 5 <= K relevant items (see the MAP test below).
    assert_agree(ours, theirs)


def test_graded_gains_ndcg_agrees_and_the_rest_are_binarised():
    recs, truth = make_data(seed=11, graded=True)
    assert truth.get_column("gain").n_unique() == 3
    ours, theirs = evaluate(recs, truth, K), evidently_recsys_metrics(recs, truth, K)
    # NDCG: both use linear gain and log2 discount with IDCG from the k largest gains; the other
    # metrics treat every truth item (gain > 0) as relevant in both libraries.
    assert_agree(ours, theirs)


def test_map_divides_by_n_relevant_where_ours_divides_by_min_k_n():
    recs, truth = make_data(seed=3, n_big_truth_users=8)
    ours, theirs = evaluate(recs, truth, K), evidently_recsys_metrics(recs, truth, K)
    assert_agree(ours, theirs, names=("ndcg", "precision", "recall", "mrr", "hit_rate"))

    # Per user, evidently_ap = our_ap * min(K, n) / n, averaged over the same truth users.
    ranked = {u: [r["item_id"] for r in g.sort("rank").iter_rows(named=True)] for (u,), g in recs.group_by("user_id")}
    relevant = {u: set(g.get_column("item_id")) for (u,), g in truth.group_by("user_id")}
    expected = np.mean(
        [average_precision_at_k(ranked.get(u, []), rel, K) * min(K, len(rel)) / len(rel) for u, rel in relevant.items()]
    )
    assert theirs[label("map", K)] == pytest.approx(expected, abs=TOL)
    # and the difference is real on this data: users with > K relevant items and at least one hit
    assert theirs[label("map", K)] < ours[label("map", K)] - 1e-3


def test_the_comparison_can_fail(binary_case):
    """Evaluating a different ranking on our side breaks the agreement (the check is not vacuous)."""
    recs, truth, _, theirs = binary_case
    reversed_recs = recs.with_columns(rank=K + 1 - pl.col("rank"))
    ours_reversed = evaluate(reversed_recs, truth, K)
    for name in ("ndcg", "map", "mrr"):  # order-sensitive: reversing the list must change them
        key = label(name, K)
        assert abs(ours_reversed[key] - theirs[key]) > 1e-3, key
    # swapping one hit for a miss changes the set-based metrics too
    hit = recs.join(truth, on=["user_id", "item_id"]).row(0, named=True)
    spoiled = recs.with_columns(
        item_id=pl.when((pl.col("user_id") == hit["user_id"]) & (pl.col("item_id") == hit["item_id"]))
        .then(pl.lit("not-an-item"))
        .otherwise(pl.col("item_id"))
    )
    ours_spoiled = evaluate(spoiled, truth, K)
    for name in ("precision", "recall"):
        key = label(name, K)
        assert abs(ours_spoiled[key] - theirs[key]) > 1e-4, key


def test_evidently_frame_appends_missed_truth_beyond_k():
    recs = pl.DataFrame({"user_id": ["a", "a", "a"], "item_id": ["p", "q", "p"], "rank": [1, 2, 3]})
    truth = pl.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["q", "z", "y"]})
    frame = evidently_frame(recs, truth, 3)
    assert frame.rows() == [
        ("a", "p", 1, 0.0),
        ("a", "q", 2, 1.0),  # the repeat of p at rank 3 is dropped, as in evaluate
        ("a", "z", 4, 1.0),  # missed truth item, beyond k
        ("b", "y", 4, 1.0),  # truth user with no recommendations
    ]
    assert not math.isnan(frame.get_column("target").sum())
