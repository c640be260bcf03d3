"""The whole graph, end to end, in a temporary home: on the simulator, and on a folder of bad files."""

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import mlflow
import pandas as pd
import polars as pl
import pytest

from recs_assets.cli import main, prepare_home, run_everything
from recs_assets.settings import Settings
from recs_assets.tracking import EXPERIMENT, tracking_uri

# Each test materialises the graph: the fast lane (make test-fast) leaves them out.
pytestmark = pytest.mark.slow

CHECKOUT = Path(__file__).resolve().parents[2]
TINY = dict(sim_users=150, sim_items=80, sim_days=24)


def run(settings: Settings):
    prepare_home(settings)
    result, _ = run_everything(settings)
    return result


def checks_by_name(result) -> dict[str, object]:
    return {c.check_name: c for c in result.get_asset_check_evaluations()}


def test_the_whole_graph_materialises_on_a_tiny_simulator(home):
    settings = Settings(home=home, **TINY)
    result = run(settings)
    assert result.success
    checks = checks_by_name(result)
    assert set(checks) == {
        "items_match_schema", "users_match_schema", "events_match_schema",
        "events_reconcile_with_raw", "events_invalid_share_within_limit", "champion_beats_baseline",
        "recommendation_snapshot_is_servable", "feature_drift_check", "zero_result_rate_check", "serving_freshness_check",
    }
    assert all(c.passed for c in checks.values())
    # On a first run there is no previous snapshot and no traffic: those checks are skipped, with a reason.
    from recs_assets.cli import skipped_checks

    skipped = dict(skipped_checks(result, set(checks)))
    # The tiny shop logs too few searches a week to judge its query mix.
    assert set(skipped) == {"prediction_drift_check", "serving_health_check", "query_distribution_check"}
    assert "no previous snapshot" in skipped["prediction_drift_check"] and "no traffic" in skipped["serving_health_check"]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        tables = {name for (name,) in conn.sql("show tables").fetchall()}
        raw_days = conn.sql("select count(distinct partition_key) from raw_events").fetchone()[0]
        raw_rows, clean_rows = conn.sql("select (select count(*) from raw_events), (select count(*) from events)").fetchone()
    assert {"raw_events", "items", "users", "events", "events_quarantine"} <= tables
    assert {"user_item_interactions", "user_features", "user_category_affinity", "item_features",
            "session_sequences", "user_sequences"} <= tables
    assert raw_days == TINY["sim_days"]
    assert raw_rows == clean_rows > 0  # the simulator writes no bad rows
    # MLflow: one run per model, nested under the Dagster run's run, and a registered version each.
    from recs_assets.models import MODELS

    generators = set(MODELS)
    models = {f"{name}_model" for name in generators} | {"ranker_model"}
    client = mlflow.MlflowClient(tracking_uri(home))
    runs = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
    model_runs = [r for r in runs if r.info.run_name in models]
    assert sorted(r.info.run_name for r in model_runs) == sorted(models)
    assert all(r.data.tags.get("mlflow.parentRunId") for r in model_runs)
    assert all("ndcg_at_10" in r.data.metrics and "fit_seconds" in r.data.metrics for r in model_runs)
    versions = {m.name: client.search_model_versions(f"name='{m.name}'") for m in client.search_registered_models()}
    assert set(versions) == models | {"search_ranker_model"}
    graded = {name: [v.version for v in vs if v.tags.get("stage") == "evaluated"] for name, vs in versions.items()}
    assert graded == {name: [1] for name in models | {"search_ranker_model"}}
    champion = pl.read_parquet(home / "lake" / "champion_model.parquet").row(0, named=True)
    served = pl.read_parquet(home / "lake" / "served_model.parquet").row(0, named=True)
    # The refit: every generator (and the ranker, when it is the champion) registered again, tagged with
    # the graded version it stands for; the snapshot names the served version and the graded one.
    refits = {name: [v for v in vs if v.tags.get("stage") == "refit"] for name, vs in versions.items()}
    # Only what serves is refitted: the ranker's whole pipeline, or the champion, the "more like this"
    # model and the live-visit model; the others are marked not refitted.
    refitted = {g for g in generators if refits[f"{g}_model"]}
    assert all(len(refits[f"{g}_model"]) == 1 for g in refitted)
    if champion["champion"] == "ranker":
        assert refitted == generators
    else:
        assert champion["champion"] in refitted and len(refitted) <= 3
        assert all((home / "models" / f"refit_{g}_model" / "NOT_TRAINED").exists() for g in generators - refitted)
    champion_refit = refits[champion["registered_model"]]
    if served["refitted"]:
        (refit_version,) = champion_refit
        assert int(refit_version.version) == served["version"] != served["evaluated_version"] == champion["version"]
        assert refit_version.tags["refit_of"] == f"{champion['registered_model']} v{champion['version']}"
        assert float(refit_version.tags["gated_score"]) == pytest.approx(champion["score"])
        aliases = client.get_registered_model(champion["registered_model"]).aliases
        assert int(aliases["production"]) == served["version"] and int(aliases["champion"]) == champion["version"]
    # The refit learned from the test window the graded models never saw, so it recommends differently.
    from recs_assets.models.lists import recommend_frame
    from recs_assets.models.storage import load_model_folder

    served_generator = "popularity" if champion["champion"] == "ranker" else champion["champion"]
    graded, refit = (load_model_folder(home / "models" / f"{prefix}{served_generator}_model") for prefix in ("", "refit_"))
    split = pl.read_parquet(home / "lake" / "train_test_split.parquet")
    assert refit._seen_rows(refit._lookup(list(refit.user_ids), refit._users_index())).nnz > \
        graded._seen_rows(graded._lookup(list(graded.user_ids), graded._users_index())).nnz
    users = sorted(set(graded.user_ids) & set(refit.user_ids))[:50]
    assert not recommend_frame(graded, users, 10).equals(recommend_frame(refit, users, 10))
    assert split.filter(pl.col("split") == "test").height > 0
    snapshot = pl.read_parquet(home / "lake" / "recommendation_snapshot.parquet")
    assert snapshot["model_version"].unique().to_list() == [served["version"]]
    assert snapshot["evaluated_version"].unique().to_list() == [champion["version"]]
    assert not list(home.parent.glob("**/mlruns")), "MLflow wrote outside the home folder"
    # A registered recommender loads as an MLflow model and answers with top-N lists.
    loaded = mlflow.pyfunc.load_model("models:/als_model/1")
    answer = loaded.predict(pd.DataFrame({"user_id": ["u000001"]}), params={"N": 5})
    assert list(answer.columns) == ["user_id", "item_id", "rank", "score"] and len(answer) == 5
    # The champion alias sits on exactly one registered model, the leaderboard's winner.
    holders = [name for name in models if "champion" in client.get_registered_model(name).aliases]
    champion = pl.read_parquet(home / "lake" / "champion_model.parquet").row(0, named=True)
    assert holders == [champion["registered_model"]]
    board = pl.read_parquet(home / "lake" / "model_leaderboard.parquet")
    # Every leaderboard number carries its interval, its users and the protocol's reason.
    assert board["ndcg@10_ci_low"].is_not_null().all() and (board["ndcg@10_ci_low"] <= board["ndcg@10"]).all()
    assert board["protocol_reason"].is_not_null().all() and (board["evaluable_users"] > 0).all()
    assert checks["champion_beats_baseline"].passed
    parent = next(r for r in runs if r.info.run_name == "materialize_everything")
    assert parent.data.tags["champion"].startswith(champion["registered_model"])
    assert "model_leaderboard.json" in [a.path for a in client.list_artifacts(parent.info.run_id)]
    # Everything went to the temporary home; nothing into the checkout or the working directory.
    assert {p.name for p in home.iterdir()} >= {"lake", "warehouse.duckdb", "dagster", "models", "mlflow.db", "mlflow"}
    assert not (CHECKOUT / "mlruns").exists() and not (Path.cwd() / "mlruns").exists()


def test_rematerialising_replaces_rather_than_appends(home):
    """The landed and cleaned events, built twice in one home, hold each event once (the whole graph run twice
    in one home is test_exit_codes.py's warning test)."""
    import dagster as dg

    from recs_assets.definitions import build_definitions

    settings = Settings(home=home, **TINY)
    prepare_home(settings)
    selection = dg.AssetSelection.assets("events").upstream().required_multi_asset_neighbors()
    keys = selection.resolve(build_definitions(settings).resolve_asset_graph())
    counts = []
    for _ in range(2):
        result, _ = run_everything(settings, asset_selection=keys)
        assert result.success
        with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
            counts.append(conn.sql("select (select count(*) from raw_events), (select count(distinct event_id) from raw_events), "
                                   "(select count(*) from events)").fetchone())
    assert counts[0] == counts[1] and counts[0][0] == counts[0][1] == counts[0][2] > 0


def test_dagster_definitions_validate(home):
    env = {**os.environ, "RECS_SIM_USERS": "50", "RECS_SIM_ITEMS": "30", "RECS_SIM_DAYS": "3"}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=CHECKOUT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def write_bad_folder(folder: Path) -> None:
    """A user's folder with every kind of bad event row, plus good items and users."""
    folder.mkdir()
    (folder / "items.csv").write_text("item_id,title,category,price,is_active\ni1,Shoes,sneakers,50,true\ni2,Dress,dresses,30,false\n")
    (folder / "users.csv").write_text("user_id,signup_at,country,segment\nu1,2026-01-01T00:00:00Z,FR,new\nu2,2026-02-01,DE,regular\n")
    header = "event_id,event_at,user_id,session_id,item_id,event_type,price,value"
    lines = [
        "e1,2026-09-01T10:00:00Z,u1,s1,i1,view,50,",
        "e2,2026-09-01T10:01:00Z,u1,s1,i1,purchase,50,",
        "e3,2026-09-01T10:02:00Z,,,i1,view,50,",  # neither a user nor a session (an anonymous event needs its session)
        "e4,2026-09-01T10:03:00Z,u1,s1,i1,teleport,50,",  # unknown event type
        "e5,2026-09-01T10:04:00Z,u1,s1,i1,view,-50,",  # negative price
        "e6,not-a-time,u1,s1,i1,view,50,",  # unparseable timestamp
        "e7,2099-01-01T00:00:00Z,u1,s1,i1,view,50,",  # far future
        "e2,2026-09-01T10:05:00Z,u2,s2,i2,view,30,",  # reused id, other content
        "e2,2026-09-01T10:01:00Z,u1,s1,i1,purchase,50,",  # exact duplicate
        "e8,2026-09-01T10:06:00Z,u1,s1,i1,view,fifty,",  # price not a number
        "e9,2026-09-01T10:07:00Z,u1,s1,i404,view,50,",  # unknown item
        "e10,2026-09-01T10:08",  # truncated line
        "e11,2026-09-01T10:09:00Z,u2,s3,,search,,",
    ]
    (folder / "events.csv").write_text("\n".join([header, *lines]) + "\n")


def test_a_folder_of_bad_events_is_quarantined_row_by_row_and_reconciles(home, tmp_path):
    folder = tmp_path / "shop"
    write_bad_folder(folder)
    settings = Settings(home=home, source="files", data_dir=folder)
    result = run(settings)
    checks = checks_by_name(result)
    assert checks["events_reconcile_with_raw"].passed
    assert checks["events_reconcile_with_raw"].description.startswith("raw 13 = clean 3 + quarantined 9 + duplicates 1")
    assert "source records 13, raw rows account for 13" in checks["events_reconcile_with_raw"].description
    assert checks["events_match_schema"].passed
    # 9 of 12 distinct rows is far over the 5% limit: the batch is judged broken and stops here.
    assert not checks["events_invalid_share_within_limit"].passed
    quarantine = pl.read_parquet(home / "lake" / "events_quarantine.parquet")
    by_line = dict(zip(quarantine["_line"], quarantine["_reason"]))
    assert "user_id and session_id are both missing" in by_line[3]
    assert "event_type not one of" in by_line[4]
    assert "price is negative" in by_line[5]
    assert "event_at: 'not-a-time' is not a valid timestamp" in by_line[6]
    assert "event_at in the future" in by_line[7]
    assert "event_id 'e2' already used" in by_line[8]
    assert "price: 'fifty' is not a valid number" in by_line[10]
    assert "item_id not found in items" in by_line[11]
    truncated = quarantine.filter(pl.col("_line") == 12).row(0, named=True)
    assert truncated["_reason"] == "line 13: expected 8 columns, found 2 (missing columns)"
    assert truncated["_raw_line"] == "e10,2026-09-01T10:08"


@pytest.mark.parametrize(
    ("file", "content", "failed_asset", "message"),
    [
        ("events.csv", "", "raw_events", "empty"),
        ("events.csv", "event_id,event_at,user_id,event_type\n", "raw_events", "no data rows"),
        ("events.csv", "event_id,event_at,event_type\ne1,2026-09-01,view\n", "raw_events", "user_id"),
        ("items.csv", "item_id,price\ni1,50\ni2,free\n", "items", "line 3: price: 'free' is not a valid number"),
        ("users.csv", "user_id,signup_at\nu1,someday\n", "users", "signup_at: 'someday' is not a valid timestamp"),
    ],
    ids=["empty-events", "header-only-events", "events-missing-column", "items-bad-price", "users-bad-time"],
)
def test_an_unusable_file_fails_the_run_with_a_clear_message_and_no_traceback(
    home, tmp_path, capsys, monkeypatch, file, content, failed_asset, message
):
    folder = tmp_path / "shop"
    write_bad_folder(folder)
    (folder / file).write_text(content)
    monkeypatch.setenv("RECS_SOURCE", "files")
    monkeypatch.setenv("RECS_DATA_DIR", str(folder))
    assert main(["run"]) == 1
    out = capsys.readouterr()
    assert f"{failed_asset} could not be loaded" in out.out and message in out.out
    assert "Traceback" not in out.out + out.err
    # events are never built from a broken batch or against a broken catalogue.
    assert "Not built (an upstream step or a blocking check failed):" in out.out
    assert "events, events_quarantine" in out.out
