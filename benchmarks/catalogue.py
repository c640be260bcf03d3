"""Catalogue-size benchmark: does cost grow with the data or with the catalogue? 5k, 50k and 200k items.

Two parts, each run in fresh processes so a peak memory figure belongs to one run alone:

- pipeline: `python -m recs_assets.cli run` (what `make run` runs) on the simulator with about 1M
  events (RECS_SIM_USERS=10000, RECS_SIM_ITEMS=<size>), RECS_HOME in a fresh temporary folder per
  run. Wall time, and peak RSS of the whole process tree (the sum over the CLI and every child it
  starts, polled from /proc every 0.2 s; shared pages count once per process, so it errs high).
- models: each candidate generator alone on the same simulated data (the user x item interactions
  `make run` trains on): fit time, time to recommend 50 items to 1,000 users, and the process's
  peak RSS (max RSS, including the data and Python itself; `data MB` is the same without a model).

Medians of --repeats runs (default 1: a 200k-item pipeline run is long).

    .venv/bin/python benchmarks/catalogue.py                             # both parts, 5k/50k/200k
    .venv/bin/python benchmarks/catalogue.py --part models
    .venv/bin/python benchmarks/catalogue.py --part pipeline --sizes 5000
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

CHECKOUT = Path(__file__).resolve().parents[1]
SIZES = (5_000, 50_000, 200_000)
USERS = 10_000  # with 30 days, about 1M events whatever the catalogue size
MODELS = ("popularity", "item_knn", "ease", "als", "bpr")
RECOMMEND_USERS = 1_000
RECOMMEND_N = 50  # what each generator proposes to the re-ranker
CHILD_TIMEOUT_S = 1_800


def machine() -> str:
    from machine import describe  # benchmarks/machine.py, beside this script

    return describe()


# --- peak RSS of a process tree, from /proc ---------------------------------------------------------


def _tree_rss_bytes(root: int) -> int:
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            parents[int(entry)] = int(fields[1])
            rss[int(entry)] = int(Path(f"/proc/{entry}/statm").read_text().split()[1]) * page
        except (OSError, ValueError, IndexError):
            continue  # the process ended while we looked
    total, stack = 0, [root]
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def run_tree(command: list[str], env: dict[str, str], log: Path, timeout_s: float) -> dict:
    """Run a command; return its wall time, exit code and the peak summed RSS of it and its children."""
    started = time.perf_counter()
    with open(log, "w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=CHECKOUT)
        peak = 0
        while process.poll() is None:
            peak = max(peak, _tree_rss_bytes(process.pid))
            if time.perf_counter() - started > timeout_s:
                process.kill()
                process.wait()
                break
            time.sleep(0.2)
    return {"seconds": time.perf_counter() - started, "rc": process.returncode, "peak_rss_mb": peak / 2**20}


def pipeline(sizes: list[int], repeats: int, users: int) -> None:
    from recs_assets.layout import HomeLayout
    print(f"\npipeline: python -m recs_assets.cli run, simulator {users:,} users x 30 days, median of {repeats}")
    header = f"{'items':>8} {'wall s':>9} {'peak tree RSS MB':>17}  {'exit codes'}"
    print(header)
    print("-" * len(header))
    for size in sizes:
        runs = []
        for repeat in range(repeats):
            with tempfile.TemporaryDirectory(prefix=f"recs_catalogue_{size}_") as home:
                env = {
                    **os.environ,
                    "RECS_HOME": home,
                    "DAGSTER_HOME": str(HomeLayout(Path(home)).dagster),
                    "RECS_SIM_USERS": str(users),
                    "RECS_SIM_ITEMS": str(size),
                    "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "1"),
                }
                log = Path(tempfile.gettempdir()) / f"recs_catalogue_{size}_{repeat}.log"
                runs.append(run_tree([sys.executable, "-m", "recs_assets.cli", "run"], env, log, CHILD_TIMEOUT_S * 2))
        seconds = statistics.median(r["seconds"] for r in runs)
        rss = statistics.median(r["peak_rss_mb"] for r in runs)
        codes = ",".join(str(r["rc"]) for r in runs)
        print(f"{size:>8,} {seconds:>9.1f} {rss:>17,.0f}  {codes}  (log: {log})", flush=True)


# --- pure models ---------------------------------------------------------------------------------------


def interactions_file(size: int, users: int, folder: Path) -> Path:
    """The user x item interactions `make run` trains on, for one catalogue size (simulated once)."""
    path = folder / f"interactions_{users}x{size}.parquet"
    if path.exists():
        return path
    from recs_assets.features import DEFAULT_INTERACTION_PARAMS
    from recs_assets.features.sql_runner import run_sql
    from recs_assets.sources.simulator import SimulatorConfig, simulate

    events = simulate(SimulatorConfig(n_users=users, n_items=size, n_days=30)).events
    interactions = run_sql("user_item_interactions", {"events": events}, {"cutoff": None, **DEFAULT_INTERACTION_PARAMS})
    interactions.select("user_id", "item_id", "strength").write_parquet(path)
    print(f"{size:,} items: {events.height:,} simulated events, {interactions.height:,} user-item pairs", flush=True)
    return path


def _peak_rss_mb() -> float:
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork + exec.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def model_once(model_name: str, path: str) -> dict:
    import numpy as np
    import polars as pl

    interactions = pl.read_parquet(path)
    data_mb = _peak_rss_mb()
    from recs_assets.models import MODELS as CLASSES

    model = CLASSES[model_name]()
    started = time.perf_counter()
    model.fit(interactions)
    fit_s = time.perf_counter() - started
    users = np.sort(interactions["user_id"].unique().to_numpy())[:RECOMMEND_USERS].tolist()
    started = time.perf_counter()
    model.recommend(users, RECOMMEND_N)
    recommend_s = time.perf_counter() - started
    return {
        "pairs": interactions.height,
        "items": model.n_items,
        "fit_s": fit_s,
        "recommend_s": recommend_s,
        "data_mb": data_mb,
        "peak_rss_mb": _peak_rss_mb(),
        "fit_notes": model.fit_notes,
    }


def models(sizes: list[int], repeats: int, users: int, names: list[str]) -> None:
    print(
        f"\nmodels: fit, then recommend {RECOMMEND_N} items to {RECOMMEND_USERS:,} users; simulator {users:,} users "
        f"x 30 days; median of {repeats}, each in a fresh process"
    )
    header = (
        f"{'items':>8} {'trained':>8} {'pairs':>10} {'model':<11} {'fit s':>8} {'recommend s':>12} "
        f"{'data MB':>8} {'peak RSS MB':>12}  notes"
    )
    print(header)
    print("-" * len(header))
    env = {**os.environ, "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "1")}
    with tempfile.TemporaryDirectory(prefix="recs_catalogue_models_") as folder:
        for size in sizes:
            path = interactions_file(size, users, Path(folder))
            for name in names:
                runs = []
                for _ in range(repeats):
                    out = subprocess.run(
                        [sys.executable, __file__, "--child", name, str(path)],
                        capture_output=True, text=True, env=env, timeout=CHILD_TIMEOUT_S,
                    )
                    if out.returncode != 0:
                        print(f"{size:>8,} {'':>8} {'':>10} {name:<11} failed: {out.stderr.strip().splitlines()[-1:]}")
                        break
                    runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
                if not runs:
                    continue
                fit = statistics.median(r["fit_s"] for r in runs)
                rec = statistics.median(r["recommend_s"] for r in runs)
                rss = statistics.median(r["peak_rss_mb"] for r in runs)
                data = statistics.median(r["data_mb"] for r in runs)
                notes = runs[0]["fit_notes"].get("ease_mode", "")
                print(
                    f"{size:>8,} {runs[0]['items']:>8,} {runs[0]['pairs']:>10,} {name:<11} {fit:>8.2f} {rec:>12.2f} "
                    f"{data:>8,.0f} {rss:>12,.0f}  {notes}",
                    flush=True,
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["pipeline", "models", "both"], default="both")
    parser.add_argument("--sizes", nargs="+", type=int, default=list(SIZES), help="catalogue sizes (items)")
    parser.add_argument("--users", type=int, default=USERS)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(CHECKOUT))
        print(json.dumps(model_once(*args.child)))
        return
    print(f"machine: {machine()}")
    print(f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '1')}")
    if args.part in ("models", "both"):
        models(args.sizes, args.repeats, args.users, args.models)
    if args.part in ("pipeline", "both"):
        pipeline(args.sizes, args.repeats, args.users)


if __name__ == "__main__":
    main()
