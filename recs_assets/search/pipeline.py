"""The search lessons of one run, and why there are none when a source cannot have them.

    [ features, recommenders fitted     ][ searches to learn from ][ held-out searches ]
                                        T (the split's cut-off)   B

Every search after the split's cut-off T is described with what was known at T (the training
features and the recommender fitted on the training part), so neither side leaks its own outcome
into its features; the last `holdout_fraction` of them (by time, from B) is held out for grading.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import polars as pl

from recs_assets.arguments import fraction
from recs_assets.search.evaluation import shopper_segments
from recs_assets.search.features import DEFAULT_AFFINITY_ITEMS, SearchFeaturizer, search_catalogue, user_signals
from recs_assets.search.ranker import build_lessons
from recs_assets.search.sessions import search_impressions, search_queries, split_searches

TRAIN, HELD_OUT = "train", "held_out"


class NotApplicable(ValueError):
    """Search lessons cannot exist for this data; the message says why (shown as 'not applicable: ...')."""


def search_lessons(
    events: pl.DataFrame,
    items: pl.DataFrame,
    cutoff: dt.datetime | None,
    known: Mapping[str, pl.DataFrame],
    recommender=None,
    *,
    holdout_fraction: float = 0.4,
    n_affinity: int = DEFAULT_AFFINITY_ITEMS,
) -> tuple[pl.DataFrame, dict]:
    """Every search after the cut-off as lessons (a `part` column: train / held_out, and the shopper's segment).

    `known` holds the feature tables at the cut-off: interactions, user_features, item_features,
    user_category_affinity. Raises NotApplicable, with the reason, when there is nothing to learn from.
    """
    holdout_fraction = fraction(holdout_fraction, "holdout_fraction")
    if search_queries(events).height == 0:
        raise NotApplicable("the source logged no search sessions (no search event with a query)")
    if cutoff is None:
        raise NotApplicable("searches are learnt and graded after a global time cut-off, and this split has none")
    impressions = search_impressions(events)
    if impressions.height == 0:
        raise NotApplicable("no logged search is followed by impressions of what it showed")
    train, held_out, boundary = split_searches(impressions, cutoff, holdout_fraction)
    if boundary is None or train.height == 0 or held_out.height == 0:
        raise NotApplicable(f"too few searches after the cut-off ({cutoff.isoformat()}) to both learn and grade")
    searchers = impressions.filter(pl.col("searched_at") >= cutoff)["user_id"].unique().to_list()
    signals = user_signals(known["interactions"], items, known["user_features"], known["user_category_affinity"],
                           recommender, users=searchers, n_affinity=n_affinity)
    featurizer = SearchFeaturizer(search_catalogue(items, known["item_features"]), signals, n_affinity=n_affinity)
    history = known["interactions"]["user_id"].unique().to_list()
    lessons = pl.concat([
        build_lessons(train, featurizer).with_columns(pl.lit(TRAIN).alias("part")),
        build_lessons(held_out, featurizer).with_columns(pl.lit(HELD_OUT).alias("part")),
    ])
    lessons = lessons.with_columns(shopper_segments(lessons["user_id"], history))
    described = {
        "cutoff": cutoff.isoformat(),
        "held_out_from": boundary.isoformat(),
        **{f"{part}_{what}": value for part in (TRAIN, HELD_OUT) for what, value in (
            ("searches", lessons.filter(pl.col("part") == part)["search_id"].n_unique()),
            ("rows", lessons.filter(pl.col("part") == part).height),
            ("engaged_searches", lessons.filter((pl.col("part") == part) & (pl.col("label") > 0))["search_id"].n_unique()),
        )},
        "searches_by_segment": dict(lessons.group_by("segment").agg(pl.col("search_id").n_unique()).sort("segment").iter_rows()),
        "label_mix": {str(k): v for k, v in lessons.group_by("label").len().sort("label").iter_rows()},
    }
    return lessons, described
