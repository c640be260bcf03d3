"""The re-ranker's validation: NDCG on held-out lists, early stopping, and the gate that keeps the best generator."""

import numpy as np
import polars as pl
import pytest

from recs_assets.models.ranker import LightGBMRanker, generator_names, list_ndcg


def test_list_ndcg_on_hand_made_lists():
    # List 1: the one positive in slot 2 -> 1/log2(3). List 2: no positive, skipped. List 3: both positives
    # first -> 1. Mean of the two lists that count.
    labels = np.array([0, 1, 0, 0, 0, 1, 1, 0])
    scores = np.array([3.0, 2.0, 1.0, 5.0, 4.0, 9.0, 8.0, 1.0])
    assert list_ndcg(labels, scores, np.array([3, 2, 3]), 10) == pytest.approx((1 / np.log2(3) + 1.0) / 2)
    # At k=1 the first list has no hit in its top slot: (0 + 1) / 2.
    assert list_ndcg(labels, scores, np.array([3, 2, 3]), 1) == pytest.approx(0.5)
    # Two positives, found in slots 1 and 3 of 3: (1 + 1/log2(4)) / (1 + 1/log2(3)).
    assert list_ndcg(np.array([1, 0, 1]), np.array([3.0, 2.0, 1.0]), np.array([3]), 10) == pytest.approx(
        (1 + 0.5) / (1 + 1 / np.log2(3))
    )
    assert np.isnan(list_ndcg(np.array([0, 0]), np.array([1.0, 2.0]), np.array([2]), 10))
    with pytest.raises(ValueError, match="disagree"):
        list_ndcg(np.array([0, 1]), np.array([1.0, 2.0]), np.array([3]), 10)


def test_generator_names_are_the_columns_with_both_a_score_and_a_rank():
    columns = ["ease_score", "ease_rank", "als_rank", "als_score", "item_popularity_rank", "n_generators", "user_n_events"]
    assert generator_names(columns) == ["ease", "als"]


def lessons(perfect_generator: bool, n_users: int = 300, n_items: int = 8, seed: int = 0) -> pl.DataFrame:
    """One positive per user. Either generator `g` ranks it first (perfect), or `g` is noise and `signal` finds it."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        positive = int(rng.integers(n_items))
        g_rank = rng.permutation(n_items) + 1
        if perfect_generator:
            g_rank[g_rank == 1] = g_rank[positive]
            g_rank[positive] = 1
        for i in range(n_items):
            rows.append({"user_id": f"u{u:03d}", "item_id": f"i{i}", "g_score": -float(g_rank[i]), "g_rank": int(g_rank[i]),
                         "signal": (2.0 if i == positive else 0.0) + rng.normal(scale=0.5), "label": int(i == positive)})
    return pl.DataFrame(rows)


def test_the_gate_keeps_the_generators_list_when_the_ranker_cannot_do_better(tmp_path):
    frame = lessons(perfect_generator=True)
    ranker = LightGBMRanker(n_estimators=30, min_child_samples=20).fit(frame)
    # The generator is perfect on the held-out lists: the ranker can at best tie it, and a tie keeps the generator.
    assert ranker.validation["best_generator"] == "g" and ranker.validation["best_generator_ndcg@10"] == 1.0
    assert ranker.fallback == "g"
    top = ranker.rank(frame.drop("label"), 3)
    expected = frame.filter(pl.col("g_rank") <= 3).select("user_id", "item_id", pl.col("g_rank").cast(pl.Int32).alias("rank"))
    assert top.select("user_id", "item_id", "rank").sort("user_id", "rank").equals(expected.sort("user_id", "rank"))
    ranker.save(tmp_path / "ranker.json")
    loaded = LightGBMRanker.load(tmp_path / "ranker.json")
    assert loaded.fallback == "g" and loaded.rank(frame.drop("label"), 3).equals(top)
    with pytest.raises(ValueError, match="g_rank"):
        loaded.rank(frame.drop("label", "g_rank"), 3)


def test_the_ranker_serves_its_own_order_when_it_beats_every_generator_on_held_out_lists():
    frame = lessons(perfect_generator=False)
    ranker = LightGBMRanker(n_estimators=30, min_child_samples=20).fit(frame)
    v = ranker.validation
    assert ranker.fallback is None and v["ranker_ndcg@10"] > v["best_generator_ndcg@10"]
    assert v["lists"] == 60 and v["trees"] == 30  # 20% of 300 users held out; no early stopping by default
    assert ranker.booster.num_trees() == 30
    # With early stopping, the held-out lists pick the number of trees, and the refit on every lesson uses it.
    stopped = LightGBMRanker(n_estimators=300, min_child_samples=20, early_stopping_rounds=5).fit(frame)
    assert 1 <= stopped.validation["trees"] < 300 and stopped.booster.num_trees() == stopped.validation["trees"]
    # Without a validation share there is no gate and no early stopping.
    plain = LightGBMRanker(n_estimators=10, min_child_samples=20, validation_fraction=0).fit(lessons(perfect_generator=True))
    assert plain.fallback is None and plain.validation == {} and plain.booster.num_trees() == 10
    # Without the gate, a ranker that only ties keeps its own order.
    ungated = LightGBMRanker(n_estimators=30, min_child_samples=20, gate=False).fit(lessons(perfect_generator=True))
    assert ungated.fallback is None and ungated.validation["best_generator"] == "g"


def test_a_bad_validation_share_is_refused():
    with pytest.raises(ValueError, match="validation_fraction"):
        LightGBMRanker(validation_fraction=1.5)
