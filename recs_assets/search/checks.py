"""Watching the query log: is the mix of queries shifting, and how often does a search find nothing?

- `query_distribution`: the latest `window_days` of searches against the same span before it: the
  total variation distance between the two query mixes (half the summed absolute share differences,
  0 = same mix, 1 = no query in common), on normalised queries (the analyzer's terms), plus how
  concentrated the log is (share of the top 10 queries) and how many distinct queries there are.
- `zero_result_rate`: the share of recent searches for which the current catalogue retrieves no
  sellable item (a missing brand, a sold-out category, a misspelling): searches that lose a sale.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import polars as pl

from recs_assets.arguments import fraction, positive_number
from recs_assets.search.bm25 import BM25Index
from recs_assets.search.text import query_terms

MAX_QUERY_TVD = 0.3
MAX_ZERO_RESULT_RATE = 0.05


@dataclass(frozen=True)
class CheckOutcome:
    """passed / failed with a sentence; skipped (nothing to judge) when `passed` is None."""

    passed: bool | None
    description: str
    values: dict[str, float | int | str | None] = field(default_factory=dict)


def normalised_query(query: str) -> str:
    return " ".join(query_terms(query))


def query_counts(queries: pl.DataFrame) -> pl.DataFrame:
    """query (normalised), searches: how often each query was searched, most frequent first."""
    if queries.height == 0:
        return pl.DataFrame(schema={"query": pl.String, "searches": pl.Int64})
    normal = queries.select(pl.col("query").map_elements(normalised_query, return_dtype=pl.String))
    return (normal.filter(pl.col("query").str.len_chars() > 0).group_by("query").len("searches")
            .with_columns(pl.col("searches").cast(pl.Int64)).sort(["searches", "query"], descending=[True, False]))


def query_distribution(queries: pl.DataFrame, *, window_days: float = 7.0, max_tvd: float = MAX_QUERY_TVD,
                       min_searches: int = 50) -> CheckOutcome:
    """Has the mix of queries moved between the previous and the latest `window_days`? (queries: event_at, query)"""
    window_days = positive_number(window_days, "window_days")
    max_tvd = fraction(max_tvd, "max_tvd")
    if queries.height == 0:
        return CheckOutcome(None, "not applicable: the source logged no search queries")
    dated = queries.filter(pl.col("event_at").is_not_null())
    if dated.height == 0:
        return CheckOutcome(None, "not applicable: the searches carry no time, so there is no latest window to compare")
    end = dated["event_at"].max()
    span = dt.timedelta(days=window_days)
    latest = query_counts(dated.filter(pl.col("event_at") > end - span))
    previous = query_counts(dated.filter((pl.col("event_at") <= end - span) & (pl.col("event_at") > end - 2 * span)))
    values = {"latest_searches": int(latest["searches"].sum()), "previous_searches": int(previous["searches"].sum()),
              "distinct_queries": latest.height,
              "top10_share": float(latest["searches"].head(10).sum() / max(1, latest["searches"].sum()))}
    if values["latest_searches"] < min_searches or values["previous_searches"] < min_searches:
        return CheckOutcome(None, f"fewer than {min_searches} searches in one of the two {window_days:g}-day windows "
                                  f"(latest {values['latest_searches']}, previous {values['previous_searches']})", values)
    shares = (latest.select("query", (pl.col("searches") / pl.col("searches").sum()).alias("a"))
              .join(previous.select("query", (pl.col("searches") / pl.col("searches").sum()).alias("b")), on="query", how="full", coalesce=True)
              .fill_null(0.0))
    tvd = float(0.5 * (shares["a"] - shares["b"]).abs().sum())
    values["query_tvd"] = round(tvd, 4)
    verdict = "within" if tvd <= max_tvd else "above"
    return CheckOutcome(tvd <= max_tvd, f"query mix moved by TVD {tvd:.3f} between the last two {window_days:g}-day windows "
                                        f"({verdict} the limit {max_tvd}); {latest.height} distinct queries, top 10 = "
                                        f"{values['top10_share']:.0%} of searches", values)


def zero_result_rate(queries: pl.DataFrame, index: BM25Index, *, window_days: float | None = 7.0,
                     max_rate: float = MAX_ZERO_RESULT_RATE) -> CheckOutcome:
    """Share of recent searches (the last `window_days`; None = all) the catalogue answers with no sellable item."""
    max_rate = fraction(max_rate, "max_rate")
    if queries.height == 0:
        return CheckOutcome(None, "not applicable: the source logged no search queries")
    recent = queries
    if window_days is not None and queries["event_at"].drop_nulls().len():
        end = queries["event_at"].max()
        recent = queries.filter(pl.col("event_at") > end - dt.timedelta(days=positive_number(window_days, "window_days")))
    counts = query_counts(recent)
    if counts.height == 0:
        return CheckOutcome(None, "not applicable: no recent search has a searchable word")
    found = [bool(((index.scores(q) > 0) & index.sellable).any()) for q in counts["query"].to_list()]
    counts = counts.with_columns(pl.Series("found", found))
    total = int(counts["searches"].sum())
    missed = counts.filter(~pl.col("found"))
    rate = float(missed["searches"].sum() / total)
    worst = ", ".join(f"{q!r} ({n})" for q, n in missed.head(5).select("query", "searches").iter_rows()) or "none"
    values = {"searches": total, "zero_result_searches": int(missed["searches"].sum()), "zero_result_rate": round(rate, 4),
              "zero_result_queries": missed.height}
    return CheckOutcome(rate <= max_rate, f"{rate:.1%} of {total:,} recent searches found no sellable item "
                                          f"(limit {max_rate:.0%}); most frequent misses: {worst}", values)
