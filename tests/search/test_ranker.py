"""The search ranker learns a planted taste, corrects for the slot, and is stored like the re-ranker."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from recs_assets.models.ranker import LightGBMRanker
from recs_assets.search.engine import NOT_PERSONALISED, PERSONALISED, SearchEngine
from recs_assets.search.features import SEARCH_FEATURES
from recs_assets.search.ranker import (
    build_lessons,
    examination_propensities,
    fit_search_ranker,
    lesson_weights,
    score_matrix,
)
from tests.search.planted import PLANTED, planted_featurizer, planted_users


@pytest.fixture(scope="module")
def planted():
    featurizer, impressions = planted_featurizer()
    lessons = build_lessons(impressions, featurizer)
    return featurizer, lessons, fit_search_ranker(lessons, examination_propensities(lessons))


def planted_share(engine: SearchEngine, user: str | None, top: int = 5) -> float:
    result = engine.search("jackets", user, top)
    return float(np.mean([item.startswith("i0") for item in result.item_ids]))  # i0.. are the planted brand's items


def test_the_ranker_lifts_brand_x_for_segment_a_but_not_for_segment_b(planted):
    featurizer, _, ranker = planted
    engine = SearchEngine(featurizer, ranker)
    a_users, b_users = planted_users()
    a_share = np.mean([planted_share(engine, u) for u in a_users[:10]])
    b_share = np.mean([planted_share(engine, u) for u in b_users[:10]])
    anonymous = planted_share(engine, None)
    assert a_share >= 0.9, f"X should fill A's top 5; got share {a_share}"
    assert b_share <= 0.1, f"X should not rise for B; got share {b_share}"
    assert b_share < anonymous < a_share or anonymous in (0.0, 1.0) and a_share > b_share
    assert engine.search("jackets", a_users[0], 5).ranking == PERSONALISED
    assert engine.search("jackets", "nobody", 5).ranking == NOT_PERSONALISED


def test_the_lessons_hold_the_search_features_and_the_brand_share(planted):
    featurizer, lessons, _ = planted
    assert set(SEARCH_FEATURES) <= set(lessons.columns)
    a_rows = lessons.filter(pl.col("user_id").str.starts_with("a") & pl.col("item_id").str.starts_with("i0"))
    b_rows = lessons.filter(pl.col("user_id").str.starts_with("b") & pl.col("item_id").str.starts_with("i0"))
    assert (a_rows["user_brand_share"] == 1.0).all() and (b_rows["user_brand_share"] == 0.0).all()
    assert featurizer.brand_index[PLANTED] >= 0


def test_examination_propensities_fall_with_the_slot_and_weight_engaged_lower_slots_up():
    lessons = pl.DataFrame({
        "search_id": ["s"] * 6, "position": [1, 1, 2, 2, 3, None], "label": [1, 1, 1, 0, 0, 2],
    }, schema={"search_id": pl.String, "position": pl.Int32, "label": pl.Int32})
    theta = examination_propensities(lessons, min_propensity=0.2)
    assert theta == {1: 1.0, 2: 0.5, 3: 0.2}  # view rates 1, 0.5, 0 (floored)
    weights = lesson_weights(lessons, theta)
    assert weights.tolist() == [1.0, 1.0, 2.0, 1.0, 1.0, 1.0]  # only engaged rows with a slot are re-weighted


def test_no_engagement_means_no_ranker_and_a_foreign_ranker_is_refused(planted):
    _, lessons, ranker = planted
    with pytest.raises(ValueError, match="nothing to learn"):
        fit_search_ranker(lessons.with_columns(pl.lit(0, dtype=pl.Int32).alias("label")))
    other = LightGBMRanker()
    other.booster, other.features = ranker.booster, ["a", "b"]
    with pytest.raises(ValueError, match="other features"):
        score_matrix(other, np.zeros((1, len(SEARCH_FEATURES))))


def test_the_search_ranker_saves_as_lightgbm_text_and_scores_the_same_after_loading(planted, tmp_path):
    featurizer, lessons, ranker = planted
    path = tmp_path / "model.bin"
    ranker.save(path)
    assert "lightgbm_model" in path.read_text() and "tree" in path.read_text()
    loaded = LightGBMRanker.load(path)
    matrix = lessons.select(SEARCH_FEATURES).to_numpy()
    assert np.allclose(score_matrix(loaded, matrix), score_matrix(ranker, matrix))
