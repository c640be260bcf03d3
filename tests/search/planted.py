"""A hand-made jacket shop with a planted taste: shoppers of segment A always buy brand X, B never do.

Used by the ranker, engine and API tests. Every item is equally popular and equally priced, so the only
thing that can lift brand X for A's searches is what the ranker learns from A's history.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from recs_assets.search.features import SearchFeaturizer, search_catalogue, user_signals
from recs_assets.search.sessions import IMPRESSION_SCHEMA

BRANDS = ("Xenon", "Yarrow", "Zephyr", "Wren")
PLANTED = "Xenon"
UTC = dt.timezone.utc


def planted_items() -> pl.DataFrame:
    rows = []
    for b, brand in enumerate(BRANDS):
        for k in range(10):
            rows.append({"item_id": f"i{b}{k:02d}", "title": f"{brand} jacket {k}", "category": "jackets", "brand": brand,
                         "price": 50.0, "condition": "good", "is_active": True})
    rows.append({"item_id": "sold1", "title": "Xenon jacket sold", "category": "jackets", "brand": PLANTED,
                 "price": 50.0, "condition": "good", "is_active": False})
    return pl.DataFrame(rows)


def planted_users(n: int = 30) -> tuple[list[str], list[str]]:
    return [f"a{k:02d}" for k in range(n)], [f"b{k:02d}" for k in range(n)]


def planted_tables(seed: int = 0):
    """(catalogue, signals, impressions) of the planted shop."""
    rng = np.random.default_rng(seed)
    items = planted_items()
    a_users, b_users = planted_users()
    sellable = items.filter(pl.col("is_active"))
    x_items = sellable.filter(pl.col("brand") == PLANTED)["item_id"].to_list()
    other_items = sellable.filter(pl.col("brand") != PLANTED)["item_id"].to_list()
    # History: A shoppers liked three X jackets, B shoppers three of the other brands.
    history = [{"user_id": u, "item_id": str(i), "strength": 5.0}
               for users, pool in ((a_users, x_items), (b_users, other_items))
               for u in users for i in rng.choice(pool, 3, replace=False)]
    interactions = pl.DataFrame(history)
    users = a_users + b_users
    user_features = pl.DataFrame({"user_id": users, "price_level": [50.0] * len(users), "n_events": [3] * len(users)})
    affinity = pl.DataFrame({"user_id": users, "category": ["jackets"] * len(users), "share": [1.0] * len(users),
                             "category_rank": [1] * len(users)})
    item_features = sellable.select("item_id").with_columns(
        pl.lit(20.0).alias("n_users"), pl.lit(2.0).alias("n_purchases"), pl.lit(0.1).alias("view_to_purchase_rate"),
        pl.lit(30.0).alias("listing_age_days"), pl.lit(True).alias("is_available"))
    catalogue = search_catalogue(items, item_features)
    signals = user_signals(interactions, items, user_features, affinity)
    rows = []
    start = dt.datetime(2026, 9, 1, tzinfo=UTC)
    for u, user in enumerate(users):
        likes_x = user in a_users
        for s in range(8):
            shown = [*rng.choice(x_items, 3, replace=False), *rng.choice(other_items, 5, replace=False)]
            rng.shuffle(shown)
            wanted = [i for i in shown if (i in x_items) == likes_x]
            bought = wanted[rng.integers(len(wanted))]
            for position, item in enumerate(shown, start=1):
                label = 3 if item == bought else (1 if item in wanted and rng.random() < 0.5 else 0)
                rows.append({"search_id": f"{user}#{s}", "user_id": user, "session_id": f"{user}-{s}", "query": "jackets",
                             "searched_at": start + dt.timedelta(hours=u * 8 + s), "item_id": str(item),
                             "position": position, "propensity": 0.1, "label": label})
    impressions = pl.DataFrame(rows, schema=IMPRESSION_SCHEMA)
    return catalogue, signals, impressions


def planted_featurizer(seed: int = 0) -> tuple[SearchFeaturizer, pl.DataFrame]:
    catalogue, signals, impressions = planted_tables(seed)
    return SearchFeaturizer(catalogue, signals), impressions
