"""The two-tower model: retrieval through the index matches exact scoring, sold items never come back,
the index is stored with the model, and it beats popularity on the simulator."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from recs_assets.models.two_tower import TwoTowerRecommender
from tests.models.conftest import CATEGORIES, INTERACTIONS, ITEMS, USERS, random_interactions


def small(**options) -> TwoTowerRecommender:
    return TwoTowerRecommender(dim=16, epochs=5, batch_size=64, seed=1, threads=1, **options)


@pytest.fixture(scope="module")
def interactions() -> pl.DataFrame:
    return random_interactions(60, 80, 0.1, seed=2)


@pytest.mark.parametrize("ann", ["exact", "hnsw"])
def test_retrieval_through_the_index_gives_the_exact_lists(ann, interactions):
    # 80 items: HNSW with ef_search >= the catalogue must find the exact top-k.
    model = small(ann=ann).fit(interactions, available_item_ids=[f"i{n:03d}" for n in range(0, 80, 2)])
    users = interactions["user_id"].unique().sort().to_list() + ["stranger"]
    dense = model.recommend(users, 10)
    retrieved = model.retrieve(users, 10)
    # The index computes in float32: near-ties may swap, so the k best scores must agree, and nearly all ids.
    assert np.allclose(dense[1], retrieved[1], atol=1e-4, equal_nan=True)
    assert (dense[0] == retrieved[0]).mean() > 0.9
    assert model.vector_index().kind == ann and len(model.vector_index()) == 40


def test_big_catalogues_recommend_through_the_index(interactions):
    model = small(ann="exact", ann_min_items=1).fit(interactions)
    users = interactions["user_id"].unique().sort().to_list()
    assert np.allclose(model.recommend(users, 5)[1], small().fit(interactions).recommend(users, 5)[1], atol=1e-4)


def test_sold_items_are_never_retrieved():
    sold = {"A0", "B3"}
    model = small(ann="hnsw", ann_min_items=1).fit(INTERACTIONS, available_item_ids=[i for i in ITEMS if i not in sold],
                                                   item_categories=CATEGORIES)
    for exclude_seen in (True, False):
        ids, _ = model.recommend(USERS + ["stranger"], len(ITEMS), exclude_seen=exclude_seen)
        assert not sold & set(ids.ravel())
    model.set_available_items([i for i in ITEMS if i != "A3"])
    assert "A3" not in set(model.retrieve(USERS, len(ITEMS))[0].ravel())


def test_the_index_is_saved_inside_the_model_file(interactions, tmp_path):
    model = small(ann="hnsw").fit(interactions)
    users = interactions["user_id"].unique().sort().to_list()
    model.save(tmp_path / "two_tower.npz")
    with np.load(tmp_path / "two_tower.npz", allow_pickle=False) as archive:
        assert "model.index.faiss" in archive.files
    loaded = TwoTowerRecommender.load(tmp_path / "two_tower.npz")
    assert loaded.vector_index().kind == "hnsw"
    assert np.array_equal(loaded.retrieve(users, 5)[0], model.retrieve(users, 5)[0])


def test_a_history_embeds_like_a_user_of_that_history():
    model = TwoTowerRecommender(dim=16, epochs=30, batch_size=16, learning_rate=0.02, seed=3).fit(
        INTERACTIONS, item_categories=CATEGORIES
    )
    vector = model.embed_history(["A1", "A2", "A4", "A5"])
    scores = dict(zip(model.item_ids, model._item_vectors @ vector, strict=True))
    assert min(scores[i] for i in ITEMS if i[0] == "A") > max(scores[i] for i in ITEMS if i[0] == "B")
    with pytest.raises(ValueError, match="strengths"):
        model.embed_history(["A1"], [0.0])


def test_bad_settings_are_refused():
    for options, word in (({"ann": "annoy"}, "ann"), ({"logq": 2}, "logq"), ({"history_dropout": 1.0}, "history_dropout"),
                          ({"dim": 0}, "dim"), ({"seed": -1}, "seed")):
        with pytest.raises(ValueError, match=word):
            TwoTowerRecommender(**options)


@pytest.mark.slow
def test_beats_popularity_on_the_simulator():
    from recs_assets.evaluation import evaluate
    from recs_assets.features import DEFAULT_INTERACTION_PARAMS
    from recs_assets.models import PopularityRecommender
    from recs_assets.models.lists import recommend_frame
    from recs_assets.sources.simulator import SimulatorConfig, simulate
    from recs_assets.training.ranking_set import features_at, fit_generator
    from recs_assets.training.splits import make_split

    # Seed 42 was not among the shops the defaults were chosen on (1-11).
    market = simulate(SimulatorConfig(preset="games", n_users=3_000, n_items=1_500, n_days=30, seed=42))
    split = make_split(market.events, "temporal", test_days=7.0)
    known = features_at(split.train, market.events, market.items, market.users, split.cutoff, DEFAULT_INTERACTION_PARAMS)
    users = split.history_users.to_list()
    ndcg = {}
    for model in (PopularityRecommender(), TwoTowerRecommender()):
        fit_generator(model, known["interactions"], known["item_features"])
        ndcg[model.name] = evaluate(recommend_frame(model, users, 10), split.evaluable_truth, 10)["ndcg@10"]
    assert ndcg["popularity"] > 0.01
    assert ndcg["two_tower"] > 1.03 * ndcg["popularity"], ndcg
