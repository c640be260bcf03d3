"""Staging on hand-made batches: each kind of bad row on its own, then all mixed; counts always reconcile."""

from datetime import UTC, datetime

import polars as pl
import pytest

from recs_assets.contract import ANONYMOUS_USER_PREFIX, EVENTS_SCHEMA, RAW_PROVENANCE_SCHEMA
from recs_assets.validation import quarantine
from recs_assets.validation.quarantine import (
    distinct_rows,
    first_copies,
    ids_landed_nowhere,
    invalid_share,
    key_anonymous_shoppers,
    reconcile,
    split_events,
)
from recs_assets.validation.schemas import events_schema

NOW = datetime(2026, 11, 1, tzinfo=UTC)
GOOD = {
    "event_id": "e1",
    "event_at": "2026-09-01T10:00:00Z",
    "user_id": "u1",
    "session_id": "s1",
    "item_id": "i1",
    "event_type": "view",
    "query": None,
    "price": "9.99",
    "value": None,
    "surface": "home",
    "position": "3",
    "propensity": "0.2",
    "variant": "control",
}


def raw_batch(*overrides: dict) -> pl.DataFrame:
    """Raw rows as a CSV reader gives them (all text), each a good row with some fields changed."""
    rows = []
    for n, change in enumerate(overrides, start=1):
        rows.append({**GOOD, "event_id": f"e{n}", **change, "_source": "test", "_line": n, "_parse_error": None, "_raw_line": None})
    schema = {**{c: pl.String for c in EVENTS_SCHEMA}, **RAW_PROVENANCE_SCHEMA}
    return pl.DataFrame(rows, schema=schema)


def schema(**kwargs):
    defaults = dict(item_ids=pl.Series(["i1", "i2"]), user_ids=pl.Series(["u1", "u2"]), latest_event_at=NOW)
    return events_schema(**{**defaults, **kwargs})


def reasons(raw: pl.DataFrame, **kwargs) -> list[str]:
    split = split_events(raw, schema(**kwargs))
    assert split.raw_rows == raw.height
    return split.quarantine["_reason"].to_list()


def test_a_good_batch_is_typed_and_fully_clean():
    split = split_events(raw_batch({}, {"item_id": "i2", "event_type": "purchase"}), schema())
    assert split.quarantine.height == 0 and split.duplicates == 0
    assert split.clean.schema == pl.Schema(EVENTS_SCHEMA)
    assert split.clean["price"].to_list() == [9.99, 9.99]
    assert split.clean["event_at"][0] == datetime(2026, 9, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"user_id": None, "session_id": None}, "user_id and session_id are both missing"),
        ({"user_id": "anonymous:s2"}, "does not match the event's session_id"),
        ({"event_id": None}, "event_id is missing"),
        ({"event_type": "teleport"}, "event_type not one of"),
        ({"price": "-5"}, "price is negative ('-5.0')"),
        ({"price": "abc"}, "price: 'abc' is not a valid number"),
        ({"price": "nan"}, "price: 'nan' is not a valid number"),
        ({"event_at": "yesterday-ish"}, "event_at: 'yesterday-ish' is not a valid timestamp"),
        ({"event_at": "2099-01-01T00:00:00Z"}, "event_at in the future"),
        ({"item_id": "i404"}, "item_id not found in items ('i404')"),
        ({"user_id": "u404"}, "user_id not found in users ('u404')"),
        ({"item_id": None}, "item_id is missing for an item event"),
        ({"position": "0"}, "position below 1"),
        ({"propensity": "1.5"}, "propensity outside (0, 1]"),
        ({"event_type": "rating", "value": None}, "rating value missing"),
    ],
)
def test_each_kind_of_bad_row_is_quarantined_with_a_reason_naming_it(change, expected):
    got = reasons(raw_batch({}, change))
    assert len(got) == 1
    assert expected in got[0]


def test_a_search_needs_no_item():
    split = split_events(raw_batch({"event_type": "search", "item_id": None, "query": "rpg"}), schema())
    assert split.clean.height == 1


def test_exact_duplicates_are_counted_not_quarantined():
    raw = raw_batch({}, {})
    raw = pl.concat([raw, raw.head(1), raw.head(1)])
    split = split_events(raw, schema())
    assert (split.clean.height, split.quarantine.height, split.duplicates) == (2, 0, 2)


def test_first_copies_marks_later_exact_copies_including_rows_with_nulls():
    raw = raw_batch({}, {"query": None, "price": None}, {})
    raw = pl.concat([raw, raw[1], raw[0], raw[1]])
    assert first_copies(raw).to_list() == [True, True, True, False, False, False]
    assert first_copies(raw.head(0)).to_list() == []


def test_distinct_rows_counts_first_copies_in_a_frame_and_in_a_lazy_scan():
    raw = raw_batch({}, {"query": None, "price": None}, {})
    raw = pl.concat([raw, raw[1], raw[0], raw[1]])
    assert distinct_rows(raw) == distinct_rows(raw.lazy()) == 3 == first_copies(raw).sum()
    assert distinct_rows(raw.head(0)) == distinct_rows(raw.head(0).lazy()) == 0
    assert distinct_rows(raw.head(3).lazy()) == 3  # nothing shared: no row is read back


def test_distinct_rows_compares_rows_whose_hashes_collide_value_by_value(monkeypatch):
    # Every row gets the same hash: trusting it would count one distinct row.
    monkeypatch.setattr(quarantine, "_row_hash", lambda columns: pl.col(columns[0]).is_null().cast(pl.UInt64) * 0 + 7)
    raw = raw_batch({}, {"item_id": "i2"}, {"user_id": "u2"})
    raw = pl.concat([raw, raw[2], raw[0]])
    assert distinct_rows(raw.lazy()) == 3
    split = split_events(raw, schema())
    assert reconcile(raw.lazy(), split.clean, split.quarantine).duplicate_rows == 2 == split.duplicates


def test_ids_landed_nowhere_are_exactly_the_raw_ids_missing_from_both_tables():
    raw = pl.Series(["e3", "e1", None, "e2", "e9", "e9", "e0", "e10"])
    landed = pl.Series(["e2", "e1", None, "e10"])
    assert ids_landed_nowhere(raw, landed) == ["e0", "e3", "e9"]
    assert ids_landed_nowhere(raw, landed, limit=2) == ["e0", "e3"]
    assert ids_landed_nowhere(raw, landed.head(0)) == ["e0", "e1", "e10", "e2", "e3", "e9"]
    assert ids_landed_nowhere(raw, raw) == [] and ids_landed_nowhere(raw.head(0), landed) == []
    # Ids past either end of the sorted landed ids, and typed ids, are found too.
    assert ids_landed_nowhere(pl.Series(["a", "z", "e2"]), landed) == ["a", "z"]
    assert ids_landed_nowhere(pl.Series([3, 1]), pl.Series(["1"])) == ["3"]


def test_rows_whose_hashes_collide_are_still_compared_value_by_value(monkeypatch):
    # Every row gets the same hash: trusting it would drop all but the first row as duplicates.
    monkeypatch.setattr(pl.DataFrame, "hash_rows", lambda self, seed=0: pl.Series([7] * self.height, dtype=pl.UInt64))
    raw = raw_batch({}, {"item_id": "i2"}, {"user_id": "u2"})
    raw = pl.concat([raw, raw[2]])
    assert first_copies(raw).to_list() == [True, True, True, False]
    split = split_events(raw, schema())
    assert (split.clean.height, split.duplicates) == (3, 1)
    assert reconcile(raw, split.clean, split.quarantine).balanced


def test_a_reused_event_id_with_other_content_keeps_the_first_and_quarantines_the_rest():
    raw = raw_batch({"event_id": "dup", "price": "1"}, {"event_id": "dup", "price": "2"})
    split = split_events(raw, schema())
    assert split.clean["price"].to_list() == [1.0]
    assert split.quarantine["_reason"].to_list() == ["event_id 'dup' already used by an earlier, different event"]
    assert split.quarantine["_line"].to_list() == [2]


def test_quarantined_rows_keep_their_values_exactly_as_they_came():
    split = split_events(raw_batch({"price": " abc ", "event_at": "2099-01-01T00:00:00Z"}), schema())
    row = split.quarantine.row(0, named=True)
    assert row["price"] == " abc " and row["event_at"] == "2099-01-01T00:00:00Z"
    assert row["_line"] == 1 and row["_source"] == "test"


def test_an_unparseable_line_is_quarantined_with_its_text():
    raw = raw_batch({}).with_columns(
        pl.lit("line 1: expected 13 columns, found 4").alias("_parse_error"), pl.lit("e1,2026").alias("_raw_line")
    )
    split = split_events(raw, schema())
    assert split.quarantine["_raw_line"].to_list() == ["e1,2026"]
    assert split.quarantine["_reason"][0].startswith("line 1: expected 13 columns")


def test_a_row_breaking_several_rules_lists_them_all():
    (reason,) = reasons(raw_batch({"price": "-1", "item_id": "i404", "event_type": "view"}))
    assert "price is negative" in reason and "item_id not found in items" in reason


def test_timestamps_are_optional_only_for_sources_without_time():
    raw = raw_batch({"event_at": None})
    assert reasons(raw) == ["event_at is missing"]
    assert reasons(raw, require_timestamps=False) == []


def test_a_mixed_batch_reconciles_and_loses_nothing():
    raw = raw_batch(
        {},
        {"user_id": None, "session_id": None},
        {"event_type": "teleport"},
        {"price": "-5"},
        {"price": "abc"},
        {"event_at": "not a time"},
        {"event_at": "2099-01-01T00:00:00Z"},
        {"item_id": "i404"},
        {"event_id": "e1", "price": "1"},  # reuses e1 with other content
        {"event_type": "purchase", "item_id": "i2"},
    )
    raw = pl.concat([raw, raw.slice(9, 1)])  # an exact duplicate of the last row
    split = split_events(raw, schema())
    assert (split.clean.height, split.quarantine.height, split.duplicates) == (2, 8, 1)
    r = reconcile(raw, split.clean, split.quarantine)
    assert r.balanced and r.duplicate_rows == 1 and r.lost_event_ids == []
    assert reconcile(raw.lazy(), split.clean.select("event_id"), split.quarantine.select("event_id")) == r
    assert invalid_share(split.clean.height, split.quarantine.height) == pytest.approx(0.8)


def test_reconcile_notices_a_lost_row():
    raw = raw_batch({}, {"item_id": "i2"}, {"price": "-1"})
    split = split_events(raw, schema())
    r = reconcile(raw, split.clean.head(1), split.quarantine)
    assert not r.balanced
    assert r.lost_event_ids == ["e2"]


def test_typed_sources_are_staged_without_going_through_text():
    typed = split_events(raw_batch({}), schema()).clean
    raw = typed.with_columns(
        pl.lit("typed").alias("_source"), pl.lit(1, dtype=pl.Int64).alias("_line"),
        pl.lit(None, dtype=pl.String).alias("_parse_error"), pl.lit(None, dtype=pl.String).alias("_raw_line"),
    )
    split = split_events(raw, schema())
    assert split.clean.equals(typed)


def test_an_empty_batch_is_fine_and_has_no_invalid_share():
    split = split_events(raw_batch(), schema())
    assert (split.clean.height, split.quarantine.height, split.duplicates) == (0, 0, 0)
    assert invalid_share(0, 0) == 0.0


def test_an_event_with_a_session_but_no_user_belongs_to_an_anonymous_shopper():
    raw = raw_batch({"user_id": None, "session_id": "s7"}, {"user_id": "   ", "session_id": "s8"}, {})
    split = split_events(raw, schema())  # "anonymous:s7" is in no users table, and need not be
    assert split.quarantine.height == 0
    assert split.clean["user_id"].to_list() == [ANONYMOUS_USER_PREFIX + "s7", ANONYMOUS_USER_PREFIX + "s8", "u1"]


def test_an_anonymous_key_that_matches_its_session_is_kept_as_it_is():
    split = split_events(raw_batch({"user_id": ANONYMOUS_USER_PREFIX + "s1"}), schema())
    assert split.clean["user_id"].to_list() == [ANONYMOUS_USER_PREFIX + "s1"]


def test_keying_anonymous_shoppers_leaves_known_users_and_blank_sessions_alone():
    events = pl.DataFrame(
        {"user_id": ["u1", None, None, ""], "session_id": ["s1", "s2", " ", None]}, schema={"user_id": pl.String, "session_id": pl.String}
    )
    assert key_anonymous_shoppers(events)["user_id"].to_list() == ["u1", ANONYMOUS_USER_PREFIX + "s2", None, None]


def test_the_schema_refuses_a_clean_table_with_a_user_missing():
    # The same schema guards the written table: a null user there is a staging bug, not data.
    clean = split_events(raw_batch({}), schema()).clean.with_columns(pl.lit(None, dtype=pl.String).alias("user_id"))
    with pytest.raises(Exception, match="user_id and session_id are both missing"):
        schema().validate(clean, lazy=True)
