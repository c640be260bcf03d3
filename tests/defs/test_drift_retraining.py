"""A shop whose tastes shift: the run warns about the drift (exit 0) and the sensor then asks for retraining, once.

The run builds what the drift check reads (events, items, users and what they come from) with every check on
them: the check needs the drift benchmark's scale (3,000 users), and the models after it play no part here
(whole-graph runs, warnings included, are tests/defs/test_pipeline.py and test_exit_codes.py).
"""

from __future__ import annotations

import dagster as dg
import pytest

from recs_assets.cli import run_everything, summarize
from recs_assets.defs.automation import retrain_on_drift
from recs_assets.definitions import build_definitions
from recs_assets.settings import Settings

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("shift_day, fires", [(23, True), (None, False)], ids=["shifted", "steady"])
def test_the_drift_warning_and_the_retraining_request(home, shift_day, fires):
    # The scale of the drift benchmark's calibration (3,000 users, 30 days; a shift from day 23).
    settings = Settings(home=home, sim_users=3_000, sim_items=1_500, sim_days=30, sim_seed=3, sim_shift_day=shift_day)
    defs = build_definitions(settings)
    upstream = dg.AssetSelection.assets("events", "items", "users").upstream().required_multi_asset_neighbors()
    result, planned = run_everything(settings, asset_selection=upstream.resolve(defs.resolve_asset_graph()))
    assert "events" in planned and not any(name.endswith("_model") for name in planned)
    report, ok = summarize(result, planned, settings, 0.0)
    drift = next(c for c in result.get_asset_check_evaluations() if c.check_name == "feature_drift_check")
    assert drift.passed is not fires and ok  # a drift alarm is a warning: the run still succeeds
    assert ("WARN events.feature_drift_check" in report) is fires
    with dg.build_sensor_context(instance=dg.DagsterInstance.get()) as context:
        first = retrain_on_drift(context)
        assert isinstance(first, dg.RunRequest) is fires
        if fires:
            assert first.tags["recs/trigger"] == "feature_drift"
            assert isinstance(retrain_on_drift(context), dg.SkipReason)  # once per drift result
