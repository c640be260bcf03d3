"""Train/test splits: exact answers on hand-made events, leakage checks and determinism on a simulated shop."""

from __future__ import annotations

import dataclasses
import datetime as dt

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from recs_assets import contract
from recs_assets.sources.simulator import SimulatorConfig, simulate
from recs_assets.training import (
    INTERACTION_TYPES,
    Split,
    interaction_events,
    leave_last_out,
    make_split,
    no_split,
    quantile_split,
    random_split,
    temporal_split,
)

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def at(days: float) -> dt.datetime:
    return T0 + dt.timedelta(days=days)


def events_frame(rows: list[dict]) -> pl.DataFrame:
    rows = [{"event_id": f"e{n:02d}", **row} for n, row in enumerate(rows, start=1)]
    return pl.DataFrame(
        {name: [row.get(name) for row in rows] for name in contract.EVENTS_SCHEMA}, schema=contract.EVENTS_SCHEMA
    )


def ids(df: pl.DataFrame) -> set[str]:
    return set(df["event_id"].to_list())


@pytest.fixture
def toy() -> pl.DataFrame:
    return events_frame(
        [
            {"event_at": at(1), "user_id": "u1", "item_id": "i1", "event_type": "view"},  # e01
            {"event_at": at(2), "user_id": "u1", "item_id": "i1", "event_type": "purchase"},  # e02
            {"event_at": at(5), "user_id": "u1", "item_id": "i2", "event_type": "view"},  # e03
            {"event_at": at(6), "user_id": "u1", "item_id": "i3", "event_type": "impression"},  # e04
            {"event_at": at(3), "user_id": "u2", "item_id": "i3", "event_type": "view"},  # e05
            {"event_at": at(9), "user_id": "u2", "item_id": "i1", "event_type": "rating", "value": 4.0},  # e06
            {"event_at": at(8), "user_id": "u3", "item_id": "i1", "event_type": "view"},  # e07
            {"event_at": at(4), "user_id": "u3", "event_type": "search", "query": "boots"},  # e08
        ]
    )


@pytest.fixture(scope="module")
def market():
    return simulate(SimulatorConfig(n_users=400, n_items=200, n_days=14))


# --- helpers and the Split record ------------------------------------------------------------------
def test_interaction_events_keep_only_item_interactions(toy):
    assert ids(interaction_events(toy)) == {"e01", "e02", "e03", "e05", "e06", "e07"}
    assert ids(interaction_events(toy, ("purchase",))) == {"e02"}
    assert set(INTERACTION_TYPES) == {"view", "add_to_cart", "purchase", "rating", "play"}


def test_split_is_frozen_and_describes_itself(toy):
    split = temporal_split(toy, test_days=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        split.protocol = "random"  # type: ignore[misc]
    assert split.describe() == {
        "protocol": "temporal",
        "reason": "",
        "cutoff": "2026-01-07T00:00:00+00:00",
        "train_rows": 5,
        "test_rows": 2,
        "train_users": 3,
        "test_users": 2,
        "train_items": 3,
        "test_items": 1,
        "test_users_not_in_train": 0,
        "test_items_not_in_train": 0,
        # u2 (history: i3) is graded on i1; u3's only earlier event is a search, so u3 has no history.
        "evaluable_users": 1,
    }


# --- the held-out truth and evaluable users ---------------------------------------------------------
def test_truth_leaves_out_every_item_the_user_met_in_training_shown_items_included():
    events = events_frame(
        [
            {"event_at": at(1), "user_id": "u1", "item_id": "a", "event_type": "view"},
            {"event_at": at(2), "user_id": "u1", "item_id": "b", "event_type": "impression"},
            {"event_at": at(8), "user_id": "u1", "item_id": "a", "event_type": "purchase"},  # seen: not truth
            {"event_at": at(8), "user_id": "u1", "item_id": "b", "event_type": "view"},  # shown in training: not truth
            {"event_at": at(9), "user_id": "u1", "item_id": "c", "event_type": "view"},
            {"event_at": at(9), "user_id": "u1", "item_id": "c", "event_type": "add_to_cart"},  # one pair
        ]
    )
    split = temporal_split(events, test_days=3)
    assert split.truth.rows() == [("u1", "c")]
    assert split.truth is split.truth  # computed once per split


def test_evaluable_users_need_a_new_test_item_and_a_training_history():
    events = events_frame(
        [
            {"event_at": at(1), "user_id": "keen", "item_id": "a", "event_type": "view"},
            {"event_at": at(9), "user_id": "keen", "item_id": "b", "event_type": "view"},  # evaluable
            {"event_at": at(1), "user_id": "repeat", "item_id": "a", "event_type": "view"},
            {"event_at": at(9), "user_id": "repeat", "item_id": "a", "event_type": "purchase"},  # nothing new
            {"event_at": at(1), "user_id": "browser", "item_id": "a", "event_type": "impression"},
            {"event_at": at(9), "user_id": "browser", "item_id": "c", "event_type": "view"},  # no history
            {"event_at": at(9), "user_id": "newcomer", "item_id": "c", "event_type": "view"},  # first seen late
        ]
    )
    split = temporal_split(events, test_days=3)
    assert set(split.truth["user_id"]) == {"keen", "browser", "newcomer"}
    assert split.evaluable_truth.rows() == [("keen", "b")]
    assert split.evaluable_users == 1
    assert split.history_users.to_list() == ["keen", "repeat"]


def test_holdout_truth_is_the_splits_own_truth_computed_once(toy):
    from recs_assets.training.splits import holdout_truth

    split = temporal_split(toy, test_days=3)
    assert holdout_truth(split) is split.truth


# --- temporal ---------------------------------------------------------------------------------------
def test_temporal_cut_is_exact(toy):
    split = temporal_split(toy, test_days=3)
    # Last event: day 9, so the cut is day 6. The impression on day 6 is neither trained on nor tested.
    assert split.cutoff == at(6)
    assert ids(split.train) == {"e01", "e02", "e03", "e05", "e08"}
    assert ids(split.test) == {"e06", "e07"}
    assert split.protocol == "temporal"
    assert split.train.schema == toy.schema and split.test.schema == toy.schema


def test_temporal_cut_accepts_fractions_of_a_day(toy):
    assert temporal_split(toy, test_days=0.5).cutoff == at(8.5)
    assert ids(temporal_split(toy, test_days=0.5).test) == {"e06"}


def test_temporal_split_never_tests_on_the_past(market):
    split = temporal_split(market.events, test_days=4)
    assert split.test["event_at"].min() >= split.cutoff
    assert split.train["event_at"].max() < split.cutoff
    # Every interaction lands on exactly one side.
    interactions = interaction_events(market.events)
    at_or_after = interactions.filter(pl.col("event_at") >= split.cutoff)
    assert ids(split.test) == ids(at_or_after)
    assert ids(interaction_events(split.train)) == ids(interactions) - ids(at_or_after)
    assert set(split.test["event_type"].unique()) <= set(INTERACTION_TYPES)


def test_temporal_split_refuses_data_without_time(toy):
    undated = toy.with_columns(pl.lit(None, dtype=contract.UTC_TIMESTAMP).alias("event_at"))
    with pytest.raises(ValueError, match=r"8 of 8 events have no event_at.*random_split"):
        temporal_split(undated, test_days=3)


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "3", None, True])
def test_temporal_split_rejects_a_bad_test_days(toy, bad):
    with pytest.raises(ValueError, match="test_days must be a positive number"):
        temporal_split(toy, test_days=bad)


def test_temporal_split_says_when_the_window_is_longer_than_the_data(toy):
    with pytest.raises(ValueError, match=r"spans 8\.00 days"):
        temporal_split(toy, test_days=9)


def test_temporal_split_says_when_the_test_window_holds_no_interaction(toy):
    quiet_end = pl.concat([toy, events_frame([{"event_at": at(20), "user_id": "u1", "event_type": "search"}])])
    with pytest.raises(ValueError, match="no interaction events at or after the cutoff"):
        temporal_split(quiet_end.with_columns(pl.format("x{}", "event_id").alias("event_id")), test_days=3)


# --- widened window: a quantile of interaction time -------------------------------------------------
def test_quantile_split_cuts_at_a_quantile_of_interaction_time(toy):
    # Interaction times: days 1, 2, 3, 5, 8, 9 (impressions and searches do not count).
    # The 0.5 quantile, "lower" rule, is the 3rd of 6: day 3.
    split = quantile_split(toy, quantile=0.5)
    assert split.cutoff == at(3)
    assert (split.protocol, ids(split.test)) == ("temporal_quantile", {"e05", "e03", "e06", "e07"})
    assert ids(split.train) == {"e01", "e02"}


def test_quantile_split_refuses_times_without_order(toy):
    flat = toy.with_columns(pl.lit(at(1)).alias("event_at"))
    with pytest.raises(ValueError, match="nothing would be left to train on"):
        quantile_split(flat, quantile=0.8)
    with pytest.raises(ValueError, match="quantile must be a number strictly between 0 and 1"):
        quantile_split(toy, quantile=1.0)


# --- leave last out ---------------------------------------------------------------------------------
def test_leave_last_out_picks_each_users_last_interaction(toy):
    split = leave_last_out(toy)
    # u1's last interaction is the view on day 5 (the later impression is not an interaction);
    # u2's is the rating; u3 has a single interaction, so u3 stays in train and is not tested.
    assert ids(split.test) == {"e03", "e06"}
    # u1's impression after the held-out view would hint at it, so it is in neither side.
    assert ids(split.train) == {"e01", "e02", "e05", "e07", "e08"}
    assert (split.protocol, split.cutoff) == ("leave_last_out", None)


def test_leave_last_out_breaks_ties_in_time_by_event_id():
    events = events_frame(
        [
            {"event_at": at(1), "user_id": "u1", "item_id": "a", "event_type": "view"},
            {"event_at": at(2), "user_id": "u1", "item_id": "b", "event_type": "view"},
            {"event_at": at(2), "user_id": "u1", "item_id": "c", "event_type": "add_to_cart"},
        ]
    ).reverse()
    split = leave_last_out(events)
    assert ids(split.test) == {"e03"}
    assert ids(split.train) == {"e01", "e02"}


def test_leave_last_out_holds_out_the_latest_interaction_on_a_simulated_shop(market):
    split = leave_last_out(market.events)
    interactions = interaction_events(market.events)
    latest = interactions.sort("event_at", "event_id").group_by("user_id").last()
    n_per_user = interactions.group_by("user_id").len()
    tested = latest.join(n_per_user.filter(pl.col("len") >= 2), on="user_id", how="semi")
    assert ids(split.test) == ids(tested)
    assert split.test["user_id"].is_unique().all()
    held_at = dict(zip(split.test["user_id"], split.test["event_at"]))
    late_in_train = split.train.filter(pl.col("event_at") > pl.col("user_id").replace_strict(held_at, default=None))
    assert late_in_train.is_empty()


def test_leave_last_out_needs_times_and_testable_users(toy):
    undated = toy.with_columns(pl.lit(None, dtype=contract.UTC_TIMESTAMP).alias("event_at"))
    with pytest.raises(ValueError, match="random_split"):
        leave_last_out(undated)
    with pytest.raises(ValueError, match="no user has two or more interaction events"):
        leave_last_out(toy.filter(pl.col("event_id").is_in(["e01", "e05"])))


# --- random -----------------------------------------------------------------------------------------
def _user_items(user: str, n: int) -> list[dict]:
    return [{"user_id": user, "item_id": f"i{k}", "event_type": "view"} for k in range(n)]


@pytest.fixture
def undated_shop() -> pl.DataFrame:
    # No times, like Steam. u10 has 10 items, u2 two, u1 one; u10 also bought i0 and saw an impression.
    rows = _user_items("u10", 10) + _user_items("u2", 2) + _user_items("u1", 1)
    rows += [{"user_id": "u10", "item_id": "i0", "event_type": "purchase"}]
    rows += [{"user_id": "u10", "item_id": "i0", "event_type": "impression"}]
    return events_frame(rows)


def _held_pairs(split: Split) -> set[tuple[str, str]]:
    return set(split.test.select("user_id", "item_id").unique().iter_rows())


def test_random_split_holds_out_a_share_of_each_users_items(undated_shop):
    split = random_split(undated_shop, test_fraction=0.3, seed=7)
    held = _held_pairs(split)
    by_user = {user: {item for u, item in held if u == user} for user in ("u10", "u2", "u1")}
    assert len(by_user["u10"]) == 3  # 30% of 10
    assert len(by_user["u2"]) == 1  # at least one, never both
    assert len(by_user["u1"]) == 0  # a single item stays in train
    assert (split.protocol, split.cutoff) == ("random", None)


def test_random_split_moves_every_interaction_of_a_held_out_pair(undated_shop):
    for seed in range(20):
        split = random_split(undated_shop, test_fraction=0.3, seed=seed)
        if ("u10", "i0") in _held_pairs(split):
            break
    else:
        pytest.fail("no seed in 0..19 held out (u10, i0)")
    i0 = split.test.filter((pl.col("user_id") == "u10") & (pl.col("item_id") == "i0"))
    assert sorted(i0["event_type"].to_list()) == ["purchase", "view"]
    # Nothing of the pair is left in train, not even the impression.
    assert split.train.filter((pl.col("user_id") == "u10") & (pl.col("item_id") == "i0")).is_empty()


def test_random_split_is_deterministic_for_a_seed_whatever_the_row_order(market):
    first = random_split(market.events, test_fraction=0.2, seed=3)
    again = random_split(market.events.sample(fraction=1.0, shuffle=True, seed=99), test_fraction=0.2, seed=3)
    assert _held_pairs(first) == _held_pairs(again)
    assert_frame_equal(first.test.sort("event_id"), again.test.sort("event_id"))
    other = random_split(market.events, test_fraction=0.2, seed=4)
    assert _held_pairs(first) != _held_pairs(other)


def test_random_split_never_empties_a_users_train_side(market):
    split = random_split(market.events, test_fraction=0.9, seed=1)
    train_items = interaction_events(split.train).group_by("user_id").agg(pl.col("item_id").n_unique())
    tested_users = set(split.test["user_id"].unique().to_list())
    assert tested_users <= set(train_items.filter(pl.col("item_id") >= 1)["user_id"].to_list())
    assert not (_held_pairs(split) & set(interaction_events(split.train).select("user_id", "item_id").iter_rows()))


def test_random_split_roughly_respects_the_fraction(market):
    pairs = interaction_events(market.events).select("user_id", "item_id").unique()
    eligible = pairs.join(pairs.group_by("user_id").len().filter(pl.col("len") >= 2), on="user_id", how="semi")
    held = _held_pairs(random_split(market.events, test_fraction=0.2, seed=0))
    # Users with two or three items must give one, which nudges the overall share above 20%.
    assert 0.17 <= len(held) / eligible.height <= 0.27
    big = eligible.group_by("user_id").len().filter(pl.col("len") >= 10)
    big_users = set(big["user_id"].to_list())
    held_big = sum(1 for user, _ in held if user in big_users)
    assert held_big / big["len"].sum() == pytest.approx(0.2, abs=0.03)


@pytest.mark.parametrize("bad", [0, 1, -0.1, 1.5, "0.2", None, float("nan")])
def test_random_split_rejects_a_bad_fraction(undated_shop, bad):
    with pytest.raises(ValueError, match="test_fraction must be a number strictly between 0 and 1"):
        random_split(undated_shop, test_fraction=bad, seed=0)


@pytest.mark.parametrize("bad", [-1, 1.5, "1", None])
def test_random_split_rejects_a_bad_seed(undated_shop, bad):
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        random_split(undated_shop, test_fraction=0.2, seed=bad)


def test_random_split_says_when_nobody_can_be_tested(undated_shop):
    with pytest.raises(ValueError, match="no user has interacted with two or more distinct items"):
        random_split(undated_shop.filter(pl.col("user_id") == "u1"), test_fraction=0.2, seed=0)


# --- make_split, no split ---------------------------------------------------------------------------
def test_make_split_knows_every_protocol_and_keeps_a_reason(toy):
    assert make_split(toy, "temporal_quantile", quantile=0.5).cutoff == at(3)
    assert make_split(toy, "leave_last_out", reason="because").reason == "because"
    with pytest.raises(ValueError, match="unknown split protocol 'weekly'"):
        make_split(toy, "weekly")
    with pytest.raises(ValueError, match="min_users only apply to protocol 'auto'"):
        make_split(toy, "temporal", min_users=3)


def test_no_split_trains_on_everything_and_holds_nothing_out(toy):
    split = no_split(toy, "too small")
    assert split.train.equals(toy) and split.test.is_empty() and split.test.schema == toy.schema
    assert (split.protocol, split.reason, split.evaluable_users) == ("none", "too small", 0)
    assert make_split(toy, "none").protocol == "none"


def test_a_split_round_trips_through_its_warehouse_table():
    from recs_assets.sources.simulator import SimulatorConfig, simulate
    from recs_assets.training.splits import split_from_frame, split_to_frame, temporal_split

    events = simulate(SimulatorConfig(n_users=60, n_items=40, n_days=6)).events
    split = dataclasses.replace(temporal_split(events, test_days=2), reason="the last 2 days hold enough users")
    back = split_from_frame(split_to_frame(split))
    assert back.protocol == "temporal" and back.cutoff == split.cutoff
    assert back.reason == "the last 2 days hold enough users"
    assert back.train.equals(split.train) and back.test.equals(split.test)
    # Tables written before the reason was stored still read back.
    old = split_from_frame(split_to_frame(split).drop("protocol_reason"))
    assert old.reason == "" and old.train.equals(split.train)


def test_graded_users_are_every_test_user_or_a_seeded_sorted_sample_and_the_split_narrows_to_them():
    from recs_assets.training.splits import graded_users

    events = simulate(SimulatorConfig(n_users=300, n_items=100, n_days=20, seed=4)).events
    split = make_split(events, "temporal", test_days=5)
    everyone = split.truth["user_id"].unique().sort().to_list()
    assert graded_users(split, None, 1) == everyone == graded_users(split, len(everyone), 1)
    sample = graded_users(split, 40, 1)
    assert len(sample) == 40 and sample == sorted(sample) and set(sample) <= set(everyone)
    assert graded_users(split, 40, 1) == sample != graded_users(split, 40, 2)
    narrowed = split.with_test_users(sample)
    assert narrowed.train.equals(split.train) and narrowed.history_users.equals(split.history_users)
    assert set(narrowed.truth["user_id"].to_list()) == set(sample)
    assert narrowed.truth.equals(split.truth.filter(pl.col("user_id").is_in(sample)))
    with pytest.raises(ValueError, match="max_users must be a positive integer or None, got 0"):
        graded_users(split, 0, 1)
