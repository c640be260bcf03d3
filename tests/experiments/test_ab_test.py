"""The A/B analysis: hashing, clustered intervals, the sample-ratio check, power, decisions, planted and null effects."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import polars as pl
import pytest

from recs_assets.experiments import ab_test as ab
from recs_assets.experiments.environment import SessionResults


@lru_cache(maxsize=8)
def _ids(n_users: int, sessions_per_user: int) -> np.ndarray:
    return np.array([f"u{u}" for u in np.repeat(np.arange(n_users), sessions_per_user)], dtype=object)


def synthetic(n_users: int, rate: float, seed: int, sessions_per_user: int = 3, price: float = 20.0,
              shape: float = 4.0) -> SessionResults:
    """Sessions of users whose own buying rate varies (gamma, mean 1, so clustering matters), at a known mean rate."""
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users), sessions_per_user)
    own_rate = np.clip(rate * rng.gamma(shape, 1.0 / shape, size=n_users), 0, 1)[users]
    orders = (rng.random(len(users)) < own_rate).astype(np.int64)
    views = orders + rng.poisson(1.0, len(users))
    return SessionResults(
        user_ids=_ids(n_users, sessions_per_user), impressions=np.full(len(users), 10),
        views=views, carts=orders, orders=orders, items=orders, revenue=orders * price,
        expected_orders=own_rate, items_shown=np.arange(100), latency_ms=np.array([1.0, 2.0]),
    )


def test_assignment_is_a_stable_salted_hash():
    users = [f"u{i}" for i in range(20_000)]
    arms = ab.assign(users, "salt-a", [0.5, 0.5])
    assert np.array_equal(arms, ab.assign(users, "salt-a", [0.5, 0.5]))
    assert abs(arms.mean() - 0.5) < 0.02
    other = ab.assign(users, "salt-b", [0.5, 0.5])
    assert 0.45 < (arms == other).mean() < 0.55  # another salt reshuffles independently
    thirds = ab.assign(users, "salt-a", [0.2, 0.3, 0.5])
    assert np.allclose(np.bincount(thirds) / len(users), [0.2, 0.3, 0.5], atol=0.02)
    with pytest.raises(ValueError, match="summing to 1"):
        ab.assign(users, "s", [0.5, 0.6])


def test_srm_fires_on_a_52_48_split_of_100k_users_and_not_on_a_fair_one():
    assert ab.srm_check([52_000, 48_000], [0.5, 0.5])[2]
    assert not ab.srm_check([50_100, 49_900], [0.5, 0.5])[2]


def test_ratio_standard_error_matches_the_spread_over_repeated_experiments():
    estimates, ses = [], []
    for seed in range(200):
        sums = ab.UserSums.of(synthetic(400, 0.1, seed, sessions_per_user=5))
        value, se = ab.metric_value(sums, "conversion")
        estimates.append(value)
        ses.append(se)
    assert np.std(estimates) == pytest.approx(np.mean(ses), rel=0.15)


def test_clustering_widens_the_interval_when_users_repeat():
    # The same sessions counted as if each were its own user would give a narrower (wrong) interval.
    results = synthetic(500, 0.1, 0, sessions_per_user=20, shape=0.5)
    clustered = ab.metric_value(ab.UserSums.of(results), "conversion")[1]
    unclustered_ids = np.array([f"s{i}" for i in range(len(results.user_ids))], dtype=object)
    naive = ab.metric_value(ab.UserSums.of(SessionResults(**{**results.__dict__, "user_ids": unclustered_ids})), "conversion")[1]
    assert clustered > 1.3 * naive


@pytest.mark.slow
def test_finds_a_planted_effect_and_rejects_a_null_at_the_stated_rate():
    alpha, trials = 0.05, 200
    false_positives = detections = 0
    for seed in range(trials):
        control = synthetic(1_500, 0.1, 2 * seed)
        null = synthetic(1_500, 0.1, 2 * seed + 1)
        planted = ab.plant_conversion_lift(null, 0.25, seed)
        null_p = ab.compare(ab.UserSums.of(control), ab.UserSums.of(null), alpha).filter(pl.col("metric") == "conversion")["p_value"][0]
        effect_p = ab.compare(ab.UserSums.of(control), ab.UserSums.of(planted), alpha).filter(pl.col("metric") == "conversion")["p_value"][0]
        false_positives += null_p < alpha
        detections += effect_p < alpha
    # 200 tests: a true 5% rate lands in [1%, 10%] with probability > 99%.
    assert 0.01 <= false_positives / trials <= 0.10
    assert detections / trials >= 0.7


def test_power_and_mde_agree_with_each_other():
    mde = ab.minimum_detectable_effect(control_se=0.002, control_value=0.1)
    assert ab.power_for(mde, control_se=0.002, control_value=0.1) == pytest.approx(0.8, abs=0.01)
    assert ab.power_for(mde / 2, 0.002, 0.1) < 0.8 < ab.power_for(2 * mde, 0.002, 0.1)


def test_decision_ships_a_real_gain_refuses_a_loss_and_says_inconclusive_otherwise():
    control = synthetic(3_000, 0.1, 1)
    better = ab.plant_conversion_lift(synthetic(3_000, 0.1, 2), 0.5, 0)
    kwargs = dict(names=("a", "b"), shares=(0.5, 0.5), n_available=100, primary="conversion")
    assert ab.analyse(control, better, **kwargs).decision.verdict == ab.SHIP
    assert ab.analyse(better, control, **kwargs).decision.verdict == ab.DONT_SHIP
    same = ab.analyse(control, synthetic(3_000, 0.1, 3), **kwargs)
    assert same.decision.verdict == ab.INCONCLUSIVE and "detect" in same.decision.reason


def test_a_guardrail_or_a_broken_split_overrides_a_gain():
    control = synthetic(3_000, 0.1, 1)
    better = ab.plant_conversion_lift(synthetic(3_000, 0.1, 2), 0.5, 0)
    narrow = SessionResults(**{**better.__dict__, "items_shown": np.arange(10)})
    result = ab.analyse(control, narrow, names=("a", "b"), shares=(0.5, 0.5), n_available=100, primary="conversion")
    assert result.decision.verdict == ab.DONT_SHIP and "coverage" in result.decision.reason
    slow = SessionResults(**{**better.__dict__, "latency_ms": np.array([500.0])})
    result = ab.analyse(control, slow, names=("a", "b"), shares=(0.5, 0.5), n_available=100, primary="conversion")
    assert result.decision.verdict == ab.DONT_SHIP and "latency" in result.decision.reason
    skewed = ab.analyse(control, better, names=("a", "b"), shares=(0.8, 0.2), n_available=100, primary="conversion")
    assert skewed.srm_mismatch and skewed.decision.verdict == ab.INCONCLUSIVE


def test_run_experiment_splits_users_not_sessions(env):
    config = ab.ExperimentConfig(sessions_per_arm=2_000, seed=3, salt="t")
    results, traffic, arm = ab.run_experiment(env, {"a": env.random_policy(0), "b": env.oracle_policy()}, config)
    users_a, users_b = set(results["a"].user_ids), set(results["b"].user_ids)
    assert not users_a & users_b
    assert len(results["a"].user_ids) + len(results["b"].user_ids) == len(traffic) == 4_000
