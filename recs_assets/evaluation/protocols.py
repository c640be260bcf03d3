"""Published evaluation protocols, reproduced so our numbers can sit beside other people's.

Microsoft Recommenders (github.com/recommenders-team/recommenders) reports MovieLens 100k results
for BiVAE, BPR, LightGCN, NCF, SAR, ... under one protocol:

- `python_stratified_split(data, ratio=0.75, filter_by=..., seed=42)`: per item (or user), a seeded
  random 75% of its ratings go to train and the rest to test;
- every test rating is relevant (binary gain, the rating value is ignored), items the user rated in
  train are removed from the recommendations, and the metrics are taken at k = 10.

`python_stratified_split` below reproduces their splitter row for row; `ms_recommenders_metrics`
reproduces their averaging. Pure functions on Polars frames: no Dagster, no storage.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from recs_assets.arguments import fraction, positive_int
from recs_assets.evaluation.metrics import evaluate

__all__ = ["exclude_seen", "ms_recommenders_metrics", "python_stratified_split"]

_FILTER_COLUMNS = {"user": "user_id", "item": "item_id"}


def python_stratified_split(
    df: pl.DataFrame,
    ratio: float = 0.75,
    min_rating: int = 1,
    filter_by: str = "item",
    seed: int = 42,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(train, test) exactly as Microsoft Recommenders' `python_stratified_split` splits `df`.

    Their algorithm (`recommenders.datasets.python_splitters._do_stratification`, random branch, in
    the version whose threshold is `round(ratio * count)`):

    1. keep only the groups (items for filter_by="item", users for "user") with at least
       `min_rating` rows, in the input's order;
    2. `np.random.seed(seed); data["random"] = np.random.rand(len(data))`: one draw per remaining
       row, in that order. We use `np.random.RandomState(seed).rand(n)`, the same legacy Mersenne
       Twister stream, without touching numpy's global state;
    3. sort by (group, draw) and number each group's rows 1..count;
    4. rows with number <= round(ratio * count) go to train, the rest to test. The rounding is
       numpy's (half to even, like Python's `round`): a group of 2 puts round(1.5) = 2 rows in
       train, a group of 6 round(4.5) = 4.

    Only the first row's group *size* decides how many rows of a group go to train, so on MovieLens
    100k (item split, ratio 0.75) train always holds sum(round(0.75 n_item)) = 75,066 rows and test
    24,934; the draws decide *which* rows. The group column's type does not matter (every group is
    sorted on its own draws), so string ids give the same split as the integers MS Recommenders reads.

    `df` needs user_id and item_id; other columns are kept. Both frames come back in the input's
    row order (MS Recommenders returns them sorted by group and draw; the rows are the same).
    """
    if filter_by not in _FILTER_COLUMNS:
        raise ValueError(f"filter_by must be 'user' or 'item'; got {filter_by!r}")
    positive_int(min_rating, "min_rating")
    fraction(ratio, "ratio")
    missing = [c for c in ("user_id", "item_id") if c not in df.columns]
    if missing:
        raise ValueError(f"df is missing column(s) {missing}; it has {df.columns}")
    group = _FILTER_COLUMNS[filter_by]
    reserved = [c for c in ("_order", "_draw", "_number", "_count") if c in df.columns]
    if reserved:
        raise ValueError(f"df must not hold the helper column(s) {reserved}")

    data = df.with_row_index("_order")
    if min_rating > 1:
        data = data.filter(pl.len().over(group) >= min_rating)
    draws = np.random.RandomState(seed).rand(data.height)
    data = (
        data.with_columns(pl.Series("_draw", draws, dtype=pl.Float64))
        .sort(group, "_draw")
        .with_columns(
            (pl.int_range(pl.len()).over(group) + 1).alias("_number"),
            pl.len().over(group).alias("_count"),
        )
    )
    # numpy's round is half-to-even, as MS Recommenders' round(Series) is; ratio * count is the
    # same float64 product they compute.
    n_train = np.round(float(ratio) * data.get_column("_count").to_numpy().astype(np.float64))
    in_train = pl.Series("_in_train", data.get_column("_number").to_numpy() <= n_train)
    data = data.with_columns(in_train).sort("_order")
    helpers = ["_order", "_draw", "_number", "_count", "_in_train"]
    train = data.filter(pl.col("_in_train")).drop(helpers)
    test = data.filter(~pl.col("_in_train")).drop(helpers)
    return train, test


def exclude_seen(recommendations: pl.DataFrame, train: pl.DataFrame) -> pl.DataFrame:
    """Drop recommended (user, item) pairs seen in `train` and renumber each user's ranks 1, 2, ...

    Our models already do this (`recommend(..., exclude_seen=True)`); this is for lists that come
    from elsewhere. Give it more than k rows per user, or the lists end up shorter than k.
    """
    seen = train.select(pl.col("user_id").cast(pl.String), pl.col("item_id").cast(pl.String)).unique()
    return (
        recommendations.with_columns(pl.col("user_id").cast(pl.String), pl.col("item_id").cast(pl.String))
        .join(seen, on=["user_id", "item_id"], how="anti")
        .sort("user_id", "rank")
        .with_columns(rank=(pl.int_range(pl.len()).over("user_id") + 1).cast(pl.Int32))
    )


def ms_recommenders_metrics(recommendations: pl.DataFrame, test: pl.DataFrame, k: int = 10) -> dict[str, float]:
    """nDCG@k, precision@k and recall@k averaged the way Microsoft Recommenders' README tables are.

    - Every (user, item) in `test` is relevant, gain 1 (ratings ignored); a list is the user's
      top-k rows of `recommendations` (user_id, item_id, rank), seen items already removed.
    - nDCG@k: mean over every user in `test`; a user with no hit, or with no recommendations at
      all, scores 0.
    - precision@k (hits / k) and recall@k (hits / the user's test items): mean over the users who
      are in both `test` and `recommendations`; a test user we recommended nothing to is left out.

    (MS Recommenders divides all three by the users present in both frames; when every test user
    gets a list, as in their benchmarks and ours, the two conventions give the same numbers.)

    Returns {"ndcg@k", "precision@k", "recall@k", "test_users", "users_with_recommendations"}.
    """
    truth = test.select(pl.col("user_id").cast(pl.String), pl.col("item_id").cast(pl.String))
    recs = recommendations.select(
        pl.col("user_id").cast(pl.String), pl.col("item_id").cast(pl.String), pl.col("rank")
    )
    all_users = evaluate(recs, truth, k)
    recommended = recs.filter(pl.col("item_id").is_not_null()).select("user_id").unique()
    common_truth = truth.join(recommended, on="user_id", how="semi")
    common = evaluate(recs, common_truth, k) if common_truth.height else {}
    return {
        f"ndcg@{k}": all_users[f"ndcg@{k}"],
        f"precision@{k}": common.get(f"precision@{k}", math.nan),
        f"recall@{k}": common.get(f"recall@{k}", math.nan),
        "test_users": all_users["users_evaluated"],
        "users_with_recommendations": common.get("users_evaluated", 0),
    }
