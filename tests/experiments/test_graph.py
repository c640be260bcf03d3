"""Whole graph: the experiments and the report materialise on the simulator, and on the Open Bandit Dataset through `make run`."""

from __future__ import annotations

import polars as pl
import pytest

from recs_assets.cli import main, prepare_home, run_everything
from recs_assets.layout import HomeLayout
from recs_assets.settings import Settings
from recs_assets.storage import read_table
from tests.conftest import datasets_dir

pytestmark = pytest.mark.slow
EXPERIMENT_TABLES = ("ab_test_results", "offline_online_agreement", "bandit_simulation", "off_policy_estimates", "stakeholder_report")


def test_a_simulator_run_materialises_the_experiments_and_the_report(home):
    settings = Settings(home=home, sim_users=1_000, sim_items=300, sim_days=21)
    prepare_home(settings)
    result, _ = run_everything(settings)
    assert result.success
    built = {e.event_specific_data.materialization.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert set(EXPERIMENT_TABLES) <= built
    ab = read_table(settings.lake_dir, "ab_test_results")
    assert ab["status"][0] == "ok" and set(ab["decision"]) <= {"ship", "don't ship", "inconclusive"}
    assert read_table(settings.lake_dir, "off_policy_estimates")["estimator"].to_list() == ["IPS", "SNIPS", "DM", "DR"]
    report = read_table(settings.lake_dir, "stakeholder_report").row(0, named=True)
    html = (HomeLayout(home).reports / "stakeholder_report.html").read_text()
    assert report["decision"] == ab["decision"][0] and report["decision"].upper() in html


def test_the_open_bandit_source_runs_through_make_run_with_off_policy_estimates(home, monkeypatch, capsys):
    folder = datasets_dir() / "open-bandit-dataset"
    if not folder.is_dir():
        pytest.skip(f"{folder} not present")
    monkeypatch.setenv("RECS_SOURCE", "open_bandit")
    monkeypatch.setenv("RECS_DATA_DIR", str(folder))
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert "off_policy_estimates" in out
    lake = HomeLayout(home).lake
    ope = read_table(lake, "off_policy_estimates")
    assert ope["status"][0] == "ok" and ope["truth"][0] == pytest.approx(0.0069)
    ab = read_table(lake, "ab_test_results")
    assert ab["status"][0] == "not applicable" and "no simulator" in ab["reason"][0]
    markdown = (HomeLayout(home).reports / "stakeholder_report.md").read_text()
    assert "not applicable" in markdown and "DR" in markdown
