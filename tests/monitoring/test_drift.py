"""Feature drift (Evidently on per-user window features); prediction drift is in test_prediction_drift.py.

Evidently takes seconds to import and about a second per report, so the tests that run it are slow.
The hand-made shops (conftest) repeat one week exactly, so no column may drift unless the last week is
shifted; the simulator tests use its preference shift: from day 23 users' category tastes are redrawn.
"""

from __future__ import annotations

import datetime as dt
import importlib.util

import numpy as np
import polars as pl
from polars.testing import assert_frame_equal
import pytest

from recs_assets.monitoring.drift import (
    CATEGORY_SHARE_THRESHOLD,
    DISTANCE_THRESHOLDS,
    MAX_SHARE_DRIFTED,
    column_thresholds,
    compare_feature_frames,
    drift_methods,
    measure_feature_drift,
    usable_columns,
)
from recs_assets.sources.simulator import SimulatorConfig, simulate
from tests.monitoring.conftest import shop_events, shop_items, shop_users

_no_evidently = pytest.mark.skipif(importlib.util.find_spec("evidently") is None, reason="evidently is not installed")


def runs_evidently(test):
    """Slow (Evidently takes seconds to import), and skipped where it is not installed."""
    return pytest.mark.slow(_no_evidently(test))


# ---------------------------------------------------------------------------------------------
# Which columns can be compared, and with which test
# ---------------------------------------------------------------------------------------------
def test_columns_without_data_or_variation_are_left_out_with_the_reason():
    reference = pl.DataFrame({"a": [1.0, 2.0], "b": [None, None], "c": [0.0, 0.0], "d": [1.0, 1.0], "e": ["x", "y"]})
    current = pl.DataFrame({"a": [3.0, None], "b": [1.0, 2.0], "c": [0.0, 0.0], "d": [None, None], "e": ["x", "x"]})
    keep, dropped = usable_columns(reference, current, ["a", "b", "c", "d", "e"], {"a": "no prices"})
    assert keep == ["e"]
    assert dropped == {
        "a": "no prices",
        "b": "no data in the reference windows",
        "c": "one constant value (0.0) in both windows",
        "d": "no data in the current window",
    }
    with pytest.raises(ValueError, match=r"missing .*\['zz'\]"):
        usable_columns(reference, current, ["a", "zz"])


def test_small_samples_get_p_value_tests_and_large_ones_distances():
    small = pl.DataFrame({"x": np.arange(50, dtype=float), "few": [0.0, 1.0] * 25, "cat": ["a", "b"] * 25})
    assert drift_methods(small, small, ["x", "few"], ["cat"]) == {"x": "ks", "few": "ks", "cat": "z"}
    three = pl.DataFrame({"cat": ["a", "b", "c"] * 10})
    assert drift_methods(three, three, [], ["cat"]) == {"cat": "chisquare_two_sample"}
    big = pl.DataFrame({"x": np.arange(2000, dtype=float), "few": [0.0, 1.0] * 1000, "cat": ["a", "b", "c", "d"] * 500})
    assert drift_methods(big, big, ["x", "few"], ["cat"]) == {"x": "wasserstein", "few": "jensenshannon", "cat": "jensenshannon"}
    # the smaller side decides: a big stacked reference against a small current window is a small sample
    assert drift_methods(big, small, ["x"], [])["x"] == "ks"


def test_distances_get_calibrated_thresholds_and_p_values_a_bonferroni_bar():
    methods = {"taste_overlap": "wasserstein", "frequency": "wasserstein", "share_rpg": "jensenshannon", "new": "wasserstein"}
    got = column_thresholds(methods)
    assert got == {"taste_overlap": DISTANCE_THRESHOLDS["taste_overlap"], "frequency": DISTANCE_THRESHOLDS["frequency"],
                   "share_rpg": CATEGORY_SHARE_THRESHOLD, "new": 0.2}
    # the taste overlap is the sensitive one; volumes that move with stock get a higher bar
    assert got["taste_overlap"] < got["frequency"]
    small = column_thresholds({"a": "ks", "b": "ks", "c": "chisquare", "d": "z"})
    assert small == {c: pytest.approx(0.05 / 4) for c in "abcd"}
    assert column_thresholds({"a": "ks"}, {"a": 0.01}) == {"a": 0.01}


def test_nothing_left_to_compare_is_a_skip_not_a_crash():
    frame = pl.DataFrame({"price_level": [None, None], "rate": [1.0, 1.0]})
    result = compare_feature_frames(frame, frame, ["price_level", "rate"], max_share_drifted=0.3)
    assert result.skipped and result.description.startswith("no feature column has data on both sides")
    assert set(result.details["dropped_columns"]) == {"price_level", "rate"}


@pytest.mark.parametrize("bad", [0.0, 1.5, -0.1, float("nan")])
def test_the_threshold_must_be_a_share(bad):
    frame = pl.DataFrame({"a": [1.0, 2.0]})
    with pytest.raises(ValueError, match="max_share_drifted"):
        compare_feature_frames(frame, frame, ["a"], max_share_drifted=bad)


# ---------------------------------------------------------------------------------------------
# Skipped, with the reason, when there is nothing to compare
# ---------------------------------------------------------------------------------------------
def test_no_timestamps_skips_drift_with_the_reason():
    result = measure_feature_drift(shop_events(dated=False), shop_items())
    assert result.skipped and not result.passed
    assert result.description == "events have no timestamps, so there are no time windows to compare"
    assert result.details["undated_events"] == shop_events(dated=False).height


def test_too_little_history_or_too_few_users_skips():
    one_week = measure_feature_drift(shop_events(weeks=1), shop_items())
    assert one_week.skipped and one_week.description.startswith("not enough history")
    few = measure_feature_drift(shop_events(n_users=10), shop_items(), shop_users(10))
    assert few.skipped and few.description.startswith("too few active users to compare: 10 in the current window")
    assert few.details["windows"]["current"] == "2026-09-14..2026-09-20"


# ---------------------------------------------------------------------------------------------
# Every shape of dataset: a repeated week never drifts, missing data is named, nothing crashes
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("shape", "events", "items", "dropped"),
    [
        ("no prices", dict(prices=False), dict(prices=False),
         {"price_level": "no prices: neither the events nor the items carry one"}),
        ("no categories", dict(), dict(categories=False),
         {"top_category": "the items have no categories", "top_category_share": "the items have no categories"}),
        ("ratings only", dict(event_types=("rating",), prices=False, sessions=False), dict(prices=False),
         {"cart_rate": "no view events, and cart and purchase rates are per view",
          "purchase_rate": "no view events, and cart and purchase rates are per view",
          "price_level": "no prices: neither the events nor the items carry one",
          # one rating per visit (a user-day, without session ids): every visit lasts 0 s
          "avg_session_seconds": "one constant value (0.0) in both windows"}),
    ],
)
@runs_evidently
def test_each_dataset_shape_is_compared_on_the_columns_it_has(shape, events, items, dropped, tmp_path):
    result = measure_feature_drift(shop_events(**events), shop_items(**items), report_path=tmp_path / "drift.html")
    assert result.passed, result.description
    assert result.values["share_drifted"] == 0.0 and result.details["drifted_columns"] == []
    got = {c: r for c, r in result.details["dropped_columns"].items() if c in dropped}
    assert got == dropped
    # every user loves one category, so top_category_share is 1.0 everywhere
    assert result.details["dropped_columns"].get("top_category_share") in (
        "one constant value (1.0) in both windows", "the items have no categories")
    compared = set(result.details["column_scores"])
    assert not compared & set(result.details["dropped_columns"])
    assert (tmp_path / "drift.html").exists()
    if shape == "no categories":
        assert not any(c.startswith("share_") for c in compared)
    else:
        assert {"share_rpg", "share_puzzle", "share_racing"} <= compared


@runs_evidently
def test_a_shift_in_the_category_mix_fails_and_names_the_columns():
    result = measure_feature_drift(shop_events(n_users=90, shift_last_week=True), shop_items())
    assert result.failed, result.description
    assert {"top_category", "share_rpg", "share_puzzle", "price_level"} <= set(result.details["drifted_columns"])
    # behaviour that did not change does not drift
    assert not {"frequency", "cart_rate", "avg_session_events"} & set(result.details["drifted_columns"])
    assert result.values["share_drifted"] == pytest.approx(result.values["columns_drifted"] / result.values["columns_compared"])
    assert result.values["share_drifted"] >= MAX_SHARE_DRIFTED
    # the same data passes with a threshold above what was measured
    lenient = measure_feature_drift(shop_events(n_users=90, shift_last_week=True), shop_items(), max_share_drifted=0.9)
    assert lenient.passed and lenient.values["share_drifted"] == result.values["share_drifted"]


# ---------------------------------------------------------------------------------------------
# The simulator: its preference shift is caught, the same world without it is not flagged
# (the benchmark's scale, benchmarks/drift.py: 3,000 users x 30 days, shift from day 23; fixed seeds)
# ---------------------------------------------------------------------------------------------
SHIFT_DAY, N_DAYS = 23, 30


@pytest.fixture(scope="module")
def worlds():
    cache = {}

    def world(preset, shift):
        if (preset, shift) not in cache:
            config = SimulatorConfig(preset=preset, seed=3, n_users=3000, n_items=1500, n_days=N_DAYS,
                                     preference_shift_day=SHIFT_DAY if shift else None)
            cache[preset, shift] = simulate(config)
        return cache[preset, shift]

    return world


@pytest.mark.parametrize("preset", ["games", "fashion"])
def test_the_window_features_need_only_the_event_columns_the_check_loads(worlds, preset):
    # The drift check's reader loads only window_event_columns(): on the shifted world, the same features.
    from recs_assets.monitoring.window_features import plan_windows, stacked_window_features, window_event_columns

    world = worlds(preset, True)
    plan = plan_windows(world.events["event_at"], 7, 1)
    windows = [*plan.reference, plan.current]
    whole = stacked_window_features(world.events, world.items, windows, world.users)
    loaded = stacked_window_features(world.events.select(window_event_columns()), world.items, windows, world.users)
    assert whole.users.height > 1000
    # Equal up to the order DuckDB's threads add floats in (1e-14 on a mean price).
    assert_frame_equal(whole.users, loaded.users)
    assert_frame_equal(whole.affinity, loaded.affinity)
    assert set(world.events.columns) - set(window_event_columns()), "the test must leave some columns out"


@pytest.mark.parametrize("preset", ["games", "fashion"])
@runs_evidently
def test_the_simulated_preference_shift_fails_and_the_same_world_without_it_passes(worlds, preset, tmp_path):
    shifted, unshifted = worlds(preset, True), worlds(preset, False)
    report = tmp_path / "reports" / "feature_drift.html"
    moved = measure_feature_drift(shifted.events, shifted.items, shifted.users, report_path=report)
    still = measure_feature_drift(unshifted.events, unshifted.items, unshifted.users)
    assert still.passed and still.details["drifted_columns"] == [], still.description
    assert moved.failed, moved.description
    # the users' own category mix moved away from their previous week's
    assert "taste_overlap" in moved.details["drifted_columns"]
    assert moved.details["windows"] == {
        "current": "2026-09-24..2026-09-30",
        "reference": ["2026-09-17..2026-09-23"],
        "window_days": 7,
    }
    assert "current 2026-09-24..2026-09-30 vs reference 2026-09-17..2026-09-23" in moved.description
    assert "threshold 5%" in moved.description
    # the HTML report states the windows and uses the check's threshold, not Evidently's default 0.5
    page = report.read_text(encoding="utf-8")
    assert moved.report_path == str(report) and still.report_path is None
    assert "Current window: 2026-09-24..2026-09-30" in page and "2026-09-17..2026-09-23" in page
    assert "Dataset drift detection threshold is 0.05" in page and "threshold is 0.5" not in page
    assert not list(report.parent.glob(".*tmp*"))  # written atomically, no temp file left


def test_the_small_sample_category_test_treats_both_sides_as_samples():
    import pandas as pd

    from recs_assets.monitoring.drift import _two_sample_chisquare

    same = pd.Series(["a"] * 30 + ["b"] * 20 + ["c"] * 10)
    assert _two_sample_chisquare(same, same, None, 0.05) == (pytest.approx(1.0), False)
    moved = pd.Series(["a"] * 10 + ["b"] * 20 + ["c"] * 30)
    p_value, drifted = _two_sample_chisquare(same, moved, None, 0.05)
    assert drifted and p_value < 1e-4
    # 2x3 table (30, 20, 10) vs (25, 20, 15): chi-square 16/11 on 2 degrees of freedom -> p = exp(-8 / 11)
    nearby = pd.Series(["a"] * 25 + ["b"] * 20 + ["c"] * 15)
    assert _two_sample_chisquare(same, nearby, None, 0.05)[0] == pytest.approx(np.exp(-8 / 11))
    assert _two_sample_chisquare(pd.Series(["a"] * 5), pd.Series(["a"] * 7), None, 0.05) == (1.0, False)
