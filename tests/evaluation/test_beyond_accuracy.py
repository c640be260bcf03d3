"""Beyond-accuracy metrics: hand-computed values and every edge case by name."""

from __future__ import annotations

import math

import polars as pl
import pytest

from recs_assets.evaluation.beyond_accuracy import (
    beyond_accuracy,
    catalog_coverage,
    intra_list_diversity,
    novelty,
    popularity_bias,
)


def recs(rows: dict[str, list[str | None]]) -> pl.DataFrame:
    """{user: [item at rank 1, item at rank 2, ...]} -> user_id, item_id, rank."""
    out = [(u, item, r) for u, items in rows.items() for r, item in enumerate(items, start=1)]
    schema = {"user_id": pl.String, "item_id": pl.String, "rank": pl.Int64}
    return pl.DataFrame(out, schema=schema, orient="row")


EMPTY = recs({})


def popularity(counts: dict[str, int]) -> pl.DataFrame:
    return pl.DataFrame({"item_id": list(counts), "n_users": list(counts.values())})


def categories(cats: dict[str, str | None]) -> pl.DataFrame:
    schema = {"item_id": pl.String, "category": pl.String}
    return pl.DataFrame({"item_id": list(cats), "category": list(cats.values())}, schema=schema)


# --- coverage ------------------------------------------------------------------------------------


def test_coverage_counts_catalogue_items_shown_to_anyone():
    r = recs({"u1": ["a", "b"], "u2": ["b", "c"]})
    assert catalog_coverage(r, ["a", "b", "c", "d", "e"], k=2) == pytest.approx(3 / 5)


def test_coverage_only_counts_the_top_k():
    r = recs({"u1": ["a", "b", "c"]})
    assert catalog_coverage(r, ["a", "b", "c", "d"], k=1) == pytest.approx(1 / 4)


def test_coverage_ignores_items_outside_the_catalogue():
    r = recs({"u1": ["a", "gone"]})
    assert catalog_coverage(r, ["a", "b"], k=2) == pytest.approx(1 / 2)


def test_coverage_ignores_padding_and_repeats():
    r = recs({"u1": ["a", None, "a"]})
    assert catalog_coverage(r, pl.Series(["a", "b", "a", None]), k=3) == pytest.approx(1 / 2)


def test_coverage_of_empty_recommendations_is_zero():
    assert catalog_coverage(EMPTY, ["a", "b"], k=10) == 0.0


def test_coverage_of_empty_catalogue_is_nan():
    assert math.isnan(catalog_coverage(recs({"u1": ["a"]}), [], k=10))


# --- novelty -------------------------------------------------------------------------------------


def test_novelty_of_an_item_half_the_users_know_is_one_bit():
    assert novelty(recs({"u1": ["a"]}), popularity({"a": 5}), 10, k=10) == pytest.approx(1.0)


def test_novelty_averages_over_all_slots_not_users():
    # a: p = 1/2 -> 1 bit, b: p = 1/4 -> 2 bits, c: p = 1 -> 0 bits; slots: a, b (u1), c (u2).
    r = recs({"u1": ["a", "b"], "u2": ["c"]})
    pop = popularity({"a": 2, "b": 1, "c": 4})
    assert novelty(r, pop, 4, k=10) == pytest.approx((1 + 2 + 0) / 3)


def test_novelty_of_an_item_unseen_in_training_uses_one_over_n_plus_one():
    # n_users_total = 7 -> unseen p = 1/8 -> 3 bits (absent item and an n_users=0 item alike).
    pop = popularity({"zero": 0})
    assert novelty(recs({"u1": ["new"]}), pop, 7, k=10) == pytest.approx(3.0)
    assert novelty(recs({"u1": ["zero"]}), pop, 7, k=10) == pytest.approx(3.0)


def test_novelty_ignores_padding_and_repeats_and_ranks_beyond_k():
    r = recs({"u1": ["a", None, "a", "b"]})
    pop = popularity({"a": 1, "b": 2})  # a: 1 bit, b: 0 bits
    assert novelty(r, pop, 2, k=3) == pytest.approx(1.0)


def test_novelty_of_empty_recommendations_is_nan():
    assert math.isnan(novelty(EMPTY, popularity({"a": 1}), 2, k=10))


def test_novelty_rejects_popularity_above_the_user_total():
    with pytest.raises(ValueError, match="n_users_total"):
        novelty(recs({"u1": ["a"]}), popularity({"a": 3}), 2, k=10)


def test_novelty_rejects_non_positive_user_total():
    with pytest.raises(ValueError, match="n_users_total"):
        novelty(recs({"u1": ["a"]}), popularity({"a": 1}), 0, k=10)


# --- intra-list diversity ------------------------------------------------------------------------


def test_ild_of_two_same_one_different_is_two_thirds():
    cats = categories({"a": "x", "b": "x", "c": "y"})
    assert intra_list_diversity(recs({"u1": ["a", "b", "c"]}), cats, k=3) == pytest.approx(2 / 3)


def test_ild_is_one_when_all_categories_differ_and_zero_when_all_same():
    cats = categories({"a": "x", "b": "y", "c": "x"})
    assert intra_list_diversity(recs({"u1": ["a", "b"]}), cats, k=2) == pytest.approx(1.0)
    assert intra_list_diversity(recs({"u1": ["a", "c"]}), cats, k=2) == pytest.approx(0.0)


def test_ild_averages_over_users():
    cats = categories({"a": "x", "b": "y", "c": "x"})
    r = recs({"u1": ["a", "b"], "u2": ["a", "c"]})  # 1.0 and 0.0
    assert intra_list_diversity(r, cats, k=2) == pytest.approx(0.5)


def test_ild_skips_lists_shorter_than_two():
    cats = categories({"a": "x", "b": "y"})
    r = recs({"u1": ["a", "b"], "u2": ["a"], "u3": ["b", None]})
    assert intra_list_diversity(r, cats, k=2) == pytest.approx(1.0)


def test_ild_is_nan_when_every_list_is_shorter_than_two():
    assert math.isnan(intra_list_diversity(recs({"u1": ["a"]}), categories({"a": "x"}), k=10))


def test_ild_counts_uncategorised_items_as_their_own_category():
    # a, b share x; c absent from the table; d has a null category: 1 same pair of 6 -> 5/6.
    cats = categories({"a": "x", "b": "x", "d": None})
    assert intra_list_diversity(recs({"u1": ["a", "b", "c", "d"]}), cats, k=4) == pytest.approx(5 / 6)


def test_ild_counts_a_repeated_item_once():
    cats = categories({"a": "x", "b": "y"})
    assert intra_list_diversity(recs({"u1": ["a", "a", "b"]}), cats, k=3) == pytest.approx(1.0)


def test_ild_only_looks_at_the_top_k():
    cats = categories({"a": "x", "b": "x", "c": "y"})
    assert intra_list_diversity(recs({"u1": ["a", "b", "c"]}), cats, k=2) == pytest.approx(0.0)


def test_ild_of_empty_recommendations_is_nan():
    assert math.isnan(intra_list_diversity(EMPTY, categories({"a": "x"}), k=10))


def test_ild_rejects_an_item_with_two_categories():
    cats = pl.DataFrame({"item_id": ["a", "a"], "category": ["x", "y"]})
    with pytest.raises(ValueError, match="more than one category"):
        intra_list_diversity(recs({"u1": ["a", "b"]}), cats, k=2)


# --- popularity bias (ARP) -----------------------------------------------------------------------


def test_arp_is_the_mean_over_users_of_their_mean_item_popularity():
    pop = popularity({"a": 10, "b": 2, "c": 6})
    r = recs({"u1": ["a", "b", "c"], "u2": ["b"]})  # u1: 6, u2: 2 -> 4 (slot mean would be 4.5)
    assert popularity_bias(r, pop, k=10) == pytest.approx(4.0)


def test_arp_counts_items_unseen_in_training_as_zero_users():
    pop = popularity({"a": 4})
    assert popularity_bias(recs({"u1": ["a", "new"]}), pop, k=2) == pytest.approx(2.0)


def test_arp_ignores_padding_repeats_and_ranks_beyond_k():
    pop = popularity({"a": 4, "b": 0, "c": 100})
    assert popularity_bias(recs({"u1": ["a", None, "a", "b", "c"]}), pop, k=4) == pytest.approx(2.0)


def test_arp_of_empty_recommendations_is_nan():
    assert math.isnan(popularity_bias(EMPTY, popularity({"a": 1}), k=10))


# --- all together --------------------------------------------------------------------------------


def test_beyond_accuracy_reports_all_four_with_labels():
    r = recs({"u1": ["a", "b"], "u2": ["b", "c"]})
    pop = popularity({"a": 2, "b": 4, "c": 1})
    cats = categories({"a": "x", "b": "x", "c": "y"})
    out = beyond_accuracy(r, pop, 4, ["a", "b", "c", "d", "e"], cats, k=2)
    assert list(out) == ["coverage@2", "novelty@2", "ild@2", "arp@2"]
    assert out["coverage@2"] == pytest.approx(3 / 5)
    assert out["novelty@2"] == pytest.approx((1 + 0 + 0 + 2) / 4)  # a: 1 bit, b: 0, b: 0, c: 2 bits
    assert out["ild@2"] == pytest.approx(0.5)  # u1 same category, u2 different
    assert out["arp@2"] == pytest.approx((3 + 2.5) / 2)


def test_beyond_accuracy_on_empty_recommendations():
    out = beyond_accuracy(EMPTY, popularity({"a": 1}), 1, ["a"], categories({"a": "x"}), k=5)
    assert out["coverage@5"] == 0.0
    assert all(math.isnan(out[m]) for m in ("novelty@5", "ild@5", "arp@5"))


@pytest.mark.parametrize("k", [0, -1, 1.5, True])
def test_bad_k_is_rejected(k):
    with pytest.raises(ValueError, match="k must be"):
        catalog_coverage(recs({"u1": ["a"]}), ["a"], k=k)


def test_two_items_in_one_slot_is_an_error():
    r = pl.DataFrame({"user_id": ["u1", "u1"], "item_id": ["a", "b"], "rank": [1, 1]})
    with pytest.raises(ValueError, match="two rows"):
        popularity_bias(r, popularity({"a": 1}), k=2)
