"""Reading raw values into the contract's types: every unreadable value is named, never silently nulled."""

from datetime import UTC, datetime

import polars as pl
import pytest

from recs_assets.contract import ITEMS_SCHEMA, USERS_SCHEMA
from recs_assets.validation.casting import cast_or_raise, cast_to_contract


def test_timestamps_in_the_usual_iso_forms_become_utc():
    df = pl.DataFrame({"item_id": ["a"] * 5, "listed_at": [
        "2026-09-01T10:00:00Z", "2026-09-01 10:00:00", "2026-09-01T12:00:00+02:00", "2026-09-01T10:00:00.000", "2026-09-01",
    ]})
    typed, errors = cast_to_contract(df, ITEMS_SCHEMA)
    assert errors.null_count() == 5
    assert typed["listed_at"].to_list()[:4] == [datetime(2026, 9, 1, 10, tzinfo=UTC)] * 4
    assert typed["listed_at"][4] == datetime(2026, 9, 1, tzinfo=UTC)


def test_each_unreadable_value_is_named_and_blank_text_is_just_missing():
    df = pl.DataFrame({"item_id": ["a", "b", "c"], "price": ["1.5", "abc", " "], "is_active": ["true", "maybe", "0"]})
    typed, errors = cast_to_contract(df, ITEMS_SCHEMA)
    assert typed["price"].to_list() == [1.5, None, None]
    assert typed["is_active"].to_list() == [True, None, False]
    assert errors.to_list() == [
        None,
        "price: 'abc' is not a valid number; is_active: 'maybe' is not a valid boolean (true/false)",
        None,
    ]


def test_absent_optional_columns_become_typed_nulls():
    typed, _ = cast_to_contract(pl.DataFrame({"user_id": ["u1"]}), USERS_SCHEMA)
    assert typed.schema == pl.Schema(USERS_SCHEMA)
    assert typed["signup_at"].to_list() == [None]


def test_naive_and_foreign_zone_datetimes_are_converted_to_utc():
    df = pl.DataFrame({"user_id": ["u1", "u2"], "signup_at": [datetime(2026, 1, 1, 12), datetime(2026, 1, 1, 12)]})
    df = df.with_columns(pl.col("signup_at").dt.replace_time_zone("Europe/Paris"))
    typed, errors = cast_to_contract(df, USERS_SCHEMA)
    assert errors.null_count() == 2
    assert typed["signup_at"][0] == datetime(2026, 1, 1, 11, tzinfo=UTC)


def test_a_dimension_table_with_bad_values_is_rejected_naming_rows_and_values():
    df = pl.DataFrame({"item_id": ["a", "b"], "price": ["3", "free"], "is_active": ["true", "true"]})
    with pytest.raises(ValueError, match=r"items\.csv: 1 row\(s\).*row 2: price: 'free' is not a valid number"):
        cast_or_raise(df, ITEMS_SCHEMA, "items.csv")


def test_epoch_seconds_milliseconds_and_offsets_become_utc():
    noon = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    values = {
        "1714566600": noon,
        "1714566600.25": noon.replace(microsecond=250_000),
        "1714566600000": noon,
        "2024-05-01T14:30:00+02:00": noon,
        "2024-05-01T14:30:00+0200": noon,
        "2024-05-01T14:30:00+02": noon,
        "2024-05-01 07:30:00-05:00": noon,
        "2024-05-01T12:30Z": noon,
        "2024-05-01 12:30:00 UTC": noon,
    }
    df = pl.DataFrame({"user_id": ["u"] * len(values), "signup_at": list(values)})
    typed, errors = cast_to_contract(df, USERS_SCHEMA)
    assert errors.null_count() == len(values)
    assert typed["signup_at"].to_list() == list(values.values())


@pytest.mark.parametrize("value", ["20240501", "12345", "-5", "2024-05-01-02", "171456660O"])
def test_numbers_that_are_not_plausible_epoch_times_are_named_not_misread(value):
    typed, errors = cast_to_contract(pl.DataFrame({"user_id": ["u"], "signup_at": [value]}), USERS_SCHEMA)
    assert typed["signup_at"].to_list() == [None]
    assert errors.to_list() == [f"signup_at: '{value}' is not a valid timestamp (ISO 8601, or seconds since 1970)"]


def test_numeric_timestamp_columns_are_seconds_or_milliseconds_since_1970():
    df = pl.DataFrame({"user_id": ["a", "b", "c"], "signup_at": [1714566600, 1714566600000, 10**16]})
    typed, errors = cast_to_contract(df, USERS_SCHEMA)
    noon = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    assert typed["signup_at"].to_list() == [noon, noon, None]
    assert errors.to_list()[:2] == [None, None] and "10000000000000000" in errors[2]


def test_a_dimension_table_from_a_file_names_the_files_lines():
    df = pl.DataFrame({"item_id": ["a", "b"], "price": ["3", "free"], "_line": [1, 2]})
    with pytest.raises(ValueError, match=r"items\.csv: 1 row\(s\).*line 3: price: 'free'"):
        cast_or_raise(df, ITEMS_SCHEMA, "items.csv", line_offset=1)
