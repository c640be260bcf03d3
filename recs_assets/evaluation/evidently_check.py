"""Cross-check our ranking metrics against Evidently's recommender metrics (evidently 0.7.x).

`evidently_recsys_metrics(recommendations, truth, k)` takes the same two tables as
`recs_assets.evaluation.metrics.evaluate`, converts them into Evidently's recsys layout (one pandas
row per (user, item): user_id, item_id, prediction = rank, target = relevance), runs an Evidently
`Report` with PrecisionTopK, RecallTopK, NDCG, MAP, MRR and HitRate at k (the ranking metrics of
`RecsysPreset`), and returns Evidently's values at cut-off k under our labels ("ndcg@10", ...).
It is a test/diagnostic helper only: Evidently is imported lazily, nothing in the pipeline uses it.

How the tables are converted (the choices that decide what Evidently sees)
------------------------------------------------------------------------
- Recommendations are cleaned exactly as `evaluate` cleans them: null items (padding) are dropped,
  only rank <= k is kept, and a repeated item keeps only its first (best) rank. Each remaining row
  gets target = the item's truth gain (0 if the user did not interact with it), prediction = rank,
  `Recsys(recommendations_type="rank")`.
- Evidently only knows a user's relevant items through rows of the table, so every truth item that is
  NOT in the user's top k is appended as an extra row with target = gain and a rank beyond the list
  (k + 1, k + 2, ...). This is the Evidently-documented way to tell it about interactions the model
  missed, and it is what gives it the right recall/NDCG denominators and lets truth users with no
  recommendations at all count (as zeros), as they do in `evaluate`.
- Users with recommendations but no truth appear with target 0 only; with `no_feedback_users=False`
  (the default, used here) Evidently drops them, as `evaluate` does.

How Evidently 0.7.23 defines each metric (read from evidently/legacy/metrics/recsys/*.py and
evidently/legacy/calculations/recommender_systems.py), for the users it averages over
------------------------------------------------------------------------------------------------
Users averaged over: every user with at least one row with target > 0, i.e. the truth users with a
positive gain (`no_feedback_users=False`). Each metric is an unweighted mean over those users.
All metrics except NDCG first binarise the target (target > 0 -> 1).
- precision@k = hits in rows with rank <= k / min(number of rows of the user, k).
  MATCHES ours (hits / k) whenever every evaluated user has >= k rows in total (recommended + missed
  truth rows), e.g. full top-k lists. It differs for short/gappy lists: Evidently then divides by
  the number of rows (which here also counts the appended truth rows) instead of k.
- recall@k    = hits in rows with rank <= k / number of relevant rows. MATCHES ours.
- hit_rate@k  = share of users with a relevant row at rank <= k. MATCHES ours.
- mrr@k       = mean of 1 / (smallest rank <= k of a relevant row), 0 if none. MATCHES ours.
- ndcg@k      = NOT binarised: DCG = sum over rows with rank <= k of target / log2(rank + 1) (linear
  gain, log2 discount); IDCG = the user's targets sorted descending, the first k of them discounted
  by 1 / log2(position + 1). MATCHES ours, including graded gains (truth `gain` column).
- map@k       = sum over ranks i <= k of precision@i * rel_i, divided by the number of relevant items
  (n), where rel_i is the target of the *last row* with rank <= i in table order (we sort by rank, so
  it is the item at rank i when ranks have no gaps). Ours divides by min(k, n) instead. So per user
  evidently_ap = our_ap * min(k, n) / n: they MATCH when no user has more than k relevant items and
  lists have no rank gaps; otherwise Evidently's MAP is lower (a perfect list cannot reach 1.0).

Differences on edge cases we do not paper over: a truth item with gain 0 is relevant for our
precision/recall/MAP/MRR/hit-rate but not for Evidently's (it binarises target > 0), and a user whose
gains are all 0 is dropped by Evidently but counted by us (except for NDCG, where both skip them).

Two quirks of evidently 0.7.23 handled here:
- Results are curves for cut-offs 1..max_k (max_k = min(max(k, 10), largest rank / row count)); the
  value at k is taken by position (the k-th entry). The `rank` column of NDCG and MRR results is off
  by one (their legacy series is already 1-based and the wrapper adds 1 again), so it is not used.
- If the curve is shorter than k (no user has k rows / rank k), a ValueError is raised rather than
  silently returning the value at a smaller cut-off.
"""

from __future__ import annotations

import polars as pl

from recs_assets.evaluation.metrics import (
    _check_k,
    _clean_recommendations,
    _clean_truth,
    _require_columns,
    label,
)

__all__ = ["EVIDENTLY_METRICS", "evidently_frame", "evidently_recsys_metrics"]

# Our metric name -> Evidently 0.7 metric class name in `evidently.metrics`.
EVIDENTLY_METRICS: dict[str, str] = {
    "ndcg": "NDCG",
    "precision": "PrecisionTopK",
    "recall": "RecallTopK",
    "map": "MAP",
    "mrr": "MRR",
    "hit_rate": "HitRate",
}


def evidently_frame(recommendations: pl.DataFrame, truth: pl.DataFrame, k: int) -> pl.DataFrame:
    """The (user_id, item_id, prediction = rank, target = gain) table handed to Evidently.

    Recommended rows (cleaned as `evaluate` cleans them, rank <= k) plus one row per truth item missing
    from the user's top k, at ranks k + 1, k + 2, ... Sorted by user and rank (Evidently's MAP reads
    the last row per cut-off in table order).
    """
    k = _check_k(k)
    _require_columns(recommendations, ("user_id", "item_id", "rank"), "recommendations")
    _require_columns(truth, ("user_id", "item_id"), "truth")
    truth = _clean_truth(truth)
    recs = _clean_recommendations(recommendations, k)

    shown = recs.join(truth, on=["user_id", "item_id"], how="left").select(
        "user_id",
        "item_id",
        prediction=pl.col("rank").cast(pl.Int64),
        target=pl.col("gain").fill_null(0.0),
    )
    missed = (
        truth.join(recs, on=["user_id", "item_id"], how="anti")
        .sort("user_id", "gain", "item_id", descending=[False, True, False])
        .select(
            "user_id",
            "item_id",
            prediction=(pl.int_range(1, pl.len() + 1).over("user_id") + k).cast(pl.Int64),
            target=pl.col("gain"),
        )
    )
    return pl.concat([shown, missed]).sort("user_id", "prediction")


def evidently_recsys_metrics(recommendations: pl.DataFrame, truth: pl.DataFrame, k: int) -> dict[str, float]:
    """Evidently's PrecisionTopK/RecallTopK/NDCG/MAP/MRR/HitRate at k, under our labels ("ndcg@k", ...).

    Same inputs as `recs_assets.evaluation.metrics.evaluate`; see the module docstring for how the
    tables are converted and which values are expected to equal ours.
    """
    k = _check_k(k)
    frame = evidently_frame(recommendations, truth, k).to_pandas()

    import evidently.metrics as ev_metrics  # lazy: importing evidently takes seconds
    from evidently import DataDefinition, Dataset, Recsys, Report

    definition = DataDefinition(
        numerical_columns=["prediction", "target"],
        categorical_columns=["user_id", "item_id"],
        ranking=[
            Recsys(
                user_id="user_id",
                item_id="item_id",
                prediction="prediction",
                target="target",
                recommendations_type="rank",
            )
        ],
    )
    dataset = Dataset.from_pandas(frame, data_definition=definition)
    metrics = {name: getattr(ev_metrics, cls)(k=k) for name, cls in EVIDENTLY_METRICS.items()}
    snapshot = Report(list(metrics.values())).run(dataset, None)

    result: dict[str, float] = {}
    for name, metric in metrics.items():
        curve = snapshot.metric_results[metric.metric_id].value  # DataFrame: rank, value
        if len(curve) < k:
            raise ValueError(
                f"Evidently computed {EVIDENTLY_METRICS[name]} only up to cut-off {len(curve)} < k={k}: "
                "no user has k rows"
            )
        result[label(name, k)] = float(curve["value"].iloc[k - 1])
    return result
