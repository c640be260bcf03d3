"""What a run at a past cut-off would have served: daily snapshots replayed, to calibrate prediction drift.

`snapshot_at` refits one candidate generator on what was known at the cut-off (the feature store's SQL
via `features_at`, the fit via `fit_generator`) and builds the recommendation snapshot the serving
asset would have built then (`recommendation_snapshot`: nothing the user already had, only what was for
sale, topped up from the popular fallback). benchmarks/prediction_drift.py and the prediction-drift
tests compare such snapshots day after day. Pure: no Dagster.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import polars as pl

from recs_assets.contract import LIST_N
from recs_assets.features import DEFAULT_INTERACTION_PARAMS
from recs_assets.models.registry import MODELS
from recs_assets.serving.snapshots import active_users, popular_items_snapshot, recommendation_snapshot, user_history_snapshot
from recs_assets.training.ranking_set import features_at, fit_generator


def snapshot_at(
    events: pl.DataFrame,
    items: pl.DataFrame,
    users: pl.DataFrame,
    cutoff: dt.datetime,
    *,
    model: str = "ease",
    N: int = LIST_N,
    weights: Mapping[str, float | None] | None = None,
) -> pl.DataFrame:
    """The snapshot served from the events before `cutoff`, by `model` (a registry name) refitted on them.

    Columns as `recommendation_snapshot`'s, plus `model` ("<name>_model", as the champion's registered name).
    """
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; known generators: {', '.join(MODELS)}")
    past = events.filter(pl.col("event_at") < cutoff)
    known = features_at(past, events, items, users, cutoff, dict(weights or DEFAULT_INTERACTION_PARAMS))
    fitted = fit_generator(MODELS[model](), known["interactions"], known["item_features"])
    available = known["item_features"].filter(pl.col("is_available"))["item_id"]
    for_sale = items.with_columns(is_active=pl.col("item_id").is_in(available.implode()))
    fallback = popular_items_snapshot(past, for_sale, users, N=N)
    snapshot = recommendation_snapshot(
        model, {model: fitted}, None, active_users(past), known, user_history_snapshot(past), available,
        N=N, n_candidates=N, fallback=fallback, users=users,
    )
    return snapshot.with_columns(pl.lit(f"{model}_model").alias("model"))
