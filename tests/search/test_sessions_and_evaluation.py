"""Logged searches become graded lessons; rankers are graded on them per segment."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from recs_assets.contract import EVENTS_SCHEMA, conform
from recs_assets.search.evaluation import evaluate_searches, shopper_segments
from recs_assets.search.sessions import search_impressions, split_searches

T0 = dt.datetime(2026, 9, 1, 10, tzinfo=dt.timezone.utc)


def events(rows):
    frame = pl.DataFrame([
        {"event_id": f"e{k}", "event_at": T0 + dt.timedelta(seconds=s), "user_id": u, "session_id": sess,
         "item_id": item, "event_type": kind, "query": q, "position": pos}
        for k, (s, u, sess, item, kind, q, pos) in enumerate(rows)
    ])
    return conform(frame, EVENTS_SCHEMA)


def test_each_search_gets_what_it_showed_and_the_best_outcome_per_item():
    log = events([
        (0, "u1", "s1", None, "search", "red dress", None),
        (1, "u1", "s1", "a", "impression", None, 1),
        (1, "u1", "s1", "b", "impression", None, 2),
        (2, "u1", "s1", "b", "view", None, 2),
        (3, "u1", "s1", "b", "add_to_cart", None, 2),
        (4, "u1", "s1", "b", "purchase", None, 2),
        (10, "u1", "s1", None, "search", "boots", None),  # a second search in the same session
        (11, "u1", "s1", "c", "impression", None, 1),
        (12, "u1", "s1", "c", "view", None, 1),
        (20, "u2", "s2", "a", "impression", None, 1),  # a home-feed session: no search, no lesson
        (21, "u2", "s2", "a", "view", None, 1),
        (30, "u3", "s3", None, "search", "   ", None),  # a blank query is no search
        (31, "u3", "s3", "a", "impression", None, 1),
    ])
    lessons = search_impressions(log)
    assert lessons.select("search_id", "query", "item_id", "position", "label").rows() == [
        ("s1#1", "red dress", "a", 1, 0), ("s1#1", "red dress", "b", 2, 3), ("s1#2", "boots", "c", 1, 1),
    ]
    train, held, boundary = split_searches(lessons, T0, holdout_fraction=0.5)
    assert train["search_id"].unique().to_list() == ["s1#1"] and held["search_id"].unique().to_list() == ["s1#2"]
    assert search_impressions(log.drop("query")).height == 0


def test_segments_are_anonymous_new_or_regular():
    users = pl.Series(["anonymous:s9", "u1", "u2"])
    assert shopper_segments(users, ["u1"]).to_list() == ["anonymous", "regular", "new"]


def held_out(n_searches: int = 40) -> pl.DataFrame:
    """Searches where the engaged item has the highest BM25 and sits low in the logged order."""
    rows = []
    for s in range(n_searches):
        for slot in range(1, 5):
            good = slot == 4
            rows.append({"search_id": f"s{s}", "user_id": ["u1", "u2", "anonymous:x"][s % 3], "item_id": f"i{slot}",
                         "position": slot, "label": 3 if good else 0, "bm25": 2.0 if good else 1.0,
                         "item_log_users": 0.0 if good else 5.0})
    return pl.DataFrame(rows)


def test_the_grades_follow_the_orders_and_every_segment_gets_its_row():
    table, per_search = evaluate_searches(held_out(), None, ["u1"], n_resamples=200,
                                          true_affinity=lambda rows: np.where(rows["label"] > 0, 0.5, 0.01))
    means = {(r, s, m): v for r, s, m, v in table.select("ranker", "segment", "metric", "mean").iter_rows()}
    assert means[("bm25", "all", "ndcg@10")] == pytest.approx(1.0) and means[("bm25", "all", "mrr")] == pytest.approx(1.0)
    assert means[("bm25_popularity", "all", "mrr")] == pytest.approx(0.25)  # popularity pushes the good item last
    assert means[("logged", "all", "mrr")] == pytest.approx(0.25)
    assert means[("bm25", "all", "simulated_ndcg@10")] == pytest.approx(1.0)
    assert {s for _, s, _ in means} == {"all", "anonymous", "new", "regular"}
    assert ("personalised", "all", "ndcg@10") not in means  # no ranker, no row
    p = table.filter((pl.col("ranker") == "logged") & (pl.col("segment") == "all") & (pl.col("metric") == "mrr"))["p_vs_bm25"][0]
    assert p < 0.05
    lo, hi = table.filter((pl.col("ranker") == "logged") & (pl.col("segment") == "all") & (pl.col("metric") == "mrr")).select("ci_low", "ci_high").row(0)
    assert lo <= 0.25 <= hi
