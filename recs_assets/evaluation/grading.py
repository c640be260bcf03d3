"""Grade several models' recommendations alike: accuracy overall and by user segment, plus beyond-accuracy."""

from __future__ import annotations

import polars as pl

from recs_assets.evaluation.beyond_accuracy import beyond_accuracy
from recs_assets.evaluation.segments import evaluate_by_segment, evaluate_on_new_items, user_history_segments


def grade_models(
    recommendations: dict[str, pl.DataFrame],
    truth: pl.DataFrame,
    training_interactions: pl.DataFrame,
    item_features: pl.DataFrame,
    k: int,
    overall_users: pl.Series | None = None,
) -> pl.DataFrame:
    """One row per (model, segment): accuracy metrics for "all" users (`overall_users`, default every test
    user), per segment (anonymous, new shopper, training-history bands) and
    on "new items" (truth restricted to items unseen in training); catalogue coverage, novelty,
    intra-list diversity and popularity bias on the "all" rows."""
    users = truth["user_id"].unique().sort().to_list()
    segments = user_history_segments(training_interactions.select("user_id", "item_id"), users)
    popularity = item_features.select("item_id", "n_users")
    n_users_total = max(training_interactions["user_id"].n_unique(), int(popularity["n_users"].max() or 0), 1)
    catalogue = item_features.filter(pl.col("is_available"))["item_id"].to_list()
    categories = item_features.select("item_id", "category")
    frames = []
    for model, recs in recommendations.items():
        by_segment = evaluate_by_segment(recs, truth, segments, k, overall_users=overall_users).with_columns(
            pl.col("segment").cast(pl.String)
        )
        extra = beyond_accuracy(recs, popularity, n_users_total, catalogue, categories, k)
        by_segment = by_segment.with_columns(
            *[pl.when(pl.col("segment") == "all").then(pl.lit(v)).alias(name) for name, v in extra.items()]
        )
        new_items = evaluate_on_new_items(recs, truth, training_interactions["item_id"].unique(), k)
        new_row = pl.DataFrame([{"segment": "new items", "users": new_items.get("users_evaluated", 0), **new_items}])
        frames.append(pl.concat([by_segment, new_row], how="diagonal_relaxed").with_columns(pl.lit(model).alias("model")))
    table = pl.concat(frames, how="diagonal_relaxed")
    return table.select("model", "segment", *[c for c in table.columns if c not in ("model", "segment")])


def grade_holdout(
    lists: dict[str, pl.DataFrame],
    split,
    training_interactions: pl.DataFrame,
    item_features: pl.DataFrame,
    k: int,
    *,
    champion: str | None,
    seed: int,
) -> pl.DataFrame:
    """`grade_models` on the split's truth, with each "all" row's 95% intervals and paired tests over users
    (against popularity and the current champion) joined on, and the protocol and its reason beside them.

    The "all" rows grade the evaluable users: those with a history in training, whom a personal model can
    serve. Anonymous shoppers and new shoppers (first seen after the cut-off) have rows of their own:
    every model can only give them its fallback, and mixing them in would blur every comparison.
    """
    from recs_assets.evaluation.leaderboard import uncertainty_table
    from recs_assets.evaluation.metrics import per_user_metrics

    truth = split.truth
    table = grade_models(lists, truth, training_interactions, item_features, k, overall_users=split.history_users)
    per_user = {model: per_user_metrics(recs, split.evaluable_truth, k) for model, recs in lists.items()}
    uncertainty = uncertainty_table(per_user, f"ndcg@{k}", champion=champion, seed=seed)
    return table.join(uncertainty.with_columns(pl.lit("all").alias("segment")), on=["model", "segment"], how="left").with_columns(
        pl.lit(split.protocol).alias("protocol"),
        pl.lit(split.reason or None, dtype=pl.String).alias("protocol_reason"),
        pl.lit(split.cutoff.isoformat() if split.cutoff else None, dtype=pl.String).alias("cutoff"),
    )
