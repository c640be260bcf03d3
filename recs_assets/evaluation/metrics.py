"""How good is a list of recommendations? Standard top-k ranking metrics, one small function each.

Each function looks at one user: the ranked list we showed them (best first) and the items they
actually went on to interact with (the "truth"). `evaluate` does the same for a whole table of
users and averages, which is what the leaderboard and the stakeholder report show.

What the numbers mean, for a list cut at k items (k = 10 in most reports):
- precision@k: share of the k slots that held something the user later wanted.
- recall@k:    share of what the user later wanted that made it into the k slots.
- hit_rate@k:  1 if at least one slot was right, else 0 (averaged: share of users we "hit").
- ndcg@k:      like recall, but a right answer near the top counts more than one near the bottom;
               1.0 is the best possible ordering.
- map@k:       average precision, another "right answers near the top" score (MAP convention:
               divided by min(k, number of relevant items), so a perfect list scores 1.0).
- mrr@k:       1 / position of the first right answer (0 if none in the first k).

Conventions, the same everywhere (after LensKit):
- A user with nothing in their truth set gets NaN, on purpose: no list could be right or wrong for
  them, and a 0 would drag averages down for reasons that have nothing to do with the model.
  `evaluate` skips NaN when it averages.
- An item listed twice counts once, at its first position; the repeat still takes up a slot.
- `None` (padding when a model had fewer than N items to offer) takes up a slot and is never right.
- A list shorter than k is fine: the missing slots count as misses, so precision@k always divides
  by k and a model cannot look more precise by recommending less.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence

import numpy as np
import polars as pl

from recs_assets.arguments import positive_int

__all__ = [
    "METRICS",
    "average_precision_at_k",
    "evaluate",
    "hit_rate_at_k",
    "label",
    "ndcg_at_k",
    "per_user_metrics",
    "precision_at_k",
    "recall_at_k",
    "reciprocal_rank",
]


def label(metric: str, k: int | None = None) -> str:
    """The name a metric value is reported under, e.g. label("ndcg", 10) -> "ndcg@10"."""
    return metric if k is None else f"{metric}@{_check_k(k)}"


def precision_at_k(recommended: Sequence[str | None], relevant: Collection[str], k: int) -> float:
    """Share of the first k slots holding a relevant item (always divided by k)."""
    k = _check_k(k)
    if not relevant:
        return math.nan
    return len(_hit_positions(recommended, relevant, k)) / k


def recall_at_k(recommended: Sequence[str | None], relevant: Collection[str], k: int) -> float:
    """Share of the relevant items found in the first k slots."""
    k = _check_k(k)
    if not relevant:
        return math.nan
    return len(_hit_positions(recommended, relevant, k)) / len(set(relevant))


def hit_rate_at_k(recommended: Sequence[str | None], relevant: Collection[str], k: int) -> float:
    """1.0 if any of the first k slots holds a relevant item, else 0.0."""
    k = _check_k(k)
    if not relevant:
        return math.nan
    return 1.0 if _hit_positions(recommended, relevant, k) else 0.0


def ndcg_at_k(
    recommended: Sequence[str | None],
    relevant: Collection[str],
    k: int,
    gains: Mapping[str, float] | None = None,
) -> float:
    """Normalised discounted cumulative gain of the first k slots (log2 discount, linear gain).

    Binary by default: each relevant item is worth 1. With `gains`, a relevant item is worth
    gains[item] (1.0 if missing from the mapping), so a purchase can count more than a view; items
    outside `relevant` are worth 0 whatever `gains` says. The ideal list puts the k largest gains
    first. NaN when there is nothing to find (empty truth, or every gain is 0).
    """
    k = _check_k(k)
    relevant = set(relevant)
    if not relevant:
        return math.nan
    gain_of = _gain_lookup(relevant, gains)
    dcg = sum(gain_of[item] / math.log2(pos + 1) for pos, item in _hits(recommended, relevant, k))
    ideal = sorted(gain_of.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(pos + 2) for pos, g in enumerate(ideal))
    if idcg == 0.0:
        return math.nan
    return dcg / idcg


def average_precision_at_k(
    recommended: Sequence[str | None], relevant: Collection[str], k: int
) -> float:
    """Mean of precision@i over the positions i <= k that hold a hit, divided by min(k, |relevant|)."""
    k = _check_k(k)
    relevant = set(relevant)
    if not relevant:
        return math.nan
    positions = _hit_positions(recommended, relevant, k)
    total = sum((n_hits + 1) / pos for n_hits, pos in enumerate(positions))
    return total / min(k, len(relevant))


def reciprocal_rank(
    recommended: Sequence[str | None], relevant: Collection[str], k: int | None = None
) -> float:
    """1 / position of the first relevant item (within the first k slots if k is given), else 0."""
    limit = len(recommended) if k is None else _check_k(k)
    if not relevant:
        return math.nan
    positions = _hit_positions(recommended, relevant, limit)
    return 1.0 / positions[0] if positions else 0.0


# Name -> per-user function, all called as f(recommended, relevant, k).
METRICS: dict[str, Callable[[Sequence[str | None], Collection[str], int], float]] = {
    "ndcg": ndcg_at_k,
    "precision": precision_at_k,
    "recall": recall_at_k,
    "map": average_precision_at_k,
    "mrr": reciprocal_rank,
    "hit_rate": hit_rate_at_k,
}


def evaluate(recommendations: pl.DataFrame, truth: pl.DataFrame, k: int) -> dict[str, float]:
    """Average every metric at cut-off k over the users who have a truth set.

    - `recommendations`: user_id, item_id, rank (1 = top slot). The rank is the slot, so gaps are
      fine (dropped padding rows leave gaps); a user may have more than k rows (only rank <= k
      counts); rows with a null item_id are padding. Two rows with the same user and rank are an
      error, since the order would be undefined.
    - `truth`: user_id, item_id and optionally gain (default 1.0; only NDCG uses it, every listed
      item counts as relevant for the other metrics). Duplicate rows count once, the largest gain
      kept.
    - Users in `truth` with no recommendations at all score 0 (we had nothing for them, which is a
      miss, not an excuse). Users with recommendations but no truth are not evaluated.

    Returns {"ndcg@k", "precision@k", "recall@k", "map@k", "mrr@k", "hit_rate@k": mean over users,
    NaNs skipped; "users_evaluated": number of users with a truth set}. The result is identical to
    averaging the per-user functions above, and to averaging the columns of `per_user_metrics`
    (which this calls), the table that confidence intervals and paired tests resample.
    """
    k = _check_k(k)
    per_user = per_user_metrics(recommendations, truth, k)
    result: dict[str, float] = {}
    for name in METRICS:
        mean = per_user.get_column(label(name, k)).mean() if per_user.height else None
        result[label(name, k)] = math.nan if mean is None else float(mean)
    result["users_evaluated"] = per_user.height
    return result


def per_user_metrics(recommendations: pl.DataFrame, truth: pl.DataFrame, k: int) -> pl.DataFrame:
    """One row per user with a truth set: user_id, then every metric at k ("ndcg@10", ...), sorted by user_id.

    The same inputs and conventions as `evaluate`, which averages these columns. A metric a user
    cannot have (NDCG when every gain is 0) is null, and averages skip it.
    """
    k = _check_k(k)
    _require_columns(recommendations, ("user_id", "item_id", "rank"), "recommendations")
    _require_columns(truth, ("user_id", "item_id"), "truth")

    truth = _clean_truth(truth)
    recs = _clean_recommendations(recommendations, k)

    hits = (
        recs.join(truth, on=["user_id", "item_id"], how="inner")
        .sort("user_id", "rank")
        .with_columns(n_hits=pl.int_range(1, pl.len() + 1).over("user_id"))
        .group_by("user_id")
        .agg(
            hits=pl.len(),
            dcg=(pl.col("gain") / (pl.col("rank").cast(pl.Float64) + 1.0).log(2)).sum(),
            ap_sum=(pl.col("n_hits") / pl.col("rank")).sum(),
            first_hit=pl.col("rank").min(),
        )
    )
    per_truth_user = (
        truth.sort("user_id", "gain", descending=[False, True])
        .with_columns(pos=pl.int_range(1, pl.len() + 1).over("user_id"))
        .group_by("user_id")
        .agg(
            n_relevant=pl.len(),
            idcg=(
                pl.when(pl.col("pos") <= k).then(pl.col("gain") / (pl.col("pos") + 1.0).log(2)).otherwise(0.0)
            ).sum(),
        )
    )
    per_user = per_truth_user.join(hits, on="user_id", how="left").with_columns(
        pl.col("hits", "dcg", "ap_sum").fill_null(0)
    )
    n_rel = pl.col("n_relevant").cast(pl.Float64)
    columns = {
        "ndcg": pl.when(pl.col("idcg") > 0).then(pl.col("dcg") / pl.col("idcg")).otherwise(None),
        "precision": pl.col("hits") / k,
        "recall": pl.col("hits") / n_rel,
        "map": pl.col("ap_sum") / pl.min_horizontal(n_rel, pl.lit(float(k))),
        "mrr": (1.0 / pl.col("first_hit")).fill_null(0.0),
        "hit_rate": (pl.col("hits") > 0).cast(pl.Float64),
    }
    return per_user.select(
        "user_id", *(columns[name].cast(pl.Float64).alias(label(name, k)) for name in METRICS)
    ).sort("user_id")


# --- helpers --------------------------------------------------------------------------------------


def _check_k(k: object) -> int:
    return positive_int(k, "k")


def _hits(recommended: Sequence[str | None], relevant: set[str] | Collection[str], k: int):
    """(1-based position, item) of each first occurrence of a relevant item in the first k slots."""
    seen: set[str] = set()
    for pos, item in enumerate(list(recommended)[:k], start=1):
        if item is None or item in seen:
            continue
        seen.add(item)
        if item in relevant:
            yield pos, item


def _hit_positions(recommended: Sequence[str | None], relevant: Collection[str], k: int) -> list[int]:
    relevant = relevant if isinstance(relevant, (set, frozenset, Mapping)) else set(relevant)
    return [pos for pos, _ in _hits(recommended, relevant, k)]


def _gain_lookup(relevant: set[str], gains: Mapping[str, float] | None) -> dict[str, float]:
    gain_of = {item: 1.0 if gains is None else float(gains.get(item, 1.0)) for item in relevant}
    bad = [item for item, g in gain_of.items() if not (g >= 0.0 and math.isfinite(g))]
    if bad:
        raise ValueError(f"gains must be finite and >= 0; got {gain_of[bad[0]]!r} for item {bad[0]!r}")
    return gain_of


def _require_columns(df: pl.DataFrame, columns: tuple[str, ...], name: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{name} is missing column(s) {missing}; it has {df.columns}")


def _clean_truth(truth: pl.DataFrame) -> pl.DataFrame:
    gain = pl.col("gain").cast(pl.Float64) if "gain" in truth.columns else pl.lit(1.0)
    truth = truth.select(
        pl.col("user_id").cast(pl.String), pl.col("item_id").cast(pl.String), gain.alias("gain")
    ).filter(pl.col("user_id").is_not_null() & pl.col("item_id").is_not_null())
    bad = truth.filter(~(pl.col("gain").is_finite() & (pl.col("gain") >= 0)) | pl.col("gain").is_null())
    if bad.height:
        row = bad.row(0, named=True)
        raise ValueError(
            f"truth gain must be finite and >= 0; got {row['gain']!r} for user {row['user_id']!r}, "
            f"item {row['item_id']!r}"
        )
    return truth.group_by("user_id", "item_id").agg(pl.col("gain").max())


def _clean_recommendations(recommendations: pl.DataFrame, k: int) -> pl.DataFrame:
    recs = recommendations.select(
        pl.col("user_id").cast(pl.String), pl.col("item_id").cast(pl.String), pl.col("rank")
    )
    if not recs.schema["rank"].is_integer():
        raise ValueError(f"recommendations.rank must be integers (1 = top); got {recs.schema['rank']}")
    if recs.height and recs.get_column("rank").min() < 1:  # type: ignore[operator]
        raise ValueError("recommendations.rank must start at 1 (the top slot); found ranks below 1")
    clash = recs.filter(pl.struct("user_id", "rank").is_duplicated())
    if clash.height:
        row = clash.row(0, named=True)
        raise ValueError(
            f"recommendations hold two rows for user {row['user_id']!r} at rank {row['rank']}; "
            "each slot must hold one item"
        )
    # A repeat of an item takes its slot but earns nothing: keep only each item's first (best) rank.
    return (
        recs.filter(pl.col("item_id").is_not_null() & (pl.col("rank") <= k))
        .sort("user_id", "rank")
        .unique(subset=["user_id", "item_id"], keep="first", maintain_order=True)
    )
