"""Offline evaluation: how well a model's recommendations match what users went on to do."""

from recs_assets.evaluation.metrics import (
    METRICS,
    average_precision_at_k,
    evaluate,
    hit_rate_at_k,
    label,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    reciprocal_rank,
)

__all__ = [
    "METRICS",
    "average_precision_at_k",
    "evaluate",
    "hit_rate_at_k",
    "label",
    "ndcg_at_k",
    "precision_at_k",
    "recall_at_k",
    "reciprocal_rank",
]
