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

    defs = build_definitions(settings)
    job = defs.resolve_job_def(job_name or EVERYTHING_JOB)
    raw = defs.resolve_assets_def("raw_events")
    tags = {}
    if raw.partitions_def is not None:
        keys = raw.partitions_def.get_partition_keys()
        tags = {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}
    # The full event log is in the UI; the console shows only the summary below.
    run_config = {"loggers": {"console": {"config": {"log_level": "CRITICAL" if quiet else "INFO"}}}}
    result = job.execute_in_process(
        instance=dg.DagsterInstance.get(), tags=tags, run_config=run_config, raise_on_error=False
    )
    planned = sorted(key.to_user_string() for key in job.asset_layer.executable_asset_keys)
    return result, planned


def _headline(metadata) -> str:
    """What a person wants to see first: rows for a table; the held-out score and version for a model."""
    if "champion" in metadata:
        promoted = "promoted" if metadata["promoted"].value else "kept"
        return f"{metadata['champion'].value} ({promoted})"
    if "ndcg@10" in metadata:
        version = metadata.get("model_version")
        shown = f"ndcg@10 {metadata['ndcg@10'].value:.4f}"
        return shown + (f"  (registered version {version.value})" if version is not None else "")
    rows = metadata.get("rows")
    return f"{rows.value:>12,} rows" if rows is not None else ""


def summarize(result, planned: list[str], settings: Settings, seconds: float) -> tuple[str, bool]:
    """A short, plain report of the run: rows per asset, checks, failures, where the outputs are."""
    lines = [f"Run {result.run_id} on source '{settings.source}' in {seconds:.1f} s", "", "Assets:"]
    # A partitioned asset reports once per partition with the same whole-run metadata: show it once.
    seen: dict[str, tuple[str, int]] = {}
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        name = mat.asset_key.to_user_string()
        seen[name] = (_headline(mat.metadata), seen.get(name, ("", 0))[1] + 1)
    for name, (headline, count) in seen.items():
        partitions = f"  in {count} daily partitions" if count > 1 else ""
        lines.append(f"  {name:<24} {headline}{partitions}")
    checks = result.get_asset_check_evaluations()
    failed_checks = [c for c in checks if not c.passed]
    lines += ["", f"Checks: {len(checks) - len(failed_checks)} passed, {len(failed_checks)} failed"]
    for check in checks:
        mark = "PASS" if check.passed else "FAIL"
        lines.append(f"  {mark} {check.asset_key.to_user_string()}.{check.check_name}: {check.description or ''}")
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
    lines += [
        "",
        f"Outputs:   {settings.home}",
        f"  lake       {settings.lake_dir}",
        f"  warehouse  {settings.warehouse_path}  (one view per asset)",
        f"  dagster    {settings.dagster_home}  (browse with `make ui`)",
    ]
    ok = result.success and not failed_checks
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
    report, ok = summarize(result, planned, settings, time.perf_counter() - started)
    print(report)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
