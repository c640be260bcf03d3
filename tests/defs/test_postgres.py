"""PostgreSQL as the Dagster instance's storage (RECS_POSTGRES_URL) and MLflow's backend store (RECS_MLFLOW_TRACKING_URI).

The test starts its own throwaway server (initdb in a temporary folder, loopback only, a free port)
and stops it at the end; nothing outside that folder is touched.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from recs_assets.settings import Settings

pytestmark = pytest.mark.postgres

PG_BIN = Path(os.environ.get("RECS_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _unavailable() -> str | None:
    if not (PG_BIN / "initdb").is_file() or not (PG_BIN / "postgres").is_file():
        return f"PostgreSQL server binaries not found in {PG_BIN} (set RECS_PG_BIN)"
    try:
        import dagster_postgres  # noqa: F401
        import psycopg2  # noqa: F401
    except ImportError:
        return "dagster-postgres / psycopg2 not installed (pip install -e '.[postgres]')"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and no 'postgres' user to run the server as (PostgreSQL refuses root)"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_server():
    """A PostgreSQL server for this module: a function creating a fresh database and giving its URL."""
    reason = _unavailable()
    if reason:
        pytest.skip(reason)
    import psycopg2

    # PostgreSQL refuses to run as root: as root, the server runs as the package's own `postgres` user,
    # in a folder of its own (pytest's tmp_path is private to root).
    as_user = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="recs_pg_"))
    data = folder / "data"
    if as_user:
        os.chown(folder, as_user.pw_uid, as_user.pw_gid)
    run_as = {"user": as_user.pw_uid, "group": as_user.pw_gid, "extra_groups": []} if as_user else {}
    server = None
    try:
        subprocess.run(
            [str(PG_BIN / "initdb"), "-D", str(data), "-U", "recs", "--auth=trust", "-E", "UTF8", "--no-sync"],
            check=True, capture_output=True, **run_as,
        )
        port = _free_port()
        server = subprocess.Popen(
            [str(PG_BIN / "postgres"), "-D", str(data), "-p", str(port), "-c", "listen_addresses=127.0.0.1",
             "-c", "unix_socket_directories=", "-c", "fsync=off"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **run_as,
        )
        url = f"postgresql://recs@127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = psycopg2.connect(f"{url}/postgres", connect_timeout=2)
                break
            except psycopg2.OperationalError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"PostgreSQL did not start: {server.stderr.read().decode()[-2000:]}") from None
                time.sleep(0.2)
        conn.autocommit = True

        def database(name: str) -> str:
            with conn.cursor() as cursor:
                cursor.execute(f"create database {name}")
            return f"{url}/{name}"

        yield database
        conn.close()
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGINT)  # "fast shutdown": ends sessions, then exits
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        shutil.rmtree(folder, ignore_errors=True)


def test_a_materialisation_is_stored_in_postgres_and_read_back(postgres_server, home, monkeypatch):
    import dagster as dg
    import psycopg2
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

    from recs_assets.cli import prepare_home

    url = postgres_server("dagster")
    monkeypatch.setenv("RECS_POSTGRES_URL", url)
    # MLflow on PostgreSQL too, in its own database (both have a `runs` table).
    monkeypatch.setenv("RECS_MLFLOW_TRACKING_URI", postgres_server("mlflow_of_dagster"))
    settings = Settings.from_env()
    prepare_home(settings)
    config = (settings.dagster_home / "dagster.yaml").read_text()
    assert "postgresql+psycopg2" in config and "sqlite" not in config

    @dg.asset
    def answer() -> int:
        return 42

    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        result = dg.materialize([answer], instance=instance)
        assert result.success
        run_id = result.run_id
    # A fresh instance on the same database sees the run and the materialisation.
    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as again:
        run = again.get_run_by_id(run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
        event = again.get_latest_materialization_event(dg.AssetKey("answer"))
        assert event is not None and event.run_id == run_id
    # And it is PostgreSQL that holds it, not a file in the home.
    assert not list(settings.dagster_home.rglob("*.db"))
    with psycopg2.connect(url) as conn, conn.cursor() as cursor:
        cursor.execute("select status from runs where run_id = %s", (run_id,))
        assert cursor.fetchone() == ("SUCCESS",)


def test_mlflow_runs_are_stored_in_postgres_and_read_back(postgres_server, home, monkeypatch):
    import mlflow

    from recs_assets.tracking import EXPERIMENT, artifact_root, ensure_experiment, tracking_uri

    monkeypatch.setenv("RECS_MLFLOW_TRACKING_URI", postgres_server("mlflow"))
    uri = tracking_uri(home)
    assert uri.startswith("postgresql+psycopg2://recs@127.0.0.1:")
    experiment_id = ensure_experiment(home)
    client = mlflow.MlflowClient(uri)
    run = client.create_run(experiment_id, tags={"stage": "test"})
    client.log_param(run.info.run_id, "factors", "64")
    client.log_metric(run.info.run_id, "ndcg_at_10", 0.25)
    client.set_terminated(run.info.run_id)

    again = mlflow.MlflowClient(tracking_uri(home))
    stored = again.get_run(run.info.run_id)
    assert stored.data.params == {"factors": "64"} and stored.data.metrics == {"ndcg_at_10": 0.25}
    assert again.get_experiment_by_name(EXPERIMENT).artifact_location.startswith(artifact_root(home).as_uri())
    assert not (home / "mlflow.db").exists()
