"""Answering queries (engine, precomputed popular queries) and watching the query log (checks)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from recs_assets.search.bm25 import BM25Index
from recs_assets.search.checks import query_counts, query_distribution, zero_result_rate
from recs_assets.search.engine import LEXICAL, SearchEngine, popular_query_results
from tests.search.planted import planted_featurizer

UTC = dt.timezone.utc


def test_without_a_ranker_results_are_lexical_and_never_sold():
    featurizer, _ = planted_featurizer()
    engine = SearchEngine(featurizer)
    result = engine.search("xenon jacket", "a00", 50)
    assert result.ranking == LEXICAL and result.reason.startswith("matches the query")
    assert "sold1" not in result.item_ids and len(result.item_ids) == 40
    assert all(item.startswith("i0") for item in result.item_ids[:10])  # brand word matched: Xenon first
    excluded = engine.search("xenon jacket", None, 50, exclude=engine.exclusion(["i000", "i001"]))
    assert {"i000", "i001"}.isdisjoint(excluded.item_ids)
    with pytest.raises(ValueError, match="no searchable word"):
        engine.search(" ,; ", None, 5)


def test_popular_query_results_hold_the_top_n_of_the_most_frequent_queries():
    featurizer, _ = planted_featurizer()
    counts = pl.DataFrame({"query": ["jacket", "xenon", "nothing here"], "searches": [9, 5, 1]})
    results = popular_query_results(SearchEngine(featurizer), counts, n=3, top_queries=2)
    assert results["query"].unique(maintain_order=True).to_list() == ["jacket", "xenon"]
    assert results.group_by("query").len()["len"].to_list() == [3, 3]
    assert results.filter(pl.col("query") == "xenon")["item_id"].str.starts_with("i0").all()


def queries(rows: list[tuple[int, str]]) -> pl.DataFrame:
    start = dt.datetime(2026, 9, 1, tzinfo=UTC)
    return pl.DataFrame({"event_at": [start + dt.timedelta(days=d) for d, _ in rows], "query": [q for _, q in rows]},
                        schema={"event_at": pl.Datetime("us", "UTC"), "query": pl.String})


def test_query_counts_normalise_what_was_typed():
    counts = query_counts(queries([(0, "Dresses"), (0, "dress"), (1, " the dress "), (1, "jeans"), (2, "!!")]))
    assert counts.rows() == [("dress", 3), ("jean", 1)]


def test_the_query_distribution_check_passes_a_steady_mix_and_fails_a_shifted_one():
    steady = queries([(d, q) for d in range(14) for q in ["dress"] * 6 + ["jeans"] * 4])
    assert query_distribution(steady, window_days=7, min_searches=20).passed is True
    shifted = queries([(d, q) for d in range(14) for q in (["dress"] * 9 + ["jeans"] if d < 7 else ["boots"] * 8 + ["dress"] * 2)])
    outcome = query_distribution(shifted, window_days=7, min_searches=20)
    assert outcome.passed is False and outcome.values["query_tvd"] > 0.5
    assert query_distribution(queries([(0, "dress")]), min_searches=20).passed is None  # too little to judge
    assert "not applicable" in query_distribution(queries([])).description


def test_the_zero_result_rate_counts_searches_the_catalogue_cannot_answer():
    featurizer, _ = planted_featurizer()
    index: BM25Index = featurizer.index
    log = queries([(0, "jacket")] * 18 + [(0, "sneakers")] * 2)
    outcome = zero_result_rate(log, index, max_rate=0.05)
    assert outcome.passed is False and outcome.values["zero_result_rate"] == 0.1 and "'sneaker' (2)" in outcome.description
    assert zero_result_rate(log, index, max_rate=0.2).passed is True
    # Only the sold listing matches "sold": a search for it finds nothing for sale.
    assert zero_result_rate(queries([(0, "sold")] * 3), index).values["zero_result_rate"] == 1.0
    assert zero_result_rate(queries([]), index).passed is None
