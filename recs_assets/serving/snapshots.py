"""What the app serves, computed ahead of time: top-N per user, "more like this" per item, and
popular items per category and segment for users the models do not know.

Pure functions; the `serving` assets call them with the champion pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from recs_assets.evaluation.holdout import recommendations_frame
from recs_assets.training.ranking_set import rank_for_users

# Asked for beyond N so that dropping what the user already has or what sold still leaves N.
OVERFETCH = 50
INTERACTION_TYPES = ("view", "add_to_cart", "purchase", "rating", "play")


def active_users(events: pl.DataFrame, days: float | None) -> list[str]:
    """Users with an interaction in the last `days` before the latest event (all users with one if None or no time)."""
    acted = events.filter(pl.col("event_type").is_in(INTERACTION_TYPES))
    if days is not None and acted["event_at"].null_count() < acted.height:
        latest = acted["event_at"].max()
        acted = acted.filter(pl.col("event_at") >= latest - pl.duration(days=days))
    return acted["user_id"].unique().sort().to_list()


def _finish(candidates: pl.DataFrame, exclude: pl.DataFrame, available: pl.Series, N: int) -> pl.DataFrame:
    """Drop what the user already has and what cannot be sold, then renumber ranks 1..N."""
    return (
        candidates.join(exclude, on=["user_id", "item_id"], how="anti")
        .filter(pl.col("item_id").is_in(available.implode()))
        .sort(["user_id", "rank"])
        .with_columns(pl.int_range(1, pl.len() + 1).over("user_id").cast(pl.Int32).alias("rank"))
        .filter(pl.col("rank") <= N)
    )


def recommendation_snapshot(
    champion: str,
    generators: Mapping[str, Any],
    ranker: Any,
    user_ids: list[str],
    known: Mapping[str, pl.DataFrame],
    exclude: pl.DataFrame,
    available: pl.Series,
    *,
    N: int,
    n_candidates: int,
) -> pl.DataFrame:
    """Top-N per user from the champion (the re-ranker over the generators, or one generator).

    `exclude` (user_id, item_id): everything the user has interacted with, up to now; `available`:
    items that may be shown now. Columns: user_id, item_id, rank, score.
    """
    if champion == "ranker":
        ranked = rank_for_users(ranker, generators, user_ids, known, n_candidates=n_candidates, N=N + OVERFETCH)
    else:
        item_ids, scores = generators[champion].recommend(user_ids, N + OVERFETCH, exclude_seen=True)
        ranked = recommendations_frame(user_ids, item_ids, scores)
    return _finish(ranked.select("user_id", "item_id", "rank", "score"), exclude, available, N)


def similar_items_snapshot(model: Any, item_ids: list[str], available: pl.Series, *, N: int) -> pl.DataFrame:
    """"More like this": for each item, the N most similar items that can be sold now."""
    similar, scores = model.similar_items(item_ids, N + OVERFETCH)
    n = similar.shape[1]
    frame = pl.DataFrame(
        {
            "item_id": np.repeat(np.asarray(item_ids, dtype=object), n),
            "similar_item_id": similar.reshape(-1),
            "rank": np.tile(np.arange(1, n + 1, dtype=np.int32), len(item_ids)),
            "score": scores.reshape(-1).astype(np.float64),
        },
        schema={"item_id": pl.String, "similar_item_id": pl.String, "rank": pl.Int32, "score": pl.Float64},
    ).filter(pl.col("similar_item_id").is_not_null() & pl.col("similar_item_id").is_in(available.implode()))
    return frame.with_columns(pl.int_range(1, pl.len() + 1).over("item_id").cast(pl.Int32).alias("rank")).filter(
        pl.col("rank") <= N
    )


def popular_items_snapshot(
    events: pl.DataFrame, items: pl.DataFrame, users: pl.DataFrame, *, N: int, days: float | None = 30.0
) -> pl.DataFrame:
    """The cold-start fallback: the N most popular available items overall, per category, per user
    segment, and per segment x category (distinct users interacting in the last `days`).

    Columns: segment (null = any), category (null = all), item_id, rank, score (distinct users).
    """
    acted = events.filter(pl.col("event_type").is_in(INTERACTION_TYPES) & pl.col("item_id").is_not_null())
    if days is not None and acted["event_at"].null_count() < acted.height:
        acted = acted.filter(pl.col("event_at") >= acted["event_at"].max() - pl.duration(days=days))
    sellable = items.filter(pl.col("is_active").fill_null(True)).select("item_id", "category")
    pairs = (
        acted.select("user_id", "item_id")
        .unique()
        .join(sellable, on="item_id")
        .join(users.select("user_id", "segment"), on="user_id", how="left")
    )
    levels = []
    for by in ([], ["category"], ["segment"], ["segment", "category"]):
        counted = pairs.group_by([*by, "item_id"]).agg(pl.len().cast(pl.Float64).alias("score"))
        ranked = counted.sort([*by, "score", "item_id"], descending=[False] * len(by) + [True, False]).with_columns(
            (pl.int_range(1, pl.len() + 1).over(by) if by else pl.int_range(1, pl.len() + 1)).cast(pl.Int32).alias("rank")
        )
        missing = [c for c in ("segment", "category") if c not in by]
        levels.append(
            ranked.filter(pl.col("rank") <= N).with_columns(*[pl.lit(None, dtype=pl.String).alias(c) for c in missing])
        )
    return pl.concat([lvl.select("segment", "category", "item_id", "rank", "score") for lvl in levels])


def snapshot_problems(snapshot: pl.DataFrame, expected_users: list[str], bought: pl.DataFrame, available: pl.Series, N: int) -> dict[str, Any]:
    """What a snapshot check looks for: users short of N items, duplicates in a list, items the user
    bought, items that cannot be sold; and the catalogue coverage."""
    per_user = snapshot.group_by("user_id").agg(pl.len().alias("n"), pl.col("item_id").n_unique().alias("distinct"))
    counts = pl.DataFrame({"user_id": expected_users}, schema={"user_id": pl.String}).join(per_user, on="user_id", how="left")
    short = counts.filter(pl.col("n").fill_null(0) < N)
    return {
        "users_short_of_n": short.height,
        "sample_short_users": short["user_id"].head(5).to_list(),
        "lists_with_duplicates": per_user.filter(pl.col("distinct") < pl.col("n")).height,
        "bought_items_recommended": snapshot.join(bought, on=["user_id", "item_id"], how="semi").height,
        "unavailable_items_recommended": snapshot.filter(~pl.col("item_id").is_in(available.implode())).height,
        "coverage": snapshot["item_id"].n_unique() / max(len(available), 1),
    }
