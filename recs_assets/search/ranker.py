"""The search ranker: LightGBM LambdaRank over logged searches, with the slot's position bias taken out.

Lessons are the items each logged search showed, labelled by what the shopper did (sessions.py) and
described by `SearchFeaturizer`. One ranked list per search.

Position bias. Shoppers look less at lower slots, so an item shown in slot 9 that nobody viewed says
less against it than one shown first. The logged `propensity` is the logging policy's chance of
*choosing* the item (selection), not the chance the shopper *examined* the slot, so it is not the
correction for this. We estimate examination by slot from the logs themselves: theta(p) = view rate of
slot p / view rate of slot 1 (made non-increasing, floored at `min_propensity`), and weight each
engaged lesson row by 1 / theta(p) (inverse propensity scoring, Joachims et al. 2017); rows with no
engagement and rows without a logged position keep weight 1. The estimate is slightly high at the
top because the policy also puts popular items first; that over-corrects lower slots a little, which
is the safe side.

The fitted model is the recommendation re-ranker's own class (`models.ranker.LightGBMRanker`: same
hyper-parameters, same LightGBM text format on disk, same MLflow flavour); only the lessons differ.
"""

from __future__ import annotations

import time

import lightgbm as lgb
import numpy as np
import polars as pl

from recs_assets.arguments import number_in
from recs_assets.models.ranker import LightGBMRanker
from recs_assets.search.features import SEARCH_FEATURES, SearchFeaturizer

LESSON_KEYS = ("search_id", "user_id", "item_id", "query", "searched_at", "position", "propensity", "label")
MIN_PROPENSITY = 0.1

# The recommendation re-ranker's defaults (100 trees of 7 leaves, at least 100 rows per leaf) also suit
# search: engagement is sparse (one view in ten impressions) and on the simulator (10k shoppers) a larger
# model (150 trees of 15 leaves, 50 rows per leaf) learnt noise: simulated NDCG@10 0.801 against 0.834.
DEFAULT_PARAMS: dict = {}


def build_lessons(impressions: pl.DataFrame, featurizer: SearchFeaturizer) -> pl.DataFrame:
    """The logged impressions with their SEARCH_FEATURES columns (items unknown to the catalogue are left out)."""
    known = impressions.filter(pl.col("item_id").is_in(pl.Series(list(featurizer.item_index), dtype=pl.String).implode()))
    frames = []
    for (query,), rows in known.group_by("query", maintain_order=True):
        hours = rows["searched_at"].dt.hour().cast(pl.Float64).to_numpy()
        matrix = featurizer.features(query, featurizer.users(rows["user_id"].to_list()),
                                     featurizer.items(rows["item_id"].to_list()), hours)
        frames.append(pl.concat([rows.select(LESSON_KEYS), pl.DataFrame(matrix, schema=list(SEARCH_FEATURES), orient="row")],
                                how="horizontal"))
    if not frames:
        return pl.DataFrame(schema={**impressions.select(LESSON_KEYS).schema, **{f: pl.Float64 for f in SEARCH_FEATURES}})
    return pl.concat(frames).sort("searched_at", "search_id", "position", "item_id", nulls_last=True)


def examination_propensities(lessons: pl.DataFrame, *, min_propensity: float = MIN_PROPENSITY) -> dict[int, float]:
    """theta(slot): how likely a shopper looks at each slot relative to the first, from the view rates by slot."""
    min_propensity = number_in(min_propensity, "min_propensity", 0.0, 1.0, open_low=True)
    by_slot = (
        lessons.filter(pl.col("position").is_not_null())
        .group_by("position").agg((pl.col("label") > 0).mean().alias("rate"), pl.len().alias("n"))
        .sort("position")
    )
    if by_slot.height == 0:
        return {}
    positions = by_slot["position"].to_list()
    rates = by_slot["rate"].to_numpy()
    first = rates[0] if positions[0] == 1 else rates.max()
    if not first > 0:
        return {int(p): 1.0 for p in positions}
    theta = np.minimum.accumulate(np.clip(rates / first, min_propensity, 1.0))
    return {int(p): float(t) for p, t in zip(positions, theta)}


def lesson_weights(lessons: pl.DataFrame, propensities: dict[int, float]) -> np.ndarray:
    """1 / theta(slot) for engaged rows with a logged slot, 1 for every other row."""
    if not propensities:
        return np.ones(lessons.height)
    worst = min(propensities.values())
    theta = lessons.select(
        # A slot never seen in the estimate (beyond the last) takes the lowest propensity; no slot, no correction.
        pl.when(pl.col("position").is_null()).then(pl.lit(1.0))
        .otherwise(pl.col("position").replace_strict(propensities, default=worst, return_dtype=pl.Float64))
    ).to_series().to_numpy()
    return np.where(lessons["label"].to_numpy() > 0, 1.0 / theta, 1.0)


def useful_lessons(lessons: pl.DataFrame) -> pl.DataFrame:
    """Searches where the shopper engaged with something: a list with nothing to prefer teaches nothing."""
    return lessons.filter(pl.col("label").max().over("search_id") > 0).sort("search_id", "item_id")


def fit_search_ranker(lessons: pl.DataFrame, propensities: dict[int, float] | None = None, **params) -> LightGBMRanker:
    """LambdaRank on the lessons, one list per search, engaged rows weighted by 1 / theta(slot)."""
    ranker = LightGBMRanker(**{**DEFAULT_PARAMS, **params})
    useful = useful_lessons(lessons)
    if useful.height == 0:
        raise ValueError("no logged search has an item the shopper engaged with: nothing to learn the ranking from")
    groups = useful.group_by("search_id", maintain_order=True).len()["len"].to_numpy()
    weights = lesson_weights(useful, propensities or {})
    started = time.perf_counter()
    model = lgb.LGBMRanker(
        objective="lambdarank",
        n_estimators=ranker.n_estimators,
        learning_rate=ranker.learning_rate,
        num_leaves=ranker.num_leaves,
        min_child_samples=ranker.min_child_samples,
        random_state=ranker.seed,
        deterministic=True,
        force_row_wise=True,
        n_jobs=1,  # a few thousand lists: two threads only wait on each other on a busy machine
        verbose=-1,
    )
    model.fit(useful.select(SEARCH_FEATURES).to_numpy(), useful["label"].to_numpy(), group=groups, sample_weight=weights)
    ranker.features = list(SEARCH_FEATURES)
    ranker.booster = model.booster_
    ranker.fit_seconds = time.perf_counter() - started
    return ranker


def score_matrix(ranker: LightGBMRanker, matrix: np.ndarray) -> np.ndarray:
    """The ranker's scores for a SEARCH_FEATURES matrix (refuses a ranker trained on other features)."""
    if ranker.booster is None:
        raise RuntimeError("the search ranker has not been fitted")
    if list(ranker.features) != list(SEARCH_FEATURES):
        raise ValueError(f"this ranker was trained on other features ({ranker.features[:5]}...), not the search features")
    if len(matrix) == 0:
        return np.zeros(0)
    return ranker.booster.predict(matrix, num_threads=1)
