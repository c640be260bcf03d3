"""Logged search sessions as lessons: what each search showed, in which slot, and what the shopper did.

A *search* is a `search` event with a query. What the shop showed for it are the impressions of the same
session from the search until the session's next search; the shopper's response to each shown item is
the best thing they did with it in that stretch: purchase (3) > add to cart (2) > view (1) > shown only (0).
Sessions without a search (home feed, category pages) are not search lessons.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from recs_assets.arguments import fraction

# The graded outcome of a shown item (NDCG gains and LambdaRank labels).
OUTCOME_GRADES: dict[str, int] = {"view": 1, "add_to_cart": 2, "purchase": 3}
SHOWN_ONLY = 0

IMPRESSION_SCHEMA = {
    "search_id": pl.String,
    "user_id": pl.String,
    "session_id": pl.String,
    "query": pl.String,
    "searched_at": pl.Datetime("us", "UTC"),
    "item_id": pl.String,
    "position": pl.Int32,
    "propensity": pl.Float64,
    "label": pl.Int32,
}


def search_queries(events: pl.DataFrame) -> pl.DataFrame:
    """Every logged search with a non-blank query: event_at, user_id, session_id, query (as typed, trimmed)."""
    if "query" not in events.columns:
        return pl.DataFrame(schema={"event_at": pl.Datetime("us", "UTC"), "user_id": pl.String,
                                    "session_id": pl.String, "query": pl.String})
    return (
        events.filter((pl.col("event_type") == "search") & pl.col("query").is_not_null())
        .with_columns(pl.col("query").str.strip_chars())
        .filter(pl.col("query").str.len_chars() > 0)
        .select("event_at", "user_id", "session_id", "query")
    )


def search_impressions(events: pl.DataFrame) -> pl.DataFrame:
    """One row per (search, item shown for it): who searched what, when, the slot, its logged propensity and the outcome.

    `search_id` is the session id and the search's number within it ("s1#1"). Searches without a
    session or without a single impression teach nothing and are left out.
    """
    needed = {"event_at", "user_id", "session_id", "item_id", "event_type", "query"}
    if not needed <= set(events.columns) or events.height == 0:
        return pl.DataFrame(schema=IMPRESSION_SCHEMA)
    columns = [c for c in ("position", "propensity") if c in events.columns]
    in_sessions = (
        events.filter(pl.col("session_id").is_not_null() & pl.col("event_at").is_not_null())
        .select("event_at", "user_id", "session_id", "item_id", "event_type", "query", *columns)
        .with_columns(
            is_search=(pl.col("event_type") == "search") & pl.col("query").is_not_null()
            & (pl.col("query").str.strip_chars().str.len_chars() > 0)
        )
    )
    sessions_with_search = in_sessions.filter(pl.col("is_search")).select("session_id").unique()
    # A search at the same instant as an impression comes first: it is what caused the impression.
    ordered = (
        in_sessions.join(sessions_with_search, on="session_id", how="semi")
        .sort(["session_id", "event_at", pl.col("is_search").not_()])
        .with_columns(search_number=pl.col("is_search").cast(pl.Int32).cum_sum().over("session_id"))
        .filter(pl.col("search_number") > 0)
        .with_columns(search_id=pl.concat_str("session_id", pl.lit("#"), pl.col("search_number").cast(pl.String)))
    )
    searches = ordered.filter(pl.col("is_search")).select(
        "search_id", "user_id", "session_id", pl.col("query").str.strip_chars(), pl.col("event_at").alias("searched_at")
    )
    impressions = ordered.filter((pl.col("event_type") == "impression") & pl.col("item_id").is_not_null())
    shown = impressions.group_by("search_id", "item_id").agg(
        (pl.col("position").min() if "position" in columns else pl.lit(None, dtype=pl.Int32)).cast(pl.Int32).alias("position"),
        (pl.col("propensity").first() if "propensity" in columns else pl.lit(None, dtype=pl.Float64)).cast(pl.Float64).alias("propensity"),
    )
    grades = pl.DataFrame({"event_type": list(OUTCOME_GRADES), "grade": list(OUTCOME_GRADES.values())},
                          schema={"event_type": pl.String, "grade": pl.Int32})
    outcomes = (
        ordered.filter(pl.col("item_id").is_not_null())
        .join(grades, on="event_type", how="inner")
        .group_by("search_id", "item_id")
        .agg(pl.col("grade").max().alias("label"))
    )
    return (
        shown.join(searches, on="search_id", how="inner")
        .join(outcomes, on=["search_id", "item_id"], how="left")
        .with_columns(pl.col("label").fill_null(SHOWN_ONLY).cast(pl.Int32))
        .select(list(IMPRESSION_SCHEMA))
        .sort("searched_at", "search_id", "position", "item_id", nulls_last=True)
    )


def split_searches(impressions: pl.DataFrame, cutoff: dt.datetime, holdout_fraction: float = 0.4
                   ) -> tuple[pl.DataFrame, pl.DataFrame, dt.datetime | None]:
    """Searches after `cutoff` split by time: the earlier ones to learn from, the last `holdout_fraction` held out.

    Both sides come after the cut-off, so features and recommenders measured at it know nothing of
    either. Returns (train, held out, the moment between them; None when nothing came after the cut-off).
    """
    holdout_fraction = fraction(holdout_fraction, "holdout_fraction")
    after = impressions.filter(pl.col("searched_at") >= cutoff)
    if after.height == 0:
        return after, after, None
    moments = after.select("search_id", "searched_at").unique().sort("searched_at", "search_id")
    first_held = min(moments.height - 1, int(round(moments.height * (1.0 - holdout_fraction))))
    boundary = moments["searched_at"][first_held]
    return after.filter(pl.col("searched_at") < boundary), after.filter(pl.col("searched_at") >= boundary), boundary
