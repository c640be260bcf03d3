"""Popularity's extras: per-category lists, by-strength ranking, similar items by category."""

from __future__ import annotations

import polars as pl
import pytest

from recs_assets.models import PopularityRecommender
from tests.models.conftest import CATEGORIES, INTERACTIONS, popularity_order


def test_popularity_per_category():
    model = PopularityRecommender().fit(INTERACTIONS, item_categories=CATEGORIES)
    ids, _ = model.recommend(["a0", "nobody"], 6, category="B")
    expected = [i for i in popularity_order(INTERACTIONS) if i.startswith("B")]
    assert list(ids[0]) == expected and list(ids[1]) == expected


def test_popularity_unknown_category_or_no_categories_is_an_error():
    with pytest.raises(ValueError, match="unknown category 'Z'"):
        PopularityRecommender().fit(INTERACTIONS, item_categories=CATEGORIES).recommend(["a0"], 3, category="Z")
    with pytest.raises(ValueError, match="item_categories"):
        PopularityRecommender().fit(INTERACTIONS).recommend(["a0"], 3, category="A")


def test_popularity_by_strength():
    data = pl.DataFrame({"user_id": ["u1", "u2", "u3"], "item_id": ["x", "x", "y"], "strength": [1.0, 1.0, 5.0]})
    assert PopularityRecommender(by="users").fit(data).recommend(["new"], 2)[0].tolist() == [["x", "y"]]
    assert PopularityRecommender(by="strength").fit(data).recommend(["new"], 2)[0].tolist() == [["y", "x"]]


def test_popularity_similar_items_of_a_catalogue_only_item_uses_its_category():
    categories = pl.concat([CATEGORIES, pl.DataFrame({"item_id": ["A_new"], "category": ["A"]})])
    model = PopularityRecommender().fit(INTERACTIONS, item_categories=categories)
    ids, _ = model.similar_items(["A_new"], 3)
    assert list(ids[0]) == [i for i in popularity_order(INTERACTIONS) if i.startswith("A")][:3]
