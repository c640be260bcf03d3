"""The re-ranker: candidate union, features, labels, LambdaRank fitting, and that it beats its inputs."""

import os

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from recs_assets.models.lists import recommend_frame
from recs_assets.training.splits import holdout_truth
from recs_assets.evaluation.metrics import evaluate
from recs_assets.features import DEFAULT_INTERACTION_PARAMS
from recs_assets.models import MODELS, ItemKNNRecommender, PopularityRecommender
from recs_assets.models.lists import candidates_from_lists
from recs_assets.models.lists import candidates_from_lists
from recs_assets.models.ranker import LightGBMRanker, attach_labels, ranking_features
from recs_assets.sources.simulator import SimulatorConfig, simulate
from recs_assets.training.ranking_set import (
    availability_event_columns,
    build_ranking_set,
    features_at,
    fit_generator,
    rank_for_users,
)
from recs_assets.training.splits import make_split

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# Two taste blocks: u1, u2 like a*, u3, u4 like b*; a1 is the most popular item overall.
INTERACTIONS = pl.DataFrame(
    {
        "user_id": ["u1", "u1", "u2", "u2", "u3", "u3", "u4", "u4", "u5"],
        "item_id": ["a1", "a2", "a1", "a3", "b1", "b2", "b1", "a1", "a1"],
        "strength": [1.0] * 9,
    }
)


def fitted_generators():
    return {
        "popularity": PopularityRecommender().fit(INTERACTIONS),
        "item_knn": ItemKNNRecommender(k=10, shrinkage=0.0).fit(INTERACTIONS),
    }


def test_candidates_are_the_union_with_each_generators_rank_and_null_where_absent():
    pairs = candidates_from_lists({name: recommend_frame(m, ["u1"], 2) for name, m in fitted_generators().items()})
    assert pairs["user_id"].unique().to_list() == ["u1"]
    # Nothing the user already has is proposed.
    assert not set(pairs["item_id"]) & {"a1", "a2"}
    popular = pairs.filter(pl.col("popularity_rank").is_not_null())
    assert popular.height == 2 and sorted(popular["popularity_rank"].to_list()) == [1, 2]
    both = pairs.filter(pl.col("n_generators") == 2)
    assert both["popularity_rank"].null_count() == 0 and both["item_knn_rank"].null_count() == 0
    assert set(pairs.columns) >= {"popularity_score", "item_knn_score", "n_generators"}


def test_features_add_user_item_and_pair_signals_and_labels_mark_what_happened_next():
    pairs = pl.DataFrame({"user_id": ["u1", "u1"], "item_id": ["a3", "b1"], "popularity_rank": [1, 2]})
    users = pl.DataFrame({"user_id": ["u1"], "price_level": [10.0]}).with_columns(
        *[pl.lit(1.0).alias(c) for c in ("n_events", "n_sessions", "n_active_days", "n_purchases", "recency_days", "monetary", "top_category_share")]
    )
    items = pl.DataFrame({"item_id": ["a3", "b1"], "category": ["rpg", "racing"], "price": [20.0, 5.0]}).with_columns(
        *[pl.lit(0.5).alias(c) for c in ("n_users", "n_views", "n_purchases", "popularity_rank", "view_to_cart_rate",
                                         "cart_to_purchase_rate", "view_to_purchase_rate", "listing_age_days")]
    )
    affinity = pl.DataFrame({"user_id": ["u1"], "category": ["rpg"], "share": [0.75]})
    features = ranking_features(pairs, users, items, affinity)
    assert features["user_category_share"].to_list() == [0.75, 0.0]
    assert features["price_to_user_level"].to_list() == [2.0, 0.5]
    labelled = attach_labels(features, pl.DataFrame({"user_id": ["u1"], "item_id": ["b1"]}))
    assert labelled["label"].to_list() == [0, 1]


def ranking_frame(seed: int = 0) -> pl.DataFrame:
    """Lists of 10 candidates for 200 users where the label follows feature `signal` (with noise)."""
    rng = np.random.default_rng(seed)
    n_users, n_items = 200, 10
    signal = rng.normal(size=n_users * n_items)
    label = (signal + rng.normal(scale=0.5, size=signal.size) > 1.5).astype(np.int32)
    return pl.DataFrame(
        {
            "user_id": np.repeat([f"u{u:03d}" for u in range(n_users)], n_items),
            "item_id": np.tile([f"i{i}" for i in range(n_items)], n_users),
            "signal": signal,
            "noise": rng.normal(size=signal.size),
            "label": label,
        }
    )


def test_the_ranker_learns_the_signal_respects_N_and_is_deterministic(tmp_path):
    frame = ranking_frame()
    ranker = LightGBMRanker(n_estimators=50, min_child_samples=20).fit(frame)
    assert ranker.features == ["signal", "noise"]
    assert next(iter(ranker.importance())) == "signal"
    top = ranker.rank(frame.drop("label"), 3)
    assert top.group_by("user_id").len()["len"].max() == 3
    best_signal = frame.sort("signal", descending=True).group_by("user_id").first().select("user_id", "item_id")
    agreement = top.filter(pl.col("rank") == 1).join(best_signal, on=["user_id", "item_id"]).height / best_signal.height
    assert agreement > 0.8
    again = LightGBMRanker(n_estimators=50, min_child_samples=20).fit(frame).rank(frame.drop("label"), 3)
    assert top.equals(again)
    ranker.save(tmp_path / "ranker.bin")
    assert LightGBMRanker.load(tmp_path / "ranker.bin").rank(frame.drop("label"), 3).equals(top)


def test_the_ranker_refuses_lessons_without_a_positive_and_a_bad_N():
    frame = ranking_frame().with_columns(pl.lit(0, dtype=pl.Int32).alias("label"))
    with pytest.raises(ValueError, match="no user has a positive candidate"):
        LightGBMRanker().fit(frame)
    fitted = LightGBMRanker(n_estimators=5, min_child_samples=5).fit(ranking_frame())
    with pytest.raises(ValueError, match="N must be a positive integer"):
        fitted.rank(ranking_frame().drop("label"), 0)


def test_the_same_user_in_two_label_windows_is_two_lists():
    frame = pl.concat([ranking_frame(0).with_columns(pl.lit(0).alias("window")),
                       ranking_frame(1).with_columns(pl.lit(1).alias("window"))])
    ranker = LightGBMRanker(n_estimators=5, min_child_samples=5).fit(frame)
    assert "window" not in ranker.features


@pytest.fixture(scope="module")
def simulated_market():
    # Large enough that the ranker has thousands of lessons: on 2,000 users the generators' scores
    # differ by less than the noise of one 7-day window, and no ranker can be told apart from them.
    return simulate(SimulatorConfig(n_users=10_000, n_items=5_000, n_days=30, seed=42))


@pytest.mark.slow  # fits every model twice on a 10k-user shop (about a minute)
# Measured: the ranker 0.0442 against two_tower's 0.0419 (+5.5%). A thin margin: with the feature SQL on
# two DuckDB threads (floats summed in another order, the last bits of the features changed) the same
# code scored 0.0438 (+4.5%, in two runs) and this test was a strict xfail.
def test_the_ranker_beats_its_best_input_on_held_out_data(simulated_market):
    m = simulated_market
    split = make_split(m.events, "temporal", test_days=7)
    weights = DEFAULT_INTERACTION_PARAMS
    lessons, described = build_ranking_set(
        split, m.events, m.items, m.users, lambda: {n: cls() for n, cls in MODELS.items()}, weights=weights, n_windows=2
    )
    assert [w["positive_pairs"] > 1_000 for w in described["windows"]] == [True, True]
    known = features_at(split.train, m.events, m.items, m.users, split.cutoff, weights)
    # Fitted as the pipeline fits them: the session models read the visits in order.
    generators = {
        n: fit_generator(cls(), known["interactions"], known["item_features"], sequences=known["session_sequences"])
        for n, cls in MODELS.items()
    }
    truth = holdout_truth(split)
    test_users = truth["user_id"].unique().sort().to_list()
    inputs = {name: evaluate(recommend_frame(model, test_users, 10), truth, 10)["ndcg@10"] for name, model in generators.items()}
    ranker = LightGBMRanker().fit(lessons)
    ranked = rank_for_users(ranker, generators, truth["user_id"].unique().sort().to_list(), known, n_candidates=50, N=10)
    ndcg = evaluate(ranked, truth, 10)["ndcg@10"]
    best = max(inputs.values())
    assert ndcg > 1.05 * best, f"ranker {ndcg:.4f} vs best input {best:.4f} ({inputs}); gate {ranker.validation}"


def test_the_pipeline_evaluation_grades_every_generator_and_the_ranker_on_one_split():
    from recs_assets.evaluation.pipeline import evaluate_pipeline

    m = simulate(SimulatorConfig(n_users=300, n_items=150, n_days=24, seed=3))
    split = make_split(m.events, "temporal", test_days=7)
    results = evaluate_pipeline(split, m.events, m.items, m.users, DEFAULT_INTERACTION_PARAMS)
    assert set(results) == {*MODELS, "ranker"}
    users = {r["users_evaluated"] for r in results.values()}
    assert users == {holdout_truth(split)["user_id"].n_unique()}  # every model graded on the same users
    assert all(0.0 <= r["ndcg@10"] <= 1.0 for r in results.values())


def test_item_features_without_a_cut_off_count_only_the_visible_past():
    # A random split has no cut-off: the held-out interactions must not show up in the items' demand.
    m = simulate(SimulatorConfig(n_users=200, n_items=100, n_days=10, seed=5))
    split = make_split(m.events, "random", test_fraction=0.25, seed=1)
    known = features_at(split.train, m.events, m.items, m.users, split.cutoff, DEFAULT_INTERACTION_PARAMS)
    counted = known["item_features"].select("item_id", "n_users").filter(pl.col("n_users") > 0)
    visible = (split.train.filter(pl.col("event_type").is_in(["view", "add_to_cart", "purchase", "rating", "play"]))
               .group_by("item_id").agg(pl.col("user_id").n_unique().alias("expected")))
    joined = counted.join(visible, on="item_id", how="full", coalesce=True).fill_null(0)
    assert joined.height > 0 and (joined["n_users"] == joined["expected"]).all()


def test_of_every_event_the_features_at_a_cut_off_need_only_the_availability_columns():
    # What lets the training features and the lessons load a few columns of every event, not all of them.
    m = simulate(SimulatorConfig(n_users=200, n_items=100, n_days=14, seed=6))
    split = make_split(m.events, "temporal", test_days=4)
    columns = availability_event_columns()
    assert {"item_id", "event_at", "event_type"} <= set(columns) and "event_id" not in columns
    assert "session_id" not in columns and len(columns) < len(m.events.columns)
    whole = features_at(split.train, m.events, m.items, m.users, split.cutoff, DEFAULT_INTERACTION_PARAMS)
    narrow = features_at(split.train, m.events.select(columns), m.items, m.users, split.cutoff, DEFAULT_INTERACTION_PARAMS)
    assert whole.keys() == narrow.keys()
    for name in whole:  # equal to rounding: DuckDB's threads may add floats in another order
        assert_frame_equal(whole[name], narrow[name], check_exact=False, rel_tol=1e-9)


def test_the_training_assets_load_only_the_availability_columns_of_every_event():
    from recs_assets.defs.training import ranking_training_set, training_features

    for asset in (training_features, ranking_training_set):
        inputs = {d.name: d.metadata for d in asset.node_def.input_defs}
        assert inputs["events"] == {"columns": availability_event_columns()}, asset
        assert inputs["train_test_split"] == {}


def test_ranking_a_few_users_at_a_time_gives_exactly_the_lists_of_ranking_them_all_at_once():
    m = simulate(SimulatorConfig(n_users=300, n_items=150, n_days=24, seed=3))
    split = make_split(m.events, "temporal", test_days=7)
    lessons, _ = build_ranking_set(
        split, m.events, m.items, m.users, lambda: {"popularity": PopularityRecommender(), "item_knn": ItemKNNRecommender()},
        weights=DEFAULT_INTERACTION_PARAMS, n_windows=1,
    )
    known = features_at(split.train, m.events, m.items, m.users, split.cutoff, DEFAULT_INTERACTION_PARAMS)
    generators = {"popularity": PopularityRecommender().fit(known["interactions"]),
                  "item_knn": ItemKNNRecommender().fit(known["interactions"])}
    ranker = LightGBMRanker().fit(lessons)
    users = known["interactions"]["user_id"].unique().shuffle(seed=1).to_list()
    whole = rank_for_users(ranker, generators, users, known, n_candidates=20, N=10, block_users=len(users))
    blocked = rank_for_users(ranker, generators, users, known, n_candidates=20, N=10, block_users=7)
    assert whole["user_id"].n_unique() == len(users) > 7
    assert blocked.equals(whole)
    from recs_assets.training.ranking_set import rank_lists

    lists = {name: recommend_frame(model, users, 20) for name, model in generators.items()}
    assert rank_lists(ranker, lists, known, 10, block_users=13).equals(rank_lists(ranker, lists, known, 10, block_users=10_000))
    with pytest.raises(ValueError, match="block_users must be a positive integer, got 0"):
        rank_for_users(ranker, generators, users, known, n_candidates=20, N=10, block_users=0)


def test_the_fitting_sample_keeps_every_lesson_user_and_tops_up_with_others_to_the_cap():
    from recs_assets.training.ranking_set import fitting_sample

    interactions = pl.DataFrame({"user_id": [f"u{i}" for i in range(20) for _ in range(2)],
                                 "item_id": [f"i{j}" for i in range(20) for j in (i, i + 1)], "strength": [1.0] * 40})
    sequences = pl.DataFrame({"user_id": ["u0", "u19", "anonymous:s1"], "item_ids": [["i0"], ["i19"], ["i3"]]})
    known = {"interactions": interactions, "session_sequences": sequences, "item_features": pl.DataFrame({"item_id": ["i0"]})}
    lesson = ["u3", "u7", "u19"]
    sample = fitting_sample(known, lesson, 8, seed=1)
    kept = set(sample["interactions"]["user_id"].to_list())
    assert len(kept) == 8 and set(lesson) <= kept
    assert sample["interactions"].height == 16  # every kept user keeps all of their interactions
    assert set(sample["session_sequences"]["user_id"].to_list()) == {"u19", "u0"} & kept | {"u19"}
    assert sample["item_features"] is known["item_features"]
    assert fitting_sample(known, lesson, 8, seed=1)["interactions"].equals(sample["interactions"])
    assert fitting_sample(known, lesson, 20, seed=1) is known and fitting_sample(known, lesson, None, seed=1) is known
    with pytest.raises(ValueError, match="max_fit_users must be a positive integer or None, got 0"):
        fitting_sample(known, lesson, 0, seed=1)
