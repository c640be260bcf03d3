"""The Feast feature store over the home: hand-made shops with known answers.

The shop: u1 views i1 (rpg) on day 1 and buys i2 (indie) on day 5; u2 never acts; i3 is listed on
day 4. Tables are written as of day 2 and day 10, so every question has an older and a newer answer.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from recs_assets import contract
from recs_assets.feature_store import (
    AS_OF,
    FEATURE_VIEWS,
    features_as_of,
    historical_features,
    materialize_online,
    online_features,
    open_store,
    publish,
    tables_as_of,
    write_offline,
    written_moments,
)
from recs_assets.features import run_sql
from recs_assets.layout import HomeLayout

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
WEIGHTS = {"w_view": 1.0, "w_add_to_cart": 2.0, "w_purchase": 4.0, "w_rating": 3.0, "w_play": 2.0}


def day(n: float) -> dt.datetime:
    return T0 + dt.timedelta(days=n)


EARLY, LATE = day(2), day(10)


def _frame(rows, schema):
    return pl.DataFrame({name: [row.get(name) for row in rows] for name in schema}, schema=schema)


def shop_tables() -> dict[str, pl.DataFrame]:
    events = _frame(
        [
            {"event_id": "e1", "user_id": "u1", "item_id": "i1", "event_type": "view", "event_at": day(1), "session_id": "s1"},
            {"event_id": "e2", "user_id": "u1", "item_id": "i2", "event_type": "purchase", "event_at": day(5), "session_id": "s2"},
        ],
        contract.EVENTS_SCHEMA,
    )
    items = _frame(
        [
            {"item_id": "i1", "category": "rpg", "price": 10.0, "title": "Sword", "is_active": True, "listed_at": day(-3)},
            {"item_id": "i2", "category": "indie", "price": 30.0, "title": "Lamp", "is_active": True, "listed_at": day(-3)},
            {"item_id": "i3", "category": "rpg", "price": 20.0, "title": "Shield", "is_active": True, "listed_at": day(4)},
        ],
        contract.ITEMS_SCHEMA,
    )
    users = _frame([{"user_id": "u1", "signup_at": day(0)}, {"user_id": "u2", "segment": "new"}], contract.USERS_SCHEMA)
    return {"events": events, "items": items, "users": users}


def sql_at(name: str, cutoff: dt.datetime) -> pl.DataFrame:
    return run_sql(name, shop_tables(), {**WEIGHTS, "cutoff": cutoff})


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store with every view written as of day 2 and day 10, and day 10 materialised online."""
    layout = HomeLayout(tmp_path_factory.mktemp("home"))
    store = open_store(layout)
    for moment in (EARLY, LATE):
        for name in FEATURE_VIEWS:
            write_offline(layout, name, sql_at(name, moment), moment)
    materialize_online(store, LATE)
    return store


def keys_of(name: str, table: pl.DataFrame) -> pl.DataFrame:
    return table.select(FEATURE_VIEWS[name].keys)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FEATURE_VIEWS))
def test_online_features_equal_the_point_in_time_features_and_the_sql_at_that_moment(store, name):
    expected = sql_at(name, LATE)
    assert expected.height > 0
    online = online_features(store, name, keys_of(name, expected))
    offline = features_as_of(store, name, keys_of(name, expected), LATE)
    assert_frame_equal(offline, expected)
    assert_frame_equal(online, expected)


@pytest.mark.slow
def test_the_known_answers_at_both_moments(store):
    # By hand: by day 2 u1 had one view (n_events 1, price level 10); by day 10 a view and a purchase
    # (n_events 2, monetary 30, price level (10 + 30) / 2 = 20).
    at = pl.DataFrame({"user_id": ["u1", "u1"], AS_OF: [EARLY, LATE]})
    found = historical_features(store, "user_features", at, ["n_events", "monetary", "price_level"])
    assert found.select("n_events", "monetary", "price_level").rows() == [(1, 0.0, 10.0), (2, 30.0, 20.0)]


@pytest.mark.slow
def test_a_point_in_time_join_never_returns_a_row_from_after_its_moment(store):
    asked = pl.DataFrame(
        {
            "user_id": ["u1", "u1", "u1", "u1"],
            "category": ["rpg", "rpg", "rpg", "indie"],
            AS_OF: [day(1), day(6), LATE, day(6)],
        }
    )
    found = historical_features(store, "user_category_affinity", asked, ["share", "category_rank"])
    # Before day 2 nothing was written: nulls. Between the versions (day 6): the day-2 one (rpg was u1's
    # only category: share 1), not the day-10 one (share 1 / (1 + 4) = 0.2, rank 2). The indie purchase
    # (day 5) first appears in the day-10 table, so on day 6 the store does not know it yet, though it happened.
    assert found.select("share", "category_rank").rows() == [(None, None), (1.0, 1), (0.2, 2), (None, None)]
    assert found["user_id"].to_list() == asked["user_id"].to_list()  # the rows asked, in order
    assert found[AS_OF].to_list() == asked[AS_OF].to_list()


@pytest.mark.slow
def test_items_listed_between_the_versions_are_unknown_before(store):
    at = pl.DataFrame({"item_id": ["i3", "i3"], AS_OF: [day(3), LATE]})
    found = historical_features(store, "item_features", at, ["is_listed", "listed_at"])
    # Day 3 reads the day-2 table, where i3 (listed day 4) is not listed yet; day 10 knows it listed.
    assert found["is_listed"].to_list() == [False, True]
    assert found["listed_at"].to_list() == [day(4), day(4)]


@pytest.mark.slow
def test_an_unknown_id_gets_nulls_online_and_is_left_out_as_of(store):
    online = online_features(store, "user_features", [{"user_id": "nobody"}, {"user_id": "u1"}], ["n_events", "segment"])
    assert online.rows() == [("nobody", None, None), ("u1", 2, None)]
    # Feast's file store alone fails on an id its history never held; here it gets nulls, in place.
    asked = pl.DataFrame({"user_id": ["nobody", "u1"], AS_OF: [LATE, LATE]})
    assert historical_features(store, "user_features", asked, ["n_events"]).rows() == [("nobody", LATE, None), ("u1", LATE, 2)]
    table = features_as_of(store, "user_features", pl.DataFrame({"user_id": ["nobody", "u2"]}), LATE)
    assert table["user_id"].to_list() == ["u2"]
    assert table["segment"].to_list() == ["new"]
    with pytest.raises(KeyError, match="no feature"):
        online_features(store, "user_features", [{"user_id": "u1"}], ["no_such_feature"])
    with pytest.raises(ValueError, match="key column"):
        online_features(store, "user_category_affinity", [{"user_id": "u1"}])


@pytest.mark.slow
def test_materialising_a_moment_never_written_is_refused(store):
    with pytest.raises(FileNotFoundError, match="nothing written as of"):
        materialize_online(store, day(7))


@pytest.mark.slow
def test_empty_tables_are_stored_and_read_back_empty(tmp_path):
    # A source without categories (Steam) has no user x category rows: the store still holds the moment.
    layout = HomeLayout(tmp_path)
    empty = {name: pl.DataFrame(schema=dict(view.schema)) for name, view in FEATURE_VIEWS.items()}
    summary = publish(layout, empty, LATE)
    assert summary["rows"].to_list() == [0, 0, 0]
    back = tables_as_of(layout, LATE)
    assert all(back[name].is_empty() and back[name].schema == empty[name].schema for name in FEATURE_VIEWS)
    with pytest.raises(FileNotFoundError, match="no user_features table written at or before"):
        tables_as_of(layout, EARLY)


# --- the history's writer: no Feast needed ------------------------------------------------------------


def test_writing_a_moment_again_replaces_it(tmp_path):
    layout = HomeLayout(tmp_path)
    first = write_offline(layout, "user_features", sql_at("user_features", EARLY), EARLY)
    again = write_offline(layout, "user_features", sql_at("user_features", LATE), EARLY)
    assert first == again
    assert written_moments(layout, "user_features") == [EARLY]
    stored = pl.read_parquet(first)
    assert stored["n_events"].to_list() == [2, 0]  # the second table's u1, not the first's
    assert stored[AS_OF].unique().to_list() == [EARLY]


def test_a_table_unlike_its_view_is_refused_with_the_names(tmp_path):
    layout = HomeLayout(tmp_path)
    table = sql_at("user_features", LATE)
    with pytest.raises(ValueError, match=r"missing column\(s\) \['country'\], unknown column\(s\) \['extra'\]"):
        write_offline(layout, "user_features", table.drop("country").with_columns(pl.lit(1).alias("extra")), LATE)
    with pytest.raises(ValueError, match="more than one row per"):
        write_offline(layout, "user_features", pl.concat([table, table]), LATE)
    with pytest.raises(ValueError, match="without a key"):
        write_offline(layout, "user_features", table.with_columns(pl.lit(None, dtype=pl.String).alias("user_id")), LATE)
    with pytest.raises(ValueError, match="time zone"):
        write_offline(layout, "user_features", table, LATE.replace(tzinfo=None))
    with pytest.raises(KeyError, match="no feature view"):
        write_offline(layout, "sessions", table, LATE)
    assert list(layout.offline_store.rglob("*.parquet")) == []  # nothing half-written was left behind


def test_importing_the_package_does_not_import_feast():
    code = "import sys, recs_assets.feature_store; assert 'feast' not in sys.modules, 'feast imported eagerly'"
    subprocess.run([sys.executable, "-c", code], check=True)
