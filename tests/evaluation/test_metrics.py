"""Ranking metrics: hand-computed values, every edge case by name, sklearn agreement, frame-level evaluate."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import ndcg_score

from recs_assets.evaluation import (
    METRICS,
    average_precision_at_k,
    evaluate,
    hit_rate_at_k,
    label,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    reciprocal_rank,
)
from recs_assets.evaluation.metrics import per_user_metrics

LOG2_3 = math.log2(3)


# --- hand-computed values ------------------------------------------------------------------------


def test_precision_counts_hits_in_the_first_k_slots():
    recs = ["a", "b", "c", "d"]
    assert precision_at_k(recs, {"b", "d", "x"}, 4) == pytest.approx(2 / 4)
    assert precision_at_k(recs, {"b", "d", "x"}, 2) == pytest.approx(1 / 2)


def test_recall_divides_by_the_size_of_the_truth_set():
    assert recall_at_k(["a", "b", "c", "d"], {"b", "d", "x"}, 4) == pytest.approx(2 / 3)
    assert recall_at_k(["a", "b", "c", "d"], {"b", "d", "x"}, 1) == 0.0


def test_hit_rate_is_one_when_anything_in_the_first_k_is_relevant():
    assert hit_rate_at_k(["a", "b", "c"], {"c"}, 3) == 1.0
    assert hit_rate_at_k(["a", "b", "c"], {"c"}, 2) == 0.0


def test_ndcg_binary_by_hand():
    # hit at position 2 of 3; ideal: two relevant items at positions 1 and 2
    expected = (1 / LOG2_3) / (1 + 1 / LOG2_3)
    assert ndcg_at_k(["a", "b", "c"], {"b", "z"}, 3) == pytest.approx(expected)


def test_ndcg_perfect_list_is_one():
    assert ndcg_at_k(["a", "b", "c"], {"a", "b"}, 3) == pytest.approx(1.0)


def test_ndcg_ideal_is_cut_at_k():
    # three relevant items but only one slot: a hit in that slot is already perfect
    assert ndcg_at_k(["a"], {"a", "b", "c"}, 1) == pytest.approx(1.0)


def test_ndcg_graded_gains_by_hand():
    gains = {"a": 1.0, "b": 3.0, "c": 2.0}
    dcg = 1.0 + 3.0 / LOG2_3
    idcg = 3.0 + 2.0 / LOG2_3
    assert ndcg_at_k(["a", "b"], {"a", "b", "c"}, 2, gains=gains) == pytest.approx(dcg / idcg)


def test_ndcg_gains_only_count_for_relevant_items_and_default_to_one():
    # "q" has a gain but is not relevant; "b" is relevant with no gain listed -> 1
    assert ndcg_at_k(["q", "b"], {"b"}, 2, gains={"q": 5.0}) == pytest.approx(1 / LOG2_3)


def test_ndcg_all_zero_gains_is_nan():
    assert math.isnan(ndcg_at_k(["a"], {"a"}, 1, gains={"a": 0.0}))


def test_ndcg_negative_gain_is_rejected():
    with pytest.raises(ValueError, match="gains"):
        ndcg_at_k(["a"], {"a"}, 1, gains={"a": -1.0})


def test_average_precision_by_hand():
    # hits at 2 and 4: (1/2 + 2/4) / min(4, 2)
    assert average_precision_at_k(["a", "b", "c", "d"], {"b", "d"}, 4) == pytest.approx(0.5)


def test_average_precision_divides_by_min_of_k_and_truth_size():
    # five relevant items, k = 2, one hit at the top: 1 / min(2, 5)
    assert average_precision_at_k(["b", "a"], {"b", "w", "x", "y", "z"}, 2) == pytest.approx(0.5)


def test_average_precision_perfect_list_is_one():
    assert average_precision_at_k(["a", "b", "x"], {"a", "b"}, 3) == pytest.approx(1.0)


def test_reciprocal_rank_by_hand_and_with_cut_off():
    assert reciprocal_rank(["a", "b", "c"], {"c"}) == pytest.approx(1 / 3)
    assert reciprocal_rank(["a", "b", "c"], {"c"}, k=2) == 0.0
    assert reciprocal_rank(["a", "b", "c"], {"b", "c"}, k=3) == pytest.approx(1 / 2)


def test_labels():
    assert label("ndcg", 10) == "ndcg@10"
    assert label("mrr") == "mrr"


# --- edge cases, one by one ------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(METRICS))
def test_empty_truth_set_is_nan_on_purpose(name):
    assert math.isnan(METRICS[name](["a", "b"], set(), 5))


@pytest.mark.parametrize("name", list(METRICS))
def test_empty_recommendation_list_scores_zero(name):
    assert METRICS[name]([], {"a"}, 5) == 0.0


@pytest.mark.parametrize("name", list(METRICS))
def test_all_padding_scores_zero(name):
    assert METRICS[name]([None, None, None], {"a"}, 3) == 0.0


def test_fewer_than_k_items_count_missing_slots_as_misses():
    assert precision_at_k(["a", "b"], {"b"}, 5) == pytest.approx(1 / 5)
    assert recall_at_k(["a", "b"], {"b"}, 5) == 1.0
    assert ndcg_at_k(["a", "b"], {"b"}, 5) == pytest.approx(1 / LOG2_3)
    assert average_precision_at_k(["a", "b"], {"b"}, 5) == pytest.approx(1 / 2)


def test_duplicates_count_once_and_still_take_a_slot():
    recs = ["b", "b", "c"]
    relevant = {"b", "c"}
    assert precision_at_k(recs, relevant, 2) == pytest.approx(1 / 2)
    assert recall_at_k(recs, relevant, 3) == pytest.approx(1.0)
    assert precision_at_k(recs, relevant, 3) == pytest.approx(2 / 3)
    assert ndcg_at_k(recs, relevant, 2) == pytest.approx(1 / (1 + 1 / LOG2_3))
    # hits at 1 and 3: (1/1 + 2/3) / 2
    assert average_precision_at_k(recs, relevant, 3) == pytest.approx((1 + 2 / 3) / 2)


def test_none_padding_takes_a_slot_but_never_hits():
    assert reciprocal_rank([None, "b"], {"b"}) == pytest.approx(1 / 2)
    assert precision_at_k([None, "b"], {"b"}, 2) == pytest.approx(1 / 2)
    assert ndcg_at_k([None, "b"], {"b"}, 2) == pytest.approx(1 / LOG2_3)


def test_truth_may_be_any_collection():
    assert recall_at_k(["a", "b"], ["b", "b", "c"], 2) == pytest.approx(1 / 2)
    assert ndcg_at_k(["a", "b"], ("b",), 2) == pytest.approx(1 / LOG2_3)


@pytest.mark.parametrize(
    ("name", "k"),
    # reciprocal_rank(k=None) is allowed: it means the whole list
    [(n, k) for n in METRICS for k in (0, -1, 1.5, True, None, "10") if not (n == "mrr" and k is None)],
)
def test_bad_k_is_a_value_error_naming_k(name, k):
    with pytest.raises(ValueError, match="k must be a positive integer"):
        METRICS[name](["a"], {"a"}, k)


# --- agreement with sklearn -------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [1, 3, 10])
def test_ndcg_matches_sklearn_binary_and_graded(seed, k):
    # Same definition when the list has no duplicates/padding and is at least k long: sklearn then
    # sees k distinct top scores, so its tie averaging never reaches the first k slots.
    rng = np.random.default_rng(seed)
    n_items = 40
    items = [f"i{j}" for j in range(n_items)]
    graded = rng.integers(0, 4, size=n_items).astype(float)
    graded[rng.integers(0, n_items)] = 2.0  # at least one relevant item
    recs_idx = rng.permutation(n_items)[:15]
    recs = [items[j] for j in recs_idx]
    y_score = np.zeros(n_items)
    y_score[recs_idx] = np.arange(len(recs_idx), 0, -1)
    relevant = {items[j] for j in np.flatnonzero(graded > 0)}
    binary = (graded > 0).astype(float)

    assert ndcg_at_k(recs, relevant, k) == pytest.approx(ndcg_score([binary], [y_score], k=k))
    gains = {items[j]: graded[j] for j in range(n_items) if graded[j] > 0}
    assert ndcg_at_k(recs, relevant, k, gains=gains) == pytest.approx(ndcg_score([graded], [y_score], k=k))


# --- evaluate: the frame-level aggregator -------------------------------------------------------------


def recs_frame(lists: dict[str, list[str | None]]) -> pl.DataFrame:
    rows = [(u, item, rank) for u, items in lists.items() for rank, item in enumerate(items, start=1)]
    return pl.DataFrame(rows, schema={"user_id": pl.String, "item_id": pl.String, "rank": pl.Int64}, orient="row")


def truth_frame(truth: dict[str, dict[str, float]]) -> pl.DataFrame:
    rows = [(u, item, g) for u, items in truth.items() for item, g in items.items()]
    return pl.DataFrame(rows, schema={"user_id": pl.String, "item_id": pl.String, "gain": pl.Float64}, orient="row")


def per_user_means(lists, truth, k) -> dict[str, float]:
    out = {}
    for name, fn in METRICS.items():
        values = []
        for user, items in truth.items():
            recs = lists.get(user, [])
            if name == "ndcg":
                values.append(fn(recs, set(items), k, gains=items))
            else:
                values.append(fn(recs, set(items), k))
        values = [v for v in values if not math.isnan(v)]
        out[label(name, k)] = float(np.mean(values)) if values else math.nan
    return out


def test_evaluate_by_hand():
    recs = recs_frame({"u": ["a", "b", "c"], "v": ["q"]})
    truth = truth_frame({"u": {"b": 1.0, "z": 1.0}, "w": {"x": 1.0}})
    result = evaluate(recs, truth, 3)
    ndcg_u = (1 / LOG2_3) / (1 + 1 / LOG2_3)
    assert result["users_evaluated"] == 2  # u and w; v has no truth
    assert result["ndcg@3"] == pytest.approx(ndcg_u / 2)  # w had no recommendations: 0
    assert result["precision@3"] == pytest.approx((1 / 3) / 2)
    assert result["recall@3"] == pytest.approx((1 / 2) / 2)
    assert result["map@3"] == pytest.approx(((1 / 2) / 2) / 2)
    assert result["mrr@3"] == pytest.approx((1 / 2) / 2)
    assert result["hit_rate@3"] == pytest.approx(1 / 2)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k", [1, 5, 10])
def test_evaluate_equals_the_mean_of_per_user_functions(seed, k):
    rng = np.random.default_rng(seed)
    items = [f"i{j}" for j in range(30)]
    lists, truth = {}, {}
    for u in range(60):
        user = f"u{u}"
        if rng.random() < 0.85:  # some truth users get no list at all
            n = int(rng.integers(0, 14))
            picks = [items[j] if rng.random() > 0.1 else None for j in rng.integers(0, 30, size=n)]
            lists[user] = picks  # duplicates and padding included on purpose
        if rng.random() < 0.8:  # some listed users have no truth
            chosen = rng.choice(30, size=int(rng.integers(1, 8)), replace=False)
            truth[user] = {items[j]: float(rng.integers(0, 3)) for j in chosen}
    result = evaluate(recs_frame(lists), truth_frame(truth), k)
    expected = per_user_means(lists, truth, k)
    assert result["users_evaluated"] == len(truth)
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, nan_ok=True), key


@pytest.mark.parametrize("seed", range(3))
def test_the_per_user_table_holds_each_users_own_values_and_evaluate_is_its_mean(seed):
    rng = np.random.default_rng(seed)
    items = [f"i{j}" for j in range(20)]
    lists = {f"u{u}": [items[j] for j in rng.integers(0, 20, size=int(rng.integers(0, 8)))] for u in range(40)}
    truth = {f"u{u}": {items[j]: float(rng.integers(0, 3)) for j in rng.choice(20, size=3, replace=False)} for u in range(45)}
    table = per_user_metrics(recs_frame(lists), truth_frame(truth), 5)
    assert table.columns == ["user_id", *(label(name, 5) for name in METRICS)]
    assert table["user_id"].to_list() == sorted(truth)
    for row in table.iter_rows(named=True):
        gains = truth[row["user_id"]]
        recs = lists.get(row["user_id"], [])
        for name, fn in METRICS.items():
            expected = fn(recs, set(gains), 5, gains=gains) if name == "ndcg" else fn(recs, set(gains), 5)
            got = row[label(name, 5)]
            assert (got is None and math.isnan(expected)) or got == pytest.approx(expected), (row["user_id"], name)
    result = evaluate(recs_frame(lists), truth_frame(truth), 5)
    for name in METRICS:
        assert result[label(name, 5)] == table[label(name, 5)].mean()  # exactly the same average


def test_evaluate_without_gain_column_is_binary():
    recs = recs_frame({"u": ["a", "b"]})
    truth = pl.DataFrame({"user_id": ["u"], "item_id": ["b"]})
    assert evaluate(recs, truth, 2)["ndcg@2"] == pytest.approx(1 / LOG2_3)


def test_evaluate_uses_rank_as_the_slot_and_ignores_ranks_beyond_k():
    # dropped padding leaves a gap: "b" sits in slot 3, not 2; "c" at rank 4 is beyond k = 3
    recs = pl.DataFrame({"user_id": ["u", "u", "u"], "item_id": ["a", "b", "c"], "rank": [1, 3, 4]})
    truth = pl.DataFrame({"user_id": ["u", "u"], "item_id": ["b", "c"]})
    result = evaluate(recs, truth, 3)
    assert result["mrr@3"] == pytest.approx(1 / 3)
    assert result["recall@3"] == pytest.approx(1 / 2)


def test_evaluate_row_order_does_not_matter():
    recs = recs_frame({"u": ["a", "b", "c"], "v": ["c", "a"]})
    truth = truth_frame({"u": {"c": 1.0}, "v": {"a": 2.0, "b": 1.0}})
    shuffled = recs.sample(fraction=1.0, shuffle=True, seed=3)
    assert evaluate(shuffled, truth, 3) == evaluate(recs, truth, 3)


def test_evaluate_empty_truth_gives_nan_and_zero_users():
    recs = recs_frame({"u": ["a"]})
    truth = pl.DataFrame(schema={"user_id": pl.String, "item_id": pl.String})
    result = evaluate(recs, truth, 5)
    assert result["users_evaluated"] == 0
    assert all(math.isnan(v) for key, v in result.items() if key != "users_evaluated")


def test_evaluate_all_zero_gain_user_is_skipped_for_ndcg_only():
    recs = recs_frame({"u": ["a"], "v": ["b"]})
    truth = truth_frame({"u": {"a": 0.0}, "v": {"b": 1.0}})
    result = evaluate(recs, truth, 1)
    assert result["ndcg@1"] == pytest.approx(1.0)  # u's NaN skipped
    assert result["hit_rate@1"] == pytest.approx(1.0)  # u's "a" still counts as relevant


def test_evaluate_two_items_in_one_slot_is_an_error():
    recs = pl.DataFrame({"user_id": ["u", "u"], "item_id": ["a", "b"], "rank": [1, 1]})
    with pytest.raises(ValueError, match="rank 1"):
        evaluate(recs, pl.DataFrame({"user_id": ["u"], "item_id": ["a"]}), 5)


def test_evaluate_missing_columns_are_named():
    with pytest.raises(ValueError, match="rank"):
        evaluate(pl.DataFrame({"user_id": ["u"], "item_id": ["a"]}), pl.DataFrame({"user_id": ["u"], "item_id": ["a"]}), 5)


def test_evaluate_bad_k():
    with pytest.raises(ValueError, match="k must be a positive integer"):
        evaluate(recs_frame({"u": ["a"]}), truth_frame({"u": {"a": 1.0}}), 0)
