"""Beyond accuracy: is a list of recommendations varied, surprising and spread over the catalogue?

Accuracy metrics (metrics.py) ask "did we show what the user wanted?". These ask what else the lists
do, one small function per metric (after LensKit), each reported under a label like "coverage@10":

- coverage@k: share of the catalogue (the items that were available) shown in at least one top-k
              list. Low coverage means most of the shop is never recommended to anyone.
- novelty@k:  mean self-information -log2(p_i) of the recommended items, p_i = share of training
              users who interacted with item i. Recommending an item half the users know is worth
              1 bit; an item everyone knows is worth 0. Higher = less obvious recommendations.
- ild@k:      intra-list diversity: per user, the share of pairs of items in their top-k list that
              belong to different categories (1 - share of same-category pairs), averaged over users.
              1.0 = every item from a different category; 0.0 = all from one category.
- arp@k:      average recommendation popularity (Abdollahpouri et al.): per user, the mean number of
              training users of the items in their top-k list, averaged over users. Higher = the
              model leans more on popular items (popularity bias).

Conventions, shared with metrics.py:
- `recommendations` has user_id, item_id, rank (1 = top slot); only rank <= k counts; two rows for
  the same user and rank are an error.
- `None` item_ids are padding and are ignored (they hold no item to be novel, diverse or popular).
- An item listed twice in one user's list counts once, at its first position.
- Empty recommendations (nothing left after the cut and padding removal): the means (novelty, ild,
  arp) are NaN, because there is nothing to average and 0 would read as "perfectly unsurprising /
  unpopular"; coverage is 0.0, because the catalogue still exists and none of it was shown, so the
  share is well defined (it is NaN only if the catalogue itself is empty).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection

import polars as pl

from recs_assets.arguments import positive_int
from recs_assets.evaluation.metrics import (
    _check_k,
    _clean_recommendations,
    _require_columns,
    label,
)

__all__ = [
    "BEYOND_ACCURACY_METRICS",
    "beyond_accuracy",
    "catalog_coverage",
    "intra_list_diversity",
    "novelty",
    "popularity_bias",
]

# Label stem of each metric, in the order `beyond_accuracy` reports them.
BEYOND_ACCURACY_METRICS = ("coverage", "novelty", "ild", "arp")


def catalog_coverage(
    recommendations: pl.DataFrame, catalog_item_ids: Collection[str] | pl.Series, k: int
) -> float:
    """Share of the catalogue appearing in at least one user's top-k list.

    `catalog_item_ids` are the items that could have been recommended (nulls and repeats ignored).
    Recommended items outside the catalogue do not count (they cannot cover it). 0.0 when nothing
    was recommended; NaN when the catalogue is empty (a share of nothing is undefined).
    """
    recs = _top_k(recommendations, k)
    catalog = _id_set(catalog_item_ids)
    if not catalog:
        return math.nan
    shown = set(recs.get_column("item_id").unique().to_list())
    return len(shown & catalog) / len(catalog)


def novelty(
    recommendations: pl.DataFrame, item_popularity: pl.DataFrame, n_users_total: int, k: int
) -> float:
    """Mean self-information -log2(p_i) over every recommended (user, item) slot in the top k.

    p_i = n_users_i / n_users_total, from `item_popularity` (item_id, n_users: distinct training
    users per item). An item absent from `item_popularity` (or with n_users 0), i.e. never seen in
    training, gets p = 1 / (n_users_total + 1): as if one more user than we have seen had met it,
    which keeps it finite and rarer than any training item (an item with one user has p = 1/N).
    NaN when there are no recommendations.
    """
    n_total = _check_n_users_total(n_users_total)
    recs = _top_k(recommendations, k)
    if recs.height == 0:
        return math.nan
    pop = _clean_popularity(item_popularity)
    over = pop.filter(pl.col("n_users") > n_total)
    if over.height:
        row = over.row(0, named=True)
        raise ValueError(
            f"item_popularity.n_users of item {row['item_id']!r} is {row['n_users']}, more than "
            f"n_users_total={n_total}"
        )
    unseen_p = 1.0 / (n_total + 1)
    p = (
        recs.join(pop, on="item_id", how="left")
        .select(
            p=pl.when(pl.col("n_users") > 0)
            .then(pl.col("n_users") / float(n_total))
            .otherwise(unseen_p)
        )
        .get_column("p")
    )
    return float((-p.log(2)).mean())  # type: ignore[arg-type]


def intra_list_diversity(
    recommendations: pl.DataFrame, item_categories: pl.DataFrame, k: int
) -> float:
    """Mean over users of the share of item pairs in their top-k list that differ in category.

    Per user with n >= 2 distinct items: 1 - (same-category pairs) / (n * (n - 1) / 2). Lists with
    fewer than 2 items have no pairs: NaN for that user, skipped in the mean (NaN if every list is
    that short, or there are none). `item_categories` has item_id, category, one category per item
    (an item listed with two different categories is an error). An item without a category (absent
    from the table, or a null category) counts as its own unique category: it forms no same-category
    pair, so it cannot make a list look less diverse for lack of metadata.
    """
    recs = _top_k(recommendations, k)
    cats = _clean_categories(item_categories)
    tagged = recs.join(cats, on="item_id", how="left")
    sizes = tagged.group_by("user_id").agg(n=pl.len())
    same = (
        tagged.filter(pl.col("category").is_not_null())
        .group_by("user_id", "category")
        .agg(m=pl.len())
        .group_by("user_id")
        .agg(same_pairs=(pl.col("m") * (pl.col("m") - 1) / 2).sum())
    )
    per_user = (
        sizes.filter(pl.col("n") >= 2)
        .join(same, on="user_id", how="left")
        .select(
            ild=1.0
            - pl.col("same_pairs").fill_null(0.0) / (pl.col("n") * (pl.col("n") - 1) / 2.0)
        )
    )
    return _mean(per_user.get_column("ild"))


def popularity_bias(recommendations: pl.DataFrame, item_popularity: pl.DataFrame, k: int) -> float:
    """Average recommendation popularity (ARP, Abdollahpouri et al.).

    Mean over users of the mean n_users (training popularity) of the items in their top-k list.
    Items absent from `item_popularity` were never seen in training and count as 0 users. Each user
    weighs the same whatever the length of their list. NaN when there are no recommendations.
    """
    recs = _top_k(recommendations, k)
    pop = _clean_popularity(item_popularity)
    per_user = (
        recs.join(pop, on="item_id", how="left")
        .with_columns(pl.col("n_users").fill_null(0).cast(pl.Float64))
        .group_by("user_id")
        .agg(arp=pl.col("n_users").mean())
    )
    return _mean(per_user.get_column("arp"))


def beyond_accuracy(
    recommendations: pl.DataFrame,
    item_popularity: pl.DataFrame,
    n_users_total: int,
    catalog_item_ids: Collection[str] | pl.Series,
    item_categories: pl.DataFrame,
    k: int,
) -> dict[str, float]:
    """All four metrics at cut-off k: {"coverage@k", "novelty@k", "ild@k", "arp@k"}."""
    k = _check_k(k)
    return {
        label("coverage", k): catalog_coverage(recommendations, catalog_item_ids, k),
        label("novelty", k): novelty(recommendations, item_popularity, n_users_total, k),
        label("ild", k): intra_list_diversity(recommendations, item_categories, k),
        label("arp", k): popularity_bias(recommendations, item_popularity, k),
    }


# --- helpers --------------------------------------------------------------------------------------


def _top_k(recommendations: pl.DataFrame, k: int) -> pl.DataFrame:
    """user_id, item_id, rank: rank <= k, padding dropped, each item once per user (first rank)."""
    k = _check_k(k)
    _require_columns(recommendations, ("user_id", "item_id", "rank"), "recommendations")
    return _clean_recommendations(recommendations, k)


def _id_set(ids: Collection[str] | pl.Series) -> set[str]:
    values = ids.to_list() if isinstance(ids, pl.Series) else list(ids)
    return {str(v) for v in values if v is not None}


def _check_n_users_total(n: object) -> int:
    return positive_int(n, "n_users_total")


def _clean_popularity(item_popularity: pl.DataFrame) -> pl.DataFrame:
    _require_columns(item_popularity, ("item_id", "n_users"), "item_popularity")
    pop = item_popularity.select(
        pl.col("item_id").cast(pl.String), pl.col("n_users").cast(pl.Int64)
    ).filter(pl.col("item_id").is_not_null())
    if pop.filter(pl.col("n_users").is_null() | (pl.col("n_users") < 0)).height:
        raise ValueError("item_popularity.n_users must be a non-negative integer for every item")
    clash = pop.filter(pl.col("item_id").is_duplicated())
    if clash.height:
        raise ValueError(
            f"item_popularity lists item {clash.item(0, 'item_id')!r} more than once; "
            "expected one row per item"
        )
    return pop


def _clean_categories(item_categories: pl.DataFrame) -> pl.DataFrame:
    _require_columns(item_categories, ("item_id", "category"), "item_categories")
    cats = (
        item_categories.select(pl.col("item_id").cast(pl.String), pl.col("category").cast(pl.String))
        .filter(pl.col("item_id").is_not_null() & pl.col("category").is_not_null())
        .unique()
    )
    clash = cats.filter(pl.col("item_id").is_duplicated())
    if clash.height:
        raise ValueError(
            f"item_categories gives item {clash.item(0, 'item_id')!r} more than one category; "
            "expected one category per item"
        )
    return cats


def _mean(values: pl.Series) -> float:
    values = values.drop_nulls().drop_nans() if values.dtype.is_float() else values.drop_nulls()
    return math.nan if values.len() == 0 else float(values.mean())  # type: ignore[arg-type]
