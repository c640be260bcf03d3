"""What the search ranker knows about a (query, shopper, item): one featurizer for training, grading and serving.

Two tables describe the world at one moment (the split's cut-off for lessons and grades, today for
serving), and `SearchFeaturizer` turns them into the same numbers on every path:

- the *catalogue* (`search_catalogue`): every item's searchable text (title, category, brand,
  condition), whether it is sellable, its price and its demand (users, purchases, view -> purchase
  rate, listing age) from the feature store's item_features;
- the *shopper signals* (`user_signals`): per user, the share of their interest in each category and
  brand, their usual price level and activity, and the recommender's top items for them with scores
  (the user-item affinity; EASE by default), in one long table (user_id, signal, key, value, rank).

A shopper without signals (anonymous, or new since the moment the tables describe) gets missing
values, which the ranker was trained with: their ranking is the non-personalised one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from recs_assets.arguments import positive_int
from recs_assets.models.lists import recommendations_frame
from recs_assets.search.bm25 import SEARCH_FIELDS, BM25Index
from recs_assets.search.text import query_terms

# The ranker's inputs, in the order of the feature matrix (a saved ranker must list exactly these).
SEARCH_FEATURES: tuple[str, ...] = (
    "bm25",
    "title_match",
    "category_match",
    "brand_match",
    "condition_match",
    "item_log_users",
    "item_log_purchases",
    "item_view_to_purchase_rate",
    "item_price",
    "item_listing_age_days",
    "rec_affinity",
    "rec_rank",
    "user_category_share",
    "user_brand_share",
    "price_to_user_level",
    "user_log_events",
    "query_terms",
    "log_result_count",
    "hour",
)

CATALOGUE_SCHEMA = {
    "item_id": pl.String,
    "title": pl.String,
    "category": pl.String,
    "brand": pl.String,
    "condition": pl.String,
    "price": pl.Float64,
    "is_sellable": pl.Boolean,
    "n_users": pl.Float64,
    "n_purchases": pl.Float64,
    "view_to_purchase_rate": pl.Float64,
    "listing_age_days": pl.Float64,
}
SIGNALS_SCHEMA = {"user_id": pl.String, "signal": pl.String, "key": pl.String, "value": pl.Float64, "rank": pl.Int32}
# Signal names in `user_signals`.
CATEGORY, BRAND, ITEM, PRICE_LEVEL, ACTIVITY = "category", "brand", "item", "price_level", "activity"
DEFAULT_AFFINITY_ITEMS = 50


def search_catalogue(items: pl.DataFrame, item_features: pl.DataFrame | None = None) -> pl.DataFrame:
    """Every item with its searchable text, price, demand, and whether it is sellable now (CATALOGUE_SCHEMA).

    Sellable = active in `items` (a sold one-of-a-kind listing is not) and, when `item_features` is
    given, available at its moment (listed, not sold before it).
    """
    if "item_id" not in items.columns:
        raise ValueError(f"items need an item_id column to be searched; they have {items.columns}")
    base = items.select(
        pl.col("item_id").cast(pl.String),
        *[(pl.col(c).cast(pl.String) if c in items.columns else pl.lit(None, dtype=pl.String)).alias(c)
          for c in SEARCH_FIELDS],
        (pl.col("price").cast(pl.Float64) if "price" in items.columns else pl.lit(None, dtype=pl.Float64)).alias("price"),
        (pl.col("is_active").fill_null(True) if "is_active" in items.columns else pl.lit(True)).alias("_active"),
    )
    demand = ["n_users", "n_purchases", "view_to_purchase_rate", "listing_age_days"]
    if item_features is not None and item_features.height:
        features = item_features.select(
            pl.col("item_id").cast(pl.String),
            *[(pl.col(c).cast(pl.Float64) if c in item_features.columns else pl.lit(None, dtype=pl.Float64)).alias(c)
              for c in demand],
            (pl.col("is_available").fill_null(False) if "is_available" in item_features.columns else pl.lit(True)).alias("_available"),
        )
        base = base.join(features, on="item_id", how="left").with_columns(pl.col("_available").fill_null(False))
    else:
        base = base.with_columns(*[pl.lit(None, dtype=pl.Float64).alias(c) for c in demand], pl.lit(True).alias("_available"))
    return (
        base.with_columns((pl.col("_active") & pl.col("_available")).alias("is_sellable"),
                          pl.col("n_users").fill_null(0.0), pl.col("n_purchases").fill_null(0.0))
        .select(list(CATALOGUE_SCHEMA))
        .sort("item_id")
    )


def user_signals(
    interactions: pl.DataFrame,
    items: pl.DataFrame,
    user_features: pl.DataFrame,
    user_category_affinity: pl.DataFrame,
    recommender=None,
    *,
    users: Sequence[str] | None = None,
    n_affinity: int = DEFAULT_AFFINITY_ITEMS,
) -> pl.DataFrame:
    """What each shopper's past says (SIGNALS_SCHEMA): category and brand shares, price level, activity, top items.

    `interactions` (user_id, item_id, strength) gives brand shares; `user_category_affinity` the
    category shares; `user_features` the price level and event count; `recommender` (any fitted model
    with `recommend` and `is_known_user`) its top `n_affinity` items per user, seen ones included (an
    item viewed last week is still a good search result), as the user-item affinity. `users` limits
    the rows to these shoppers (None: everyone in user_features or interactions).
    """
    n_affinity = positive_int(n_affinity, "n_affinity (items per user)")
    wanted = None if users is None else pl.Series("user_id", list(users), dtype=pl.String).unique()

    def only_wanted(frame: pl.DataFrame) -> pl.DataFrame:
        return frame if wanted is None else frame.filter(pl.col("user_id").is_in(wanted.implode()))

    parts = []
    if user_category_affinity.height:
        parts.append(only_wanted(user_category_affinity).select(
            "user_id", pl.lit(CATEGORY).alias("signal"), pl.col("category").alias("key"),
            pl.col("share").cast(pl.Float64).alias("value"), pl.col("category_rank").cast(pl.Int32).alias("rank")))
    if interactions.height and "brand" in items.columns:
        by_brand = (
            only_wanted(interactions).join(items.select("item_id", "brand"), on="item_id", how="inner")
            .filter(pl.col("brand").is_not_null())
            .group_by("user_id", "brand").agg(pl.col("strength").sum())
            .filter(pl.col("strength") > 0)
        )
        parts.append(by_brand.select(
            "user_id", pl.lit(BRAND).alias("signal"), pl.col("brand").alias("key"),
            (pl.col("strength") / pl.col("strength").sum().over("user_id")).alias("value"),
            pl.col("strength").rank("ordinal", descending=True).over("user_id").cast(pl.Int32).alias("rank")))
    if user_features.height:
        known = only_wanted(user_features)
        for signal, column in ((PRICE_LEVEL, "price_level"), (ACTIVITY, "n_events")):
            if column in known.columns:
                parts.append(known.filter(pl.col(column).is_not_null()).select(
                    "user_id", pl.lit(signal).alias("signal"), pl.lit(None, dtype=pl.String).alias("key"),
                    pl.col(column).cast(pl.Float64).alias("value"), pl.lit(None, dtype=pl.Int32).alias("rank")))
    if recommender is not None:
        candidates = (wanted.to_list() if wanted is not None
                      else pl.concat([user_features.select("user_id"), interactions.select("user_id")])["user_id"].unique().to_list())
        candidates = sorted(u for u in candidates if u is not None)
        known_users = [u for u, ok in zip(candidates, recommender.is_known_user(candidates)) if ok] if candidates else []
        if known_users:
            ids, scores = recommender.recommend(known_users, n_affinity, exclude_seen=False)
            lists = recommendations_frame(known_users, ids, scores)
            parts.append(lists.select(
                "user_id", pl.lit(ITEM).alias("signal"), pl.col("item_id").alias("key"),
                pl.col("score").cast(pl.Float64).alias("value"), pl.col("rank").cast(pl.Int32)))
    if not parts:
        return pl.DataFrame(schema=SIGNALS_SCHEMA)
    return pl.concat([p.select(pl.col(c).cast(t) for c, t in SIGNALS_SCHEMA.items()) for p in parts]).sort("user_id", "signal", "rank")


class _PairTable:
    """Values of (row, column) pairs of a sparse table, looked up for whole arrays of pairs at once."""

    def __init__(self, rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n_cols: int) -> None:
        self.n_cols = max(int(n_cols), 1)
        keys = rows.astype(np.int64) * self.n_cols + cols.astype(np.int64)
        order = np.argsort(keys, kind="stable")
        self.keys, self.values = keys[order], values[order].astype(np.float64)

    def get(self, rows: np.ndarray, cols: np.ndarray, missing: float = np.nan) -> np.ndarray:
        out = np.full(len(rows), missing, dtype=np.float64)
        valid = (rows >= 0) & (cols >= 0)
        if not len(self.keys) or not valid.any():
            return out
        wanted = rows[valid].astype(np.int64) * self.n_cols + cols[valid].astype(np.int64)
        at = np.minimum(np.searchsorted(self.keys, wanted), len(self.keys) - 1)
        hit = self.keys[at] == wanted
        filled = np.full(len(wanted), missing, dtype=np.float64)
        filled[hit] = self.values[at[hit]]
        out[valid] = filled
        return out


def _codes(values: list[str | None]) -> tuple[dict[str, int], np.ndarray]:
    index: dict[str, int] = {}
    codes = np.array([index.setdefault(v, len(index)) if v is not None else -1 for v in values], dtype=np.int64)
    return index, codes


class SearchFeaturizer:
    """The BM25 index over a catalogue plus the shoppers' signals: features for any (query, user, item) pairs."""

    def __init__(self, catalogue: pl.DataFrame, signals: pl.DataFrame, *, n_affinity: int = DEFAULT_AFFINITY_ITEMS) -> None:
        missing = [c for c in CATALOGUE_SCHEMA if c not in catalogue.columns]
        if missing:
            raise ValueError(f"the search catalogue lacks column(s) {missing} (build it with search_catalogue)")
        missing = [c for c in SIGNALS_SCHEMA if c not in signals.columns]
        if missing:
            raise ValueError(f"the shopper signals lack column(s) {missing} (build them with user_signals)")
        self.index = BM25Index.from_catalogue(catalogue)
        ids = catalogue["item_id"].to_list()
        self.item_index = {item: i for i, item in enumerate(ids)}
        self.category_index, self.item_category = _codes(catalogue["category"].to_list())
        self.brand_index, self.item_brand = _codes(catalogue["brand"].to_list())
        self.item_price = catalogue["price"].to_numpy().astype(np.float64)
        self.item_columns = np.column_stack([
            np.log1p(catalogue["n_users"].fill_null(0.0).to_numpy()),
            np.log1p(catalogue["n_purchases"].fill_null(0.0).to_numpy()),
            catalogue["view_to_purchase_rate"].to_numpy().astype(np.float64),
            self.item_price,
            catalogue["listing_age_days"].to_numpy().astype(np.float64),
        ])
        self.popularity = self.item_columns[:, 0]
        self.n_affinity = n_affinity

        user_ids = signals["user_id"].unique().sort().to_list()
        self.user_index = {user: u for u, user in enumerate(user_ids)}
        n_users = len(user_ids)
        rows = np.array([self.user_index[u] for u in signals["user_id"].to_list()], dtype=np.int64)
        signal = signals["signal"].to_numpy()
        keys = signals["key"].to_list()
        values = signals["value"].to_numpy().astype(np.float64)
        ranks = signals["rank"].to_numpy()

        def table(name: str, index: dict[str, int], value_of=values) -> _PairTable:
            chosen = np.flatnonzero(signal == name)
            cols = np.array([index.get(keys[i], -1) for i in chosen], dtype=np.int64)
            keep = cols >= 0
            return _PairTable(rows[chosen][keep], cols[keep], np.asarray(value_of, dtype=np.float64)[chosen][keep], len(index))

        self.category_share = table(CATEGORY, self.category_index)
        self.brand_share = table(BRAND, self.brand_index)
        self.affinity = table(ITEM, self.item_index)
        self.affinity_rank = table(ITEM, self.item_index, np.where(np.isnan(ranks.astype(np.float64)), np.nan, ranks.astype(np.float64)))
        self.user_price_level = np.full(n_users, np.nan)
        self.user_log_events = np.full(n_users, np.nan)
        for name, target in ((PRICE_LEVEL, self.user_price_level), (ACTIVITY, self.user_log_events)):
            chosen = np.flatnonzero(signal == name)
            target[rows[chosen]] = values[chosen] if name == PRICE_LEVEL else np.log1p(values[chosen])

    def items(self, item_ids: Sequence[str]) -> np.ndarray:
        """Row numbers of these items in the catalogue (-1 for an unknown item)."""
        return np.array([self.item_index.get(i, -1) for i in item_ids], dtype=np.int64)

    def users(self, user_ids: Sequence[str | None]) -> np.ndarray:
        """Row numbers of these shoppers in the signals (-1: no signals, e.g. anonymous or new)."""
        return np.array([self.user_index.get(u, -1) if u is not None else -1 for u in user_ids], dtype=np.int64)

    def result_count(self, query: str) -> int:
        """How many sellable items match the query at all."""
        return int(((self.index.scores(query) > 0) & self.index.sellable).sum())

    def features(self, query: str, users: np.ndarray, items: np.ndarray, hours: np.ndarray,
                 *, bm25: np.ndarray | None = None, result_count: int | None = None) -> np.ndarray:
        """The SEARCH_FEATURES matrix (one row per pair) for one query and aligned user, item and hour arrays.

        `items` must be catalogue rows (see `items`); `users` may hold -1 for shoppers without signals.
        `bm25` and `result_count` may be passed when retrieval already computed them.
        """
        n = len(items)
        if np.any(items < 0):
            raise ValueError("features need catalogue items; unknown items (row -1) were given")
        users = np.broadcast_to(np.asarray(users, dtype=np.int64), (n,))
        hours = np.broadcast_to(np.asarray(hours, dtype=np.float64), (n,))
        if bm25 is None:
            bm25 = self.index.scores(query)[items]
        if result_count is None:
            result_count = self.result_count(query)
        matches = self.index.field_matches(query, items)
        known = users >= 0
        category = self.category_share.get(users, self.item_category[items], missing=0.0)
        brand = self.brand_share.get(users, self.item_brand[items], missing=0.0)
        affinity = self.affinity.get(users, items)
        rank = self.affinity_rank.get(users, items, missing=float(self.n_affinity + 1))
        safe_users = np.where(known, users, 0)
        price_level = np.where(known, self.user_price_level[safe_users], np.nan) if len(self.user_price_level) else np.full(n, np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            price_ratio = np.where(price_level > 0, self.item_price[items] / price_level, np.nan)
        log_events = np.where(known, self.user_log_events[safe_users], np.nan) if len(self.user_log_events) else np.full(n, np.nan)
        unknown = ~known
        category[unknown] = brand[unknown] = rank[unknown] = np.nan
        n_terms = float(len(query_terms(query)))
        return np.column_stack([
            bm25,
            matches["title"], matches["category"], matches["brand"], matches["condition"],
            self.item_columns[items],
            affinity, rank, category, brand, price_ratio, log_events,
            np.full(n, n_terms), np.full(n, np.log1p(result_count)), hours,
        ])

    def frame(self, query: str, user_ids: Sequence[str | None], item_ids: Sequence[str], hours: np.ndarray) -> pl.DataFrame:
        """`features` as a frame with one column per SEARCH_FEATURES name (for lessons and inspection)."""
        matrix = self.features(query, self.users(user_ids), self.items(item_ids), hours)
        return pl.DataFrame(matrix, schema=list(SEARCH_FEATURES), orient="row")
