"""Session benchmark: next-item quality of the session models against popularity and item-kNN (last item).

1. The session protocol (recs_assets/evaluation/session_protocol.py) on the simulator, games and fashion:
   temporal split (the last 7 days held out), half the visits made without an account (keyed by
   session, as staging keys anonymous shoppers), every next item of each held-out visit predicted from
   the visit so far; HR@20 and MRR@20 with 95% bootstrap intervals over visits, by segment.
2. Next-item on MovieLens 100k user sequences, leave-last-out by time: each user's last rating is the
   target, everything before it (the ratings in time order) the prefix and the training data.

    .venv/bin/python benchmarks/sessions.py
    .venv/bin/python benchmarks/sessions.py --users 10000 --ml100k ../shared/datasets/ml-100k
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

CHECKOUT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(CHECKOUT))
DEFAULT_ML100K = os.environ.get("RECS_DATASETS_DIR", str(CHECKOUT.parent / "shared" / "datasets")) + "/ml-100k"
MODELS = ("popularity", "item_knn", "session_knn", "gru4rec")

from machine import describe  # noqa: E402  (benchmarks/machine.py, beside this script)

from recs_assets.contract import ANONYMOUS_USER_PREFIX  # noqa: E402
from recs_assets.evaluation.session_protocol import CASE_SCHEMA, evaluate_sessions, grade_sessions, model_session_lists  # noqa: E402
from recs_assets.features import DEFAULT_INTERACTION_PARAMS  # noqa: E402
from recs_assets.features.sql_runner import run_sql  # noqa: E402
from recs_assets.models import MODELS as CLASSES  # noqa: E402
from recs_assets.training.ranking_set import features_at, fit_generator  # noqa: E402
from recs_assets.training.splits import make_split  # noqa: E402


def fitted(known: dict) -> tuple[dict, dict]:
    models, seconds = {}, {}
    for name in MODELS:
        started = time.perf_counter()
        models[name] = fit_generator(CLASSES[name](), known["interactions"], known["item_features"],
                                     sequences=known["session_sequences"])
        seconds[name] = time.perf_counter() - started
    return models, seconds


def print_table(title: str, table: pl.DataFrame, seconds: dict, k: int) -> None:
    print(f"\n{title}")
    header = f"{'segment':<10} {'model':<12} {'visits':>7} {'preds':>7} {f'HR@{k}':>7} {'95% CI':>17} {f'MRR@{k}':>8} {'95% CI':>17} {'p vs pop':>9} {'fit s':>6}"
    print(header)
    print("-" * len(header))
    for r in table.iter_rows(named=True):
        p = r["p_vs_popularity"]
        print(f"{r['segment']:<10} {r['model']:<12} {r['sessions']:>7,} {r['predictions']:>7,} {r[f'hr@{k}']:>7.4f} "
              f"[{r[f'hr@{k}_ci_low']:.4f}, {r[f'hr@{k}_ci_high']:.4f}] {r[f'mrr@{k}']:>8.4f} "
              f"[{r[f'mrr@{k}_ci_low']:.4f}, {r[f'mrr@{k}_ci_high']:.4f}] {'-' if p is None else ('<0.001' if p < 0.001 else f'{p:.3f}'):>9} "
              f"{seconds.get(r['model'], float('nan')):>6.2f}")


def simulator(preset: str, n_users: int, anonymous_share: float, k: int) -> None:
    from recs_assets.sources.simulator import SimulatorConfig, simulate

    shop = simulate(SimulatorConfig(n_users=n_users, n_items=5_000, n_days=30, preset=preset))
    sessions = shop.events["session_id"].drop_nulls().unique().sort()
    anonymous = sessions.filter(pl.Series(np.random.default_rng(0).random(sessions.len()) < anonymous_share))
    events = shop.events.with_columns(
        pl.when(pl.col("session_id").is_in(anonymous.implode()))
        .then(pl.lit(ANONYMOUS_USER_PREFIX) + pl.col("session_id")).otherwise(pl.col("user_id")).alias("user_id")
    )
    split = make_split(events, "temporal", test_days=7)
    known = features_at(split.train, events, shop.items, shop.users, split.cutoff, DEFAULT_INTERACTION_PARAMS)
    models, seconds = fitted(known)
    table = evaluate_sessions(models, split, k=k, max_sessions=None)
    print_table(f"simulator {preset}: {n_users:,} users, 5,000 items, 30 days, {anonymous_share:.0%} of visits anonymous, "
                f"the last 7 days held out", table, seconds, k)


def movielens(path: str, k: int) -> None:
    from recs_assets.sources import movielens as ml

    events = ml.load_raw_events(Path(path)).drop("_source", "_line", "_parse_error", "_raw_line")
    items = ml.load_items(Path(path))
    ordered = events.sort("event_at", "event_id").with_columns(n=pl.int_range(pl.len()).over("user_id"),
                                                               total=pl.len().over("user_id"))
    last = ordered.filter(pl.col("n") == pl.col("total") - 1)
    train = ordered.filter(pl.col("n") < pl.col("total") - 1).drop("n", "total")
    params = {"cutoff": None, **DEFAULT_INTERACTION_PARAMS}
    interactions = run_sql("user_item_interactions", {"events": train}, params)
    item_features = run_sql("item_features", {"events": train, "items": items}, params)
    sequences = run_sql("user_sequences", {"events": train}, params)
    known = {"interactions": interactions, "item_features": item_features, "session_sequences": sequences}
    models, seconds = fitted(known)
    prefixes = dict(zip(sequences["user_id"].to_list(), sequences["item_ids"].to_list(), strict=True))
    cases = pl.DataFrame(
        [(u, u, "known", len(prefixes[u]), prefixes[u], t) for u, t in last.select("user_id", "item_id").iter_rows() if u in prefixes],
        schema=CASE_SCHEMA, orient="row",
    )
    lists = model_session_lists(models, cases, k)
    table = grade_sessions(lists, cases, k=k, known_items=set(interactions["item_id"].to_list())).filter(pl.col("segment") == "all")
    print_table(f"MovieLens 100k user sequences, leave-last-out by time ({cases.height:,} users; a 'visit' is a user)",
                table, seconds, k)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=3_000, help="simulated users (default 3,000, as make run)")
    parser.add_argument("--anonymous-share", type=float, default=0.5)
    parser.add_argument("--presets", nargs="+", default=["games", "fashion"])
    parser.add_argument("--ml100k", default=DEFAULT_ML100K)
    parser.add_argument("--k", type=int, default=20)
    args = parser.parse_args()
    print(f"machine: {describe()}; OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}; "
          f"models with their default settings (models/*.py)")
    for preset in args.presets:
        simulator(preset, args.users, args.anonymous_share, args.k)
    if Path(args.ml100k, "u.data").exists():
        movielens(args.ml100k, args.k)
    else:
        print(f"\nMovieLens 100k not found at {args.ml100k}: skipped (--ml100k)")


if __name__ == "__main__":
    main()
