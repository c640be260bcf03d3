"""Automation is declared on the graph: a daily ingestion schedule, eager features and snapshots, weekly retraining."""

import dagster as dg

from recs_assets.definitions import build_definitions
from recs_assets.settings import Settings


def conditions(defs: dg.Definitions) -> dict[str, str | None]:
    graph = defs.resolve_asset_graph()
    return {
        key.to_user_string(): (graph.get(key).automation_condition.get_label() if graph.get(key).automation_condition else None)
        for key in graph.get_all_asset_keys()
    }


def test_each_stage_has_its_automation(tmp_path):
    defs = build_definitions(Settings(home=tmp_path, sim_users=50, sim_items=30, sim_days=10))
    found = conditions(defs)
    assert found["raw_events"] is None and found["events"] is None  # the schedule runs these
    assert found["user_features"] == found["recommendation_snapshot"] == "eager"
    assert found["als_model"] == found["ranker_model"] == found["train_test_split"] == "on_cron(0 3 * * 1, UTC)"


def test_the_daily_ingestion_schedule_targets_one_day_where_the_source_has_days(tmp_path):
    simulated = build_definitions(Settings(home=tmp_path, sim_users=50, sim_items=30, sim_days=10))
    schedule = simulated.resolve_schedule_def("daily_ingestion")
    assert schedule.cron_schedule == "0 1 * * *"
    assert simulated.resolve_job_def("ingest_and_validate").partitions_def is not None
    folder = tmp_path / "shop"
    folder.mkdir()
    batch = build_definitions(Settings(home=tmp_path, source="files", data_dir=folder))
    assert batch.resolve_schedule_def("daily_ingestion").cron_schedule == "0 1 * * *"
    assert batch.resolve_job_def("ingest_and_validate").partitions_def is None


def test_retraining_is_requested_once_per_failed_drift_result():
    from recs_assets.defs.automation import retraining_request

    assert retraining_request(None, None, None)[0] is False
    assert retraining_request("SUCCEEDED", 7, None) == (False, "latest drift check succeeded")
    assert retraining_request("FAILED", 7, None)[0] is True
    assert retraining_request("FAILED", 7, "7") == (False, "retraining already requested for this drift result")
    assert retraining_request("FAILED", 8, "7")[0] is True


def test_the_drift_sensor_and_retraining_job_are_declared(tmp_path):
    defs = build_definitions(Settings(home=tmp_path, sim_users=50, sim_items=30, sim_days=10))
    assert defs.resolve_sensor_def("retrain_on_drift").job_name == "retrain_models"
    job = defs.resolve_job_def("retrain_models")
    # Retraining rebuilds the models and everything downstream of them, never ingestion.
    groups = {defs.resolve_assets_def(key).group_names_by_key[key] for key in job.asset_layer.executable_asset_keys}
    assert groups == {"training", "models", "evaluation", "serving"}
