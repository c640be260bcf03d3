"""The held-out lists are built once: each generator's long list serves as its own top-k and as the ranker's candidates."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl

from recs_assets.evaluation.grading import grade_holdout
from recs_assets.evaluation.pipeline import holdout_lists, lists_by_model
from recs_assets.models import ItemKNNRecommender, PopularityRecommender
from recs_assets.models.lists import recommend_frame
from recs_assets.training.splits import temporal_split

START = datetime(2026, 9, 1, tzinfo=timezone.utc)


def _events() -> pl.DataFrame:
    rows = []
    for u in range(12):
        for day, item in enumerate([f"i{u % 4}", f"i{(u + 1) % 4}", f"i{(u + 2) % 6}", f"i{(u + 3) % 6}"]):
            rows.append({"event_id": f"e{u}-{day}", "event_at": START + timedelta(days=3 * day), "user_id": f"u{u:02d}",
                         "item_id": item, "event_type": "view"})
    return pl.DataFrame(rows, schema_overrides={"event_at": pl.Datetime("us", "UTC")})


def _fitted(split):
    interactions = (
        split.train.group_by("user_id", "item_id").len().rename({"len": "strength"}).with_columns(pl.col("strength").cast(pl.Float64))
    )
    return {"popularity": PopularityRecommender().fit(interactions), "item_knn": ItemKNNRecommender().fit(interactions)}


def test_each_generators_top_k_is_the_prefix_of_its_candidate_list():
    split = temporal_split(_events(), test_days=3)
    generators = _fitted(split)
    users = split.truth["user_id"].unique().sort().to_list()
    lists = holdout_lists(generators, None, users, {}, n_candidates=5, N=2)
    assert set(lists["model"]) == {"popularity", "item_knn"}  # no ranker asked for
    for name, top in lists_by_model(lists, 2).items():
        direct = recommend_frame(generators[name], users, 2)
        assert top.sort("user_id", "rank").equals(direct.sort("user_id", "rank"))
        assert top.group_by("user_id").len()["len"].max() <= 2


def test_grade_holdout_gives_every_all_row_an_interval_around_its_value_and_the_protocol():
    split = temporal_split(_events(), test_days=3)
    users = split.truth["user_id"].unique().sort().to_list()
    lists = lists_by_model(holdout_lists(_fitted(split), None, users, {}, n_candidates=5, N=2), 2)
    interactions = split.train.select("user_id", "item_id").unique()
    items = pl.DataFrame({"item_id": [f"i{i}" for i in range(6)], "n_users": [1] * 6, "is_available": [True] * 6,
                          "category": ["a"] * 6})
    table = grade_holdout(lists, split, interactions, items, 2, champion=None, seed=1)
    overall = table.filter(pl.col("segment") == "all")
    assert overall.height == 2 and (overall["protocol"] == "temporal").all()
    assert ((overall["ndcg@2_ci_low"] <= overall["ndcg@2"]) & (overall["ndcg@2"] <= overall["ndcg@2_ci_high"])).all()
    assert overall.filter(pl.col("model") == "popularity")["p_vs_popularity"].is_null().all()  # not against itself
