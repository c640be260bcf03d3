"""Ingest benchmark: throughput (events/s) and peak memory from raw simulated events to the validated warehouse.

Each measurement runs in a fresh process so peak memory (max RSS) belongs to that run alone. Two figures:
- staging: the pure `split_events` step (cast, de-duplicate, Pandera rules, quarantine) on events in memory;
- end to end: the `ingest_and_validate` job (simulate, write daily raw partitions, items, users, stage,
  all five checks) through Dagster into a temporary home, as `make run` runs it.
Prints a table with the median of --runs runs.

    .venv/bin/python benchmarks/ingest.py            # 1M and 10M events, 3 runs each
    .venv/bin/python benchmarks/ingest.py --scales 1m --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Scale name -> simulator knobs; about 3.3 events per user and day with the games preset.
SCALES = {
    "1m": {"sim_users": 10_000, "sim_items": 5_000, "sim_days": 30},
    "10m": {"sim_users": 100_000, "sim_items": 20_000, "sim_days": 30},
}


from machine import describe  # noqa: E402  (benchmarks/machine.py, beside this script)


def measure_staging(knobs: dict) -> dict:
    from datetime import UTC, datetime

    from recs_assets.definitions import build_source
    from recs_assets.settings import Settings
    from recs_assets.validation.quarantine import split_events
    from recs_assets.validation.schemas import events_schema

    source = build_source(Settings(home=Path(tempfile.gettempdir()), **knobs))
    raw, items, users = source.load_raw_events(), source.load_items(), source.load_users()
    schema = events_schema(
        item_ids=items["item_id"], user_ids=users["user_id"], latest_event_at=datetime.now(UTC)
    )
    started = time.perf_counter()
    split = split_events(raw, schema)
    seconds = time.perf_counter() - started
    return {"events": raw.height, "seconds": seconds, "clean": split.clean.height}


def measure_end_to_end(knobs: dict) -> dict:
    from recs_assets.cli import prepare_home, run_everything
    from recs_assets.definitions import INGEST_JOB
    from recs_assets.settings import Settings

    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home), **knobs)
        prepare_home(settings)
        started = time.perf_counter()
        result, _ = run_everything(settings, job_name=INGEST_JOB)
        seconds = time.perf_counter() - started
        if not result.success:
            raise SystemExit("the run failed")
        raw = next(
            e.event_specific_data.materialization.metadata["rows"].value
            for e in result.get_asset_materialization_events()
            if e.event_specific_data.materialization.asset_key.to_user_string() == "raw_events"
        )
    return {"events": raw, "seconds": seconds}


def child(kind: str, scale: str) -> None:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    figures = (measure_staging if kind == "staging" else measure_end_to_end)(SCALES[scale])
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", nargs="+", default=list(SCALES), choices=list(SCALES))
    parser.add_argument("--kinds", nargs="+", default=["staging", "end_to_end"], choices=["staging", "end_to_end"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    print(f"machine: {describe()}")
    print(f"median of {args.runs} runs, each in a fresh process\n")
    header = f"{'scale':<6} {'measure':<11} {'events':>12} {'seconds':>9} {'events/s':>12} {'peak RSS MB':>12}"
    print(header)
    print("-" * len(header))
    for scale in args.scales:
        for kind in args.kinds:
            runs = []
            for _ in range(args.runs):
                out = subprocess.run(
                    [sys.executable, __file__, "--child", kind, scale], capture_output=True, text=True, check=True
                )
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            seconds = statistics.median(r["seconds"] for r in runs)
            rss = statistics.median(r["peak_rss_mb"] for r in runs)
            events = runs[0]["events"]
            print(f"{scale:<6} {kind:<11} {events:>12,} {seconds:>9.2f} {events / seconds:>12,.0f} {rss:>12,.0f}", flush=True)


if __name__ == "__main__":
    main()
