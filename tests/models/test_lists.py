"""Generators' lists as rows, and their union as candidate pairs for the re-ranker."""

from __future__ import annotations

import polars as pl
import pytest

from recs_assets.models.lists import candidates_from_lists

SCHEMA = {"user_id": pl.String, "item_id": pl.String, "rank": pl.Int32, "score": pl.Float64}


def lists_of(rows: list[tuple[str, str, int, float]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=SCHEMA, orient="row")


def test_the_union_holds_each_pair_once_with_every_generators_score_and_rank():
    lists = {
        "als": lists_of([("u1", "i1", 1, 0.9), ("u1", "i2", 2, 0.5), ("u2", "i3", 1, 0.7)]),
        "item_knn": lists_of([("u1", "i2", 1, 3.0), ("u1", "i4", 2, 1.0)]),
        "bpr": lists_of([]),  # proposed nothing: its columns are there, empty
    }
    pairs = candidates_from_lists(lists)
    assert pairs.columns == ["user_id", "item_id", "als_score", "als_rank", "item_knn_score", "item_knn_rank",
                             "bpr_score", "bpr_rank", "n_generators"]
    assert pairs.select("user_id", "item_id", "als_rank", "item_knn_rank", "n_generators").rows() == [
        ("u1", "i1", 1, None, 1),
        ("u1", "i2", 2, 1, 2),
        ("u1", "i4", None, 2, 1),
        ("u2", "i3", 1, None, 1),
    ]
    assert pairs["item_knn_score"].to_list() == [None, 3.0, 1.0, None]
    assert pairs["bpr_rank"].null_count() == pairs.height and pairs.schema["bpr_rank"] == pl.Int32


def test_no_generator_is_an_error():
    with pytest.raises(ValueError, match="at least one generator"):
        candidates_from_lists({})
