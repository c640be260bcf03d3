"""The protocol chosen from the data: one hand-made shop per shape, with the exact evaluable-user count."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from recs_assets import contract
from recs_assets.training import choose_protocol, make_split, required_users

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
N_USERS = 30
# 30 active users; "enough" is min(25, 100% of 30) = 25 evaluable users (the floor of 5 does not bind).
STRICT = {"min_users": 25, "min_share": 1.0, "min_floor": 5}


def at(days: float) -> dt.datetime:
    return T0 + dt.timedelta(days=days)


def events_frame(rows: list[tuple[float | None, str, str, str]]) -> pl.DataFrame:
    """Rows of (day or None, user, item, event_type) in EVENTS_SCHEMA."""
    data = {name: [None] * len(rows) for name in contract.EVENTS_SCHEMA}
    data["event_id"] = [f"e{n:04d}" for n in range(len(rows))]
    data["event_at"] = [None if day is None else at(day) for day, *_ in rows]
    data["user_id"] = [user for _, user, _, _ in rows]
    data["item_id"] = [item for _, _, item, _ in rows]
    data["event_type"] = [kind for *_, kind in rows]
    return pl.DataFrame(data, schema=contract.EVENTS_SCHEMA)


def dense_shop() -> pl.DataFrame:
    """Every user has a history (days 1 and 10) and a new item in the last week (day 28)."""
    rows = []
    for u in range(N_USERS):
        rows += [(1, f"u{u}", f"a{u}", "view"), (10, f"u{u}", "b", "view"), (28, f"u{u}", f"c{u}", "purchase")]
        rows += [(27, f"u{u}", "b", "impression")]  # impressions never count as interactions
    return events_frame(rows)


def sparse_recent_shop() -> pl.DataFrame:
    """A history for everyone (days 1 and 2); then 27 users come back on days 5-14 and only 3 in the last week."""
    rows = []
    for u in range(N_USERS):
        later = 30.0 if u >= 27 else 5 + u / 3  # u0..u26 on days 5..13.7; u27..u29 on day 30
        rows += [(1, f"u{u}", f"a{u}", "view"), (2, f"u{u}", f"b{u}", "view"), (later, f"u{u}", f"c{u}", "view")]
    return events_frame(rows)


def test_required_users_is_the_smaller_of_the_absolute_and_the_share_never_below_the_floor():
    assert required_users(100_000) == 200
    assert required_users(943) == 95  # 10% of MovieLens 100k's users
    assert required_users(50) == 20  # the floor
    assert required_users(30, **STRICT) == 25


def test_dense_time_gives_the_temporal_last_days():
    choice = choose_protocol(dense_shop(), test_days=7, **STRICT)
    assert (choice.protocol, choice.evaluable_users, choice.required_users) == ("temporal", 30, 25)
    assert choice.split.cutoff == at(21) and choice.split.evaluable_users == 30
    assert choice.reason.startswith("temporal, because the last 7 days give 30 evaluable users")
    assert choice.split.reason == choice.reason and choice.split.describe()["reason"] == choice.reason
    assert choice.has_leaderboard


def test_a_sparse_recent_window_is_widened_to_a_quantile_of_event_time():
    # 90 interactions: 30 on day 1, 30 on day 2, 27 on days 5-14, 3 on day 30. The last 7 days hold
    # 3 evaluable users; the 0.5 quantile of interaction time is day 2, which tests all 30.
    choice = choose_protocol(sparse_recent_shop(), test_days=7, quantile=0.5, **STRICT)
    assert (choice.protocol, choice.evaluable_users) == ("temporal_quantile", 30)
    assert choice.split.cutoff == at(2)
    assert [(name, n) for name, n, _ in choice.tried] == [("temporal", 3), ("temporal_quantile", 30)]
    assert "the last 7 days gave only 3 evaluable users" in choice.reason
    assert choice.params == {"quantile": 0.5, "cutoff": at(2).isoformat()}


def test_a_window_still_too_sparse_when_widened_falls_back_to_leave_last_out():
    # The 0.9 quantile (81st of 90 interactions, "lower") is u20's day-11.7 visit: 10 users come after it.
    choice = choose_protocol(sparse_recent_shop(), test_days=7, quantile=0.9, **STRICT)
    assert (choice.protocol, choice.evaluable_users) == ("leave_last_out", 30)
    assert [(name, n) for name, n, _ in choice.tried] == [("temporal", 3), ("temporal_quantile", 10), ("leave_last_out", 30)]
    assert choice.split.cutoff is None


def test_no_time_gives_a_seeded_random_hold_out():
    undated = dense_shop().with_columns(pl.lit(None, dtype=contract.UTC_TIMESTAMP).alias("event_at"))
    choice = choose_protocol(undated, test_fraction=0.25, seed=3, **STRICT)
    # Every user has three distinct items, so each gives one (round(0.75) = 1) and keeps two.
    assert (choice.protocol, choice.evaluable_users) == ("random", 30)
    assert "120 of 120 events have no time" in choice.reason
    assert choice.params == {"test_fraction": 0.25, "seed": 3, "cutoff": None}
    again = choose_protocol(undated, test_fraction=0.25, seed=3, **STRICT)
    assert again.split.test.equals(choice.split.test)


def test_a_source_declaring_no_time_is_split_at_random_even_with_a_time_column():
    choice = choose_protocol(dense_shop(), has_timestamps=False, **STRICT)
    assert (choice.protocol, choice.evaluable_users) == ("random", 30)
    assert "declares no event times" in choice.reason


def test_equal_timestamps_carry_no_order_and_give_a_random_hold_out():
    flat = dense_shop().with_columns(pl.lit(at(5)).alias("event_at"))
    choice = choose_protocol(flat, **STRICT)
    assert (choice.protocol, choice.evaluable_users) == ("random", 30)
    assert "same time" in choice.reason


def test_tiny_data_gets_no_protocol_and_a_clear_message_not_an_error():
    tiny = dense_shop().filter(pl.col("user_id").is_in(["u0", "u1", "u2"]))
    choice = choose_protocol(tiny, test_days=7)  # defaults: at least 20 evaluable users
    assert (choice.protocol, choice.evaluable_users, choice.required_users) == ("none", 3, 20)
    assert choice.reason.startswith("Too small for any protocol: the best protocol, temporal, gives 3 evaluable users")
    assert "trained on all events and served, without a leaderboard" in choice.reason
    assert not choice.has_leaderboard
    assert choice.split.train.height == tiny.height and choice.split.test.is_empty()


def test_no_interactions_at_all_is_too_small_too():
    only_impressions = dense_shop().filter(pl.col("event_type") == "impression")
    choice = choose_protocol(only_impressions)
    assert (choice.protocol, choice.evaluable_users) == ("none", 0)
    assert "no protocol could hold anything out" in choice.reason


def test_a_requested_protocol_is_honoured_and_the_reason_says_it_is_thin():
    choice = choose_protocol(sparse_recent_shop(), requested="temporal", test_days=7, **STRICT)
    assert (choice.protocol, choice.evaluable_users) == ("temporal", 3)
    assert "as requested in run config" in choice.reason and "expect wide intervals" in choice.reason
    assert choose_protocol(dense_shop(), requested="none").protocol == "none"


def test_a_requested_protocol_that_cannot_be_made_is_a_clear_error():
    flat = dense_shop().with_columns(pl.lit(at(5)).alias("event_at"))
    with pytest.raises(ValueError, match="'temporal' was requested in run config but cannot be used here"):
        choose_protocol(flat, requested="temporal")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"requested": "weekly"}, "unknown protocol 'weekly'"),
        ({"min_users": 0}, "min_users must be a positive integer"),
        ({"min_share": 1.5}, r"min_share must be in \[0.0, 1.0\]"),
        ({"test_days": 0}, "test_days must be a positive number"),
        ({"quantile": 1.0}, "quantile must be a number strictly between 0 and 1"),
        ({"seed": -1}, "seed must be a non-negative integer"),
    ],
)
def test_bad_options_are_rejected_by_name(options, message):
    with pytest.raises(ValueError, match=message):
        choose_protocol(dense_shop(), **options)


def test_make_split_auto_is_the_chosen_protocols_split():
    events = sparse_recent_shop()
    split = make_split(events, "auto", test_days=7, quantile=0.5, **STRICT)
    choice = choose_protocol(events, test_days=7, quantile=0.5, **STRICT)
    assert (split.protocol, split.cutoff, split.reason) == (choice.protocol, choice.split.cutoff, choice.reason)
    assert split.test.equals(choice.split.test)


def test_the_choice_is_plain_metadata():
    meta = choose_protocol(dense_shop(), **STRICT).as_metadata()
    assert meta["protocol"] == "temporal" and meta["evaluable_users"] == 30 and meta["param_test_days"] == 7.0
    assert meta["tried"] == [{"protocol": "temporal", "evaluable_users": 30, "note": "the last 7 days"}]


def test_anonymous_sessions_do_not_raise_the_number_of_evaluable_users_asked_for():
    # 25 known shoppers with a history and a new item in the last week, plus 400 one-session anonymous shoppers.
    rows = []
    for u in range(25):
        rows += [(1, f"u{u}", f"a{u}", "view"), (28, f"u{u}", f"c{u}", "view")]
    for s in range(400):
        rows.append((3 + s / 20, f"{contract.ANONYMOUS_USER_PREFIX}s{s}", "a0", "view"))
    choice = choose_protocol(events_frame(rows), test_days=7, min_users=200, min_share=0.5, min_floor=5)
    assert choice.required_users == 13  # half of the 25 known shoppers, not of 425 ids
    assert choice.protocol == "temporal" and choice.evaluable_users == 25
