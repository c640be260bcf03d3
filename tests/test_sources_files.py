"""A folder of the user's own CSV/Parquet files: values kept as written, bad lines kept, clear refusals."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from recs_assets import contract
from recs_assets.sources import files

HEADER = "event_id,event_at,user_id,event_type"
EVENTS_CSV = (
    "event_id,event_at,user_id,session_id,item_id,event_type,query,price,value,surface,position,propensity,variant\n"
    "e1,2024-05-01T10:00:00Z,u1,s1,i1,view,,9.99,,home,1,0.5,A\n"
    'e2,2024-05-01T10:01:00Z,u1,s1,,search,"red shoes, size 40",,,search,,,A\n'
    "e3,2024-05-02T11:00:00Z,u2,s2,i2,purchase,,19.5,1,cart,2,0.25,B\n"
)


def write(folder: Path, name: str, text: str | bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    # Bytes as given: newline translation would change what is being tested.
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def errors_by_line(events: pl.DataFrame) -> dict[int, tuple[str, str]]:
    bad = events.filter(pl.col("_parse_error").is_not_null())
    return {line: (error, raw) for line, error, raw in bad.select("_line", "_parse_error", "_raw_line").rows()}


# --- a clean folder ---------------------------------------------------------------------------------


def test_clean_csv_folder_round_trips(tmp_path: Path) -> None:
    write(tmp_path, "events.csv", EVENTS_CSV)
    write(tmp_path, "items.csv", "item_id,title,category,brand,price,condition,listed_at,is_active\n"
                                 'i1,"Shoe, red",shoes,Acme,9.99,new,2024-01-01T00:00:00Z,true\n'
                                 "i2,Bag,bags,,19.5,used,2024-01-02 12:00:00+02:00,0\n")
    write(tmp_path, "users.csv", "user_id,signup_at,country,segment\nu1,2023-12-31,FR,new\nu2,2023-06-01T08:30:00,,\n")

    events = files.load_raw_events(tmp_path)
    assert list(events.columns) == list(contract.EVENTS_SCHEMA) + list(contract.RAW_PROVENANCE_SCHEMA)
    assert events.select(list(contract.EVENTS_SCHEMA)).dtypes == [pl.String] * len(contract.EVENTS_SCHEMA)
    assert events.get_column("event_id").to_list() == ["e1", "e2", "e3"]
    assert events.get_column("query").to_list() == [None, "red shoes, size 40", None]
    assert events.get_column("price").to_list() == ["9.99", None, "19.5"]
    assert events.get_column("_line").to_list() == [1, 2, 3]
    assert events.get_column("_source").unique().to_list() == ["files:events.csv"]
    assert events.get_column("_parse_error").null_count() == 3

    items = files.load_items(tmp_path)
    assert items.schema == pl.Schema(contract.ITEMS_SCHEMA)
    assert items.rows() == [
        ("i1", "Shoe, red", "shoes", "Acme", 9.99, "new", datetime(2024, 1, 1, tzinfo=UTC), True),
        ("i2", "Bag", "bags", None, 19.5, "used", datetime(2024, 1, 2, 10, tzinfo=UTC), False),
    ]
    users = files.load_users(tmp_path)
    assert users.schema == pl.Schema(contract.USERS_SCHEMA)
    assert users.rows() == [
        ("u1", datetime(2023, 12, 31, tzinfo=UTC), "FR", "new"),
        ("u2", datetime(2023, 6, 1, 8, 30, tzinfo=UTC), None, None),  # no offset: taken as UTC
    ]
    assert files.event_date_range(tmp_path) is None  # one batch, never partitioned by day
    assert files.HAS_TIMESTAMPS is True


def test_parquet_events_are_read_as_typed_and_not_cast(tmp_path: Path) -> None:
    typed = pl.DataFrame(
        {
            "event_id": ["e1", "e2"],
            "event_at": [datetime(2024, 5, 1, 10), datetime(2024, 5, 3, 9)],  # naive, as many exports are
            "user_id": [7, 8],  # numbers, not strings: staging decides, the raw layer keeps them
            "event_type": ["view", "purchase"],
            "price": [1.5, None],
        }
    )
    typed.write_parquet(tmp_path / "events.parquet")
    events = files.load_raw_events(tmp_path)
    assert events.schema["event_at"] == pl.Datetime("us")
    assert events.schema["user_id"] == pl.Int64
    assert events.schema["session_id"] == pl.String  # absent optional column: null text
    assert events.get_column("session_id").null_count() == 2
    assert events.select(typed.columns).equals(typed)
    assert events.get_column("_line").to_list() == [1, 2]
    assert events.get_column("_source").unique().to_list() == ["files:events.parquet"]
    assert files.event_date_range(tmp_path) is None


def test_parquet_items_are_converted_to_contract_types(tmp_path: Path) -> None:
    pl.DataFrame(
        {"item_id": [1, 2], "price": [3, 4], "is_active": [1, 0], "listed_at": [date(2024, 1, 1), None]}
    ).write_parquet(tmp_path / "items.parquet")
    items = files.load_items(tmp_path)
    assert items.schema == pl.Schema(contract.ITEMS_SCHEMA)
    assert items.select("item_id", "price", "is_active", "listed_at").rows() == [
        ("1", 3.0, True, datetime(2024, 1, 1, tzinfo=UTC)),
        ("2", 4.0, False, None),
    ]


# --- raw events keep what they are given -------------------------------------------------------------


def test_event_values_are_kept_as_written_not_judged(tmp_path: Path) -> None:
    write(tmp_path, "events.csv", HEADER + ",price,query\n"
                                  "e1,2099-01-01T00:00:00Z,u1,teleport,abc,  padded  \n"
                                  "e1,not a time,,view,-5,\n")
    events = files.load_raw_events(tmp_path)
    assert events.select("event_id", "event_at", "user_id", "event_type", "price", "query").rows() == [
        ("e1", "2099-01-01T00:00:00Z", "u1", "teleport", "abc", "  padded  "),
        ("e1", "not a time", None, "view", "-5", None),
    ]
    assert events.get_column("_parse_error").null_count() == 2
    # Only the readable time counts towards the range, however implausible it is.
    assert files.event_date_range(tmp_path) is None


def test_truncated_line_becomes_a_parse_error_row_and_the_others_survive(tmp_path: Path) -> None:
    write(tmp_path, "events.csv", HEADER + "\ne1,2024-05-01,u1,view\ne2,2024-05-01\ne3,2024-05-02,u3,view\n")
    events = files.load_raw_events(tmp_path)
    assert events.height == 3
    assert events.get_column("_line").to_list() == [1, 2, 3]
    assert events.get_column("event_id").to_list() == ["e1", None, "e3"]
    assert errors_by_line(events) == {
        2: ("line 3: expected 4 columns, found 2 (missing columns)", "e2,2024-05-01")
    }
    bad = events.filter(pl.col("_line") == 2).select(list(contract.EVENTS_SCHEMA))
    assert bad.null_count().sum_horizontal().item() == len(contract.EVENTS_SCHEMA)


def test_too_many_columns_becomes_a_parse_error_row(tmp_path: Path) -> None:
    write(tmp_path, "events.csv", HEADER + "\ne1,2024-05-01,u1,view,surplus,more\ne2,2024-05-01,u2,view\n")
    events = files.load_raw_events(tmp_path)
    assert events.get_column("event_id").to_list() == [None, "e2"]
    assert errors_by_line(events) == {
        1: ("line 2: expected 4 columns, found 6 (too many columns)", "e1,2024-05-01,u1,view,surplus,more")
    }


def test_unterminated_quote_is_kept_with_the_rest_of_the_file_it_swallowed(tmp_path: Path) -> None:
    write(tmp_path, "events.csv", HEADER + '\ne1,2024-05-01,u1,view\ne2,2024-05-01,"u2,view\ne3,2024-05-01,u3,view\n')
    events = files.load_raw_events(tmp_path)
    assert events.get_column("event_id").to_list() == ["e1", None]
    line, (error, raw) = next(iter(errors_by_line(events).items()))
    assert line == 2 and error.startswith("line 3: a quoted value is not closed properly")
    assert raw == 'e2,2024-05-01,"u2,view\ne3,2024-05-01,u3,view'  # nothing lost, e3 included


def test_invalid_utf8_line_is_kept_and_the_next_lines_survive(tmp_path: Path) -> None:
    text = HEADER + "\ne1,2024-05-01,u1,view\ne2,2024-05-01,u\xff2,view\ne3,x,u3,view\n"
    write(tmp_path, "events.csv", text.encode("latin-1"))  # \xff alone is never valid UTF-8
    events = files.load_raw_events(tmp_path)
    assert events.get_column("event_id").to_list() == ["e1", None, "e3"]
    assert errors_by_line(events)[2][0] == "line 3: the text is not valid UTF-8"


def test_row_numbers_stay_true_across_blank_lines_and_multiline_values(tmp_path: Path) -> None:
    text = (
        HEADER + ",query\r\n"
        "e1,t,u1,search,\"two\r\nlines\"\r\n"  # row 1 spans two physical lines
        "\r\n"  # blank line: no row, but counted
        "e3,t,u3,view,\r\n"
        'e4,t,u4,search,"a ""quoted"" word"\r\n'
        "e5,t\r\n"
        "e6,t,u6,view,"  # no final line end
    )
    write(tmp_path, "events.csv", text)
    events = files.load_raw_events(tmp_path)
    assert events.select("event_id", "_line").rows() == [("e1", 1), ("e3", 3), ("e4", 4), (None, 5), ("e6", 6)]
    assert events.get_column("query").to_list()[:3] == ["two\r\nlines", None, 'a "quoted" word']
    assert errors_by_line(events)[5] == ("line 6: expected 5 columns, found 2 (missing columns)", "e5,t")


def test_extra_columns_are_dropped_and_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write(tmp_path, "events.csv", "colour," + HEADER + ",_line\nred,e1,t,u1,view,99\n")
    assert files.extra_columns(tmp_path, "events") == ["colour", "_line"]
    with caplog.at_level(logging.WARNING, logger=files.__name__):
        events = files.load_raw_events(tmp_path)
    assert "colour" not in events.columns
    assert events.get_column("_line").to_list() == [1]  # the file's own "_line" does not win
    assert "colour" in caplog.text


# --- refusals with a clear reason ---------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_missing_required_column_is_named(tmp_path: Path, suffix: str) -> None:
    if suffix == "csv":
        write(tmp_path, "events.csv", "event_id,user_id,event_type\ne1,u1,view\n")
    else:
        pl.DataFrame({"event_id": ["e1"], "user_id": ["u1"], "event_type": ["view"]}).write_parquet(
            tmp_path / "events.parquet"
        )
    expected = r"missing required column\(s\) \['event_at'\].*Columns found: \['event_id', 'user_id', 'event_type'\]"
    with pytest.raises(ValueError, match=expected):
        files.load_raw_events(tmp_path)


def test_items_missing_required_column_is_named(tmp_path: Path) -> None:
    write(tmp_path, "items.csv", "title,price\nShoe,1\n")
    with pytest.raises(ValueError, match=r"\['item_id'\]"):
        files.load_items(tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"events\.csv is empty \(0 bytes\)"),
        (HEADER.encode() + b"\n", r"events\.csv has no data rows"),
        (HEADER.encode() + b"\n\n\n", r"events\.csv has no data rows"),
        (b"\n" + HEADER.encode() + b"\ne1,t,u1,view\n", r"first line must be the header row"),
        (b"PAR1\x15\x04\x15\x00\xff\xfe", r"not a UTF-8 text CSV file"),
    ],
    ids=["zero-bytes", "header-only", "header-and-blank-lines", "blank-first-line", "binary"],
)
def test_unusable_csv_files_are_refused(tmp_path: Path, content: bytes, message: str) -> None:
    write(tmp_path, "events.csv", content)
    with pytest.raises(ValueError, match=message):
        files.load_raw_events(tmp_path)


def test_header_with_repeated_column_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "events.csv", HEADER + ",User_ID\ne1,t,u1,view,u2\n")
    with pytest.raises(ValueError, match="repeats column 'User_ID'"):
        files.load_raw_events(tmp_path)


def test_parquet_that_is_not_parquet_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "events.parquet", HEADER + "\ne1,t,u1,view\n")
    with pytest.raises(ValueError, match=r"events\.parquet is not a readable Parquet file"):
        files.load_raw_events(tmp_path)


def test_empty_parquet_is_refused(tmp_path: Path) -> None:
    schema = {name: pl.String for name in contract.EVENTS_REQUIRED}
    pl.DataFrame(schema=schema).write_parquet(tmp_path / "events.parquet")
    with pytest.raises(ValueError, match="has no data rows"):
        files.load_raw_events(tmp_path)


def test_both_csv_and_parquet_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "events.csv", HEADER + "\ne1,t,u1,view\n")
    pl.read_csv(tmp_path / "events.csv").write_parquet(tmp_path / "events.parquet")
    with pytest.raises(ValueError, match=r"events\.csv and events\.parquet"):
        files.find_table_file(tmp_path, "events")
    with pytest.raises(ValueError, match=r"events\.csv and events\.parquet"):
        files.load_raw_events(tmp_path)


@pytest.mark.parametrize("make_folder", [True, False], ids=["empty-folder", "no-folder"])
def test_missing_file_names_what_was_looked_for(tmp_path: Path, make_folder: bool) -> None:
    folder = tmp_path / "mine"
    if make_folder:
        folder.mkdir()
    with pytest.raises(FileNotFoundError) as error:
        files.load_raw_events(folder)
    message = str(error.value)
    assert "events.csv" in message and "events.parquet" in message
    assert str(folder) in message and "RECS_DATA_DIR" in message


def test_non_numeric_price_in_items_names_column_count_and_samples(tmp_path: Path) -> None:
    rows = "".join(f"i{n},{price}\n" for n, price in enumerate(["1.5", "abc", "2", "", '"1,5"', "x", "y", "z", "w"], 1))
    write(tmp_path, "items.csv", "item_id,price\n" + rows)
    with pytest.raises(ValueError) as error:
        files.load_items(tmp_path)
    message = str(error.value)
    assert "items.csv: 6 row(s) have values that cannot be read" in message  # the empty one is missing, not bad
    assert (
        "row 2: price: 'abc' is not a valid number; row 5: price: '1,5' is not a valid number; "
        "row 6: price: 'x' is not a valid number; row 7: price: 'y' is not a valid number; "
        "row 8: price: 'z' is not a valid number"
    ) in message
    assert "'w'" not in message  # at most five samples


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [("listed_at", "next tuesday", "timestamp"), ("is_active", "maybe", "boolean")],
)
def test_other_unconvertible_item_values_are_refused(tmp_path: Path, column: str, value: str, problem: str) -> None:
    write(tmp_path, "items.csv", f"item_id,{column}\ni1,{value}\n")
    expected = f"items.csv: 1 row\\(s\\).*row 1: {column}: '{value}' is not a valid {problem}"
    with pytest.raises(ValueError, match=expected):
        files.load_items(tmp_path)


def test_bad_signup_time_in_users_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "users.csv", "user_id,signup_at\nu1,2024-13-45\n")
    with pytest.raises(ValueError, match=r"users\.csv: 1 row\(s\).*row 1: signup_at: '2024-13-45' is not a valid timestamp"):
        files.load_users(tmp_path)


def test_unreadable_line_in_items_is_refused_not_dropped(tmp_path: Path) -> None:
    write(tmp_path, "items.csv", "item_id,title\ni1,Shoe\ni2,Bag,extra\n")
    with pytest.raises(ValueError, match=r"1 line\(s\) could not be read.*line 3: expected 2 columns, found 3"):
        files.load_items(tmp_path)
