"""Off-policy estimators on a planted logging dataset with a known value, and the two real checks."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from recs_assets.experiments import off_policy

N_ACTIONS = 5
CLICK = np.array([0.02, 0.05, 0.10, 0.20, 0.40])
LOGGING = np.array([0.4, 0.3, 0.15, 0.1, 0.05])
TARGET = np.array([0.05, 0.05, 0.1, 0.3, 0.5])
TRUE_VALUE = float(TARGET @ CLICK)  # 0.2665


def planted(n: int, seed: int, model_bias: float = 0.0) -> dict:
    """A context-free bandit logged by LOGGING; the reward model is off by `model_bias` on every action."""
    rng = np.random.default_rng(seed)
    action = rng.choice(N_ACTIONS, size=n, p=LOGGING)
    reward = (rng.random(n) < CLICK[action]).astype(float)
    q = np.clip(CLICK + model_bias, 0, 1)
    return dict(reward=reward, propensity=LOGGING[action], target_prob=TARGET[action], q_logged=q[action],
                q_target=np.full(n, TARGET @ q))


def test_each_estimator_lands_within_its_expected_error():
    table = off_policy.with_truth(off_policy.estimate(**planted(50_000, 0)), TRUE_VALUE)
    for row in table.iter_rows(named=True):
        # Four standard errors: fails by chance with probability < 1e-4 per estimator.
        assert abs(row["estimate"] - TRUE_VALUE) < 4 * row["se"] + 1e-9, row["estimator"]
    assert table.filter(pl.col("estimator") == "DM")["estimate"][0] == pytest.approx(TRUE_VALUE)


def test_ips_is_unbiased_over_seeds_and_dm_inherits_its_models_bias():
    ips, dm, dr = [], [], []
    for seed in range(300):
        table = off_policy.estimate(**planted(2_000, seed, model_bias=0.05))
        values = dict(table.select("estimator", "estimate").iter_rows())
        ips.append(values["IPS"])
        dm.append(values["DM"])
        dr.append(values["DR"])
    se_of_mean = np.std(ips) / np.sqrt(len(ips))
    assert abs(np.mean(ips) - TRUE_VALUE) < 3 * se_of_mean
    assert abs(np.mean(dr) - TRUE_VALUE) < 3 * np.std(dr) / np.sqrt(len(dr))  # DR: unbiased despite the wrong model
    assert np.mean(dm) == pytest.approx(TRUE_VALUE + 0.05, abs=1e-9)  # DM: exactly as wrong as its model


def test_intervals_cover_the_truth_about_95_percent_of_the_time():
    covered = [off_policy.with_truth(off_policy.estimate(**planted(3_000, seed)), TRUE_VALUE)
               .filter(pl.col("estimator") == "IPS")["covers_truth"][0] for seed in range(200)]
    assert 0.90 <= np.mean(covered) <= 0.99


def test_bad_logs_are_refused_naming_the_problem():
    data = planted(10, 0)
    with pytest.raises(ValueError, match="propensity must be in"):
        off_policy.estimate(**{**data, "propensity": np.zeros(10)})
    with pytest.raises(ValueError, match="one value per logged row"):
        off_policy.estimate(**{**data, "target_prob": np.ones(3)})


def test_simulator_check_brackets_the_response_models_truth(env, small_market):
    from recs_assets.models.popularity import PopularityRecommender
    from recs_assets.models.lists import recommend_frame

    events = small_market.events
    cut = events["event_at"].min() + (events["event_at"].max() - events["event_at"].min()) * 0.5
    interactions = (events.filter(pl.col("event_type").is_in(["view", "purchase"]) & (pl.col("event_at") < cut))
                    .group_by("user_id", "item_id").agg(strength=pl.len().cast(pl.Float64)))
    model = PopularityRecommender().fit(interactions)
    lists = recommend_frame(model, small_market.users["user_id"].to_list(), 10)
    table = off_policy.simulator_check(env, events, lists, epsilon=0.3, N=10, after=cut)
    assert table["logged_rows"][0] > 200
    for estimator in ("IPS", "SNIPS", "DR"):
        row = table.filter(pl.col("estimator") == estimator).row(0, named=True)
        assert row["ci_low"] - 0.02 <= row["truth"] <= row["ci_high"] + 0.02, estimator


def test_open_bandit_check_on_a_tiny_hand_made_log():
    # Random logs: item a at position 1 with propensity 0.5; "b" was shown by the target only.
    rows = []
    for i in range(400):
        item = "a" if i % 2 else "b"
        rows.append(("random", f"r{i}", item, 0.5, 1 if (item == "a" and i % 10 == 1) else 0))
    for i in range(200):
        rows.append(("bts", f"t{i}", "a", 1.0, 1 if i % 5 == 0 else 0))
    events = []
    for variant, session, item, p, click in rows:
        events.append(dict(event_id=session, event_at=None, user_id="x", session_id=session, item_id=item, event_type="impression",
                           position=1, propensity=p, variant=variant, surface="w"))
        if click:
            events.append(dict(event_id=session + "c", event_at=None, user_id="x", session_id=session, item_id=item,
                               event_type="view", position=1, propensity=None, variant=variant, surface="w"))
    table = off_policy.open_bandit_check(pl.DataFrame(events, infer_schema_length=None))
    ips = table.filter(pl.col("estimator") == "IPS").row(0, named=True)
    # The target always shows "a"; "a" is clicked 1 time in 5 in the random logs: IPS = mean(2 * click on a) = 0.2.
    assert ips["estimate"] == pytest.approx(0.2)
    assert ips["truth"] == pytest.approx(0.2)
    with pytest.raises(ValueError, match="no impressions of policy"):
        off_policy.open_bandit_check(pl.DataFrame(events, infer_schema_length=None), target="nope")
