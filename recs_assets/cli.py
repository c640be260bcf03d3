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
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    from recs_assets.tracking import ensure_experiment

    ensure_experiment(settings.home)


def run_everything(settings: Settings, *, quiet: bool = True, job_name: str | None = None):
    """Materialise every asset (all partitions in one run) and its checks.

    Returns the run result and the names of the assets the run was meant to build.
    """
    import dagster as dg

    from recs_assets.definitions import EVERYTHING_JOB, build_definitions

    from recs_assets.tracking import ensure_experiment

    # Before dagster-mlflow's resource sets the experiment: otherwise MLflow writes ./mlruns wherever this runs.
    ensure_experiment(settings.home)
    defs = build_definitions(settings)
    job = defs.resolve_job_def(job_name or EVERYTHING_JOB)
    raw = defs.resolve_assets_def("raw_events")
    tags = {}
    if raw.partitions_def is not None:
        keys = raw.partitions_def.get_partition_keys()
        tags = {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}
    # The full event log is in the UI; the console shows only the summary below.
    run_config = {"loggers": {"console": {"config": {"log_level": "CRITICAL" if quiet else "INFO"}}}}
    if settings.protocol:
        run_config["ops"] = {"train_test_split": {"config": {"protocol": settings.protocol}}}
    result = job.execute_in_process(
        instance=dg.DagsterInstance.get(), tags=tags, run_config=run_config, raise_on_error=False
    )
    planned = sorted(key.to_user_string() for key in job.asset_layer.executable_asset_keys)
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
    if "model_version" in metadata and "fit_seconds" in metadata:
        return f"fitted in {metadata['fit_seconds'].value:.1f} s  (registered version {metadata['model_version'].value})"
    rows = metadata.get("rows")
    return f"{rows.value:>12,} rows" if rows is not None else ""


def leaderboard_lines(board) -> list[str]:
    """The leaderboard as a few aligned lines: the primary metric with its 95% interval and the evaluable users."""
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
        versus = f"  p vs popularity {shown}" if vs is not None and row["model"] != "popularity" else ""
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
    started = time.perf_counter()
    try:
        result, planned = run_everything(settings)
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
