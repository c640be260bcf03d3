"""GET /search's shopper features read from the online feature store: the request path, on hand-made shops."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from recs_assets.feature_store import OnlineShoppers, ShopperFeatures, open_store, publish
from recs_assets.layout import HomeLayout
from recs_assets.models.storage import save_model_folder
from recs_assets.search.engine import SearchEngine
from recs_assets.search.features import SEARCH_FEATURES, SearchFeaturizer, search_catalogue, user_signals
from recs_assets.search.ranker import build_lessons, examination_propensities, fit_search_ranker
from recs_assets.serving.search import SearchHolder, search_response, with_online_shopper
from tests.search.planted import planted_items, planted_tables

AS_OF = dt.datetime(2026, 9, 30, tzinfo=dt.UTC)
COLUMN = {name: k for k, name in enumerate(SEARCH_FEATURES)}


def two_category_featurizer() -> SearchFeaturizer:
    items = pl.DataFrame({"item_id": ["j1", "b1"], "title": ["red jacket", "red boots"], "category": ["jackets", "boots"],
                          "brand": ["X", "Y"], "price": [50.0, 100.0], "condition": ["good", "good"], "is_active": [True, True]})
    features = items.select("item_id").with_columns(pl.lit(1.0).alias("n_users"), pl.lit(1.0).alias("n_purchases"),
                                                    pl.lit(0.1).alias("view_to_purchase_rate"), pl.lit(5.0).alias("listing_age_days"),
                                                    pl.lit(True).alias("is_available"))
    signals = user_signals(
        pl.DataFrame({"user_id": ["u1"], "item_id": ["j1"], "strength": [1.0]}), items,
        pl.DataFrame({"user_id": ["u1"], "price_level": [50.0], "n_events": [9]}),
        pl.DataFrame({"user_id": ["u1"], "category": ["jackets"], "share": [1.0], "category_rank": [1]}),
    )
    return SearchFeaturizer(search_catalogue(items, features), signals)


def personal_columns(engine: SearchEngine, user_id: str) -> dict[str, list[float]]:
    featurizer = engine.featurizer
    items = featurizer.items(["j1", "b1"])
    matrix = featurizer.features("red", np.full(2, featurizer.users([user_id])[0]), items, np.full(2, 12.0))
    return {name: matrix[:, COLUMN[name]].round(6).tolist()
            for name in ("user_category_share", "price_to_user_level", "user_log_events", "user_brand_share")}


def test_the_online_features_replace_the_snapshots_for_that_request_only():
    engine = SearchEngine(two_category_featurizer())
    before = personal_columns(engine, "u1")
    online = ShopperFeatures("u1", price_level=100.0, n_events=3, category_shares={"boots": 0.75})
    personal = personal_columns(with_online_shopper(engine, online), "u1")
    # The online store says u1 now shops boots at 100: jackets share 0 (none online), boots 0.75; prices
    # 50 and 100 against a level of 100; log(1 + 3) events. The brand share (not in the store) stays.
    assert personal["user_category_share"] == [0.0, 0.75]
    assert personal["price_to_user_level"] == [0.5, 1.0]
    assert personal["user_log_events"] == [round(float(np.log1p(3)), 6)] * 2
    assert personal["user_brand_share"] == before["user_brand_share"] == [1.0, 0.0]
    assert before["user_category_share"] == [1.0, 0.0] and before["price_to_user_level"] == [1.0, 2.0]
    assert personal_columns(engine, "u1") == before  # the shared engine is untouched


def test_a_shopper_new_since_the_snapshot_is_personalised_from_the_online_store():
    engine = SearchEngine(two_category_featurizer())
    assert engine.featurizer.users(["u9"])[0] == -1
    personal = with_online_shopper(engine, ShopperFeatures("u9", price_level=None, n_events=0, category_shares={"jackets": 1.0}))
    columns = personal_columns(personal, "u9")
    assert columns["user_category_share"] == [1.0, 0.0]
    assert columns["user_brand_share"] == [0.0, 0.0]  # known now, with no brand history
    assert all(np.isnan(columns["price_to_user_level"]))  # no price level known
    assert personal_columns(personal, "u1")["user_category_share"] == [1.0, 0.0]  # others keep the snapshot's


def store_tables(users: list[str], categories: dict[str, dict[str, float]], price: float) -> dict[str, pl.DataFrame]:
    from recs_assets.feature_store import FEATURE_VIEWS

    def full(name: str, frame: pl.DataFrame) -> pl.DataFrame:
        schema = FEATURE_VIEWS[name].schema
        return frame.with_columns(pl.lit(None, dtype=t).alias(c) for c, t in schema.items() if c not in frame.columns).select(list(schema))

    user_features = pl.DataFrame({"user_id": users, "n_events": [4] * len(users), "price_level": [price] * len(users)})
    affinity = pl.DataFrame([{"user_id": u, "category": c, "share": s} for u in users for c, s in categories.get(u, {}).items()])
    return {"user_features": full("user_features", user_features), "user_category_affinity": full("user_category_affinity", affinity)}


@pytest.mark.slow
def test_the_online_reader_reads_what_was_materialised(tmp_path):
    layout = HomeLayout(tmp_path)
    publish(layout, store_tables(["u1", "u2"], {"u1": {"rpg": 0.25, "indie": 0.75}}, 20.0), AS_OF)
    shoppers = OnlineShoppers(open_store(layout, apply=False), ["rpg", "indie", "puzzle", None])
    assert shoppers.read("u1") == ShopperFeatures("u1", 20.0, 4, {"indie": 0.75, "rpg": 0.25})
    assert shoppers.read("u2") == ShopperFeatures("u2", 20.0, 4, {})  # known, no category yet
    assert shoppers.read("nobody") is None


@pytest.mark.slow
def test_search_reads_the_shopper_online_in_the_request_path(tmp_path):
    catalogue, signals, impressions = planted_tables()
    featurizer = SearchFeaturizer(catalogue, signals)
    ranker = fit_search_ranker(build_lessons(impressions, featurizer), examination_propensities(impressions))
    layout = HomeLayout(tmp_path)
    layout.lake.mkdir(parents=True)
    catalogue.write_parquet(layout.lake / "search_catalogue.parquet")
    signals.write_parquet(layout.lake / "search_user_signals.parquet")
    save_model_folder(ranker, layout.model_dir("search_ranker_model"))
    planted_items().write_parquet(layout.lake / "items.parquet")
    # "new01" joined after the search snapshot; the online store knows them. "a01" is in both, alike.
    publish(layout, store_tables(["a01", "new01"], {"a01": {"jackets": 1.0}, "new01": {"jackets": 1.0}}, 50.0), AS_OF)

    holder = SearchHolder(layout, reload_interval=30)
    holder.refresh()
    assert holder.connect_online() and holder.shoppers is not None
    snapshot = holder.snapshot
    new_offline = search_response(snapshot, frozenset(), "jackets", "new01", 5)
    new_online = search_response(snapshot, frozenset(), "jackets", "new01", 5, shoppers=holder.shoppers)
    assert new_offline["ranking"] == "ranked" and new_online["ranking"] == "personalised"
    # a01's online features are the snapshot's (activity 4 online vs 3 in the snapshot aside), so the
    # planted taste (brand X, from the snapshot) still leads.
    known = search_response(snapshot, frozenset(), "jackets", "a01", 5, shoppers=holder.shoppers)
    assert known["ranking"] == "personalised" and all(item["item_id"].startswith("i0") for item in known["items"])
