"""`make run`'s executors: the job is rebuilt from the run's own settings wherever a step runs."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from recs_assets.cli import prepare_home, run_everything, settings_fields, settings_from_fields
from recs_assets.settings import Settings


def test_settings_survive_the_trip_through_plain_values(tmp_path):
    settings = Settings(home=tmp_path / "h", source="files", data_dir=tmp_path, sim_users=7,
                        sim_start_date=date(2025, 1, 31), sim_shift_day=3, csv_delimiter="\t", engine="spark")
    fields = settings_fields(settings)
    assert all(v is None or isinstance(v, (str, int, float)) for v in fields.values())
    assert fields["home"] == str(tmp_path / "h") and fields["sim_start_date"] == "2025-01-31"
    back = settings_from_fields(fields)
    assert back == settings and isinstance(back.home, Path) and isinstance(back.sim_start_date, date)


def test_an_unknown_executor_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match="executor must be one of in_process, multiprocess; got 'threads'"):
        run_everything(Settings(home=tmp_path / "h"), executor="threads")
    assert not (tmp_path / "h").exists()


@pytest.mark.slow
def test_a_step_in_its_own_process_builds_into_the_runs_home_not_the_environments(home, tmp_path, monkeypatch):
    # Every whole-graph test runs the default in-process executor. Here each step is a new process that
    # rebuilds the job: one that read the environment would write into this decoy home instead.
    decoy = tmp_path / "decoy"
    monkeypatch.setenv("RECS_HOME", str(decoy))
    settings = Settings(home=home, sim_users=60, sim_items=30, sim_days=5)
    prepare_home(settings)
    result, planned = run_everything(settings, asset_selection=[dg.AssetKey("items")], executor="multiprocess")
    assert result.success and planned == ["items"]
    built = {e.event_specific_data.materialization.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert built == {"items"}
    assert {c.check_name: c.passed for c in result.get_asset_check_evaluations()} == {"items_match_schema": True}
    assert (settings.lake_dir / "items.parquet").exists() and not decoy.exists()
