"""Monitoring: feature drift (Evidently), prediction drift between snapshots, serving health from the request log.

The drift tests use the simulator's preference shift: from day 14 users' category tastes are redrawn
around a new population mix, which the per-user category shares must reveal, while the same world
without a shift must not drift. Slow-ish: Evidently takes seconds to import and ~1 s per report.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import math

import dagster as dg
import numpy as np
import polars as pl
import pytest

from recs_assets.monitoring.checks import (
    FeatureDriftConfig,
    PredictionDriftConfig,
    ServingHealthConfig,
    feature_drift_check,
    prediction_drift_check,
    serving_health_check,
)
from recs_assets.monitoring.drift import (
    feature_columns,
    feature_drift,
    prediction_drift,
    serving_health,
    stacked_window_features,
    window_features,
)
from recs_assets.sources.simulator import SimulatorConfig, simulate
from resources.home_folder import HomeFolder

needs_evidently = pytest.mark.skipif(importlib.util.find_spec("evidently") is None, reason="evidently is not installed")

START = dt.date(2026, 9, 1)
SHIFT_DAY, N_DAYS = 14, 21


def _world(shift: bool):
    return simulate(
        SimulatorConfig(
            n_users=1500, n_items=600, n_days=N_DAYS, preference_shift_day=SHIFT_DAY if shift else None, shift_strength=1.0
        )
    )


@pytest.fixture(scope="module")
def shifted():
    return _world(True)


@pytest.fixture(scope="module")
def unshifted():
    return _world(False)


def _context(tmp_path):
    return dg.build_asset_check_context(resources={"home": HomeFolder(path=str(tmp_path))})


# ---------------------------------------------------------------------------------------------
# Window features
# ---------------------------------------------------------------------------------------------
def test_window_features_count_per_day_and_category_shares_sum_to_one():
    at = lambda d, h=0: dt.datetime(2026, 9, 1 + d, h, tzinfo=dt.timezone.utc)  # noqa: E731
    items = pl.DataFrame({"item_id": ["a", "b", "c"], "category": ["rpg", "rpg", "puzzle"], "price": [1.0, 2.0, 3.0]})
    events = pl.DataFrame(
        {
            "event_at": [at(0), at(1), at(1, 5), at(2), at(3), at(9)],
            "user_id": ["u1", "u1", "u1", "u1", "u2", "u1"],
            "item_id": ["a", "b", "b", "c", "c", "a"],
            "event_type": ["view", "view", "purchase", "view", "view", "view"],
            "price": [1.0, 2.0, 2.0, 3.0, 3.0, 1.0],
        }
    )
    f = window_features(events, items, START, START + dt.timedelta(days=4))
    u1 = f.filter(pl.col("user_id") == "u1").row(0, named=True)
    assert f["user_id"].to_list() == ["u1", "u2"]  # the day-9 event is outside the window
    assert u1["events_per_day"] == pytest.approx(4 / 4) and u1["views_per_day"] == pytest.approx(3 / 4)
    assert u1["purchases_per_day"] == pytest.approx(1 / 4) and u1["purchase_rate"] == pytest.approx(1 / 3)
    assert u1["mean_price_viewed"] == pytest.approx(2.0)
    assert u1["top_category"] == "rpg" and u1["top_category_share"] == pytest.approx(0.75)
    assert u1["cat_share_rpg"] == pytest.approx(0.75) and u1["cat_share_puzzle"] == pytest.approx(0.25)
    numerical, categorical = feature_columns(items)
    assert set(numerical + categorical) <= set(f.columns)
    stacked = stacked_window_features(events, items, START, START + dt.timedelta(days=10), 4)
    assert stacked["window_start"].n_unique() == 2  # [2, 6) and [6, 10); the 2-day leftover is dropped


# ---------------------------------------------------------------------------------------------
# Feature drift: the preference shift is caught, the unshifted world is not flagged
# ---------------------------------------------------------------------------------------------
def _drift(world, tmp_path=None):
    cut = START + dt.timedelta(days=SHIFT_DAY)
    reference = stacked_window_features(world.events, world.items, START, cut, 7)
    current = window_features(world.events, world.items, cut, START + dt.timedelta(days=N_DAYS))
    numerical, categorical = feature_columns(world.items)
    path = tmp_path / "drift.html" if tmp_path is not None else None
    return feature_drift(reference, current, numerical + categorical, path, categorical=categorical)


@needs_evidently
def test_feature_drift_sees_the_preference_shift_and_nothing_without_it(shifted, unshifted, tmp_path):
    moved = _drift(shifted, tmp_path)
    still = _drift(unshifted)
    assert moved["share_drifted"] >= 0.3, moved
    assert "top_category" in moved["drifted_columns"]
    assert any(c.startswith("cat_share_") for c in moved["drifted_columns"])
    assert still["share_drifted"] < 0.3 and not still["dataset_drift"], still
    assert moved["report"] == str(tmp_path / "drift.html") and (tmp_path / "drift.html").stat().st_size > 1000
    assert still["report"] is None


@needs_evidently
def test_feature_drift_check_errors_on_the_shift_and_passes_without(shifted, unshifted, tmp_path):
    home_a, home_b = tmp_path / "a", tmp_path / "b"
    failed = feature_drift_check(_context(home_a), config=FeatureDriftConfig(), events=shifted.events, items=shifted.items)
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
    assert "threshold 30%" in failed.description and "top_category" in failed.description
    report = home_a / "reports" / "feature_drift.html"
    assert report.exists() and failed.metadata["report"].value == str(report)
    passed = feature_drift_check(_context(home_b), config=FeatureDriftConfig(), events=unshifted.events, items=unshifted.items)
    assert passed.passed, passed.description
    # the threshold decides: with 100% (share_drifted < 1.0) the same shifted data passes
    lenient = feature_drift_check(
        _context(home_a), config=FeatureDriftConfig(max_share_drifted=1.0), events=shifted.events, items=shifted.items
    )
    assert lenient.passed


def test_feature_drift_check_passes_when_history_is_too_short(shifted, tmp_path):
    recent = shifted.events.filter(pl.col("event_at") >= dt.datetime(2026, 9, 12, tzinfo=dt.timezone.utc))
    result = feature_drift_check(_context(tmp_path), config=FeatureDriftConfig(), events=recent, items=shifted.items)
    assert result.passed and result.description.startswith("not enough history")


# ---------------------------------------------------------------------------------------------
# Prediction drift
# ---------------------------------------------------------------------------------------------
ITEMS = pl.DataFrame(
    {"item_id": [f"i{j}" for j in range(40)], "category": ["rpg"] * 20 + ["puzzle"] * 20}
)


def _snapshot(seed: int, category_items: list[str], score_shift: float = 0.0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(100):
        chosen = rng.choice(category_items, size=10, replace=False)
        scores = np.sort(rng.normal(1.0 + score_shift, 0.3, size=10))[::-1]
        rows += [(f"u{u}", str(i), r + 1, float(s)) for r, (i, s) in enumerate(zip(chosen, scores))]
    return pl.DataFrame(rows, schema=["user_id", "item_id", "rank", "score"], orient="row")


def test_identical_snapshots_do_not_drift():
    snap = _snapshot(1, ITEMS["item_id"].to_list())
    result = prediction_drift(snap, snap, ITEMS)
    assert result["score_ks"] == 0.0 and result["category_tvd"] == 0.0
    assert result["coverage_previous"] == result["coverage_current"] == 1.0 and result["coverage_change"] == 0.0


def test_shifted_scores_and_categories_drift():
    before = _snapshot(1, ITEMS["item_id"].to_list())
    after = _snapshot(2, ITEMS["item_id"].to_list()[:20], score_shift=0.5)  # rpg only, higher scores
    result = prediction_drift(before, after, ITEMS)
    assert result["score_ks"] > 0.5
    mix = result["category_mix_previous"]
    assert result["category_tvd"] == pytest.approx(mix["puzzle"])  # all puzzle mass moved to rpg
    assert result["coverage_current"] == 0.5 and result["coverage_change"] == pytest.approx(-0.5)


def test_prediction_drift_check_uses_the_newest_history_file(tmp_path):
    history = tmp_path / "serving" / "history"
    current = _snapshot(1, ITEMS["item_id"].to_list())
    first = prediction_drift_check(_context(tmp_path), config=PredictionDriftConfig(), recommendation_snapshot=current, items=ITEMS)
    assert first.passed and first.description == "no previous snapshot"
    history.mkdir(parents=True)
    _snapshot(2, ITEMS["item_id"].to_list()[:20], score_shift=0.5).write_parquet(history / "recommendation_snapshot-20260901T000000.parquet")
    current.write_parquet(history / "recommendation_snapshot-20260902T000000.parquet")
    same = prediction_drift_check(_context(tmp_path), config=PredictionDriftConfig(), recommendation_snapshot=current, items=ITEMS)
    assert same.passed and "20260902T000000" in same.description, same.description
    (history / "recommendation_snapshot-20260903T000000.parquet").write_bytes(
        (history / "recommendation_snapshot-20260901T000000.parquet").read_bytes()
    )
    moved = prediction_drift_check(_context(tmp_path), config=PredictionDriftConfig(), recommendation_snapshot=current, items=ITEMS)
    assert not moved.passed and moved.severity == dg.AssetCheckSeverity.WARN
    assert "scores" in moved.description and "category mix" in moved.description


# ---------------------------------------------------------------------------------------------
# Serving health
# ---------------------------------------------------------------------------------------------
def _write_log(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def _record(latency, status=200, ts="2026-09-20T10:00:00.000+00:00"):
    return {"ts": ts, "method": "GET", "path": "/recommendations/u1", "status": status,
            "latency_ms": latency, "model_version": 1, "source": "snapshot"}


def test_serving_health_gives_exact_percentiles_and_rates(tmp_path):
    log = tmp_path / "serving" / "request_log.jsonl"
    # latencies 1..100 ms: numpy linear percentiles are 50.5, 95.05, 99.01
    statuses = [500, 503] + [404] * 5 + [200] * 93
    _write_log(log, [_record(float(ms), status) for ms, status in zip(range(1, 101), statuses)])
    h = serving_health(log)
    assert h["requests"] == 100
    assert h["p50_ms"] == pytest.approx(50.5) and h["p95_ms"] == pytest.approx(95.05) and h["p99_ms"] == pytest.approx(99.01)
    assert h["error_rate"] == pytest.approx(0.02) and h["client_error_rate"] == pytest.approx(0.05)
    later = serving_health(log, since=dt.datetime(2026, 9, 21, tzinfo=dt.timezone.utc))
    assert later["requests"] == 0


def test_serving_health_on_missing_and_empty_logs(tmp_path):
    for h in (serving_health(tmp_path / "nope.jsonl"), serving_health(_empty(tmp_path))):
        assert h["requests"] == 0 and h["errors"] == 0
        assert all(math.isnan(h[k]) for k in ("p50_ms", "p95_ms", "p99_ms", "error_rate"))


def _empty(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    return path


def test_serving_health_check_warns_on_slow_or_failing_traffic(tmp_path):
    log = tmp_path / "serving" / "request_log.jsonl"
    quiet = serving_health_check(_context(tmp_path), config=ServingHealthConfig())
    assert quiet.passed and quiet.description == "no traffic yet"
    _write_log(log, [_record(5.0)] * 200)
    assert serving_health_check(_context(tmp_path), config=ServingHealthConfig()).passed
    _write_log(log, [_record(5.0)] * 190 + [_record(120.0)] * 10)  # p99 120 ms
    slow = serving_health_check(_context(tmp_path), config=ServingHealthConfig())
    assert not slow.passed and slow.severity == dg.AssetCheckSeverity.WARN and "p99 latency" in slow.description
    _write_log(log, [_record(5.0)] * 196 + [_record(5.0, 500)] * 4)  # 2% errors
    failing = serving_health_check(_context(tmp_path), config=ServingHealthConfig())
    assert not failing.passed and "error rate 2.00% (threshold 1.00%)" in failing.description
