"""Window features: equal windows cut from the events, features from the feature store's SQL, per-user rates."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from recs_assets.monitoring.window_features import (
    OTHER_CATEGORY,
    TASTE_OVERLAP,
    Window,
    WindowFeatures,
    category_share_columns,
    plan_windows,
    stacked_window_features,
    taste_overlap,
    top_category_over,
    unavailable_features,
    user_window_features,
)
from tests.monitoring.conftest import MONDAY, UTC, shop_events, shop_items, shop_users


def _day(d: int, hour: int = 0) -> dt.datetime:
    return MONDAY + dt.timedelta(days=d, hours=hour)


# ---------------------------------------------------------------------------------------------
# Windows
# ---------------------------------------------------------------------------------------------
def test_windows_are_whole_days_of_equal_length_ending_the_day_after_the_last_event():
    at = pl.Series([_day(0, 9), _day(10, 5), _day(22, 23)], dtype=pl.Datetime("us", "UTC"))
    plan = plan_windows(at, 7)
    assert plan.current == Window(_day(16), _day(23))
    # [2, 9) and [9, 16); the leftover [0, 2) is shorter than a window and left out
    assert plan.reference == (Window(_day(2), _day(9)), Window(_day(9), _day(16)))
    assert plan.current.label == "2026-09-23..2026-09-29" and plan.current.days == 7
    assert plan.reference_label == "2026-09-09..2026-09-22" and plan.skip_reason is None
    assert plan.before_reference is None  # [-5, 2) would start before the first event
    one = plan_windows(at, 7, max_reference_windows=1)
    assert one.reference == (Window(_day(9), _day(16)),)
    # the window before the reference, kept only to measure the reference's taste overlap
    assert one.before_reference == Window(_day(2), _day(9))


def test_no_timestamps_too_little_history_and_no_events_are_skip_reasons():
    undated = plan_windows(pl.Series([None, None], dtype=pl.Datetime("us", "UTC")), 7)
    assert undated.current is None and undated.undated_events == 2
    assert undated.skip_reason == "events have no timestamps, so there are no time windows to compare"
    short = plan_windows(pl.Series([_day(0), _day(12)], dtype=pl.Datetime("us", "UTC")), 7)
    assert short.skip_reason == "not enough history: 13 day(s) of events, need 14 for two 7-day windows"
    assert plan_windows(pl.Series([], dtype=pl.Datetime("us", "UTC")), 7).skip_reason == "no events yet"
    partly = plan_windows(pl.Series([_day(0), None, _day(13)], dtype=pl.Datetime("us", "UTC")), 7)
    assert partly.skip_reason is None and partly.undated_events == 1


@pytest.mark.parametrize("bad", [0, -7, 2.5, True])
def test_window_length_must_be_a_positive_whole_number(bad):
    with pytest.raises(ValueError, match="window_days"):
        plan_windows(pl.Series([_day(0)], dtype=pl.Datetime("us", "UTC")), bad)


# ---------------------------------------------------------------------------------------------
# Features of one window (known answers from the shop in conftest)
# ---------------------------------------------------------------------------------------------
def test_features_of_a_window_are_the_sql_feature_store_turned_into_per_user_rates():
    events = shop_events(n_users=3, weeks=2)
    week = Window(_day(0), _day(7))
    f = user_window_features(events, shop_items(), week, shop_users(3)).users
    assert f["user_id"].to_list() == ["u00", "u01", "u02"]
    u01 = f.row(1, named=True)  # 2 active days: view | view + cart, puzzle items at 20
    assert u01["active_day_share"] == pytest.approx(2 / 7) and u01["frequency"] == pytest.approx(1.5)
    assert u01["cart_rate"] == pytest.approx(0.5) and u01["purchase_rate"] == 0.0
    assert u01["avg_session_events"] == pytest.approx(1.5) and u01["avg_session_seconds"] == pytest.approx(30.0)
    assert u01["price_level"] == pytest.approx(20.0)
    assert (u01["top_category"], u01["top_category_share"]) == ("puzzle", 1.0)
    u02 = f.row(2, named=True)  # 3 days: view + cart | view | view + cart + purchase
    assert u02["frequency"] == pytest.approx(2.0) and u02["cart_rate"] == pytest.approx(2 / 3)
    assert u02["purchase_rate"] == pytest.approx(1 / 3) and u02["avg_session_seconds"] == pytest.approx(60.0)
    assert f["window_start"].unique().to_list() == [week.start]


def test_only_the_windows_events_count_and_anonymous_shoppers_are_included():
    events = shop_events(n_users=3, weeks=2, anonymous=1)
    first = user_window_features(events, shop_items(), Window(_day(0), _day(7)), shop_users(3))
    second = user_window_features(events, shop_items(), Window(_day(7), _day(14)), shop_users(3))
    # the second week is a copy of the first, so the features are the same row for row
    assert first.users.drop("window_start").equals(second.users.drop("window_start"))
    assert "anonymous:s3" in first.users["user_id"].to_list()  # not in `users`, still a shopper
    one_day = user_window_features(events, shop_items(), Window(_day(0), _day(1)), shop_users(3))
    assert one_day.users["active_day_share"].to_list() == [1.0, 1.0, 1.0, 1.0]  # one day, everyone active on it


def test_without_views_the_per_view_rates_are_null_not_zero():
    events = shop_events(n_users=3, weeks=1, event_types=("rating",), prices=False)
    f = user_window_features(events, shop_items(prices=False), Window(_day(0), _day(7))).users
    assert f["cart_rate"].null_count() == f["purchase_rate"].null_count() == f["price_level"].null_count() == 3
    assert f["frequency"].to_list() == [1.0, 1.0, 1.0]  # one rating per active day


def test_stacked_windows_keep_each_windows_rows_apart():
    events = shop_events(n_users=3, weeks=2)
    both = stacked_window_features(events, shop_items(), [Window(_day(0), _day(7)), Window(_day(7), _day(14))])
    assert both.users.height == 6 and both.users["window_start"].n_unique() == 2
    assert both.affinity.group_by("window_start").len()["len"].to_list() == [3, 3]
    with pytest.raises(ValueError, match="at least one window"):
        stacked_window_features(events, shop_items(), [])


# ---------------------------------------------------------------------------------------------
# What a dataset cannot have
# ---------------------------------------------------------------------------------------------
def test_a_full_shop_lacks_nothing():
    assert unavailable_features(shop_events(n_users=3), shop_items()) == {}


def test_missing_prices_categories_and_event_types_are_named():
    no_price = unavailable_features(shop_events(n_users=3, prices=False), shop_items(prices=False))
    assert no_price == {"price_level": "no prices: neither the events nor the items carry one"}
    # an item list price alone is enough for price_level
    assert "price_level" not in unavailable_features(shop_events(n_users=3, prices=False), shop_items())
    no_category = unavailable_features(shop_events(n_users=3), shop_items(categories=False))
    assert set(no_category) == {"top_category", "top_category_share", "taste_overlap"}
    ratings = unavailable_features(shop_events(n_users=3, event_types=("rating",), prices=False), shop_items(prices=False))
    assert ratings["cart_rate"] == ratings["purchase_rate"] == "no view events, and cart and purchase rates are per view"
    views_only = unavailable_features(shop_events(n_users=3, event_types=("view",)), shop_items())
    assert views_only == {"cart_rate": "no add_to_cart events", "purchase_rate": "no purchase events"}


# ---------------------------------------------------------------------------------------------
# Category shares: bounded, over the categories both sides have
# ---------------------------------------------------------------------------------------------
def _side(rows: list[tuple[str, str, float]], start: dt.datetime) -> WindowFeatures:
    affinity = pl.DataFrame(rows, schema=["user_id", "category", "strength"], orient="row").with_columns(
        pl.lit(start, dtype=pl.Datetime("us", "UTC")).alias("window_start")
    )
    users = affinity.select("window_start", "user_id").unique(maintain_order=True)
    return WindowFeatures(users=users, affinity=affinity, windows=(Window(start, start + dt.timedelta(days=7)),))


def test_shares_are_taken_over_the_categories_both_sides_have():
    reference = _side([("a", "rpg", 3.0), ("a", "puzzle", 1.0), ("b", "racing", 2.0)], _day(0))
    current = _side([("a", "rpg", 1.0), ("a", "puzzle", 1.0), ("a", "new_stock", 8.0), ("c", "new_stock", 1.0)], _day(7))
    shares = category_share_columns(reference, current)
    assert shares.columns == {"share_rpg": "rpg", "share_puzzle": "puzzle"}  # most interest first
    ref = {r["user_id"]: r for r in shares.reference.iter_rows(named=True)}
    cur = {r["user_id"]: r for r in shares.current.iter_rows(named=True)}
    assert (ref["a"]["share_rpg"], ref["a"]["share_puzzle"]) == (0.75, 0.25)
    # the new category does not dilute the shares: user a still splits rpg / puzzle evenly
    assert (cur["a"]["share_rpg"], cur["a"]["share_puzzle"]) == (0.5, 0.5)
    # no interest in a shared category: no shares at all (null), not zeros
    assert ref["b"]["share_rpg"] is None and cur["c"]["share_puzzle"] is None
    assert shares.left_out == {
        "racing": "1 category with interest in the reference only",
        "new_stock": "1 category with interest in the current window only",
    }


def test_the_number_of_share_columns_is_bounded_whatever_the_taxonomy():
    rows = [("a", f"cat {j}", float(j + 1)) for j in range(50)]
    shares = category_share_columns(_side(rows, _day(0)), _side(rows, _day(7)), max_categories=3)
    assert list(shares.columns) == ["share_cat_49", "share_cat_48", "share_cat_47"]
    assert shares.left_out == {
        "47 smaller shared categories": "only the 3 with the most interest get a column (they still count in each user's total)"
    }
    assert shares.reference["share_cat_49"].to_list() == [pytest.approx(50 / sum(range(1, 51)))]


def test_share_column_names_stay_unique_when_categories_slug_alike():
    rows = [("a", "Sci-Fi", 2.0), ("a", "sci fi", 1.0)]
    shares = category_share_columns(_side(rows, _day(0)), _side(rows, _day(7)))
    assert shares.columns == {"share_sci_fi": "Sci-Fi", "share_sci_fi_2": "sci fi"}


def test_a_favourite_outside_the_compared_categories_becomes_other():
    users = pl.DataFrame({"user_id": ["a", "b", "c"], "top_category": ["rpg", "gone", None]})
    assert top_category_over(users, ["rpg"])["top_category"].to_list() == ["rpg", OTHER_CATEGORY, None]


def test_windows_are_cut_in_utc_whatever_the_events_zone():
    # 8 Sept 01:00 in Warsaw is 7 Sept 23:00 UTC, so the history reaches back to 7 Sept: two full windows
    at = pl.Series([dt.datetime(2026, 9, 8, 1), dt.datetime(2026, 9, 20, 23)]).dt.replace_time_zone("Europe/Warsaw")
    plan = plan_windows(at, 7)
    assert plan.skip_reason is None
    assert plan.reference == (Window(dt.datetime(2026, 9, 7, tzinfo=UTC), dt.datetime(2026, 9, 14, tzinfo=UTC)),)


# ---------------------------------------------------------------------------------------------
# Taste overlap: a user's category mix against their own previous window
# ---------------------------------------------------------------------------------------------
def test_taste_overlap_is_the_shared_part_of_a_users_category_mix_with_the_window_before():
    w0, w1 = Window(_day(0), _day(7)), Window(_day(7), _day(14))
    stamp = pl.Datetime("us", "UTC")
    affinity = pl.DataFrame(
        {
            "window_start": [w0.start] * 4 + [w1.start] * 4,
            "user_id": ["a", "a", "b", "c", "a", "a", "b", "d"],
            "category": ["rpg", "puzzle", "rpg", "rpg", "rpg", "racing", "puzzle", "rpg"],
            "strength": [3.0, 1.0, 2.0, 1.0, 1.0, 1.0, 5.0, 1.0],
        },
        schema_overrides={"window_start": stamp},
    )
    got = taste_overlap(affinity, [w0, w1]).sort("user_id")
    # a: 3/4 rpg + 1/4 puzzle, then 1/2 rpg + 1/2 racing -> min(3/4, 1/2) = 0.5
    # b: rpg, then puzzle -> nothing in common; c: gone; d: new -> not measured
    assert got["user_id"].to_list() == ["a", "b"]
    assert got[TASTE_OVERLAP].to_list() == pytest.approx([0.5, 0.0])
    assert got["window_start"].to_list() == [w1.start, w1.start]
    # the first window has no window before it, so no overlap
    assert taste_overlap(affinity, [w0]).height == 0


def test_a_repeated_week_has_full_taste_overlap():
    events = shop_events(weeks=2)
    weeks = [Window(_day(0), _day(7)), Window(_day(7), _day(14))]
    both = stacked_window_features(events, shop_items(), weeks)
    got = taste_overlap(both.affinity, weeks)
    assert got.height == 40 and got[TASTE_OVERLAP].to_list() == pytest.approx([1.0] * 40)
