"""`make run`: materialise the whole asset graph headless and print what was built.

Runs go into the same Dagster instance as `make ui`, so everything built here can be browsed there.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

from recs_assets.settings import Settings

_CHECKOUT = Path(__file__).resolve().parents[1]


def prepare_home(settings: Settings) -> None:
    """Create the home folder and put the project's dagster.yaml in the instance folder."""
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    template = _CHECKOUT / "dagster.yaml"
    if template.exists():
        shutil.copyfile(template, settings.dagster_home / "dagster.yaml")
    if settings.postgres_url is not None:
        write_postgres_instance(settings.dagster_home / "dagster.yaml", settings.postgres_url)
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    from recs_assets.tracking import ensure_experiment

    ensure_experiment(settings.home)


def write_postgres_instance(path: Path, url: str) -> None:
    """Point the instance's runs, event logs and schedules at PostgreSQL (the rest of dagster.yaml kept)."""
    import yaml

    from recs_assets.settings import postgres_parts

    config = yaml.safe_load(path.read_text()) if path.exists() else {}
    parts = postgres_parts(url)
    if not parts["password"]:
        del parts["password"]  # libpq then reads PGPASSWORD (or ~/.pgpass): no secret in the file
    # psycopg2 named outright: SQLAlchemy 2.1 picks psycopg 3 by default ("No module named 'psycopg'").
    config["storage"] = {"postgres": {"postgres_db": {**parts, "scheme": "postgresql+psycopg2"}}}
    path.write_text(yaml.safe_dump(config, sort_keys=False))


# Tags on the runs this command launches, so the next one can tell its own dead runs from the UI's.
LAUNCHER_TAG, LAUNCHER = "recs/launcher", "cli"
PID_TAG = "recs/pid"
# Exit code for "the home is busy with another run": try again later (sysexits' EX_TEMPFAIL).
EXIT_BUSY = 75


def recover_killed_runs(instance, home: Path) -> list[str]:
    """Runs this command started that never finished (the process was killed): marked failed, MLflow cleaned.

    Called with the home's lock held, so no run of ours can still be alive: any of them still STARTED
    died. Each is marked FAILURE in Dagster with the reason, its MLflow runs are closed as KILLED and its
    registry versions tagged orphan (never promoted). Returns the recovered run ids.
    """
    import dagster as dg

    from recs_assets.tracking import close_killed_run

    alive = (dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.NOT_STARTED)
    recovered = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=list(alive))):
        if run.tags.get(LAUNCHER_TAG) != LAUNCHER:
            continue  # launched by the UI or a daemon: Dagster's own run monitoring owns it
        reason = f"run {run.run_id} (pid {run.tags.get(PID_TAG, '?')}) was killed before it finished"
        instance.report_run_failed(run, message=f"{reason}; marked failed by the next `make run`")
        close_killed_run(home, run.run_id, reason)
        recovered.append(run.run_id)
    return recovered


# How the run's steps execute. "in_process": one after another in this process; "multiprocess": each step
# in its own process (at most `max_concurrent` at a time), which frees its memory when it ends but pays
# the imports (torch, mlflow, ...) again for every step.
EXECUTORS = ("in_process", "multiprocess")


def settings_fields(settings: Settings) -> dict:
    """The settings as plain values (str, int, float, None): what a reconstructable job can carry."""
    import dataclasses

    return {f.name: (v.isoformat() if hasattr(v, "isoformat") else str(v) if isinstance(v, Path) else v)
            for f in dataclasses.fields(settings) for v in [getattr(settings, f.name)]}


def settings_from_fields(fields: dict) -> Settings:
    import dataclasses
    from datetime import date

    kinds = {f.name: str(f.type) for f in dataclasses.fields(Settings)}
    values = {}
    for name, value in fields.items():
        if value is not None and "Path" in kinds[name]:
            value = Path(value)
        elif value is not None and kinds[name].startswith("date"):
            value = date.fromisoformat(value)
        values[name] = value
    return Settings(**values)


def job_from_fields(fields: dict, job_name: str):
    """The named job of the definitions these settings build (Dagster calls this to rebuild the job in
    each step's process; in-process it is called once)."""
    from recs_assets.definitions import build_definitions

    return build_definitions(settings_from_fields(fields)).resolve_job_def(job_name)


def run_everything(settings: Settings, *, quiet: bool = True, job_name: str | None = None,
                   asset_selection=None, executor: str = "in_process", max_concurrent: int = 1):
    """Materialise every asset (all partitions in one run) and its checks, holding the home's lock.

    `asset_selection` (asset keys) narrows the run to those assets and their checks. Refuses (HomeBusy)
    when another run is using the same home. Returns the run result and the names of the assets the run
    was meant to build.
    """
    from recs_assets.home_lock import HomeLock

    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}; got {executor!r}")
    with HomeLock(settings.home):
        return _run_locked(settings, quiet=quiet, job_name=job_name, asset_selection=asset_selection,
                           executor=executor, max_concurrent=max_concurrent)


def _run_locked(settings: Settings, *, quiet: bool, job_name: str | None, asset_selection, executor: str,
                max_concurrent: int):
    import dagster as dg

    from recs_assets.definitions import EVERYTHING_JOB, build_definitions

    from recs_assets.tracking import ensure_experiment

    # Before dagster-mlflow's resource sets the experiment: otherwise MLflow writes ./mlruns wherever this runs.
    ensure_experiment(settings.home)
    defs = build_definitions(settings)
    job = defs.resolve_job_def(job_name or EVERYTHING_JOB)
    raw = defs.resolve_assets_def("raw_events")
    instance = dg.DagsterInstance.get()
    for run_id in recover_killed_runs(instance, settings.home):
        print(f"note: an earlier run ({run_id}) was killed before it finished; it is now marked failed", file=sys.stderr)
    tags = {LAUNCHER_TAG: LAUNCHER, PID_TAG: str(os.getpid())}
    if raw.partitions_def is not None:
        keys = raw.partitions_def.get_partition_keys()
        tags |= {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}
    # The full event log is in the UI; the console shows only the summary below.
    run_config = {"loggers": {"console": {"config": {"log_level": "CRITICAL" if quiet else "INFO"}}}}
    if settings.protocol:
        run_config["ops"] = {"train_test_split": {"config": {"protocol": settings.protocol}}}
    # Through execute_job, not job.execute_in_process: the latter keeps every step's output in memory
    # for the caller (11 GB at 10M events); here each output lives in the lake and is read back when needed.
    run_config["execution"] = {"config": {executor: {"max_concurrent": max_concurrent} if executor == "multiprocess" else {}}}
    recon = dg.build_reconstructable_job(
        "recs_assets.cli", "job_from_fields", reconstructable_kwargs={"fields": settings_fields(settings),
                                                                     "job_name": job.name},
    )
    keys = list(asset_selection) if asset_selection is not None else None
    result = dg.execute_job(recon, instance, run_config=run_config, tags=tags, raise_on_error=False,
                            asset_selection=keys)
    planned = sorted(key.to_user_string() for key in (keys or job.asset_layer.executable_asset_keys))
    return result, planned


def skipped_checks(result, evaluated: set[str]) -> list[tuple[str, str]]:
    """Checks that ran but reported nothing (Dagster shows them SKIPPED), with the reason they logged."""
    import dagster as dg

    reasons = {}
    for entry in dg.DagsterInstance.get().all_logs(result.run_id):
        message = entry.user_message or ""
        if entry.step_key and message.startswith("skipped: "):
            reasons[entry.step_key] = message.removeprefix("skipped: ")
    return [(step, reason) for step, reason in sorted(reasons.items()) if step not in evaluated]


def _headline(metadata) -> str:
    """What a person wants to see first: rows for a table; fit time and version for a model."""
    if "champion" in metadata:
        promoted = "promoted" if metadata["promoted"].value else "kept"
        return f"{metadata['champion'].value} ({promoted})"
    if "serves" in metadata:
        return f"serves {metadata['serves'].value}, refit of {metadata['refit_of'].value}"
    if "model_version" in metadata and "fit_seconds" in metadata:
        return f"fitted in {metadata['fit_seconds'].value:.1f} s  (registered version {metadata['model_version'].value})"
    rows = metadata.get("rows")
    if rows is None and "note" in metadata:
        return metadata["note"].value
    return f"{rows.value:>12,} rows" if rows is not None else ""


def leaderboard_lines(board) -> list[str]:
    """The leaderboard as a few aligned lines: the primary metric with its 95% interval, the evaluable users and
    the relative lift over popularity ("+10.6%") with its paired test's p-value."""
    metric = next((c for c in board.columns if c.startswith("ndcg@")), None)
    if metric is None or board.height == 0:
        return []
    protocol = board["protocol"][0] if "protocol" in board.columns else "?"
    reason = board["protocol_reason"][0] if "protocol_reason" in board.columns else None
    lines = ["", f"Leaderboard ({protocol} split{'; ' + reason if reason else ''}):"]
    low, high = f"{metric}_ci_low", f"{metric}_ci_high"
    for row in board.iter_rows(named=True):
        ci = f"  [{row[low]:.4f}, {row[high]:.4f}]" if low in row and row[low] is not None else ""
        users = f"  {row['users']:,} users" if row.get("users") is not None else ""
        vs = row.get("p_vs_popularity")
        shown = "<0.001" if vs is not None and vs < 0.001 else f"{vs:.3g}" if vs is not None else ""
        lift = row.get("lift_vs_popularity")
        against = f"{100 * lift:+.1f}% vs popularity (p {shown})" if lift is not None and lift == lift else f"p vs popularity {shown}"
        versus = f"  {against}" if vs is not None and row["model"] != "popularity" else ""
        lines.append(f"  {row['model']:<12} {metric} {row[metric]:.4f}{ci}{users}{versus}")
    return lines


def check_mark(check) -> str:
    """PASS, SKIP (passed without anything to check), WARN (a failed warning-level check) or FAIL."""
    if check.passed:
        return "SKIP" if check.metadata.get("skipped") is not None else "PASS"
    return "FAIL" if is_fatal(check) else "WARN"


def is_fatal(check, strict: bool = False) -> bool:
    """A failed check stops the run's exit code when it is blocking (or in strict mode, always)."""
    return not check.passed and (strict or bool(check.blocking))


def summarize(result, planned: list[str], settings: Settings, seconds: float, strict: bool = False) -> tuple[str, bool]:
    """A short, plain report of the run: rows per asset, checks, failures, where the outputs are."""
    lines = [f"Run {result.run_id} on source '{settings.source}' in {seconds:.1f} s", "", "Assets:"]
    # A partitioned asset reports once per partition with the same whole-run metadata: show it once.
    seen: dict[str, tuple[str, int]] = {}
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        name = mat.asset_key.to_user_string()
        seen[name] = (_headline(mat.metadata), seen.get(name, ("", 0))[1] + 1)
    width = max((len(name) for name in seen), default=24)
    for name, (headline, count) in seen.items():
        partitions = f"  in {count} daily partitions" if count > 1 else ""
        lines.append(f"  {name:<{width}} {headline}{partitions}")
    if "model_leaderboard" in seen:
        from recs_assets.storage import read_table

        lines += leaderboard_lines(read_table(settings.lake_dir, "model_leaderboard"))
    checks = result.get_asset_check_evaluations()
    marks = [check_mark(c) for c in checks]
    counts = {mark: marks.count(mark) for mark in ("PASS", "SKIP", "WARN", "FAIL")}
    counts["SKIP"] += len(skipped_checks(result, {c.check_name for c in checks}))
    lines += ["", "Checks: " + ", ".join(f"{n} {label}" for label, n in zip(("passed", "skipped", "warned", "failed"), counts.values()))]
    for check, mark in zip(checks, marks):
        lines.append(f"  {mark} {check.asset_key.to_user_string()}.{check.check_name}: {check.description or ''}")
    for name, reason in skipped_checks(result, {c.check_name for c in checks}):
        lines.append(f"  SKIP {name}: {reason}")
    fatal_checks = [c for c in checks if is_fatal(c, strict)]
    step_failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    if step_failures:
        lines += ["", "Failed steps:"]
        for event in step_failures:
            error = event.event_specific_data.error
            cause = error.cause if error and error.cause else error
            lines.append(f"  {event.step_key}: {cause.message.strip() if cause else 'failed'}")
    not_built = [name for name in planned if name not in seen]
    if not_built:
        lines.append(f"Not built (an upstream step or a blocking check failed): {', '.join(not_built)}")
    if not seen:
        lines += ["", "Nothing was built."]
        return "\n".join(lines + ["Exit 1: a step failed"]), False
    lines += [
        "",
        f"Outputs:   {settings.home}",
        f"  lake       {settings.lake_dir}",
        f"  warehouse  {settings.warehouse_path}  (one view per asset)",
        f"  dagster    {settings.dagster_home}  (browse with `make ui`)",
    ]
    ok = result.success and not fatal_checks
    if not ok:
        lines.append("Exit 1: " + ("a blocking check failed" if fatal_checks else "a step failed")
                     + ("" if not strict else " (RECS_STRICT=1: warnings count as failures)"))
    return "\n".join(lines), ok


def quiet_libraries() -> None:
    """Keep the console to the summary: MLflow's progress bars, notices and warnings are in its own UI."""
    import logging
    import warnings

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    import mlflow  # noqa: F401  (it sets up its loggers on import; quieten them after)

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"mlflow(\..*)?$")
    warnings.filterwarnings("ignore", module=r"dagster_mlflow(\..*)?$")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    quiet_libraries()
    if argv not in ([], ["run"], ["prepare"]):
        print("usage: python -m recs_assets.cli [run|prepare]", file=sys.stderr)
        return 2
    try:
        settings = Settings.from_env()
    except ValueError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    prepare_home(settings)
    if argv == ["prepare"]:
        return 0
    from recs_assets.home_lock import HomeBusy

    started = time.perf_counter()
    try:
        result, planned = run_everything(settings)
    except HomeBusy as error:
        print(f"not started: {error}", file=sys.stderr)
        return EXIT_BUSY
    except (ValueError, FileNotFoundError) as error:
        # Raised while building the graph (e.g. a source folder that does not exist).
        print(f"could not build the asset graph: {error}", file=sys.stderr)
        return 1
    strict = os.environ.get("RECS_STRICT", "").strip() in ("1", "true", "yes")
    report, ok = summarize(result, planned, settings, time.perf_counter() - started, strict=strict)
    print(report)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
