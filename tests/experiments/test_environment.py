"""The simulated shop as an environment: one response model, deterministic, and it tells good policies from bad."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from recs_assets.experiments import environment as environment_module
from recs_assets.experiments.environment import SimulatorEnvironment, lists_policy
from recs_assets.sources.simulator import day, online, response, simulate
from recs_assets.sources.simulator.online import EMPTY, respond_to_slates

from tests.experiments.conftest import SMALL


def test_history_and_environment_share_one_response_model(monkeypatch, env):
    # Count calls of the one function through every module that uses it: both paths must go through it.
    calls = {"n": 0}
    real = response.shopper_response

    def counted(*args, **kwargs):
        calls["n"] += 1
        return real(*args, **kwargs)

    assert day.shopper_response is real and online.shopper_response is real and environment_module.shopper_response is real
    for module in (day, online, environment_module):
        monkeypatch.setattr(module, "shopper_response", counted)
    simulate(SMALL.__class__(preset="games", seed=1, n_users=50, n_items=40, n_days=2))
    from_history = calls["n"]
    env.run(env.random_policy(0), env.traffic(200, seed=0), seed=0, measure_latency=False)
    assert from_history > 0 and calls["n"] > from_history


def test_no_module_defines_a_second_response_model():
    # The position-bias term appears in exactly one function of the source tree.
    from pathlib import Path

    root = Path(response.__file__).resolve().parents[2]
    hits = [p for p in root.rglob("*.py") if "_POSITION_DECAY * np.log" in p.read_text()]
    assert [p.name for p in hits] == ["response.py"]


def test_environment_is_deterministic_per_seed(env):
    traffic = env.traffic(3_000, seed=5)
    assert np.array_equal(traffic.user, env.traffic(3_000, seed=5).user)
    a = env.run(env.oracle_policy(), traffic, seed=9, measure_latency=False)
    b = env.run(env.oracle_policy(), traffic, seed=9, measure_latency=False)
    c = env.run(env.oracle_policy(), traffic, seed=10, measure_latency=False)
    assert a.frame().equals(b.frame())
    assert not a.frame().equals(c.frame())
    assert not np.array_equal(traffic.user, env.traffic(3_000, seed=6).user)


def test_oracle_beats_random_on_every_metric(env):
    from recs_assets.experiments.ab_test import METRICS, UserSums, metric_value

    traffic = env.traffic(20_000, seed=1)
    oracle = UserSums.of(env.run(env.oracle_policy(), traffic, seed=1, measure_latency=False))
    random = UserSums.of(env.run(env.random_policy(1), traffic, seed=1, measure_latency=False))
    for metric in METRICS:
        better, se_b = metric_value(oracle, metric)
        worse, se_w = metric_value(random, metric)
        assert better - worse > 3 * np.hypot(se_b, se_w), metric


def test_slates_keep_order_drop_unknown_and_duplicate_items(env):
    first, second = env.item_ids[0], env.item_ids[1]
    policy = lists_policy(pl.DataFrame({"user_id": ["u000001"] * 4, "item_id": [second, "nope", second, first], "rank": [1, 2, 3, 4]}))
    slates = env.slates(policy, ["u000001", env.user_ids[1]])
    assert slates[0, :3].tolist() == [1, 0, EMPTY]
    assert (slates[1] == EMPTY).all()  # a user without a list gets an empty slate


def test_a_sold_listing_is_never_shown_and_sells_once_per_day(small_fashion):
    env = SimulatorEnvironment.from_market(small_fashion, slots=5)
    sold = np.flatnonzero(~env.available)
    assert len(sold) > 0
    one = np.flatnonzero(env.available)[0]
    # Everyone is shown the same listing first: it sells to one buyer per replayed day at most.
    n = 4_000
    slates = np.full((n, 5), EMPTY)
    slates[:, 0] = sold[0]
    slates[:, 1] = one
    replica = np.arange(n) // 1_000
    rng = np.random.default_rng(0)
    outcome = respond_to_slates(env.world, env.state, np.arange(n) % 600, slates, rng, replica=replica)
    assert sold[0] not in outcome.item
    assert (outcome.position == 1).all()  # the sold listing was taken out and the next one moved up
    buyers_per_day = np.bincount(replica[outcome.session[outcome.bought]], minlength=4)
    assert buyers_per_day.max() <= 1 and outcome.carted.sum() > buyers_per_day.sum()


def test_owned_games_are_never_bought_again(env):
    keys = env.state.owned_keys
    assert len(keys)
    n_items = len(env.item_ids)
    user, item = keys // n_items, keys % n_items
    slates = np.full((len(keys), 10), EMPTY)
    slates[:, 0] = item
    outcome = respond_to_slates(env.world, env.state, user, slates, np.random.default_rng(0))
    assert outcome.viewed.any() and not outcome.bought.any()


def test_unknown_users_and_bad_slates_are_refused(env):
    with pytest.raises(KeyError, match="unknown user_id 'nobody'"):
        env.traffic(10, seed=0, users=["nobody"])
    with pytest.raises(ValueError, match="item indices"):
        respond_to_slates(env.world, env.state, np.array([0]), np.array([[10**6]]), np.random.default_rng(0))
