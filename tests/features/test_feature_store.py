"""Feature SQL (sql/*.sql) and its runner: hand-made data with known answers, point-in-time safety, grain.

Every number asserted here was worked out by hand from the rows written in the test.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from tests.conftest import datasets_dir
from recs_assets import contract
from recs_assets.features import SQL_DIR, SqlParameterError, available_sql, run_sql
from recs_assets.features.sql_runner import columns_named, required_parameters, required_tables
from recs_assets.sources.simulator import SimulatorConfig, simulate

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

WEIGHTS = {"w_view": 1.0, "w_add_to_cart": 2.0, "w_purchase": 4.0, "w_rating": 3.0, "w_play": 2.0}
PARAMS = {**WEIGHTS, "half_life_days": 10.0}

# The key of every feature table; a new SQL file must be added here, so its grain gets tested.
KEYS: dict[str, list[str]] = {
    "user_item_interactions": ["user_id", "item_id"],
    "user_features": ["user_id"],
    "user_category_affinity": ["user_id", "category"],
    "item_features": ["item_id"],
    "session_sequences": ["session_id"],
    "user_sequences": ["user_id"],
}


def at(days: float, seconds: float = 0) -> dt.datetime:
    return T0 + dt.timedelta(days=days, seconds=seconds)


def _frame(rows: list[dict], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame({name: [row.get(name) for row in rows] for name in schema}, schema=schema)


def events_frame(rows: list[dict]) -> pl.DataFrame:
    rows = [{"event_id": f"e{n:03d}", **row} for n, row in enumerate(rows, start=1)]
    return _frame(rows, contract.EVENTS_SCHEMA)


def items_frame(rows: list[dict]) -> pl.DataFrame:
    return _frame(rows, contract.ITEMS_SCHEMA)


def users_frame(rows: list[dict]) -> pl.DataFrame:
    return _frame(rows, contract.USERS_SCHEMA)


def run(name: str, events: pl.DataFrame, items: pl.DataFrame, users: pl.DataFrame, cutoff, **params):
    tables = {"events": events, "items": items, "users": users}
    return run_sql(name, tables, {**PARAMS, "cutoff": cutoff, **params})


def row_of(df: pl.DataFrame, **key) -> dict:
    match = df.filter(pl.all_horizontal(pl.col(name) == value for name, value in key.items()))
    assert match.height == 1, f"expected one row for {key}, got {match.height}"
    return match.row(0, named=True)


# --- a small shop, used by several tests ------------------------------------------------------------
# cutoff = day 10. u1: three sessions on days 1 and 3, one purchase after the cutoff; u2: one view on
# day 8; u3 signs up after the cutoff and never acts.
SHOP_CUTOFF = at(10)


@pytest.fixture
def shop() -> dict[str, pl.DataFrame]:
    items = items_frame(
        [
            {"item_id": "i1", "category": "rpg", "price": 10.0, "is_active": True},
            {"item_id": "i2", "category": "rpg", "price": 30.0, "is_active": True},
            {"item_id": "i3", "category": "indie", "price": 20.0, "is_active": True},
        ]
    )
    users = users_frame(
        [
            {"user_id": "u1", "signup_at": at(-10), "segment": "loyal", "country": "FR"},
            {"user_id": "u2", "signup_at": at(5), "segment": "new", "country": "DE"},
            {"user_id": "u3", "signup_at": at(30), "segment": "new", "country": "US"},
        ]
    )
    d1, d3 = at(1), at(3)
    events = events_frame(
        [
            {"event_at": d1, "user_id": "u1", "session_id": "s1", "item_id": "i1", "event_type": "impression"},
            {"event_at": d1 + dt.timedelta(seconds=60), "user_id": "u1", "session_id": "s1", "item_id": "i1", "event_type": "view"},
            {"event_at": d1 + dt.timedelta(seconds=120), "user_id": "u1", "session_id": "s1", "item_id": "i1", "event_type": "add_to_cart"},
            {"event_at": d1 + dt.timedelta(seconds=180), "user_id": "u1", "session_id": "s1", "item_id": "i1", "event_type": "purchase", "price": 12.0},
            {"event_at": d3, "user_id": "u1", "session_id": "s2", "event_type": "search", "query": "indie"},
            {"event_at": d3 + dt.timedelta(seconds=30), "user_id": "u1", "session_id": "s2", "item_id": "i3", "event_type": "view"},
            {"event_at": d3 + dt.timedelta(hours=5), "user_id": "u1", "session_id": "s3", "item_id": "i2", "event_type": "view"},
            {"event_at": at(11), "user_id": "u1", "session_id": "s5", "item_id": "i2", "event_type": "purchase", "price": 30.0},
            {"event_at": at(8), "user_id": "u2", "session_id": "s4", "item_id": "i3", "event_type": "view"},
        ]
    )
    return {"events": events, "items": items, "users": users}


# --- the runner ------------------------------------------------------------------------------------
def test_every_sql_file_declares_its_key_in_this_test():
    assert set(available_sql()) == set(KEYS)


def test_the_same_events_give_the_same_features_bit_for_bit():
    # Floats added in a different order differ in their last bits: with two DuckDB threads strengths and
    # price levels did, on every run, so models fitted on them could not be replayed exactly.
    shop = simulate(SimulatorConfig(n_users=2_000, n_items=500, n_days=14, seed=6))
    tables = {"events": shop.events, "items": shop.items, "users": shop.users}
    for name in available_sql():
        given = {k: v for k, v in tables.items() if k in required_tables((SQL_DIR / f"{name}.sql").read_text())}
        first = run_sql(name, given, {**PARAMS, "cutoff": None})
        assert first.height > 0, name
        for _ in range(3):
            assert run_sql(name, given, {**PARAMS, "cutoff": None}).equals(first), name


def test_runner_names_the_missing_parameters(shop):
    with pytest.raises(SqlParameterError, match=r"\$w_view.*\$half_life_days") as error:
        run_sql("user_item_interactions", shop, {"cutoff": None, "w_add_to_cart": 1.0})
    assert "$w_add_to_cart" not in str(error.value).split("given")[0]
    with pytest.raises(SqlParameterError, match=r"\$cutoff"):
        run_sql("user_features", shop, {})


def test_runner_lists_the_available_files_for_an_unknown_name(shop):
    with pytest.raises(FileNotFoundError, match="no_such_table.*available:.*user_features"):
        run_sql("no_such_table", shop)
    # A name is a file in sql/, never a path out of it.
    with pytest.raises(FileNotFoundError, match="available"):
        run_sql("../README", shop)


def test_runner_names_the_tables_it_was_given_when_one_is_missing(shop):
    with pytest.raises(ValueError, match=r"item_features.sql needs table\(s\) items .*given: events"):
        run_sql("item_features", {"events": shop["events"]}, {"cutoff": None})


def test_runner_accepts_extra_parameters_and_naive_cutoffs_as_utc(shop):
    aware = run_sql("user_features", shop, {"cutoff": SHOP_CUTOFF})
    naive = run_sql("user_features", shop, {"cutoff": SHOP_CUTOFF.replace(tzinfo=None), "unused": 1})
    assert_frame_equal(aware, naive)


def test_parameters_in_comments_and_strings_are_not_required():
    sql = "-- uses $in_comment\n/* $in_block */ select $real, '$in_string' as x, $real + $other"
    assert required_parameters(sql) == ["real", "other"]


def test_every_sql_file_follows_the_house_style():
    for path in sorted(SQL_DIR.glob("*.sql")):
        text = path.read_text()
        header = text.split("\nwith\n")[0]
        assert header.startswith(f"-- {path.stem}:"), path.name
        assert "events" in required_tables(text), f"{path.name} header lacks an '-- inputs:' line"
        for word in ("grain:", "key:", "parameters:", "$cutoff"):
            assert word in header, f"{path.name} header lacks {word!r}"
        assert "\nselect * from final\n" in text + "\n", path.name
        assert text == text.lower() or _only_comments_have_capitals(text), f"{path.name} is not lowercase"


def _only_comments_have_capitals(text: str) -> bool:
    code = "\n".join(line.split("--")[0] for line in text.splitlines())
    return code == code.lower()


def test_timestamps_come_back_as_utc_microseconds(shop):
    result = run("user_item_interactions", shop["events"], shop["items"], shop["users"], SHOP_CUTOFF)
    assert result.schema["first_event_at"] == pl.Datetime("us", "UTC")
    assert result.schema["user_id"] == pl.String()
    sessions = run("session_sequences", shop["events"], shop["items"], shop["users"], SHOP_CUTOFF)
    assert sessions.schema["started_at"] == pl.Datetime("us", "UTC")
    assert sessions.schema["item_ids"] == pl.List(pl.String())


# --- user_item_interactions -------------------------------------------------------------------------
STRENGTH_CUTOFF = at(20)


@pytest.fixture
def three_users() -> pl.DataFrame:
    # Ages at the cutoff (day 20) with a 10-day half-life: day 10 -> decay 0.5, day 0 -> 0.25.
    return events_frame(
        [
            {"event_at": at(10), "user_id": "u1", "item_id": "i1", "event_type": "view"},
            {"event_at": at(10), "user_id": "u1", "item_id": "i1", "event_type": "add_to_cart"},
            {"event_at": at(0), "user_id": "u1", "item_id": "i1", "event_type": "purchase"},
            {"event_at": at(15), "user_id": "u1", "item_id": "i2", "event_type": "impression"},
            {"event_at": at(15), "user_id": "u1", "event_type": "search", "query": "elves"},
            {"event_at": at(0), "user_id": "u2", "item_id": "i2", "event_type": "rating", "value": 4.0},
            {"event_at": at(10), "user_id": "u2", "item_id": "i2", "event_type": "rating", "value": 5.0},
            {"event_at": at(10), "user_id": "u3", "item_id": "i3", "event_type": "play", "value": math.e - 1},
            {"event_at": at(20), "user_id": "u3", "item_id": "i3", "event_type": "play", "value": math.e**2 - 1},
            {"event_at": at(25), "user_id": "u3", "item_id": "i1", "event_type": "view"},
        ]
    )


TOY_ITEMS = items_frame([{"item_id": f"i{n}", "category": "c", "is_active": True} for n in (1, 2, 3)])
TOY_USERS = users_frame([{"user_id": f"u{n}"} for n in (1, 2, 3)])


def _strengths(df: pl.DataFrame) -> dict[tuple[str, str], float]:
    return {(row["user_id"], row["item_id"]): row["strength"] for row in df.iter_rows(named=True)}


def test_strength_is_weight_times_decay_summed_per_pair(three_users):
    result = run("user_item_interactions", three_users, TOY_ITEMS, TOY_USERS, STRENGTH_CUTOFF)
    # u1/i1: view 1x0.5 + cart 2x0.5 + purchase 4x0.25; u2/i2: 3x(4/5)x0.25 + 3x(5/5)x0.5;
    # u3/i3: 2 x ln(1 + e - 1) x 0.5 (the play at the cutoff itself is not before it).
    # The impression, the search and the view after the cutoff carry nothing: no (u1, i2) or (u3, i1).
    assert _strengths(result) == pytest.approx({("u1", "i1"): 2.5, ("u2", "i2"): 2.1, ("u3", "i3"): 1.0})
    u1 = row_of(result, user_id="u1", item_id="i1")
    assert (u1["n_views"], u1["n_add_to_carts"], u1["n_purchases"]) == (1, 1, 1)
    assert (u1["first_event_at"], u1["last_event_at"]) == (at(0), at(10))
    assert u1["rating"] is None and u1["play_hours"] == 0
    assert row_of(result, user_id="u2", item_id="i2")["rating"] == 5.0  # the latest rating, not the first
    assert row_of(result, user_id="u3", item_id="i3")["play_hours"] == pytest.approx(math.e - 1)


def test_a_null_half_life_means_no_decay(three_users):
    result = run("user_item_interactions", three_users, TOY_ITEMS, TOY_USERS, STRENGTH_CUTOFF, half_life_days=None)
    assert _strengths(result) == pytest.approx({("u1", "i1"): 7.0, ("u2", "i2"): 5.4, ("u3", "i3"): 2.0})


def test_without_a_cutoff_every_event_counts_and_age_is_measured_at_the_latest_event(three_users):
    result = run("user_item_interactions", three_users, TOY_ITEMS, TOY_USERS, None)
    # Latest event: day 25. u3/i3: 2 x 1 x 0.5^1.5 + 2 x 2 x 0.5^0.5; u3/i1: the view on day 25, decay 1.
    strengths = _strengths(result)
    assert strengths[("u3", "i3")] == pytest.approx(2 * 0.5**1.5 + 4 * 0.5**0.5)
    assert strengths[("u3", "i1")] == pytest.approx(1.0)
    assert strengths[("u1", "i1")] == pytest.approx(1 * 0.5**1.5 + 2 * 0.5**1.5 + 4 * 0.5**2.5)


def test_pairs_whose_weights_are_zero_are_left_out(three_users):
    result = run("user_item_interactions", three_users, TOY_ITEMS, TOY_USERS, STRENGTH_CUTOFF, w_rating=0.0)
    assert ("u2", "i2") not in _strengths(result)


# --- user_features ----------------------------------------------------------------------------------
def test_user_features_by_hand(shop):
    result = run("user_features", shop["events"], shop["items"], shop["users"], SHOP_CUTOFF)
    assert result["user_id"].to_list() == ["u1", "u2", "u3"]
    u1 = row_of(result, user_id="u1")
    # Actions (no impression): view, cart, purchase, search, view, view. The purchase on day 11 is later.
    assert u1["n_events"] == 6
    assert (u1["n_sessions"], u1["n_active_days"], u1["n_interactions"]) == (3, 2, 5)
    assert (u1["n_views"], u1["n_add_to_carts"], u1["n_purchases"]) == (3, 1, 1)
    assert u1["recency_days"] == pytest.approx(10 - 3 - 5 / 24)
    assert u1["frequency"] == pytest.approx(5 / 2)
    assert u1["monetary"] == 12.0  # the price paid, not the list price
    assert u1["price_level"] == pytest.approx((10 + 10 + 12 + 20 + 30) / 5)
    assert (u1["top_category"], u1["top_category_share"]) == ("rpg", pytest.approx(4 / 5))
    assert u1["avg_session_events"] == pytest.approx(6 / 3)
    assert u1["avg_session_seconds"] == pytest.approx((180 + 30 + 0) / 3)
    assert u1["signup_age_days"] == pytest.approx(20.0)
    assert (u1["segment"], u1["country"]) == ("loyal", "FR")

    u2 = row_of(result, user_id="u2")
    assert (u2["n_events"], u2["recency_days"], u2["frequency"], u2["monetary"]) == (1, pytest.approx(2.0), 1.0, 0.0)
    assert (u2["top_category"], u2["top_category_share"], u2["signup_age_days"]) == ("indie", 1.0, pytest.approx(5.0))

    # A user with no activity: zero counts, unknown averages; signed up after the cutoff, so no age yet.
    u3 = row_of(result, user_id="u3")
    assert (u3["n_events"], u3["n_sessions"], u3["n_purchases"], u3["frequency"], u3["monetary"]) == (0, 0, 0, 0.0, 0.0)
    assert u3["recency_days"] is None and u3["price_level"] is None and u3["top_category"] is None
    assert u3["signup_age_days"] is None


# --- item_features ----------------------------------------------------------------------------------
def test_item_features_by_hand(shop):
    result = run("item_features", shop["events"], shop["items"], shop["users"], SHOP_CUTOFF)
    ranks = dict(zip(result["item_id"], result["popularity_rank"]))
    assert ranks == {"i3": 1, "i1": 2, "i2": 3}  # i3: two users; i1 beats i2 on purchases
    i1 = row_of(result, item_id="i1")
    assert (i1["n_users"], i1["n_views"], i1["n_add_to_carts"], i1["n_purchases"]) == (1, 1, 1, 1)
    assert (i1["view_to_cart_rate"], i1["cart_to_purchase_rate"], i1["view_to_purchase_rate"]) == (1.0, 1.0, 1.0)
    i2 = row_of(result, item_id="i2")  # bought only after the cutoff
    assert (i2["n_purchases"], i2["view_to_cart_rate"], i2["cart_to_purchase_rate"]) == (0, 0.0, None)
    assert (i2["price"], i2["category"]) == (30.0, "rpg")


@pytest.fixture
def listings() -> dict[str, pl.DataFrame]:
    items = items_frame(
        [
            {"item_id": "f_sold", "listed_at": at(0), "is_active": False, "category": "tops"},
            {"item_id": "f_open", "listed_at": at(0), "is_active": True, "category": "tops"},
            {"item_id": "f_new", "listed_at": at(8), "is_active": True, "category": "tops"},
            {"item_id": "f_gone", "listed_at": at(0), "is_active": False, "category": "tops"},
            {"item_id": "game", "is_active": True, "category": "rpg"},
        ]
    )
    events = events_frame(
        [
            {"event_at": at(5), "user_id": "u1", "item_id": "f_sold", "event_type": "purchase"},
            {"event_at": at(1), "user_id": "u1", "item_id": "game", "event_type": "purchase"},
            {"event_at": at(2), "user_id": "u2", "item_id": "game", "event_type": "purchase"},
            {"event_at": at(9), "user_id": "u2", "item_id": "f_new", "event_type": "view"},
        ]
    )
    return {"events": events, "items": items, "users": users_frame([{"user_id": "u1"}, {"user_id": "u2"}])}


def _availability(listings, cutoff) -> dict[str, bool]:
    result = run_sql("item_features", listings, {"cutoff": cutoff})
    return dict(zip(result["item_id"], result["is_available"]))


def test_a_sold_one_of_a_kind_listing_is_available_before_its_sale_and_not_after(listings):
    assert _availability(listings, at(3))["f_sold"] is True
    assert _availability(listings, at(5))["f_sold"] is True  # sold at the cutoff: still there at it
    assert _availability(listings, at(6))["f_sold"] is False
    assert _availability(listings, None)["f_sold"] is False


def test_availability_of_games_new_and_delisted_items(listings):
    early, late, now = (_availability(listings, cutoff) for cutoff in (at(3), at(9), None))
    assert early["game"] and late["game"] and now["game"]  # sold again and again, never gone
    assert (early["f_new"], late["f_new"], now["f_new"]) == (False, True, True)  # listed on day 8
    assert not (early["f_gone"] or late["f_gone"] or now["f_gone"])  # inactive and never sold: delisted
    assert early["f_open"] and now["f_open"]
    ages = run_sql("item_features", listings, {"cutoff": at(3)})
    assert row_of(ages, item_id="f_new")["listing_age_days"] is None
    assert row_of(ages, item_id="f_open")["listing_age_days"] == pytest.approx(3.0)


# --- user_category_affinity -------------------------------------------------------------------------
def test_category_affinity_shares_by_hand(shop):
    result = run("user_category_affinity", shop["events"], shop["items"], shop["users"], SHOP_CUTOFF)
    # u1: rpg = view i1 1 + cart 2 + purchase 4 + view i2 1 = 8, indie = view i3 1. u2: indie only.
    shares = {(row["user_id"], row["category"]): row["share"] for row in result.iter_rows(named=True)}
    assert shares == pytest.approx({("u1", "rpg"): 8 / 9, ("u1", "indie"): 1 / 9, ("u2", "indie"): 1.0})
    assert row_of(result, user_id="u1", category="rpg")["category_rank"] == 1


@pytest.mark.parametrize("preset", ["games", "fashion"])
def test_category_shares_sum_to_one_per_user(preset):
    m = _small_market(preset)
    result = run("user_category_affinity", m.events, m.items, m.users, None)
    sums = result.group_by("user_id").agg(pl.col("share").sum())
    assert sums.height > 50
    assert sums["share"].to_list() == pytest.approx([1.0] * sums.height)


# --- sequences --------------------------------------------------------------------------------------
def test_session_items_are_ordered_by_time_then_event_id():
    rows = [
        {"event_id": "e05", "event_at": at(1, 20), "item_id": "b", "event_type": "add_to_cart"},
        {"event_id": "e09", "event_at": at(1, 30), "item_id": "c", "event_type": "purchase"},
        {"event_id": "e01", "event_at": at(1, 0), "item_id": "a", "event_type": "impression"},
        {"event_id": "e04", "event_at": at(1, 20), "item_id": "a", "event_type": "view"},
        {"event_id": "e02", "event_at": at(1, 10), "item_id": "b", "event_type": "view"},
        {"event_id": "e03", "event_at": at(1, 15), "event_type": "search", "query": "c"},
        {"event_id": "e10", "event_at": at(2), "item_id": "d", "event_type": "view", "session_id": "s2"},
    ]
    events = _frame([{"user_id": "u1", "session_id": "s1", **row} for row in rows], contract.EVENTS_SCHEMA)
    sessions = run("session_sequences", events, TOY_ITEMS, TOY_USERS, None)
    s1 = row_of(sessions, session_id="s1")
    assert s1["item_ids"] == ["b", "a", "b", "c"]  # impression and search are not steps; e04 before e05
    assert s1["event_types"] == ["view", "view", "add_to_cart", "purchase"]
    assert (s1["n_events"], s1["started_at"], s1["ended_at"]) == (4, at(1, 10), at(1, 30))
    history = row_of(run("user_sequences", events, TOY_ITEMS, TOY_USERS, None), user_id="u1")
    assert history["item_ids"] == ["b", "a", "b", "c", "d"]
    assert (history["n_items"], history["last_item_id"]) == (5, "d")


def _day_boundary_events() -> pl.DataFrame:
    late, early_next = at(0, 23.5 * 3600), at(1, 1800)
    return events_frame(
        [
            {"event_at": late, "user_id": "u1", "item_id": "i1", "event_type": "rating", "value": 4.0},
            {"event_at": at(0, 3600), "user_id": "u1", "item_id": "i2", "event_type": "rating", "value": 2.0},
            {"event_at": early_next, "user_id": "u1", "item_id": "i3", "event_type": "rating", "value": 5.0},
            {"event_at": late, "user_id": "u2", "item_id": "i1", "event_type": "rating", "value": 3.0},
        ]
    )


PSEUDO_SESSIONS = {"u1:2026-01-01": ["i2", "i1"], "u1:2026-01-02": ["i3"], "u2:2026-01-01": ["i1"]}


def test_events_without_a_session_form_one_pseudo_session_per_user_per_utc_day():
    events = _day_boundary_events()
    sessions = run("session_sequences", events, TOY_ITEMS, TOY_USERS, None)
    assert {row["session_id"]: row["item_ids"] for row in sessions.iter_rows(named=True)} == PSEUDO_SESSIONS
    visits = run("user_features", events, TOY_ITEMS, TOY_USERS, None)
    assert dict(zip(visits["user_id"], visits["n_sessions"])) == {"u1": 2, "u2": 1, "u3": 0}
    assert dict(zip(visits["user_id"], visits["n_active_days"])) == {"u1": 2, "u2": 1, "u3": 0}


def test_days_are_utc_days_whatever_the_machines_time_zone(tmp_path):
    # DuckDB reads the machine's zone once per process, so the check runs in a fresh one, far from UTC.
    events_path = tmp_path / "events.parquet"
    _day_boundary_events().write_parquet(events_path)
    script = (
        "import polars as pl, json\n"
        "from recs_assets.features import run_sql\n"
        f"events = pl.read_parquet({str(events_path)!r})\n"
        "out = run_sql('session_sequences', {'events': events}, {'cutoff': None})\n"
        "print(json.dumps({'ids': dict(zip(out['session_id'], out['item_ids'].to_list())),"
        " 'zone': out.schema['started_at'].time_zone}))\n"
    )
    env = {**os.environ, "TZ": "Pacific/Kiritimati"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == {"ids": PSEUDO_SESSIONS, "zone": "UTC"}


# --- data without time (Steam) ----------------------------------------------------------------------
@pytest.fixture
def undated() -> dict[str, pl.DataFrame]:
    events = events_frame(
        [
            {"user_id": "u1", "item_id": "i1", "event_type": "purchase", "value": 1.0},
            {"user_id": "u1", "item_id": "i1", "event_type": "play", "value": math.e - 1},
            {"user_id": "u1", "item_id": "i2", "event_type": "purchase", "value": 1.0},
            {"user_id": "u2", "item_id": "i2", "event_type": "purchase", "value": 1.0},
        ]
    )
    items = items_frame([{"item_id": "i1", "is_active": True}, {"item_id": "i2", "is_active": True}])
    return {"events": events, "items": items, "users": users_frame([{"user_id": "u1"}, {"user_id": "u2"}])}


def test_undated_events_are_used_without_decay_or_recency(undated):
    interactions = run_sql("user_item_interactions", undated, {**PARAMS, "cutoff": None})
    # Half-life 10 days is given, but with no times there is nothing to decay: 4 + 2 x ln(e) = 6.
    assert _strengths(interactions) == pytest.approx({("u1", "i1"): 6.0, ("u1", "i2"): 4.0, ("u2", "i2"): 4.0})
    users = run_sql("user_features", undated, {"cutoff": None})
    u1 = row_of(users, user_id="u1")
    assert (u1["n_events"], u1["n_sessions"], u1["n_active_days"]) == (3, 1, 0)
    assert u1["recency_days"] is None and u1["frequency"] is None and u1["signup_age_days"] is None
    sessions = run_sql("session_sequences", undated, {"cutoff": None})
    assert sessions["session_id"].to_list() == ["u1:undated", "u2:undated"]
    assert row_of(sessions, session_id="u1:undated")["item_ids"] == ["i1", "i2"]  # by event_id: plays left out
    items = run_sql("item_features", undated, {"cutoff": None})
    assert items["is_available"].to_list() == [True, True]
    assert items["listing_age_days"].to_list() == [None, None]


def test_undated_events_are_not_used_at_a_cutoff(undated):
    # Nothing proves an undated event happened before a given moment, so none is used.
    interactions = run_sql("user_item_interactions", undated, {**PARAMS, "cutoff": at(0)})
    assert interactions.is_empty()
    assert run_sql("user_features", undated, {"cutoff": at(0)})["n_events"].to_list() == [0, 0]


# --- grain and point-in-time safety on simulated shops ----------------------------------------------
_MARKETS: dict[str, object] = {}


def _small_market(preset: str):
    if preset not in _MARKETS:
        _MARKETS[preset] = simulate(SimulatorConfig(preset=preset, n_users=250, n_items=150, n_days=8))
    return _MARKETS[preset]


@pytest.mark.parametrize("preset", ["games", "fashion"])
@pytest.mark.parametrize("name", sorted(KEYS))
def test_each_table_has_a_unique_non_null_key(name, preset):
    m = _small_market(preset)
    for cutoff in (None, dt.datetime.combine(dt.date(2026, 9, 5), dt.time(12), dt.UTC)):
        result = run(name, m.events, m.items, m.users, cutoff)
        assert result.height > 0
        key = KEYS[name]
        assert result.select(key).null_count().sum_horizontal().item() == 0
        assert not result.select(key).is_duplicated().any(), f"{name} key {key} is not unique"
        if name == "user_features":
            assert result.height == m.users.height
        if name == "item_features":
            assert result.height == m.items.height


def _catalogue_then(items: pl.DataFrame, events: pl.DataFrame, cutoff: dt.datetime) -> pl.DataFrame:
    """The catalogue as it looked at the cutoff: listings first sold at/after it were still active then."""
    first_sales = events.filter(pl.col("event_type") == "purchase").group_by("item_id").agg(pl.col("event_at").min())
    sold_later = first_sales.filter(pl.col("event_at") >= cutoff)
    return items.with_columns(
        pl.when(pl.col("item_id").is_in(sold_later["item_id"].implode()))
        .then(True)
        .otherwise(pl.col("is_active"))
        .alias("is_active")
    )


@pytest.mark.parametrize("preset", ["games", "fashion"])
def test_events_at_or_after_the_cutoff_change_no_feature(preset):
    m = _small_market(preset)
    cutoff = dt.datetime(2026, 9, 5, 12, tzinfo=dt.UTC)
    # New users and items that only appear after the cutoff are in the tables in both worlds.
    users = pl.concat([m.users, users_frame([{"user_id": "u_late", "signup_at": cutoff + dt.timedelta(days=1)}])])
    late_item = {"item_id": "x_late", "category": "late", "price": 99.0, "listed_at": cutoff, "is_active": True}
    items_now = pl.concat([m.items, items_frame([{**late_item, "is_active": False}])])
    some_user, some_item = m.events["user_id"][0], m.events["item_id"].drop_nulls()[0]
    extra = events_frame(
        [
            {"event_at": cutoff, "user_id": some_user, "item_id": some_item, "event_type": "purchase", "session_id": "s_at_cutoff"},
            {"event_at": cutoff, "user_id": "u_late", "item_id": "x_late", "event_type": "view"},
            {"event_at": cutoff + dt.timedelta(hours=1), "user_id": "u_late", "item_id": "x_late", "event_type": "purchase"},
            {"event_at": cutoff + dt.timedelta(days=2), "user_id": some_user, "item_id": "x_late", "event_type": "rating", "value": 5.0},
        ]
    ).with_columns(pl.concat_str(pl.lit("late_"), "event_id").alias("event_id"))
    before = m.events.filter(pl.col("event_at") < cutoff)
    everything = pl.concat([m.events, extra])
    assert everything.height > before.height + extra.height  # the simulator's own later events too
    items_then = _catalogue_then(items_now, everything, cutoff)
    for name, key in KEYS.items():
        past = run(name, before, items_then, users, cutoff)
        full = run(name, everything, items_now, users, cutoff)
        assert past.height > 0
        assert_frame_equal(past.sort(key), full.sort(key), check_exact=False, rel_tol=1e-9)


def test_the_point_in_time_check_can_fail():
    # The same comparison, with an event one microsecond before the cutoff, must see a difference.
    m = _small_market("games")
    cutoff = dt.datetime(2026, 9, 5, 12, tzinfo=dt.UTC)
    extra = events_frame(
        [{"event_at": cutoff - dt.timedelta(microseconds=1), "user_id": m.events["user_id"][0],
          "item_id": m.items["item_id"][0], "event_type": "purchase"}]
    ).with_columns(pl.lit("late_1").alias("event_id"))
    past = run("user_features", m.events, m.items, m.users, cutoff)
    full = run("user_features", pl.concat([m.events, extra]), m.items, m.users, cutoff)
    with pytest.raises(AssertionError):
        assert_frame_equal(past, full)


# --- real data, when it is beside the checkout ------------------------------------------------------
def _clean(raw: pl.DataFrame) -> pl.DataFrame:
    events = raw.filter(pl.col("_parse_error").is_null()).select(list(contract.EVENTS_SCHEMA))
    return events.unique("event_id", keep="first", maintain_order=True)


@pytest.mark.slow
@pytest.mark.parametrize("source", ["movielens", "steam"])
def test_every_sql_runs_on_the_real_datasets(source):
    from recs_assets.sources import movielens, steam

    module, folder = {"movielens": (movielens, "ml-100k"), "steam": (steam, "steam-200k")}[source]
    data_dir = datasets_dir() / folder
    if not data_dir.is_dir():
        pytest.skip(f"{data_dir} not found; set RECS_DATASETS_DIR to the folder holding {folder}/")
    events = _clean(module.load_raw_events(data_dir))
    items, users = module.load_items(data_dir), module.load_users(data_dir)
    for name, key in KEYS.items():
        result = run(name, events, items, users, None)
        assert not result.select(key).is_duplicated().any(), name
        if name != "user_category_affinity" or source == "movielens":  # Steam has no categories
            assert result.height > 0, name


def test_columns_named_finds_the_columns_a_query_names_in_code_not_in_comments_or_strings(tmp_path, monkeypatch):
    import recs_assets.features.sql_runner as runner

    (tmp_path / "probe.sql").write_text(
        "-- inputs: events. Mentions price and query only here.\n"
        "with e as (select events.* from events)\n"
        "select user_id, \"Item_ID\", count(*) filter (where event_type = 'value') as n /* session_id */\n"
        "from e group by all\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(runner, "SQL_DIR", tmp_path)
    columns = ["event_id", "user_id", "session_id", "item_id", "event_type", "query", "price", "value"]
    assert columns_named("probe", columns) == ["user_id", "item_id", "event_type"]
