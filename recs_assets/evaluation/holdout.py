"""Grade a model on the held-out part of the split: did it list what users went on to do?"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from recs_assets.evaluation.metrics import evaluate
from recs_assets.training.splits import Split


def holdout_truth(split: Split) -> pl.DataFrame:
    """What each test user did with items they had not touched in training: (user_id, item_id), unique.

    Items already seen in training are left out because models never re-recommend them.
    """
    train_pairs = split.train.filter(pl.col("item_id").is_not_null()).select("user_id", "item_id").unique()
    return (
        split.test.filter(pl.col("item_id").is_not_null())
        .select("user_id", "item_id")
        .unique()
        .join(train_pairs, on=["user_id", "item_id"], how="anti")
        .sort("user_id", "item_id")
    )


def recommendations_frame(user_ids: Sequence[str], item_ids: np.ndarray, scores: np.ndarray) -> pl.DataFrame:
    """Turn `recommend`'s arrays into rows (user_id, item_id, rank, score), dropping padding."""
    n = item_ids.shape[1] if item_ids.ndim == 2 else 0
    return pl.DataFrame(
        {
            "user_id": np.repeat(np.asarray(list(user_ids), dtype=object), n),
            "item_id": item_ids.reshape(-1),
            "rank": np.tile(np.arange(1, n + 1, dtype=np.int32), len(user_ids)),
            "score": scores.reshape(-1).astype(np.float64),
        },
        schema={"user_id": pl.String, "item_id": pl.String, "rank": pl.Int32, "score": pl.Float64},
    ).filter(pl.col("item_id").is_not_null())


def holdout_metrics(model, truth: pl.DataFrame, k: int = 10) -> dict[str, float]:
    """Recommend k items to every test user and score the lists against what they did next."""
    users = truth["user_id"].unique(maintain_order=True).to_list()
    item_ids, scores = model.recommend(users, k, exclude_seen=True)
    return evaluate(recommendations_frame(users, item_ids, scores), truth, k)
