"""Prediction drift: two recommendation snapshots compared user by user, with the calibrated thresholds.

Hand-made snapshots have known answers: 40 users, 40 items in four categories (a: i0-i9, b: i10-i19,
c: i20-i29, d: i30-i39), every user's previous list five items of a and five of b. The simulator tests
replay two daily runs (the snapshot of the day before the shift and of the shift day) on fixed seeds.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from recs_assets.monitoring.drift import (
    MAX_CATEGORY_TVD,
    MAX_NEW_CATEGORY_SHARE,
    MIN_USERS_PER_SIDE,
    list_changes,
    measure_prediction_drift,
)
from recs_assets.monitoring.replay import snapshot_at
from recs_assets.sources.simulator import SimulatorConfig, simulate

ITEMS = pl.DataFrame({"item_id": [f"i{j}" for j in range(40)], "category": [c for c in "abcd" for _ in range(10)]})
USERS = [f"u{k:02d}" for k in range(40)]


def _lists(items_of, users=USERS, model: str | None = "ease_model") -> pl.DataFrame:
    """One row per (user, item); `items_of(k)` gives user k's item numbers in rank order."""
    rows = [(u, f"i{j}", r + 1, 1.0 - 0.05 * r) for k, u in enumerate(users) for r, j in enumerate(items_of(k))]
    snap = pl.DataFrame(rows, schema=["user_id", "item_id", "rank", "score"], orient="row")
    return snap.with_columns(pl.lit(model).alias("model")) if model else snap


PREVIOUS = _lists(lambda k: [0, 1, 2, 3, 4, 10, 11, 12, 13, 14])


def test_stock_turnover_within_each_users_categories_is_not_drift():
    # every user's five a-items replaced by five other a-items: a third of each list kept, kinds unchanged
    restocked = _lists(lambda k: [5, 6, 7, 8, 9, 10, 11, 12, 13, 14])
    result = measure_prediction_drift(PREVIOUS, restocked, ITEMS, previous_label="recommendation_snapshot-1.parquet")
    assert result.passed, result.description
    assert result.values["new_category_share"] == 0.0 and result.values["items_entered"] == 40 * 5
    assert result.values["list_turnover"] == pytest.approx(1 - 5 / 15)
    assert result.values["category_tvd"] == 0.0 and result.values["users_compared"] == 40
    assert result.description.endswith("vs recommendation_snapshot-1.parquet")


def test_new_kinds_in_each_users_list_drift_even_when_the_overall_mix_does_not_move():
    # even users swap their a-items for c-items, odd users start from c and get a: the population mix
    # is unchanged (TVD 0), but every new item is of a kind its user was not shown before
    before = _lists(lambda k: [0, 1, 2, 3, 4, 10, 11] if k % 2 == 0 else [20, 21, 22, 23, 24, 10, 11])
    after = _lists(lambda k: [20, 21, 22, 23, 24, 10, 11] if k % 2 == 0 else [0, 1, 2, 3, 4, 10, 11])
    result = measure_prediction_drift(before, after, ITEMS)
    assert result.values["category_tvd"] == 0.0
    assert result.values["new_category_share"] == 1.0
    assert result.failed and result.description.startswith("drifted: users' lists moved to new categories;")
    assert "new-category share 100.0% of 200 new items (threshold 30%)" in result.description


def test_the_share_counts_new_items_by_their_users_previous_kinds():
    # five items enter each list: three a (a kind the user had), two c (new): 2 of 5 = 40%
    after = _lists(lambda k: [5, 6, 7, 20, 21, 10, 11, 12, 13, 14])
    changes = list_changes(PREVIOUS, after, ITEMS)
    assert changes == {"users_compared": 40, "items_entered": 200, "new_category_share": pytest.approx(0.4),
                       "list_turnover": pytest.approx(1 - 5 / 15)}
    # the overall mix moved too: a 50% -> 30%, c 0% -> 20%
    result = measure_prediction_drift(PREVIOUS, after, ITEMS)
    assert result.values["category_tvd"] == pytest.approx(0.2)
    assert result.failed and "users' lists moved to new categories, category mix" in result.description


def test_only_users_in_both_snapshots_are_compared():
    newcomer = _lists(lambda k: [30, 31, 32], users=["u99"])
    after = pl.concat([PREVIOUS, newcomer])
    changes = list_changes(PREVIOUS, after, ITEMS)
    assert changes["users_compared"] == 40 and changes["items_entered"] == 0
    result = measure_prediction_drift(PREVIOUS, after, ITEMS)
    assert result.passed and "no list changed" in result.description
    assert result.values["new_category_share"] is None  # NaN (nothing entered) stored as None


def test_identical_snapshots_pass():
    result = measure_prediction_drift(PREVIOUS, PREVIOUS, ITEMS)
    assert result.passed and result.values["category_tvd"] == 0.0 and result.values["score_ks"] == 0.0
    assert result.values["coverage_previous"] == result.values["coverage_current"] == 10 / 40


def test_too_few_users_in_both_leaves_the_share_unjudged_but_the_mix_still_counts():
    few = USERS[: MIN_USERS_PER_SIDE - 1]
    before = _lists(lambda k: [0, 1, 2, 3, 4], users=few)
    after = _lists(lambda k: [20, 21, 22, 23, 24], users=few)
    result = measure_prediction_drift(before, after, ITEMS)
    assert result.failed and result.description.startswith("drifted: category mix;")
    reason = result.details["not_measured"]["new_category_share"]
    assert reason == f"{MIN_USERS_PER_SIDE - 1} user(s) in both snapshots (need {MIN_USERS_PER_SIDE})"


def test_scores_are_reported_not_judged():
    rescaled = PREVIOUS.with_columns(pl.col("score") * 100)
    result = measure_prediction_drift(PREVIOUS, rescaled, ITEMS)
    assert result.passed and result.values["score_ks"] == 1.0 and "score KS 1.000" in result.description
    other = measure_prediction_drift(PREVIOUS, rescaled.with_columns(pl.lit("ranker_model").alias("model")), ITEMS)
    assert other.values["score_ks"] is None
    assert "model changed (ease_model -> ranker_model)" in other.details["not_measured"]["score_ks"]


def test_nothing_to_compare_is_a_skip_with_the_reason():
    first = measure_prediction_drift(None, PREVIOUS, ITEMS)
    assert first.skipped and first.description == "no previous snapshot to compare with"
    empty = measure_prediction_drift(PREVIOUS.head(0), PREVIOUS, ITEMS)
    assert empty.skipped and "has 0 rows" in empty.description
    empty_now = measure_prediction_drift(PREVIOUS, PREVIOUS.head(0), ITEMS)
    assert empty_now.skipped and "the current one 0" in empty_now.description


def test_without_categories_it_skips_whether_or_not_scores_compare():
    no_categories = ITEMS.with_columns(pl.lit(None, dtype=pl.String).alias("category"))
    scores_only = measure_prediction_drift(PREVIOUS, PREVIOUS, no_categories)
    assert scores_only.skipped and not scores_only.passed
    assert scores_only.description.startswith("nothing comparable: the items have no categories")
    assert "score KS 0.000, reported only" in scores_only.description
    other_model = PREVIOUS.with_columns(pl.lit("popularity_model").alias("model"))
    neither = measure_prediction_drift(PREVIOUS, other_model, ITEMS.drop("category"))
    assert neither.skipped and "scores of different models are not on one scale" in neither.description


@pytest.mark.parametrize(("kw", "name"), [({"max_new_category_share": 1.5}, "max_new_category_share"),
                                          ({"max_category_tvd": -0.1}, "max_category_tvd"), ({"min_users": 0}, "min_users")])
def test_thresholds_are_checked(kw, name):
    with pytest.raises(ValueError, match=name):
        measure_prediction_drift(PREVIOUS, PREVIOUS, ITEMS, **kw)


def test_the_dagster_check_uses_the_calibrated_defaults_and_says_so():
    from recs_assets.defs.monitoring import PREDICTION_DRIFT_DESCRIPTION, PredictionDriftConfig

    config = PredictionDriftConfig()
    assert (config.max_new_category_share, config.max_category_tvd, config.min_users) == (
        MAX_NEW_CATEGORY_SHARE, MAX_CATEGORY_TVD, MIN_USERS_PER_SIDE)
    assert f"above {MAX_NEW_CATEGORY_SHARE:.0%} of the new items" in PREDICTION_DRIFT_DESCRIPTION
    assert f"more than {MAX_CATEGORY_TVD:g} (total variation)" in PREDICTION_DRIFT_DESCRIPTION
    assert "previous run" in PREDICTION_DRIFT_DESCRIPTION and "benchmarks/prediction_drift.py" in PREDICTION_DRIFT_DESCRIPTION


# ---------------------------------------------------------------------------------------------
# Replayed daily runs on the simulator
# ---------------------------------------------------------------------------------------------
SHIFT_DAY = 23


def _daily_pair(preset: str, shifted: bool) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(items, the snapshot of the run at the end of the day before the shift, the one at the end of the shift day)."""
    config = SimulatorConfig(preset=preset, seed=3, n_users=1_500, n_items=750, n_days=SHIFT_DAY + 1,
                             preference_shift_day=SHIFT_DAY if shifted else None)
    sim = simulate(config)
    ends = [dt.datetime.combine(config.start_date + dt.timedelta(days=d + 1), dt.time(), tzinfo=dt.UTC)
            for d in (SHIFT_DAY - 1, SHIFT_DAY)]
    return sim.items, *(snapshot_at(sim.events, sim.items, sim.users, end) for end in ends)


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["games", "fashion"])
def test_a_steady_shop_passes_and_the_shifted_one_fails_on_the_shift_day(preset):
    items, before, after = _daily_pair(preset, shifted=False)
    steady = measure_prediction_drift(before, after, items)
    assert steady.passed, steady.description
    items, before, after = _daily_pair(preset, shifted=True)
    moved = measure_prediction_drift(before, after, items)
    assert moved.failed and "users' lists moved to new categories" in moved.description, moved.description
    assert moved.values["new_category_share"] > steady.values["new_category_share"] + 0.05
    assert np.isfinite(moved.values["score_ks"])  # one model, one scale: reported


def test_the_dagster_check_compares_with_the_newest_kept_snapshot_and_yields_nothing_without_one(tmp_path):
    import dagster as dg

    from recs_assets.defs.monitoring import PredictionDriftConfig, prediction_drift_check
    from recs_assets.layout import HomeLayout
    from resources.home_folder import HomeFolder

    def run():
        return list(prediction_drift_check(dg.build_asset_check_context(), config=PredictionDriftConfig(),
                                           home=HomeFolder(path=str(tmp_path)), recommendation_snapshot=moved, items=ITEMS))

    moved = _lists(lambda k: [20, 21, 22, 23, 24, 10, 11, 12, 13, 14])
    assert run() == []  # no history yet: skipped (the reason goes to the run log)
    history = HomeLayout(tmp_path).snapshot_history
    history.mkdir(parents=True)
    moved.write_parquet(history / "recommendation_snapshot-20260901T000000000000.parquet")
    PREVIOUS.write_parquet(history / "recommendation_snapshot-20260902T000000000000.parquet")  # the newest: compared
    (result,) = run()
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert result.metadata["new_category_share"].value == 1.0
    assert result.description.endswith("vs recommendation_snapshot-20260902T000000000000.parquet")
