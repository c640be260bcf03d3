"""Input checks shared by every model (models/inputs.py): bad data and bad settings get a reason."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from recs_assets.models import (
    ALSRecommender,
    BPRRecommender,
    EASERecommender,
    ItemKNNRecommender,
    PopularityRecommender,
)
from recs_assets.models.inputs import list_length
from tests.models.conftest import INTERACTIONS


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pl.DataFrame({"user_id": ["u"], "item_id": ["i"]}), "strength"),
        (pl.DataFrame({"user_id": ["u"], "item_id": ["i"], "strength": [0.0]}), "> 0"),
        (pl.DataFrame({"user_id": ["u"], "item_id": ["i"], "strength": [float("nan")]}), "> 0"),
        (pl.DataFrame({"user_id": [None], "item_id": ["i"], "strength": [1.0]}, schema_overrides={"user_id": pl.String}), "null"),
        (pl.DataFrame(schema={"user_id": pl.String, "item_id": pl.String, "strength": pl.Float64}), "empty"),
    ],
)
def test_bad_interactions_are_rejected_with_a_reason(frame, message):
    with pytest.raises(ValueError, match=message):
        PopularityRecommender().fit(frame)


def test_conflicting_item_categories_are_rejected():
    categories = pl.DataFrame({"item_id": ["A0", "A0"], "category": ["x", "y"]})
    with pytest.raises(ValueError, match="A0"):
        PopularityRecommender().fit(INTERACTIONS, item_categories=categories)


@pytest.mark.parametrize(
    "make",
    [
        lambda: PopularityRecommender(by="clicks"),
        lambda: ItemKNNRecommender(k=0),
        lambda: ItemKNNRecommender(shrinkage=-1.0),
        lambda: EASERecommender(l2=0.0),
        lambda: EASERecommender(max_dense_items=0),
        lambda: EASERecommender(max_dense_items=40_000),  # over the 30,000 memory cap
        lambda: EASERecommender(sparse_neighbours=True),
        lambda: ALSRecommender(regularization=float("inf")),
        lambda: ALSRecommender(seed=-1),
        lambda: ALSRecommender(factors=0),
        lambda: BPRRecommender(iterations=1.5),
    ],
)
def test_bad_hyper_parameters_are_rejected(make):
    with pytest.raises(ValueError):
        make()


@pytest.mark.parametrize(("value", "ok"), [(1, True), (np.int64(7), True), (0, False), (True, False), (2.0, False)])
def test_list_length_accepts_only_positive_integers(value, ok):
    if ok:
        assert list_length(value) == int(value) and type(list_length(value)) is int
    else:
        with pytest.raises(ValueError, match="N"):
            list_length(value)


def test_an_ease_catalogue_cap_error_says_how_much_memory_it_would_take():
    with pytest.raises(ValueError, match="GB"):
        EASERecommender(max_dense_items=40_000)
