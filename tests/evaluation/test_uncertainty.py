"""Bootstrap intervals and paired tests: coverage and error rates on seeded synthetic users, edge cases by name."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from recs_assets.evaluation.uncertainty import bootstrap_ci, bootstrap_table, paired_test, paired_test_tables

# Per-user "metric" like NDCG: 70% of users score 0, the rest uniformly in (0, 1). True mean 0.15.
P_HIT, TRUE_MEAN = 0.3, 0.15


def users(rng: np.random.Generator, n: int) -> np.ndarray:
    return (rng.random(n) < P_HIT) * rng.random(n)


def test_the_95_percent_interval_covers_the_true_mean_at_about_the_nominal_rate():
    rng = np.random.default_rng(2024)
    trials, n = 400, 200
    covered = 0
    for trial in range(trials):
        ci = bootstrap_ci(users(rng, n), n_resamples=500, seed=trial)
        covered += ci.low <= TRUE_MEAN <= ci.high
    # Binomial(400, 0.95) lies in [0.925, 0.975] with probability > 99.5%; a 90% or 99% interval would not.
    assert 0.925 <= covered / trials <= 0.975


def test_the_interval_is_about_the_normal_width_and_centred_on_the_mean():
    x = users(np.random.default_rng(1), 2000)
    ci = bootstrap_ci(x, seed=0)
    half = 1.96 * x.std(ddof=1) / math.sqrt(x.size)
    assert ci.mean == pytest.approx(x.mean())
    assert ci.high - ci.low == pytest.approx(2 * half, rel=0.1)
    assert ci.low < ci.mean < ci.high and ci.n_users == 2000


def test_the_interval_is_seeded_and_skips_missing_values():
    x = [0.0, 1.0, 0.5, float("nan"), 0.25]
    assert bootstrap_ci(x, seed=5) == bootstrap_ci(x, seed=5)
    assert bootstrap_ci(x, seed=5) != bootstrap_ci(x, seed=6)
    assert bootstrap_ci(pl.Series([0.0, 1.0, None]), seed=0).n_users == 2
    assert bootstrap_ci(x, seed=0).mean == pytest.approx(0.4375)


def test_degenerate_and_empty_inputs():
    zeros = bootstrap_ci([0.0] * 50)
    assert (zeros.mean, zeros.low, zeros.high) == (0.0, 0.0, 0.0)
    empty = bootstrap_ci([])
    assert empty.n_users == 0 and math.isnan(empty.mean) and math.isnan(empty.low)


@pytest.mark.parametrize(("options", "message"), [
    ({"confidence": 95}, "confidence must be a number strictly between 0 and 1"),
    ({"n_resamples": 0}, "n_resamples must be a positive integer"),
    ({"seed": -2}, "seed must be a non-negative integer"),
])
def test_bad_options_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        bootstrap_ci([1.0, 2.0], **options)


def test_the_table_gives_one_interval_per_metric():
    table = pl.DataFrame({"user_id": ["a", "b", "c", "d"], "ndcg@10": [0.0, 1.0, 0.5, None], "hit_rate@10": [0.0, 1.0, 1.0, 1.0]})
    out = bootstrap_table(table, seed=1)
    assert out["metric"].to_list() == ["ndcg@10", "hit_rate@10"]
    assert out["users"].to_list() == [3, 4]
    assert out["mean"].to_list() == pytest.approx([0.5, 0.75])
    assert (out["ci_low"] <= out["mean"]).all() and (out["mean"] <= out["ci_high"]).all()


# --- paired test -----------------------------------------------------------------------------------


def test_a_real_gain_is_significant_and_its_interval_holds_the_true_difference():
    rng = np.random.default_rng(7)
    b = users(rng, 500)
    a = np.clip(b + (rng.random(500) < 0.2) * 0.3, 0, 1)  # a fifth of users gain 0.3: about +0.05
    test = paired_test(a, b, seed=0)
    assert test.p_value < 0.01 and test.a_better()
    assert test.ci_low <= (a - b).mean() <= test.ci_high and test.ci_low > 0
    assert test.n_users == 500 and test.mean_diff == pytest.approx(a.mean() - b.mean())


def test_noise_alone_is_called_significant_about_alpha_of_the_time():
    rng = np.random.default_rng(11)
    trials = 300
    false_alarms = 0
    for trial in range(trials):
        a, b = users(rng, 150), users(rng, 150)  # two equally good models
        false_alarms += paired_test(a, b, n_resamples=400, seed=trial).significant(0.05)
    # Binomial(300, 0.05): 15 expected; [5, 28] holds it with probability > 99.5%.
    assert 5 <= false_alarms <= 28


def test_identical_models_give_p_one_and_a_zero_interval():
    b = users(np.random.default_rng(0), 100)
    test = paired_test(b, b.copy())
    assert (test.p_value, test.mean_diff, test.ci_low, test.ci_high, test.n_differing) == (1.0, 0.0, 0.0, 0.0, 0)
    assert not test.a_better()
    zero = paired_test([0.0] * 30, [0.0] * 30)
    assert zero.p_value == 1.0 and math.isnan(zero.relative_gain)


def test_a_gain_carried_by_a_few_users_is_not_significant():
    b = np.zeros(300)
    a = b.copy()
    a[:5] = 1.0  # five lucky users; the bootstrap alone would call it significant
    test = paired_test(a, b, min_differing=10)
    assert (test.n_differing, test.p_value) == (5, 1.0)
    assert paired_test(a, b, min_differing=5).p_value < 0.05


def test_pairs_with_a_missing_side_are_left_out_and_lengths_must_match():
    test = paired_test([1.0, float("nan"), 0.0], [0.0, 1.0, float("nan")], min_differing=1)
    assert test.n_users == 1
    with pytest.raises(ValueError, match="one value per user each"):
        paired_test([1.0, 2.0], [1.0])
    empty = paired_test([], [])
    assert empty.n_users == 0 and math.isnan(empty.p_value) and not empty.significant()


def test_per_user_tables_are_matched_on_user_id_not_row_order():
    a = pl.DataFrame({"user_id": [f"u{i}" for i in range(40)], "ndcg@10": [1.0] * 20 + [0.0] * 20})
    b = a.with_columns(pl.lit(0.0).alias("ndcg@10")).reverse()
    b = pl.concat([b, pl.DataFrame({"user_id": ["only_b"], "ndcg@10": [5.0]})])
    test = paired_test_tables(a, b, "ndcg@10")
    assert test.n_users == 40 and test.mean_diff == pytest.approx(0.5) and test.a_better()
    with pytest.raises(ValueError, match="missing column"):
        paired_test_tables(a, b, "map@10")
