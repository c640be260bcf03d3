"""The leaderboard order and the champion gate, on hand-made scores."""

import polars as pl
import pytest

from recs_assets.evaluation.leaderboard import decide_champion, leaderboard


def test_the_leaderboard_is_best_first_and_ties_keep_the_listed_order():
    metrics = pl.DataFrame({"model": ["popularity", "ease", "als"], "ndcg@10": [0.1, 0.3, 0.3]})
    board = leaderboard(metrics, "ndcg@10")
    assert board["model"].to_list() == ["ease", "als", "popularity"]
    assert board["position"].to_list() == [1, 2, 3]
    with pytest.raises(ValueError, match="primary metric 'map@5'"):
        leaderboard(metrics, "map@5")


def test_the_first_champion_is_the_best_model():
    decision = decide_champion({"popularity": 0.1, "als": 0.2}, None, margin=0.02)
    assert (decision.champion, decision.promoted) == ("als", True)
    assert "no champion yet" in decision.reason


def test_a_better_challenger_by_the_margin_is_promoted():
    decision = decide_champion({"als": 0.200, "ranker": 0.205}, "als", margin=0.02)
    assert (decision.champion, decision.promoted) == ("ranker", True)


def test_a_challenger_within_the_margin_is_refused_and_the_reason_says_what_was_needed():
    decision = decide_champion({"als": 0.200, "ranker": 0.203}, "als", margin=0.02)
    assert (decision.champion, decision.promoted) == ("als", False)
    assert "needs 0.2040" in decision.reason


def test_a_challenger_below_the_champion_leaves_it_serving_retrained():
    decision = decide_champion({"als": 0.2, "ranker": 0.1}, "als", margin=0.0)
    assert (decision.champion, decision.promoted) == ("als", False)
    assert decision.reason.startswith("als is still the best")


def test_a_champion_that_is_no_longer_evaluated_is_replaced():
    decision = decide_champion({"als": 0.2}, "sar", margin=0.5)
    assert (decision.champion, decision.promoted) == ("als", True)


def test_a_model_that_does_not_beat_the_baseline_can_never_be_promoted():
    decision = decide_champion({"popularity": 0.30, "als": 0.20}, None, margin=0.0)
    assert decision.champion == "popularity"
    decision = decide_champion({"popularity": 0.30, "als": 0.20, "ease": 0.31}, "popularity", margin=0.0)
    assert (decision.champion, decision.promoted) == ("ease", True)
