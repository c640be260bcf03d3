"""Serving snapshots: full lists for active users, nothing bought or sold, fallbacks per category/segment."""

import polars as pl
import pytest

from recs_assets.features import DEFAULT_INTERACTION_PARAMS
from recs_assets.models import EASERecommender, PopularityRecommender
from recs_assets.serving.snapshot_assets import SnapshotConfig, recommendation_snapshot_is_servable
from recs_assets.serving.snapshots import (
    active_users,
    popular_items_snapshot,
    recommendation_snapshot,
    similar_items_snapshot,
    snapshot_problems,
)
from recs_assets.sources.simulator import SimulatorConfig, simulate
from recs_assets.training.ranking_set import features_at, fit_generator


@pytest.fixture(scope="module")
def fashion():
    """A second-hand shop: sold listings are inactive and must never be served."""
    return simulate(SimulatorConfig(preset="fashion", n_users=400, n_items=300, n_days=20, seed=7))


@pytest.fixture(scope="module")
def served(fashion):
    m = fashion
    known = features_at(m.events, m.events, m.items, m.users, None, DEFAULT_INTERACTION_PARAMS)
    ease = fit_generator(EASERecommender(), known["interactions"], known["item_features"])
    exclude = m.events.filter(pl.col("item_id").is_not_null() & (pl.col("event_type") != "impression")).select("user_id", "item_id").unique()
    available = m.items.filter(pl.col("is_active"))["item_id"]
    users = active_users(m.events, 30)
    snapshot = recommendation_snapshot("ease", {"ease": ease}, None, users, known, exclude, available, N=10, n_candidates=50)
    return m, ease, users, exclude, available, snapshot


def test_every_active_user_gets_n_fresh_sellable_items(served):
    m, _, users, exclude, available, snapshot = served
    bought = m.events.filter(pl.col("event_type") == "purchase").select("user_id", "item_id").unique()
    problems = snapshot_problems(snapshot, users, bought, available, 10)
    assert problems["users_short_of_n"] == 0 and problems["lists_with_duplicates"] == 0
    assert problems["bought_items_recommended"] == 0 and problems["unavailable_items_recommended"] == 0
    assert snapshot.join(exclude, on=["user_id", "item_id"], how="semi").height == 0
    assert snapshot.group_by("user_id").agg(pl.col("rank").sort()).filter(pl.col("rank") != list(range(1, 11))).height == 0


def test_the_servable_check_catches_a_sold_listing_and_a_short_list(served):
    m, _, _, _, _, snapshot = served
    config = SnapshotConfig(n=10, active_days=30)
    assert recommendation_snapshot_is_servable(config=config, recommendation_snapshot=snapshot, events=m.events, items=m.items).passed
    sold = m.items.filter(~pl.col("is_active"))["item_id"][0]
    broken = snapshot.with_columns(pl.when(pl.col("rank") == 1).then(pl.lit(sold)).otherwise(pl.col("item_id")).alias("item_id"))
    result = recommendation_snapshot_is_servable(config=config, recommendation_snapshot=broken, events=m.events, items=m.items)
    assert not result.passed and "unavailable_items_recommended" in result.description
    short = snapshot.filter(pl.col("rank") <= 5)
    assert "users_short_of_n" in recommendation_snapshot_is_servable(
        config=config, recommendation_snapshot=short, events=m.events, items=m.items
    ).description


def test_similar_items_exclude_the_item_and_unsellable_items(served):
    m, ease, _, _, available, _ = served
    some = [i for i in m.items["item_id"].to_list() if ease.is_known_item([i])[0]][:20]
    snapshot = similar_items_snapshot(ease, some, available, N=5)
    assert snapshot.filter(pl.col("item_id") == pl.col("similar_item_id")).height == 0
    assert snapshot["similar_item_id"].is_in(available.implode()).all()
    assert snapshot.group_by("item_id").len()["len"].max() <= 5


def test_popular_fallbacks_exist_overall_per_category_and_per_segment(fashion):
    m = fashion
    snapshot = popular_items_snapshot(m.events, m.items, m.users, N=5)
    overall = snapshot.filter(pl.col("segment").is_null() & pl.col("category").is_null())
    assert overall["rank"].to_list() == [1, 2, 3, 4, 5]
    assert set(snapshot.drop_nulls("category")["category"]) <= set(m.items["category"])
    assert snapshot.drop_nulls("segment")["segment"].n_unique() >= 2
    sold = m.items.filter(~pl.col("is_active"))["item_id"]
    assert not snapshot["item_id"].is_in(sold.implode()).any()
    # Per level, scores never increase down the list.
    assert overall["score"].to_list() == sorted(overall["score"].to_list(), reverse=True)


def test_a_generator_champion_and_the_popularity_fallback_for_cold_users(served):
    m, _, _, exclude, available, _ = served
    known = features_at(m.events, m.events, m.items, m.users, None, DEFAULT_INTERACTION_PARAMS)
    pop = fit_generator(PopularityRecommender(), known["interactions"], known["item_features"])
    snapshot = recommendation_snapshot("popularity", {"popularity": pop}, None, ["nobody"], known, exclude, available, N=3, n_candidates=10)
    assert snapshot["rank"].to_list() == [1, 2, 3]
