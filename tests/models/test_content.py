"""The content model: attribute vectors by hand, brand-new listings reach the right users, sold ones never."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from recs_assets.models.content import ContentRecommender, attribute_matrix

WEIGHTS = {"category": 1.0, "brand": 1.0, "condition": 0.5, "size": 0.5, "price": 0.5, "title": 0.5}

# Two tastes: red dresses by Kestrel, and black boots by Rivet. "new_*" listings appear after training.
CATALOGUE = pl.DataFrame(
    {
        "item_id": ["d1", "d2", "d3", "b1", "b2", "b3", "new_dress", "new_boots", "sold_dress"],
        "category": ["dresses"] * 3 + ["boots"] * 3 + ["dresses", "boots", "dresses"],
        "brand": ["Kestrel"] * 3 + ["Rivet"] * 3 + ["Kestrel", "Rivet", "Kestrel"],
        "price": [30.0, 32.0, 28.0, 60.0, 65.0, 58.0, 31.0, 61.0, 30.0],
        "title": ["Kestrel dress, red"] * 3 + ["Rivet boots, black"] * 3
        + ["Kestrel dress, red", "Rivet boots, black", "Kestrel dress, red"],
    }
)
INTERACTIONS = pl.DataFrame(
    {
        "user_id": ["u1", "u1", "u2", "u2", "u3", "u3", "u4", "u4"],
        "item_id": ["d1", "d2", "d2", "d3", "b1", "b2", "b2", "b3"],
        "strength": [1.0, 2.0, 1.0, 1.0, 3.0, 1.0, 1.0, 1.0],
    }
)
ON_SALE = ["d1", "d2", "d3", "b1", "b2", "b3", "new_dress", "new_boots"]


def test_attribute_vectors_by_hand():
    ids, matrix, tokens, used = attribute_matrix(
        pl.DataFrame({"item_id": ["a", "b", "c"], "brand": ["X", "X", ""], "category": ["k", "l", None]}), WEIGHTS
    )
    assert ids == ["a", "b", "c"] and set(used) == {"brand", "category"}
    dense = dict(zip(tokens, matrix.toarray().T, strict=True))
    # a = (brand=X + category=k) / sqrt(2); c has nothing usable (empty brand, no category): a zero vector.
    assert np.allclose(dense["brand=X"], [2**-0.5, 2**-0.5, 0.0])
    assert np.allclose(dense["category=k"], [2**-0.5, 0.0, 0.0])
    assert np.allclose(np.linalg.norm(matrix.toarray(), axis=1), [1.0, 1.0, 0.0])


def test_title_words_shared_by_few_or_most_items_are_dropped():
    titles = pl.DataFrame({"item_id": list("abcd"), "title": ["Game title 0001", "Game title 0002", "Red title x", "Red title y"]})
    _, _, tokens, _ = attribute_matrix(titles, WEIGHTS)
    # "title" is in every item, serial numbers in one: neither tells items apart by taste.
    assert sorted(tokens) == ["title=game", "title=red"]


def test_cheap_and_dear_fall_in_different_price_bands_within_a_category():
    frame = pl.DataFrame({"item_id": [f"i{n}" for n in range(10)], "category": ["c"] * 10, "price": [float(2**n) for n in range(10)]})
    ids, matrix, tokens, used = attribute_matrix(frame, {"price": 1.0}, n_price_bands=5)
    sims = matrix @ matrix.T
    assert sims[0, 1] > sims[0, 9] and used["price"]["tokens"] == 5


def test_bad_attributes_are_refused():
    with pytest.raises(ValueError, match="item_id"):
        attribute_matrix(pl.DataFrame({"brand": ["X"]}), WEIGHTS)
    with pytest.raises(ValueError, match="more than once"):
        attribute_matrix(pl.DataFrame({"item_id": ["a", "a"], "brand": ["X", "Y"]}), WEIGHTS)
    with pytest.raises(TypeError, match="DataFrame"):
        ContentRecommender().fit(INTERACTIONS, item_attributes={"item_id": ["a"]})


def test_a_new_listing_goes_to_the_users_whose_taste_it_matches():
    model = ContentRecommender().fit(INTERACTIONS, available_item_ids=ON_SALE, item_attributes=CATALOGUE)
    assert model.n_catalogue_only_items == 3 and model.n_unseen_available_items == 0
    ids, scores = model.recommend(["u1", "u3"], 2)
    assert ids[0, 0] in {"d3", "new_dress"} and "new_dress" in ids[0]
    assert "new_boots" in ids[1]
    assert model.fit_notes["attributes_used"].keys() == {"category", "brand", "price", "title"}
    assert "size" in model.fit_notes["attributes_missing"]
    similar, _ = model.similar_items(["new_dress"], 3)
    assert set(similar[0]) <= {"d1", "d2", "d3"}


def test_sold_or_inactive_listings_are_never_recommended():
    model = ContentRecommender().fit(INTERACTIONS, available_item_ids=ON_SALE, item_attributes=CATALOGUE)
    for exclude_seen in (True, False):
        ids, _ = model.recommend(["u1", "u2", "u3", "u4", "stranger"], 9, exclude_seen=exclude_seen)
        assert "sold_dress" not in set(ids.ravel())
    sims, _ = model.similar_items(["d1", "new_dress"], 9)
    assert "sold_dress" not in set(sims.ravel())
    model.set_available_items([i for i in ON_SALE if i != "new_dress"])  # it sold after the fit
    ids, _ = model.recommend(["u1", "u2"], 9)
    assert "new_dress" not in set(ids.ravel())


def test_without_any_attribute_it_degrades_to_collaborative_filtering_and_says_so():
    model = ContentRecommender().fit(INTERACTIONS, available_item_ids=ON_SALE)
    assert "degraded" in model.fit_notes and model.n_catalogue_only_items == 0
    ids, _ = model.recommend(["u1"], 3)
    assert ids[0, 0] == "d3"  # u2 shares d2 with u1 and also has d3
    assert not {"new_dress", "new_boots"} & set(ids.ravel())


def test_save_and_load_keep_the_catalogue_only_items(tmp_path):
    model = ContentRecommender().fit(INTERACTIONS, available_item_ids=ON_SALE, item_attributes=CATALOGUE)
    model.save(tmp_path / "content.npz")
    loaded = ContentRecommender.load(tmp_path / "content.npz")
    assert np.array_equal(loaded.recommend(["u1", "u3"], 4)[0], model.recommend(["u1", "u3"], 4)[0])
    assert loaded.tokens == model.tokens and loaded.n_catalogue_only_items == 3


@pytest.mark.slow
def test_on_the_fashion_simulator_only_the_content_model_finds_new_listings():
    from recs_assets.evaluation.segments import evaluate_on_new_items
    from recs_assets.features import DEFAULT_INTERACTION_PARAMS
    from recs_assets.models import PopularityRecommender
    from recs_assets.models.lists import recommend_frame
    from recs_assets.sources.simulator import SimulatorConfig, simulate
    from recs_assets.training.ranking_set import features_at, fit_generator
    from recs_assets.training.splits import make_split

    market = simulate(SimulatorConfig(preset="fashion", n_users=1_500, n_items=1_000, n_days=30, seed=7))
    split = make_split(market.events, "temporal", test_days=7.0)
    known = features_at(split.train, market.events, market.items, market.users, split.cutoff, DEFAULT_INTERACTION_PARAMS)
    assert known["item_features"]["is_listed_later"].sum() > 0  # listings that appear after the cut-off
    users = split.history_users.to_list()
    truth = split.evaluable_truth
    train_items = known["interactions"]["item_id"].unique()
    scores = {}
    for model in (PopularityRecommender(), ContentRecommender()):
        fit_generator(model, known["interactions"], known["item_features"])
        scores[model.name] = evaluate_on_new_items(recommend_frame(model, users, 10), truth, train_items, 10)
    assert scores["content"]["users_evaluated"] > 100
    assert scores["popularity"]["recall@10"] == 0.0
    assert scores["content"]["recall@10"] > 0.01, scores["content"]
