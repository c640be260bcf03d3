"""Grade the whole pipeline (five generators and the re-ranker) on one split, outside Dagster.

The same steps as the `training` and `models` asset groups, as one function, so benchmarks can run
our protocols on any source with exactly the code the assets use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from recs_assets.evaluation.holdout import holdout_truth, recommendations_frame
from recs_assets.evaluation.metrics import evaluate
from recs_assets.models import MODELS
from recs_assets.models.ranker import LightGBMRanker
from recs_assets.training.ranking_set import build_ranking_set, features_at, fit_generator, rank_for_users
from recs_assets.training.splits import Split


def grade_ranker(
    ranker,
    generators: Mapping[str, Any],
    split: Split,
    events: pl.DataFrame,
    items: pl.DataFrame,
    users: pl.DataFrame,
    weights: Mapping[str, Any],
    *,
    k: int = 10,
    n_candidates: int = 50,
    known: Mapping[str, pl.DataFrame] | None = None,
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """The ranker's held-out metrics over these generators, and each generator's own, for comparison.

    Features are measured at the split's cut-off from its training part, as in training (pass `known`
    when they are already computed).
    """
    truth = holdout_truth(split)
    test_users = truth["user_id"].unique().sort().to_list()
    if known is None:
        known = features_at(split.train, events, items, users, split.cutoff, weights)
    ranked = rank_for_users(ranker, generators, test_users, known, n_candidates=n_candidates, N=k)
    inputs = {}
    for name, model in generators.items():
        item_ids, scores = model.recommend(test_users, k)
        inputs[name] = evaluate(recommendations_frame(test_users, item_ids, scores), truth, k)
    return evaluate(ranked, truth, k), inputs


def evaluate_pipeline(
    split: Split,
    events: pl.DataFrame,
    items: pl.DataFrame,
    users: pl.DataFrame,
    weights: Mapping[str, Any],
    *,
    k: int = 10,
    n_candidates: int = 50,
    n_windows: int = 2,
) -> dict[str, dict[str, float]]:
    """Held-out metrics at k for every generator (default hyper-parameters) and for the ranker over them."""
    known = features_at(split.train, events, items, users, split.cutoff, weights)
    generators = {name: fit_generator(cls(), known["interactions"], known["item_features"]) for name, cls in MODELS.items()}
    lessons, _ = build_ranking_set(
        split, events, items, users, lambda: {n: cls() for n, cls in MODELS.items()},
        weights=weights, n_windows=n_windows, n_candidates=n_candidates,
    )
    ranker = LightGBMRanker().fit(lessons)
    ranker_metrics, results = grade_ranker(
        ranker, generators, split, events, items, users, weights, k=k, n_candidates=n_candidates, known=known
    )
    return {**results, "ranker": ranker_metrics}
