"""An operator's guarantees: one run per home at a time, and a killed run cleaned up by the next one."""

import subprocess
import uuid
import sys

import dagster as dg
import mlflow
import pytest

from recs_assets.cli import EXIT_BUSY, LAUNCHER, LAUNCHER_TAG, PID_TAG, main, prepare_home, recover_killed_runs
from recs_assets.home_lock import HomeBusy, HomeLock, process_is_alive
from recs_assets.settings import Settings
from recs_assets.tracking import EXPERIMENT, ORPHAN_TAG, RUN_TAG, evaluated_version, tracking_uri


def test_a_second_lock_on_the_same_home_is_refused_with_the_holder_named(home):
    with HomeLock(home):
        with pytest.raises(HomeBusy, match=r"another run is using the home folder .*pid \d+, started 20"):
            HomeLock(home).acquire()
    # Released on exit: the next run gets it.
    with HomeLock(home):
        pass


def test_a_killed_holder_never_leaves_a_stale_lock(home):
    # A child takes the lock and is killed with SIGKILL: the kernel drops the lock with the process.
    child = subprocess.Popen(
        [sys.executable, "-c", f"from recs_assets.home_lock import HomeLock; import time; HomeLock({str(home)!r}).acquire(); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(HomeBusy):
            HomeLock(home).acquire()
    finally:
        child.kill()
        child.wait()
    assert not process_is_alive(child.pid)
    with HomeLock(home):
        pass


def test_make_run_on_a_busy_home_exits_with_the_busy_code_and_says_why(home, monkeypatch, capsys):
    monkeypatch.setenv("RECS_SIM_USERS", "50")
    with HomeLock(home):
        assert main(["run"]) == EXIT_BUSY
    assert "not started: another run is using the home folder" in capsys.readouterr().err


def _stale_run(instance: dg.DagsterInstance, tags: dict[str, str]) -> dg.DagsterRun:
    """A run record left STARTED, as a `kill -9` mid-run leaves it."""
    run = instance.add_run(dg.DagsterRun(job_name="materialize_everything", run_id=str(uuid.uuid4()), tags=tags,
                                         status=dg.DagsterRunStatus.STARTED))
    return run


def test_a_killed_run_is_marked_failed_its_mlflow_runs_closed_and_its_versions_tagged_orphan(home):
    settings = Settings(home=home)
    prepare_home(settings)
    instance = dg.DagsterInstance.get()
    ours = _stale_run(instance, {LAUNCHER_TAG: LAUNCHER, PID_TAG: "999999"})
    theirs = _stale_run(instance, {})  # a UI run: Dagster's own monitoring owns it
    client = mlflow.MlflowClient(tracking_uri(home))
    experiment = client.get_experiment_by_name(EXPERIMENT).experiment_id
    parent = client.create_run(experiment, tags={RUN_TAG: ours.run_id})
    child = client.create_run(experiment, tags={"mlflow.parentRunId": parent.info.run_id})
    client.create_registered_model("ease_model")
    good = client.create_model_version("ease_model", "file:///tmp/x", run_id=None, tags={RUN_TAG: "an-earlier-run", "stage": "evaluated"})
    orphan = client.create_model_version("ease_model", "file:///tmp/y", run_id=None, tags={RUN_TAG: ours.run_id, "stage": "evaluated"})

    assert recover_killed_runs(instance, home) == [ours.run_id]

    assert instance.get_run_by_id(ours.run_id).status == dg.DagsterRunStatus.FAILURE
    assert instance.get_run_by_id(theirs.run_id).status == dg.DagsterRunStatus.STARTED
    assert client.get_run(parent.info.run_id).info.status == "KILLED"
    assert client.get_run(child.info.run_id).info.status == "KILLED"
    assert "was killed" in client.get_model_version("ease_model", orphan.version).tags[ORPHAN_TAG]
    assert ORPHAN_TAG not in client.get_model_version("ease_model", good.version).tags
    # The orphan is never promoted, even though it is the newest graded version.
    assert evaluated_version(client, "ease_model", None) == int(good.version)
    # Done once: a second start finds nothing left to recover.
    assert recover_killed_runs(instance, home) == []


def test_the_gate_promotes_this_runs_version_not_a_newer_one_from_another_run(home):
    prepare_home(Settings(home=home))
    client = mlflow.MlflowClient(tracking_uri(home))
    client.create_registered_model("als_model")
    mine = client.create_model_version("als_model", "file:///tmp/a", tags={RUN_TAG: "run-a", "stage": "evaluated"})
    client.create_model_version("als_model", "file:///tmp/b", tags={RUN_TAG: "run-b", "stage": "evaluated"})
    client.create_model_version("als_model", "file:///tmp/c", tags={RUN_TAG: "run-a", "stage": "refit"})
    assert evaluated_version(client, "als_model", "run-a") == int(mine.version)
    # Without a version of its own (the models were not refitted in this run): the newest graded one, never a refit.
    assert evaluated_version(client, "als_model", "run-z") == 2
    with pytest.raises(ValueError, match="lasso_model has no registered graded version"):
        client.create_registered_model("lasso_model")
        evaluated_version(client, "lasso_model", "run-a")
