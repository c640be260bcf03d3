"""The leaderboard order, its intervals and paired tests, the champion gate, and the baseline check."""

import numpy as np
import polars as pl
import pytest

from recs_assets.evaluation.leaderboard import (
    baseline_verdict,
    decide_champion,
    decide_champion_from_board,
    leaderboard,
    uncertainty_table,
)

SIGNIFICANT, NOISE = 0.001, 0.30


def test_the_leaderboard_is_best_first_and_ties_keep_the_listed_order():
    metrics = pl.DataFrame({"model": ["popularity", "ease", "als"], "ndcg@10": [0.1, 0.3, 0.3]})
    board = leaderboard(metrics, "ndcg@10")
    assert board["model"].to_list() == ["ease", "als", "popularity"]
    assert board["position"].to_list() == [1, 2, 3]
    with pytest.raises(ValueError, match="primary metric 'map@5'"):
        leaderboard(metrics, "map@5")


# --- the gate: no champion yet ----------------------------------------------------------------------


def test_the_first_champion_is_the_best_model_that_significantly_beats_popularity():
    decision = decide_champion(
        {"popularity": 0.1, "als": 0.2, "ease": 0.25}, None, margin=0.02,
        p_vs_baseline={"als": SIGNIFICANT, "ease": NOISE},
    )
    assert (decision.champion, decision.promoted) == ("als", True)  # ease scores more, but on noise
    assert "no champion yet" in decision.reason and "beating popularity significantly" in decision.reason


def test_with_no_model_beating_popularity_significantly_popularity_serves_and_says_why():
    decision = decide_champion({"popularity": 0.20, "als": 0.21}, None, margin=0.02, p_vs_baseline={"als": NOISE})
    assert (decision.champion, decision.promoted) == ("popularity", True)
    assert "no model beats popularity significantly (best: als 0.2100 vs popularity 0.2000, p=0.3)" in decision.reason


def test_all_zero_scores_never_crown_a_challenger():
    # What the issue saw: a 27-user test window, every model 0.0000.
    decision = decide_champion({"popularity": 0.0, "als": 0.0, "ranker": 0.0}, None, margin=0.02,
                               p_vs_baseline={"als": 1.0, "ranker": 1.0})
    assert decision.champion == "popularity" and "no model beats popularity" in decision.reason


# --- the gate: against a champion -------------------------------------------------------------------


def test_a_significant_gain_beyond_the_margin_is_promoted():
    decision = decide_champion(
        {"popularity": 0.1, "als": 0.200, "ranker": 0.210}, "als", margin=0.02,
        p_vs_baseline={"als": SIGNIFICANT, "ranker": SIGNIFICANT}, p_vs_current={"ranker": 0.01},
    )
    assert (decision.champion, decision.promoted) == ("ranker", True)
    assert "+5.0%" in decision.reason and "significantly (p=0.01)" in decision.reason


def test_an_insignificant_gain_beyond_the_margin_keeps_the_champion():
    decision = decide_champion(
        {"popularity": 0.1, "als": 0.200, "ranker": 0.210}, "als", margin=0.02,
        p_vs_baseline={"als": SIGNIFICANT, "ranker": SIGNIFICANT}, p_vs_current={"ranker": 0.06},
    )
    assert (decision.champion, decision.promoted) == ("als", False)
    assert "not significant (p=0.06, needs < 0.05): noise keeps the champion" in decision.reason


def test_a_missing_paired_test_counts_as_not_significant():
    decision = decide_champion({"popularity": 0.1, "als": 0.2, "ranker": 0.3}, "als", margin=0.02,
                               p_vs_baseline={"als": SIGNIFICANT, "ranker": SIGNIFICANT})
    assert (decision.champion, decision.promoted) == ("als", False)


def test_a_significant_gain_within_the_margin_keeps_the_champion():
    decision = decide_champion(
        {"popularity": 0.1, "als": 0.200, "ranker": 0.203}, "als", margin=0.02,
        p_vs_baseline={"als": SIGNIFICANT, "ranker": SIGNIFICANT}, p_vs_current={"ranker": SIGNIFICANT},
    )
    assert (decision.champion, decision.promoted) == ("als", False)
    assert "needs 0.2040" in decision.reason


@pytest.mark.parametrize("score", [0.0, 0.2])
def test_a_tie_keeps_the_champion_even_at_zero_margin_and_at_zero(score):
    decision = decide_champion(
        {"popularity": 0.0, "als": score, "ranker": score}, "als", margin=0.0,
        p_vs_baseline={"als": SIGNIFICANT, "ranker": SIGNIFICANT}, p_vs_current={"ranker": SIGNIFICANT},
    )
    assert (decision.champion, decision.promoted) == ("als", False)


def test_a_challenger_that_does_not_beat_popularity_significantly_cannot_take_over():
    decision = decide_champion(
        {"popularity": 0.30, "als": 0.20, "ease": 0.40}, "als", margin=0.0,
        p_vs_baseline={"ease": NOISE}, p_vs_current={"ease": SIGNIFICANT, "popularity": SIGNIFICANT},
    )
    # ease is out (noise against popularity); popularity itself is a fair challenger to als.
    assert (decision.champion, decision.promoted) == ("popularity", True)


def test_a_champion_that_is_no_longer_evaluated_is_replaced():
    decision = decide_champion({"popularity": 0.1, "als": 0.2}, "sar", margin=0.5, p_vs_baseline={"als": SIGNIFICANT})
    assert (decision.champion, decision.promoted) == ("als", True)
    assert "'sar' is no longer evaluated" in decision.reason


@pytest.mark.parametrize(("options", "message"), [({"margin": -0.1}, "margin"), ({"margin": 0.02, "alpha": 0.0}, "alpha")])
def test_bad_gate_settings_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        decide_champion({"als": 0.1}, None, **options)


# --- the baseline check -----------------------------------------------------------------------------


def test_the_baseline_check_fails_on_zero_against_zero():
    passed, description = baseline_verdict("popularity", 0.0, 0.0)
    assert not passed and "both are 0" in description
    passed, _ = baseline_verdict("als", 0.0, 0.0, p_value=SIGNIFICANT)
    assert not passed


def test_the_baseline_check_says_plainly_when_no_model_beats_popularity():
    passed, description = baseline_verdict("popularity", 0.2368, 0.2368)
    assert passed and description == "no model beats popularity: popularity serves (ndcg@10 0.2368)"


def test_the_baseline_check_passes_only_a_significant_gain():
    assert baseline_verdict("ranker", 0.2845, 0.2368, p_value=SIGNIFICANT) == (
        True, "ranker ndcg@10 0.2845 vs popularity 0.2368 (+20.1%, p=0.001): beats popularity significantly",
    )
    passed, description = baseline_verdict("ranker", 0.2400, 0.2368, p_value=NOISE)
    assert not passed and "not significant" in description
    passed, description = baseline_verdict("ranker", 0.2000, 0.2368, p_value=SIGNIFICANT)
    assert not passed and "does not beat popularity" in description
    assert not baseline_verdict("ranker", 0.3, 0.2)[0]  # no paired test given
    assert not baseline_verdict("ranker", float("nan"), 0.2)[0]
    assert not baseline_verdict("ranker", 0.3, None)[0]


# --- intervals and paired tests on per-user tables ---------------------------------------------------


def per_user_tables(n: int = 400) -> dict[str, pl.DataFrame]:
    rng = np.random.default_rng(0)
    ids = [f"u{i:04d}" for i in range(n)]
    pop = (rng.random(n) < 0.3) * rng.random(n)
    strong = np.clip(pop + (rng.random(n) < 0.3) * 0.4, 0, 1)  # clearly better than popularity
    # Popularity plus symmetric noise on the users it scored for: as good, give or take luck.
    twin = pop + ((pop > 0.05) & (pop < 0.95)) * rng.choice([-0.02, 0.02], size=n)

    def table(values: np.ndarray) -> pl.DataFrame:
        return pl.DataFrame({"user_id": ids, "ndcg@10": values, "hit_rate@10": (values > 0).astype(float)})

    return {"popularity": table(pop), "als": table(twin), "ranker": table(strong)}


def test_the_uncertainty_table_gives_intervals_users_and_p_values_per_model():
    tables = per_user_tables()
    out = uncertainty_table(tables, "ndcg@10", champion="als", seed=1)
    assert out.columns == [
        "model", "evaluable_users", "ndcg@10_ci_low", "ndcg@10_ci_high", "hit_rate@10_ci_low", "hit_rate@10_ci_high",
        "gain_vs_popularity", "p_vs_popularity", "compared_champion", "gain_vs_champion", "p_vs_champion",
    ]
    rows = {r["model"]: r for r in out.iter_rows(named=True)}
    assert {r["evaluable_users"] for r in rows.values()} == {400}
    for model, table in tables.items():
        mean = table["ndcg@10"].mean()
        assert rows[model]["ndcg@10_ci_low"] < mean < rows[model]["ndcg@10_ci_high"]
    assert rows["popularity"]["p_vs_popularity"] is None and rows["als"]["p_vs_champion"] is None
    assert rows["ranker"]["p_vs_popularity"] < 0.01 and rows["ranker"]["p_vs_champion"] < 0.01
    assert rows["als"]["p_vs_popularity"] > 0.05
    assert set(out["compared_champion"]) == {"als"}


def test_the_gate_on_a_board_promotes_the_significant_winner_and_refuses_a_stale_board():
    tables = per_user_tables()
    means = pl.DataFrame({"model": list(tables), "ndcg@10": [t["ndcg@10"].mean() for t in tables.values()]})
    board = leaderboard(means, "ndcg@10").join(uncertainty_table(tables, "ndcg@10", champion="als"), on="model")
    decision = decide_champion_from_board(board, "ndcg@10", "als", margin=0.02)
    assert (decision.champion, decision.promoted) == ("ranker", True)
    with pytest.raises(ValueError, match="run against champion \\['als'\\], not 'popularity'"):
        decide_champion_from_board(board, "ndcg@10", "popularity", margin=0.02)
    no_ranker = {k: v for k, v in tables.items() if k != "ranker"}
    means = means.filter(pl.col("model") != "ranker")
    board = leaderboard(means, "ndcg@10").join(uncertainty_table(no_ranker, "ndcg@10"), on="model")
    decision = decide_champion_from_board(board, "ndcg@10", None, margin=0.02)
    assert decision.champion == "popularity"  # als is popularity plus noise


def test_more_like_this_comes_from_the_best_model_with_an_item_to_item_view():
    from recs_assets.evaluation.leaderboard import similarity_source

    assert similarity_source(["ranker", "popularity", "two_tower", "ease"]) == "two_tower"
    assert similarity_source(["ranker", "popularity"]) == "popularity"
    assert similarity_source([]) == "popularity"


def test_only_what_serves_is_refitted():
    from recs_assets.evaluation.leaderboard import served_generators

    generators = ["popularity", "ease", "two_tower", "gru4rec", "session_knn"]
    # A single-model champion: itself, the "more like this" model and the live-visit model, in registry order.
    assert served_generators("two_tower", generators, ["two_tower", "ranker", "ease"], "gru4rec") == ["two_tower", "gru4rec"]
    assert served_generators("popularity", generators, ["ease", "popularity"], "session_knn") == ["popularity", "ease", "session_knn"]
    # The ranker takes every generator as input.
    assert served_generators("ranker", generators, ["ranker", "ease"], "gru4rec") == generators
    with pytest.raises(ValueError, match=r"served model\(s\) \['lasso'\] are not generators"):
        served_generators("lasso", generators, [], None)
