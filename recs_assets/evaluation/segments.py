"""Who does the model serve well? Metrics split by user segment, and on items new since training.

A single average hides that a model can be good for heavy users and useless for newcomers, or
good at old favourites and blind to new listings (the fashion preset lists new items every day).

- `user_history_segments`: put each user in a bucket: "anonymous" (a shopper known only by a
  session, user_id starting with contract.ANONYMOUS_USER_PREFIX), else by how many distinct items
  they interacted with in training: "new shopper" (none: first seen after the cut-off, served by the
  fallback and the session logic), "1-4", "5-19", "20+" with the default bins. Short histories are
  graded, not dropped.
- `evaluate_by_segment`: run a metric function (by default metrics.evaluate at k) once per segment,
  plus an "all" row over every segmented user (or the users you name, e.g. the evaluable ones); each
  row says how many users it holds.
- `new_item_truth_share`: how much of the test truth is on items never seen in training.
- `evaluate_on_new_items`: accuracy metrics counting only truth on those new items.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence

import polars as pl

from recs_assets.contract import ANONYMOUS_USER_PREFIX
from recs_assets.evaluation.metrics import _check_k, _require_columns, evaluate

__all__ = [
    "ALL_SEGMENT",
    "ANONYMOUS_SEGMENT",
    "NEW_SHOPPER_SEGMENT",
    "evaluate_by_segment",
    "evaluate_on_new_items",
    "new_item_truth_share",
    "segment_labels",
    "user_history_segments",
    "users_per_segment",
]

ALL_SEGMENT = "all"
ANONYMOUS_SEGMENT = "anonymous"
NEW_SHOPPER_SEGMENT = "new shopper"

MetricFn = Callable[[pl.DataFrame, pl.DataFrame], Mapping[str, float]]


def segment_labels(bins: Sequence[int] = (0, 1, 5, 20)) -> list[str]:
    """Label of each bin [bins[i], bins[i+1]), the last open-ended.

    (0, 1, 5, 20) -> ["new shopper", "1-4", "5-19", "20+"]. A bin holding one count is labelled by it
    ("3"), except the zero-only bin, which is "new shopper" (no history in training). bins must
    start at 0 (so every user falls somewhere) and strictly increase.
    """
    bins = [int(b) for b in bins]
    if not bins or bins[0] != 0:
        raise ValueError(f"bins must start at 0 so every user has a segment; got {bins}")
    if any(b >= c for b, c in zip(bins, bins[1:])):
        raise ValueError(f"bins must strictly increase; got {bins}")
    labels = []
    for lo, hi in zip(bins, [*bins[1:], None]):
        if hi is None:
            labels.append(f"{lo}+")
        elif hi - lo == 1:
            labels.append(NEW_SHOPPER_SEGMENT if lo == 0 else str(lo))
        else:
            labels.append(f"{lo}-{hi - 1}")
    return labels


def user_history_segments(
    train_interactions: pl.DataFrame,
    users: Sequence[str] | pl.Series,
    bins: Sequence[int] = (0, 1, 5, 20),
) -> pl.DataFrame:
    """user_id, segment for each of `users` (in the order given, repeats and nulls dropped).

    Anonymous shoppers (user_id starting with contract.ANONYMOUS_USER_PREFIX) are "anonymous",
    whatever their history. For everyone else the count is the number of distinct item_ids they have
    in `train_interactions` (repeat events on one item, such as plays after a purchase, count once:
    they say little more about taste); users absent from training have 0 and are "new shopper".
    `segment` is a pl.Enum: "anonymous", then the bins in order (new shopper -> heavy).
    """
    _require_columns(train_interactions, ("user_id", "item_id"), "train_interactions")
    labels = segment_labels(bins)
    if ANONYMOUS_SEGMENT in labels:
        raise ValueError(f"segment name {ANONYMOUS_SEGMENT!r} is reserved for anonymous shoppers")
    edges = [int(b) for b in bins]
    user_list = users.to_list() if isinstance(users, pl.Series) else list(users)
    wanted = pl.DataFrame(
        {"user_id": [str(u) for u in dict.fromkeys(user_list) if u is not None]},
        schema={"user_id": pl.String},
    )
    counts = (
        train_interactions.select(pl.col("user_id").cast(pl.String), pl.col("item_id").cast(pl.String))
        .filter(pl.col("user_id").is_not_null() & pl.col("item_id").is_not_null())
        .group_by("user_id")
        .agg(n=pl.col("item_id").n_unique())
    )
    n = pl.col("n").fill_null(0)
    segment = pl.lit(labels[-1])
    for lo, lab in reversed(list(zip(edges[1:], labels[:-1]))):
        segment = pl.when(n < lo).then(pl.lit(lab)).otherwise(segment)
    segment = pl.when(pl.col("user_id").str.starts_with(ANONYMOUS_USER_PREFIX)).then(
        pl.lit(ANONYMOUS_SEGMENT)
    ).otherwise(segment)
    return wanted.join(counts, on="user_id", how="left", maintain_order="left").select(
        "user_id", segment.cast(pl.Enum([ANONYMOUS_SEGMENT, *labels])).alias("segment")
    )


def users_per_segment(segments: pl.DataFrame) -> dict[str, int]:
    """How many users each segment holds, in segment order (for metadata beside the numbers)."""
    _require_columns(segments, ("user_id", "segment"), "segments")
    counts = segments.group_by("segment").agg(pl.col("user_id").n_unique().alias("users")).sort("segment")
    return {str(s): int(n) for s, n in counts.iter_rows()}


def evaluate_by_segment(
    recommendations: pl.DataFrame,
    truth: pl.DataFrame,
    segments: pl.DataFrame,
    k: int,
    metric_fn: MetricFn | None = None,
    overall_users: Collection[str] | pl.Series | None = None,
) -> pl.DataFrame:
    """One row per segment plus an "all" row: segment, users, then the columns metric_fn returns.

    `overall_users` narrows the "all" row to those users (e.g. `split.history_users`, so the headline
    covers evaluable users while new shoppers keep their own row); by default it is every segmented user.

    `metric_fn(recommendations, truth)` is called with both frames restricted to the segment's users;
    the default is `metrics.evaluate(r, t, k)` (k is only used by the default). `users` is the number
    of users the `segments` frame puts in the segment (metrics.evaluate also reports
    users_evaluated: those of them with a truth set). Users not in `segments` are left out
    everywhere, including the "all" row, which is metric_fn over every segmented user, so it matches
    the segment rows (and the headline number when `segments` covers every user). Segment order: the
    Enum/Categorical order if `segment` is one (empty Enum categories are left out), else first
    appearance. A user in two segments is an error.
    """
    k = _check_k(k)
    _require_columns(segments, ("user_id", "segment"), "segments")
    _require_columns(recommendations, ("user_id",), "recommendations")
    _require_columns(truth, ("user_id",), "truth")
    fn: MetricFn = metric_fn if metric_fn is not None else (lambda r, t: evaluate(r, t, k))

    seg_dtype = segments.schema["segment"]
    segs = segments.select(pl.col("user_id").cast(pl.String), pl.col("segment").cast(pl.String)).filter(
        pl.col("user_id").is_not_null() & pl.col("segment").is_not_null()
    ).unique(maintain_order=True)
    clash = segs.filter(pl.col("user_id").is_duplicated())
    if clash.height:
        raise ValueError(f"user {clash.item(0, 'user_id')!r} is in more than one segment")
    present = segs.get_column("segment").unique(maintain_order=True).to_list()
    if isinstance(seg_dtype, pl.Enum):
        order = [c for c in seg_dtype.categories.to_list() if c in set(present)]
    else:
        order = present
    if ALL_SEGMENT in order:
        raise ValueError(f"segment name {ALL_SEGMENT!r} is reserved for the overall row")

    recs = recommendations.with_columns(pl.col("user_id").cast(pl.String))
    tru = truth.with_columns(pl.col("user_id").cast(pl.String))
    rows: list[dict[str, object]] = []
    everyone = segs.get_column("user_id")
    if overall_users is not None:
        everyone = everyone.filter(everyone.is_in(_id_list(overall_users).implode()))
    for name, members in [
        *((s, segs.filter(pl.col("segment") == s).get_column("user_id")) for s in order),
        (ALL_SEGMENT, everyone),
    ]:
        in_segment = pl.col("user_id").is_in(members)
        result = fn(recs.filter(in_segment), tru.filter(in_segment))
        rows.append({"segment": name, "users": members.len(), **result})
    columns = list(dict.fromkeys(c for row in rows for c in row))
    return pl.DataFrame(
        [{c: row.get(c) for c in columns} for row in rows], infer_schema_length=None
    )


def new_item_truth_share(truth: pl.DataFrame, train_items: Collection[str] | pl.Series) -> float:
    """Share of test interactions (distinct user, item pairs in `truth`) on items never in training.

    NaN when the truth is empty. Rows with a null user or item are ignored, as in metrics.evaluate.
    """
    pairs = _truth_pairs(truth)
    if pairs.height == 0:
        return float("nan")
    new = pairs.filter(~pl.col("item_id").is_in(_id_list(train_items)))
    return new.height / pairs.height


def evaluate_on_new_items(
    recommendations: pl.DataFrame,
    truth: pl.DataFrame,
    train_item_ids: Collection[str] | pl.Series,
    k: int,
) -> dict[str, float]:
    """metrics.evaluate at k with the truth restricted to items never seen in training.

    The recommendations are left whole: a slot spent on an old item is a miss here, which is the
    point (can the model surface new items to the users who went on to want them?). Only users with
    at least one new-item truth pair are evaluated; when no user has any, every metric is NaN and
    users_evaluated is 0.
    """
    _require_columns(truth, ("user_id", "item_id"), "truth")
    old = _id_list(train_item_ids)
    new_truth = truth.filter(~pl.col("item_id").cast(pl.String).is_in(old))
    return evaluate(recommendations, new_truth, k)


def _truth_pairs(truth: pl.DataFrame) -> pl.DataFrame:
    _require_columns(truth, ("user_id", "item_id"), "truth")
    return (
        truth.select(pl.col("user_id").cast(pl.String), pl.col("item_id").cast(pl.String))
        .filter(pl.col("user_id").is_not_null() & pl.col("item_id").is_not_null())
        .unique()
    )


def _id_list(ids: Collection[str] | pl.Series) -> pl.Series:
    values = ids.to_list() if isinstance(ids, pl.Series) else list(ids)
    return pl.Series("item_id", [str(v) for v in values if v is not None], dtype=pl.String)
