"""The champion refitted on all data: it learns the days the graded models never saw, with the same settings."""

import os

import polars as pl
import pytest

from recs_assets.features import DEFAULT_INTERACTION_PARAMS
from recs_assets.models import MODELS
from recs_assets.models.ranker import LightGBMRanker
from recs_assets.sources.simulator import SimulatorConfig, simulate
from recs_assets.training.ranking_set import features_at
from recs_assets.training.refit import everything_as_training, refit_champion
from recs_assets.training.splits import make_split

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


@pytest.fixture(scope="module")
def shop():
    sim = simulate(SimulatorConfig(n_users=150, n_items=80, n_days=24, seed=3))
    split = make_split(sim.events, "temporal", test_days=5)
    now = features_at(sim.events, sim.events, sim.items, sim.users, None, DEFAULT_INTERACTION_PARAMS)
    return sim, split, now


def make_generators():
    return {name: cls() for name, cls in MODELS.items()}


def refit(shop, champion, make_ranker=LightGBMRanker, **kwargs):
    sim, split, now = shop
    return refit_champion(
        champion, make_generators, make_ranker, now, sim.events, sim.items, sim.users,
        protocol=split.protocol, weights=DEFAULT_INTERACTION_PARAMS, n_candidates=20, **kwargs,
    )


def test_everything_as_training_holds_nothing_out_and_keeps_the_protocol(shop):
    sim, split, _ = shop
    everything = everything_as_training(sim.events, split.protocol)
    assert everything.train.height == sim.events.height and everything.test.height == 0
    assert everything.protocol == "temporal" and everything.truth.height == 0
    with pytest.raises(ValueError, match="unknown protocol 'weekly'"):
        everything_as_training(sim.events, "weekly")


def test_a_refitted_generator_knows_what_happened_after_the_test_cut_off(shop):
    sim, split, _ = shop
    result = refit(shop, "popularity")
    assert result.ranker is None and set(result.generators) == set(MODELS)
    after = split.test.filter(pl.col("item_id").is_not_null())
    # Pairs first seen after the cut-off: the graded models never saw them, the refit must have.
    before = split.train.select("user_id", "item_id").unique()
    new_pairs = after.select("user_id", "item_id").unique().join(before, on=["user_id", "item_id"], how="anti")
    assert new_pairs.height > 0
    knn = result.generators["item_knn"]
    seen = knn._seen_rows(knn._lookup(new_pairs["user_id"].to_list(), knn._users_index()))
    items = knn._items_index()
    hits = sum(
        seen[row, items[item]] > 0 for row, item in enumerate(new_pairs["item_id"].to_list()) if item in items
    )
    assert hits == new_pairs.height


def test_an_unknown_champion_is_refused(shop):
    with pytest.raises(ValueError, match="champion 'sasquatch' is neither 'ranker' nor one of the generators"):
        refit(shop, "sasquatch")


@pytest.mark.slow
def test_a_ranker_champion_is_refitted_on_lessons_from_the_newest_days(shop):
    sim, split, _ = shop
    result = refit(shop, "ranker", lambda: LightGBMRanker(num_leaves=3, n_estimators=20),
                   lesson_options={"label_days": 4.0, "n_windows": 1})
    assert result.ranker is not None and result.ranker.booster is not None
    # The refit's lessons end at the newest event, beyond the graded split's cut-off.
    (window,) = result.lessons["windows"]
    assert window["label_cutoff"] > split.cutoff.isoformat()
    assert window["positive_pairs"] > 0
    # The graded ranker's settings travel into the refit.
    assert result.ranker.params()["num_leaves"] == 3 and result.ranker.params()["n_estimators"] == 20


def test_only_the_named_generators_are_refitted_and_the_champion_must_be_among_them(shop):
    result = refit(shop, "ease", only=["ease", "item_knn"])
    assert set(result.generators) == {"ease", "item_knn"}
    with pytest.raises(ValueError, match="must include the champion 'ease'"):
        refit(shop, "ease", only=["item_knn"])
    with pytest.raises(ValueError, match="needs every generator"):
        refit(shop, "ranker", only=["ease"])
