"""Lexical retrieval on a hand-made catalogue: the analyzer, BM25's order, and only sellable items."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from recs_assets.search.bm25 import BM25Index
from recs_assets.search.features import search_catalogue
from recs_assets.search.text import analyze, query_terms, stem


@pytest.mark.parametrize(("word", "expected"), [
    ("dresses", "dress"), ("dress", "dress"), ("accessories", "accessory"), ("jeans", "jean"), ("boots", "boot"),
    ("boxes", "box"), ("bus", "bus"), ("this", "this"), ("its", "its"),
])
def test_plurals_are_stripped_and_singular_esses_kept(word, expected):
    assert stem(word) == expected


def test_the_analyzer_lowercases_splits_and_drops_function_words():
    assert analyze("The Linen & Co. DRESSES, size-38") == ["linen", "co", "dress", "size", "38"]
    assert query_terms("red red dress") == ["red", "dress"]
    assert analyze(None) == [] and analyze("  ") == []


def catalogue() -> pl.DataFrame:
    items = pl.DataFrame({
        "item_id": ["exact", "longer", "spread", "other", "brand_only", "sold"],
        "title": ["Blue Harbor jacket", "Blue Harbor jacket with hood and extra pockets", "Rain jacket",
                  "Red Comet racer", "Classic coat", "Blue Harbor jacket"],
        "category": ["jackets", "jackets", "jackets", "racing", "coats", "jackets"],
        "brand": ["Blue Harbor", "Blue Harbor", "Blue Harbor", "Red Comet", "Blue Harbor", "Blue Harbor"],
        "condition": ["good", "good", "good", "new", "fair", "good"],
        "price": [50.0, 60.0, 40.0, 30.0, 70.0, 50.0],
        "is_active": [True, True, True, True, True, False],
    })
    return search_catalogue(items)


def test_an_exact_title_match_ranks_first():
    index = BM25Index.from_catalogue(catalogue())
    items, scores, n_matches = index.retrieve("blue harbor jacket", 10)
    order = [index.item_ids[i] for i in items]
    assert order[0] == "exact"
    assert set(order) == {"exact", "longer", "spread", "brand_only"}  # every item matching a word, nothing else
    assert n_matches == 4 and np.all(np.diff(scores) <= 0)
    # The shorter title with every word beats the longer one, which beats words spread over brand and category.
    assert order.index("longer") < order.index("spread")


def test_a_sold_listing_is_never_returned_however_well_it_matches():
    index = BM25Index.from_catalogue(catalogue())
    sold = list(index.item_ids).index("sold")
    exact = list(index.item_ids).index("exact")
    assert index.scores("blue harbor jacket")[sold] == index.scores("blue harbor jacket")[exact]  # an exact match too
    for query in ("blue harbor jacket", "jackets", "blue harbor", "good"):
        items, _, _ = index.retrieve(query, 100)
        assert "sold" not in {index.item_ids[i] for i in items}


def test_no_match_retrieves_nothing_and_field_matches_say_which_field_matched():
    index = BM25Index.from_catalogue(catalogue())
    items, scores, n = index.retrieve("sneakers", 5)
    assert len(items) == 0 and n == 0
    ids = list(index.item_ids)
    rows = np.array([ids.index("exact"), ids.index("other")])
    matches = index.field_matches("blue jackets", rows)
    assert matches["title"].tolist() == [1.0, 0.0] and matches["category"].tolist() == [0.5, 0.0]
    assert matches["brand"].tolist() == [0.5, 0.0] and matches["condition"].tolist() == [0.0, 0.0]


def test_a_boost_breaks_ties_between_equal_text_matches():
    index = BM25Index.from_catalogue(catalogue())
    boost = np.zeros(len(index))
    items, _, _ = index.retrieve("racing", 5, boost=boost)
    assert [index.item_ids[i] for i in items] == ["other"]
    boost[list(index.item_ids).index("spread")] = 100.0
    items, _, _ = index.retrieve("jackets", 2, boost=boost)
    assert index.item_ids[items[0]] == "spread"


def test_bad_catalogues_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="unknown search field"):
        BM25Index(["a"], {"colour": ["red"]}, np.ones(1, dtype=bool))
    with pytest.raises(ValueError, match="one flag per item"):
        BM25Index(["a", "b"], {"title": ["x", "y"]}, np.ones(3, dtype=bool))
    with pytest.raises(ValueError, match="item_id"):
        search_catalogue(pl.DataFrame({"title": ["x"]}))
