"""The held-out lists every model is graded on, built once: each generator's proposals and the ranker's order.

The generators' top-`n_candidates` lists serve twice: their first k rows are the generator's own
held-out recommendations, and together they are the ranker's candidates. So each generator scores the
test users exactly once per run, and every grade (leaderboard, segments, the ranker's lift over its
inputs) reads the same rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from recs_assets.evaluation.metrics import evaluate
from recs_assets.models import MODELS
from recs_assets.models.lists import recommend_frame, top_of
from recs_assets.models.ranker import LightGBMRanker
from recs_assets.training.ranking_set import build_ranking_set, features_at, fit_generator, rank_lists
from recs_assets.training.splits import holdout_truth

RANKER = "ranker"


def holdout_lists(
    generators: Mapping[str, Any],
    ranker,
    user_ids: list[str],
    known: Mapping[str, pl.DataFrame],
    *,
    n_candidates: int,
    N: int,
) -> pl.DataFrame:
    """One long table (model, user_id, item_id, rank, score): each generator's top-`n_candidates` for these
    users, and the ranker's top-N over their union (`ranker=None` leaves the ranker out)."""
    lists = {name: recommend_frame(model, user_ids, max(n_candidates, N)) for name, model in generators.items()}
    frames = [frame.select(pl.lit(name).alias("model"), pl.all()) for name, frame in lists.items()]
    if ranker is not None:
        frames.append(rank_lists(ranker, lists, known, N).select(pl.lit(RANKER).alias("model"), pl.all()))
    return pl.concat(frames, how="vertical")


def lists_by_model(lists: pl.DataFrame, N: int) -> dict[str, pl.DataFrame]:
    """Each model's top-N rows (user_id, item_id, rank, score), in the order the models appear."""
    return {
        name: top_of(lists.filter(pl.col("model") == name).drop("model"), N)
        for name in lists["model"].unique(maintain_order=True).to_list()
    }


def pipeline_lists(
    split,
    events: pl.DataFrame,
    items: pl.DataFrame,
    users: pl.DataFrame,
    weights: Mapping[str, Any],
    *,
    k: int = 10,
    n_candidates: int = 50,
    n_windows: int = 2,
) -> tuple[dict[str, pl.DataFrame], dict[str, Any]]:
    """Each generator's held-out top-k (default hyper-parameters) and the ranker's top-k over them, outside Dagster.

    The same steps as the `training`, `models` and `evaluation` asset groups, as one function, so
    benchmarks run our protocols on any source with exactly the code the assets use, and can keep the
    very rows they grade (user_id, item_id, rank, score) for anyone to re-score. Also returns what the
    ranker decided on its held-out lessons (`validation`, and `fallback`: the generator whose list it
    keeps, or None).
    """
    known = features_at(split.train, events, items, users, split.cutoff, weights)
    generators = {name: fit_generator(cls(), known["interactions"], known["item_features"], sequences=known["session_sequences"]) for name, cls in MODELS.items()}
    lessons, _ = build_ranking_set(
        split, events, items, users, lambda: {n: cls() for n, cls in MODELS.items()},
        weights=weights, n_windows=n_windows, n_candidates=n_candidates,
    )
    test_users = holdout_truth(split)["user_id"].unique().sort().to_list()
    ranker = LightGBMRanker().fit(lessons)
    lists = holdout_lists(generators, ranker, test_users, known, n_candidates=n_candidates, N=k)
    return lists_by_model(lists, k), {"fallback": ranker.fallback, "validation": ranker.validation, "params": ranker.params()}


def evaluate_pipeline(
    split,
    events: pl.DataFrame,
    items: pl.DataFrame,
    users: pl.DataFrame,
    weights: Mapping[str, Any],
    *,
    k: int = 10,
    n_candidates: int = 50,
    n_windows: int = 2,
) -> dict[str, dict[str, float]]:
    """Held-out metrics at k for every generator (default hyper-parameters) and the ranker over them (`pipeline_lists`)."""
    lists, _ = pipeline_lists(split, events, items, users, weights, k=k, n_candidates=n_candidates, n_windows=n_windows)
    truth = holdout_truth(split)
    return {name: evaluate(recs, truth, k) for name, recs in lists.items()}
