"""The Microsoft Recommenders protocol: stratified split and metric averaging (recs_assets.evaluation.protocols)."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import polars as pl
import pytest

from recs_assets.evaluation.metrics import ndcg_at_k
from recs_assets.evaluation.protocols import exclude_seen, ms_recommenders_metrics, python_stratified_split
from tests.conftest import datasets_dir


def _ratings(items: dict[str, int]) -> pl.DataFrame:
    """One row per rating: item i rated by users u0, u1, ... (n ratings for an item with count n)."""
    rows = [(f"u{j}", item) for item, n in items.items() for j in range(n)]
    return pl.DataFrame(rows, schema={"user_id": pl.String, "item_id": pl.String}, orient="row")


def _train_counts(train: pl.DataFrame) -> dict[str, int]:
    return dict(train.group_by("item_id").len().iter_rows())


def _reference_split(df: pl.DataFrame, ratio: float, seed: int, group: str = "item_id") -> set[int]:
    """Row positions of train, computed the slow obvious way from the same draws."""
    draws = np.random.RandomState(seed).rand(df.height)
    rows_of: dict[str, list[int]] = defaultdict(list)
    for pos, key in enumerate(df.get_column(group).to_list()):
        rows_of[key].append(pos)
    train: set[int] = set()
    for rows in rows_of.values():
        ordered = sorted(rows, key=lambda pos: draws[pos])
        train.update(ordered[: round(ratio * len(rows))])
    return train


# --- tiny hand-made frames --------------------------------------------------------------------------


def test_rounding_is_half_to_even_per_item():
    df = _ratings({"one": 1, "two": 2, "three": 3, "four": 4, "six": 6, "ten": 10})
    train, test = python_stratified_split(df, ratio=0.75, seed=42)
    # round(0.75)=1, round(1.5)=2, round(2.25)=2, round(3.0)=3, round(4.5)=4 (half to even), round(7.5)=8
    assert _train_counts(train) == {"one": 1, "two": 2, "three": 2, "four": 3, "six": 4, "ten": 8}
    assert train.height + test.height == df.height
    assert train.join(test, on=["user_id", "item_id"], how="inner").height == 0


def test_min_rating_drops_small_items_from_both_parts():
    df = _ratings({"a": 1, "b": 2, "c": 3, "d": 5})
    train, test = python_stratified_split(df, min_rating=3, seed=1)
    kept = set(train.get_column("item_id")) | set(test.get_column("item_id"))
    assert kept == {"c", "d"}
    assert train.height + test.height == 8
    assert _train_counts(train) == {"c": 2, "d": 4}  # round(2.25)=2, round(3.75)=4


def test_draws_follow_legacy_numpy_stream_in_input_order():
    rng = np.random.default_rng(0)
    df = pl.DataFrame(
        {
            "user_id": [f"u{i}" for i in range(200)],
            "item_id": [f"i{j}" for j in rng.integers(0, 15, size=200)],
            "value": rng.integers(1, 6, size=200).astype(float),
        }
    )
    for seed in (42, 7):
        train, test = python_stratified_split(df, ratio=0.75, seed=seed)
        expected = _reference_split(df, 0.75, seed)
        positions = df.with_row_index("pos").join(train, on=["user_id", "item_id"], how="semi")
        assert set(positions.get_column("pos").to_list()) == expected
        # columns kept, input order kept
        assert train.columns == df.columns and test.columns == df.columns
        assert train.get_column("user_id").to_list() == sorted(train.get_column("user_id").to_list(), key=lambda u: int(u[1:]))
    # np.random.seed + np.random.rand (what MS Recommenders calls) is the same stream we draw
    np.random.seed(42)
    assert np.array_equal(np.random.rand(5), np.random.RandomState(42).rand(5))


def test_filter_by_user_stratifies_users():
    df = _ratings({f"i{j}": 1 for j in range(6)}).with_columns(pl.lit("solo").alias("user_id"))
    train, test = python_stratified_split(df, filter_by="user")
    assert (train.height, test.height) == (4, 2)  # round(4.5) = 4


@pytest.mark.parametrize(
    "kwargs",
    [{"filter_by": "session"}, {"min_rating": 0}, {"ratio": 1.0}, {"ratio": 0.0}, {"ratio": [0.7, 0.3]}],
)
def test_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        python_stratified_split(_ratings({"a": 3}), **kwargs)


def _recs(rows: list[tuple[str, str, int]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"user_id": pl.String, "item_id": pl.String, "rank": pl.Int32}, orient="row")


def test_user_without_predictions_counts_zero_in_ndcg_but_not_in_precision_recall():
    test = pl.DataFrame({"user_id": ["a", "a", "b", "b", "b"], "item_id": ["x", "y", "p", "q", "r"]})
    recs = _recs([("a", "z", 1), ("a", "x", 2)])  # user b gets no list at all
    got = ms_recommenders_metrics(recs, test, k=10)
    ndcg_a = ndcg_at_k(["z", "x"], {"x", "y"}, 10)
    assert got["ndcg@10"] == pytest.approx((ndcg_a + 0.0) / 2)
    assert ndcg_a == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    assert got["precision@10"] == pytest.approx(1 / 10)  # only user a: 1 hit in 10 slots
    assert got["recall@10"] == pytest.approx(1 / 2)
    assert got["test_users"] == 2 and got["users_with_recommendations"] == 1


def test_user_with_a_list_but_no_hit_counts_zero_everywhere():
    test = pl.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "p"]})
    recs = _recs([("a", "x", 1), ("b", "nope", 1), ("c", "x", 1)])  # c is not a test user: ignored
    got = ms_recommenders_metrics(recs, test, k=10)
    assert got["ndcg@10"] == pytest.approx(0.5)
    assert got["precision@10"] == pytest.approx(0.05)
    assert got["recall@10"] == pytest.approx(0.5)
    assert got["users_with_recommendations"] == 2


def test_only_top_k_counts_and_gain_is_binary():
    test = pl.DataFrame({"user_id": ["a"], "item_id": ["x"], "value": [1.0]})
    recs = _recs([(("a", f"f{i}", i)) for i in range(1, 11)] + [("a", "x", 11)])
    assert ms_recommenders_metrics(recs, test, k=10)["ndcg@10"] == 0.0
    recs = _recs([("a", "x", 3)])
    assert ms_recommenders_metrics(recs, test, k=10)["ndcg@10"] == pytest.approx(1 / math.log2(4))


def test_exclude_seen_drops_train_pairs_and_renumbers():
    recs = _recs([("a", "x", 1), ("a", "y", 2), ("a", "z", 3), ("b", "x", 1)])
    train = pl.DataFrame({"user_id": ["a"], "item_id": ["x"]})
    got = exclude_seen(recs, train).sort("user_id", "rank")
    assert got.rows() == [("a", "y", 1), ("a", "z", 2), ("b", "x", 1)]


# --- MovieLens 100k, u.data in file order ----------------------------------------------------------


@pytest.fixture(scope="module")
def ml100k() -> pl.DataFrame:
    folder = datasets_dir() / "ml-100k"
    if not (folder / "u.data").exists():
        pytest.skip(f"{folder}/u.data not found; set RECS_DATASETS_DIR to the folder holding ml-100k/")
    from recs_assets.sources.movielens import load_raw_events

    df = load_raw_events(folder)
    assert df.get_column("_line").is_sorted()
    return df.select("user_id", "item_id", "value", "_line")


def test_ml100k_split_sizes_match_ms_recommenders(ml100k):
    train, test = python_stratified_split(ml100k, ratio=0.75, filter_by="item", seed=42)
    assert (train.height, test.height) == (75_066, 24_934)


def test_ml100k_split_is_deterministic_and_matches_reference(ml100k):
    first = python_stratified_split(ml100k, seed=42)
    second = python_stratified_split(ml100k, seed=42)
    assert first[0].equals(second[0]) and first[1].equals(second[1])
    expected = _reference_split(ml100k, 0.75, 42)
    lines = ml100k.get_column("_line").to_list()
    assert set(first[0].get_column("_line").to_list()) == {lines[pos] for pos in expected}


def test_ml100k_every_item_keeps_round_three_quarters_in_train(ml100k):
    train, _ = python_stratified_split(ml100k, seed=42)
    totals = dict(ml100k.group_by("item_id").len().iter_rows())
    kept = _train_counts(train)
    assert {item: kept.get(item, 0) for item in totals} == {item: round(0.75 * n) for item, n in totals.items()}
    assert any((0.75 * n) % 1 == 0.5 for n in totals.values())  # half cases really occur


def test_ml100k_other_seed_gives_other_rows_same_sizes(ml100k):
    a, _ = python_stratified_split(ml100k, seed=42)
    b, _ = python_stratified_split(ml100k, seed=43)
    assert a.height == b.height
    assert set(a.get_column("_line").to_list()) != set(b.get_column("_line").to_list())
