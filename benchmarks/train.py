"""Training benchmark: fit time and peak memory of every model, and our ALS wrapper against raw implicit.

Each (dataset, model) fit runs in a fresh process so its peak memory (max RSS, which includes loading
the data and Python itself) belongs to it alone. Prints a table with the median of --runs runs; `items`
is the catalogue the models trained on (see benchmarks/catalogue.py for 5k-200k item catalogues).

    .venv/bin/python benchmarks/train.py                                  # ml-100k and 1M simulated events
    .venv/bin/python benchmarks/train.py --datasets sim_1m --runs 1
    .venv/bin/python benchmarks/train.py --ml100k ../shared/datasets/ml-100k
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
DEFAULT_ML100K = os.environ.get("RECS_DATASETS_DIR", str(CHECKOUT.parent / "shared" / "datasets")) + "/ml-100k"
MODELS = ("popularity", "item_knn", "ease", "als", "bpr", "session_knn", "gru4rec", "content", "two_tower", "als_raw_implicit")
# Models that also read the catalogue (category, brand, price, condition, title): given the items table.
WITH_ATTRIBUTES = ("content", "two_tower")


from machine import describe  # noqa: E402  (benchmarks/machine.py, beside this script)


def interactions_for(dataset: str, ml100k: str, table: str = "user_item_interactions"):
    from recs_assets.features import DEFAULT_INTERACTION_PARAMS
    from recs_assets.features.sql_runner import run_sql

    if dataset == "ml100k":
        from recs_assets.sources import movielens

        events = movielens.load_raw_events(Path(ml100k)).drop("_source", "_line", "_parse_error", "_raw_line")
    else:
        from recs_assets.sources.simulator import SimulatorConfig, simulate

        events = simulate(SimulatorConfig(n_users=10_000, n_items=5_000, n_days=30)).events
    return run_sql(table, {"events": events}, {"cutoff": None, **DEFAULT_INTERACTION_PARAMS})


def items_for(dataset: str, ml100k: str):
    if dataset == "ml100k":
        from recs_assets.sources import movielens

        return movielens.load_items(Path(ml100k))
    from recs_assets.sources.simulator import SimulatorConfig, simulate

    return simulate(SimulatorConfig(n_users=10_000, n_items=5_000, n_days=30)).items


def fit_once(dataset: str, model_name: str, ml100k: str) -> dict:
    interactions = interactions_for(dataset, ml100k)
    if model_name == "als_raw_implicit":
        # The same matrix and hyper-parameters handed straight to implicit: the wrapper's overhead is the rest.
        import numpy as np
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        from recs_assets.models import ALSRecommender
        from recs_assets.models.inputs import interaction_matrix

        defaults = ALSRecommender()
        matrix, *_ = interaction_matrix(interactions)
        n_items = matrix.shape[1]
        confidence = matrix.astype(np.float32)
        confidence.data = 1.0 + np.float32(defaults.alpha) * confidence.data
        # Only implicit's own fit is timed; the wrapper's time includes building the matrix from the table.
        started = time.perf_counter()
        with threadpool_limits(1, "blas"):
            AlternatingLeastSquares(
                factors=defaults.factors, regularization=defaults.regularization, alpha=1.0,
                iterations=defaults.iterations, random_state=defaults.seed, num_threads=defaults.num_threads,
            ).fit(confidence, show_progress=False)
        seconds = time.perf_counter() - started
    else:
        from recs_assets.models import MODELS as CLASSES

        extra = {"item_attributes": items_for(dataset, ml100k)} if model_name in WITH_ATTRIBUTES else {}
        if getattr(CLASSES[model_name], "uses_sequences", False):
            # Session models also learn from the visits in order, as in the pipeline.
            extra["sequences"] = interactions_for(dataset, ml100k, "session_sequences")
        started = time.perf_counter()
        n_items = CLASSES[model_name]().fit(interactions, **extra).n_items
        seconds = time.perf_counter() - started
    return {
        "pairs": interactions.height,
        "items": n_items,
        "seconds": seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["ml100k", "sim_1m"], choices=["ml100k", "sim_1m"])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ml100k", default=DEFAULT_ML100K)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(fit_once(*args.child, args.ml100k)))
        return

    print(f"machine: {describe()}")
    print(f"median of {args.runs} runs, each in a fresh process; OPENBLAS_NUM_THREADS=1\n")
    header = f"{'dataset':<8} {'model':<17} {'pairs':>10} {'items':>8} {'fit s':>8} {'peak RSS MB':>12}"
    print(header)
    print("-" * len(header))
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    for dataset in args.datasets:
        medians = {}
        for model in args.models:
            runs = []
            for _ in range(args.runs):
                out = subprocess.run(
                    [sys.executable, __file__, "--child", dataset, model, "--ml100k", args.ml100k],
                    capture_output=True, text=True, check=True, env=env,
                )
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            seconds = statistics.median(r["seconds"] for r in runs)
            medians[model] = seconds
            rss = statistics.median(r["peak_rss_mb"] for r in runs)
            print(
                f"{dataset:<8} {model:<17} {runs[0]['pairs']:>10,} {runs[0]['items']:>8,} {seconds:>8.2f} {rss:>12,.0f}",
                flush=True,
            )
        if "als" in medians and "als_raw_implicit" in medians:
            print(f"{dataset:<8} ALS wrapper / raw implicit: {medians['als'] / medians['als_raw_implicit']:.2f}x")


if __name__ == "__main__":
    main()
