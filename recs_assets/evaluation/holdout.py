"""Grade a model on the held-out part of the split: did it list what users went on to do?"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from recs_assets.evaluation.metrics import evaluate
# The truth is a property of the split (training.splits.Split.truth, computed once per split). This
# re-export remains only for callers not yet moved to `split.truth`; new code should not import it here.
from recs_assets.training.splits import holdout_truth  # noqa: F401


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
