"""On the simulator's held-out search sessions, the personalised search ranker beats BM25 alone."""

from __future__ import annotations

import polars as pl
import pytest

from recs_assets.models.ease import EASERecommender
from recs_assets.search.evaluation import evaluate_searches
from recs_assets.search.pipeline import HELD_OUT, TRAIN, search_lessons
from recs_assets.search.ranker import examination_propensities, fit_search_ranker
from recs_assets.sources.simulator import SimulatorConfig, simulate
from recs_assets.training.protocol import choose_protocol
from recs_assets.training.ranking_set import features_at, fit_generator

pytestmark = pytest.mark.slow  # a month of a 3,000-shopper shop, its features, EASE and the ranker: ~10 s

WEIGHTS = dict(w_view=1.0, w_add_to_cart=3.0, w_purchase=5.0, w_rating=5.0, w_play=1.0, half_life_days=30.0)


def test_the_personalised_ranker_beats_bm25_on_held_out_searches():
    shop = simulate(SimulatorConfig(preset="games", n_users=3000, n_items=1500, n_days=30, seed=7))
    split = choose_protocol(shop.events, requested="temporal", test_days=7, quantile=0.8, min_users=200, min_share=0.25,
                            min_floor=20, test_fraction=0.25, seed=42, has_timestamps=True).split
    known = features_at(split.train, shop.events, shop.items, shop.users, split.cutoff, WEIGHTS)
    ease = fit_generator(EASERecommender(), known["interactions"], known["item_features"])
    lessons, described = search_lessons(shop.events, shop.items, split.cutoff, known, ease)
    train = lessons.filter(pl.col("part") == TRAIN)
    held = lessons.filter(pl.col("part") == HELD_OUT)
    assert described["held_out_engaged_searches"] >= 200
    assert held["searched_at"].min() >= train["searched_at"].max()  # graded on later searches only
    ranker = fit_search_ranker(train, examination_propensities(train))
    table, _ = evaluate_searches(held, ranker, known["interactions"]["user_id"].unique().to_list(), n_resamples=300,
                                 true_affinity=lambda rows: shop.true_affinity(rows["user_id"].to_list(), rows["item_id"].to_list()))
    row = {(r, m): (mean, p) for r, m, mean, p in table.filter(pl.col("segment") == "all")
           .select("ranker", "metric", "mean", "p_vs_bm25").iter_rows()}
    for metric in ("ndcg@10", "mrr", "simulated_ndcg@10"):
        mean, p = row[("personalised", metric)]
        assert mean > row[("bm25", metric)][0] and p < 0.05, (metric, mean, row[("bm25", metric)], p)
