"""Offline against online order: Kendall's tau and the pairs that disagree, named."""

from __future__ import annotations

import pytest

from recs_assets.experiments.agreement import agreement_table, order_agreement


def test_same_order_is_tau_one_with_no_disagreeing_pair():
    tau, _, pairs = order_agreement({"a": 3, "b": 2, "c": 1}, {"a": 30, "b": 20, "c": 10})
    assert tau == pytest.approx(1.0) and pairs == []


def test_swapped_pair_is_named_offline_winner_first():
    tau, _, pairs = order_agreement({"a": 3, "b": 2, "c": 1}, {"a": 30, "b": 5, "c": 10})
    assert pairs == [("b", "c")]
    assert tau == pytest.approx(1 / 3)
    table = agreement_table({"a": 3, "b": 2, "c": 1}, {"a": 30, "b": 5, "c": 10})
    assert table["online_rank"].to_list() == [1, 3, 2]


def test_needs_two_models_scored_both_ways():
    with pytest.raises(ValueError, match="at least two models"):
        order_agreement({"a": 1}, {"a": 1, "b": 2})
