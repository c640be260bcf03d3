"""BPR's step schedule: NDCG@10 and fit time of (learning_rate, iterations) pairs, by data size.

    .venv/bin/python benchmarks/bpr_schedule.py --data ml100k sim:2000x1000 sim:30000x5000
    .venv/bin/python benchmarks/bpr_schedule.py --data sim:100000x5000 --schedules 0.002x500 0.003x300

BPR's fit time is its iterations (each samples as many triples as there are pairs), so the defaults in
`models/bpr.py` are the cheapest schedule that scores as well as the slower ones. The splits are the
quality tests' (tests/models/test_quality.py): on the simulator (games preset, 30 days) the last 7
days are the truth, items new to the user; on MovieLens 100k a seeded random 25% of each user's
ratings. One fit per cell (BPR with one thread replays exactly, so only the time varies).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

_CHECKOUT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_CHECKOUT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe  # noqa: E402  (benchmarks/machine.py, beside this script)

from recs_assets.evaluation import evaluate  # noqa: E402
from recs_assets.models import BPRRecommender, PopularityRecommender  # noqa: E402
from tests.models.test_quality import movielens_holdout, simulator_holdout  # noqa: E402  (the quality tests' splits)

DEFAULT_SCHEDULES = ("0.001x1000", "0.002x500", "0.003x300", "0.005x200", "0.01x100")


def ndcg_at_10(model, train: pl.DataFrame, truth: pl.DataFrame) -> tuple[float, float]:
    start = time.perf_counter()
    model.fit(train)
    seconds = time.perf_counter() - start
    users = truth["user_id"].unique().sort().to_list()
    ids, _ = model.recommend(users, 10)
    recs = pl.DataFrame(
        {"user_id": np.repeat(users, 10), "item_id": ids.ravel(), "rank": np.tile(np.arange(1, 11), len(users))},
        schema={"user_id": pl.String, "item_id": pl.String, "rank": pl.Int64},
    )
    return evaluate(recs, truth, 10)["ndcg@10"], seconds


def schedule(text: str) -> tuple[float, int]:
    rate, _, iterations = text.partition("x")
    try:
        return float(rate), int(iterations)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a schedule is LEARNING_RATExITERATIONS, e.g. 0.002x500; got {text!r}") from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["ml100k", "sim:2000x1000", "sim:10000x2000", "sim:30000x5000"],
                        help="ml100k, or sim:USERSxITEMS")
    parser.add_argument("--ml100k", type=Path, default=_CHECKOUT.parent / "shared" / "datasets" / "ml-100k")
    parser.add_argument("--schedules", nargs="+", type=schedule, default=[schedule(s) for s in DEFAULT_SCHEDULES])
    args = parser.parse_args()
    print(describe())
    print(f"{'data':>18} {'pairs':>8} {'schedule':>12} {'ndcg@10':>8} {'fit s':>7}")
    for name in args.data:
        if name == "ml100k":
            train, truth = movielens_holdout(args.ml100k)
        elif name.startswith("sim:"):
            users, _, items = name[4:].partition("x")
            train, truth = simulator_holdout(int(users), int(items))
        else:
            parser.error(f"unknown --data {name!r}: ml100k or sim:USERSxITEMS")
        score, seconds = ndcg_at_10(PopularityRecommender(), train, truth)
        print(f"{name:>18} {train.height:>8} {'popularity':>12} {score:>8.4f} {seconds:>7.1f}", flush=True)
        for rate, iterations in args.schedules:
            score, seconds = ndcg_at_10(BPRRecommender(learning_rate=rate, iterations=iterations), train, truth)
            print(f"{name:>18} {train.height:>8} {f'{rate}x{iterations}':>12} {score:>8.4f} {seconds:>7.1f}", flush=True)


if __name__ == "__main__":
    main()
