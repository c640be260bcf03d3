"""A folder of the user's own CSV/Parquet files: values kept as written, bad lines kept, clear refusals."""

from __future__ import annotations

import gzip
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


def test_an_unclosed_quote_costs_its_own_line_and_nothing_after_it(tmp_path: Path) -> None:
    write(tmp_path, "events.csv", HEADER + '\ne1,2024-05-01,u1,view\ne2,2024-05-01,"u2,view\ne3,2024-05-01,u3,view\n')
    events = files.load_raw_events(tmp_path)
    assert events.get_column("event_id").to_list() == ["e1", None, "e3"]
    ((line, (error, raw)),) = errors_by_line(events).items()
    assert line == 2 and error.startswith("line 3: a quoted value opens on this line and is never closed")
    assert raw == 'e2,2024-05-01,"u2,view'  # that line only, verbatim


def test_invalid_utf8_line_is_kept_byte_for_byte_and_the_next_lines_survive(tmp_path: Path) -> None:
    text = HEADER + "\ne1,2024-05-01,u1,view\ne2,2024-05-01,u\xff2,view\ne3,x,u3,view\n"
    write(tmp_path, "events.csv", text.encode("latin-1"))  # \xff alone is never valid UTF-8
    events = files.load_raw_events(tmp_path)
    assert events.get_column("event_id").to_list() == ["e1", None, "e3"]
    error, raw = errors_by_line(events)[2]
    assert error.startswith("line 3: the text is not valid UTF-8 (byte 0xFF at position 16)")
    assert "latin-1" in error
    assert raw.encode("latin-1") == b"e2,2024-05-01,u\xff2,view"


def test_row_numbers_are_the_files_lines_across_blank_lines_and_multiline_values(tmp_path: Path) -> None:
    text = (
        HEADER + ",query\r\n"
        "e1,t,u1,search,\"two\r\nlines\"\r\n"  # file lines 2-3
        "\r\n"  # line 4, blank: no row
        "e3,t,u3,view,\r\n"  # line 5
        'e4,t,u4,search,"a ""quoted"" word"\r\n'
        "e5,t\r\n"
        "e6,t,u6,view,"  # no final line end
    )
    write(tmp_path, "events.csv", text)
    events = files.load_raw_events(tmp_path)
    assert events.select("event_id", "_line").rows() == [("e1", 1), ("e3", 4), ("e4", 5), (None, 6), ("e6", 7)]
    assert events.get_column("query").to_list()[:3] == ["two\r\nlines", None, 'a "quoted" word']
    assert errors_by_line(events)[6] == ("line 7: expected 5 columns, found 2 (missing columns)", "e5,t")
    assert events.get_column("_raw_line")[0] == 'e1,t,u1,search,"two\r\nlines"'  # spans lines: kept


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
    expected = r"missing required column\(s\) \['event_at'\]\. Columns found: \['event_id', 'user_id', 'event_type'\]"
    with pytest.raises(ValueError, match=expected):
        files.load_raw_events(tmp_path)


def test_items_missing_required_column_is_named(tmp_path: Path) -> None:
    write(tmp_path, "items.csv", "title,price\nShoe,1\n")
    with pytest.raises(ValueError, match=r"\['item_id'\]"):
        files.load_items(tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"events\.csv: line 1: the file is empty"),
        (HEADER.encode() + b"\n", r"events\.csv: line 2: the file has no data rows"),
        (HEADER.encode() + b"\n\n\n", r"events\.csv: line 2: the file has no data rows"),
        (b"\n" + HEADER.encode() + b"\ne1,t,u1,view\n", r"line 1: the first line must be the header row"),
        (b"PAR1\x15\x04\x15\x00\xff\xfe", r"events\.csv: line 1: this is a binary file \(or UTF-16 without a byte order mark\), not a UTF-8 text CSV"),
        (b"\xff\xfeA", r"events\.csv: starts with a UTF-16 byte order mark but is not valid UTF-16"),
        (b"ev\xe9nt_id,event_at,user_id,event_type\n", r"events\.csv: line 1: the header is not UTF-8 text"),
        (b"event_id,event_at;user_id,event_type\ne1,t,u1,view\n", r"line 1 \(header\): missing required column"),
    ],
    ids=["zero-bytes", "header-only", "header-and-blank-lines", "blank-first-line", "binary", "bad-utf16", "latin1-header", "mixed-delimiters"],
)
def test_unusable_csv_files_are_refused_in_one_line_naming_file_line_and_problem(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = write(tmp_path, "events.csv", content)
    with pytest.raises(ValueError, match=message) as error:
        files.load_raw_events(tmp_path)
    assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)


def test_a_corrupt_gzip_file_is_refused_naming_it(tmp_path: Path) -> None:
    path = write(tmp_path, "events.csv.gz", b"\x1f\x8bnot really gzip")
    with pytest.raises(ValueError, match=r"events\.csv\.gz: line 1: not a readable gzip file") as error:
        files.load_raw_events(tmp_path)
    assert str(path) in str(error.value)


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
    assert (  # named by their line in the file: the header is line 1
        "line 3: price: 'abc' is not a valid number; line 6: price: '1,5' is not a valid number; "
        "line 7: price: 'x' is not a valid number; line 8: price: 'y' is not a valid number; "
        "line 9: price: 'z' is not a valid number"
    ) in message
    assert "'w'" not in message  # at most five samples


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [("listed_at", "next tuesday", "timestamp"), ("is_active", "maybe", "boolean")],
)
def test_other_unconvertible_item_values_are_refused(tmp_path: Path, column: str, value: str, problem: str) -> None:
    write(tmp_path, "items.csv", f"item_id,{column}\ni1,{value}\n")
    expected = f"items.csv: 1 row\\(s\\).*line 2: {column}: '{value}' is not a valid {problem}"
    with pytest.raises(ValueError, match=expected):
        files.load_items(tmp_path)


def test_bad_signup_time_in_users_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "users.csv", "user_id,signup_at\nu1,2024-13-45\n")
    with pytest.raises(ValueError, match=r"users\.csv: 1 row\(s\).*line 2: signup_at: '2024-13-45' is not a valid timestamp"):
        files.load_users(tmp_path)


def test_unreadable_line_in_items_is_refused_not_dropped(tmp_path: Path) -> None:
    write(tmp_path, "items.csv", "item_id,title\ni1,Shoe\ni2,Bag,extra\n")
    with pytest.raises(ValueError, match=r"1 line\(s\) could not be read.*line 3: expected 2 columns, found 3"):
        files.load_items(tmp_path)


# --- files as common tools export them: each quirk lands, and the batch still reconciles ---------------

from recs_assets.validation.quarantine import split_events  # noqa: E402
from recs_assets.validation.reconciliation import reconcile_with_source  # noqa: E402
from recs_assets.validation.schemas import events_schema  # noqa: E402

ROW = "{n},2024-05-01T10:{m:02d}:00Z,u{n},s{n},i1,view"
FULL = "event_id,event_at,user_id,session_id,item_id,event_type"


def rows(count: int, start: int = 1, sep: str = ",") -> list[str]:
    return [ROW.format(n=f"e{n}", m=n % 60).replace(",", sep) for n in range(start, start + count)]


def stage(folder: Path, **load):
    """Load, stage and reconcile a folder's events the way the pipeline does; return all three."""
    raw = files.load_raw_events(folder, **load)
    split = split_events(raw, events_schema())
    passed, description, problems = reconcile_with_source(
        raw, split.clean, split.quarantine, files.source_record_count(folder)
    )
    assert passed, description
    assert problems == []
    return raw, split


def reasons(split) -> dict[int, str]:
    return dict(split.quarantine.select("_line", "_reason").rows())


def test_crlf_line_ends_are_read_and_not_kept_in_values(tmp_path: Path) -> None:
    write(tmp_path, "events.csv", "\r\n".join([FULL, *rows(3)]) + "\r\n")
    raw, split = stage(tmp_path)
    assert split.clean["event_type"].to_list() == ["view"] * 3 and split.quarantine.height == 0


def test_a_crlf_file_with_lf_lines_appended_is_read_whole(tmp_path: Path) -> None:
    text = "\r\n".join([FULL, *rows(3)]) + "\r\n" + "\n".join(rows(2, start=4)) + "\n"
    write(tmp_path, "events.csv", text)
    raw, split = stage(tmp_path)
    assert split.clean["event_id"].to_list() == ["e1", "e2", "e3", "e4", "e5"]
    assert split.clean["event_type"].to_list() == ["view"] * 5  # no "view\r" left over
    assert raw["_line"].to_list() == [1, 2, 3, 4, 5]


def test_classic_mac_cr_line_ends_are_read(tmp_path: Path) -> None:
    write(tmp_path, "events.csv", "\r".join([FULL, *rows(2)]) + "\r")
    raw, split = stage(tmp_path)
    assert split.clean["event_id"].to_list() == ["e1", "e2"]


def test_a_utf8_bom_is_not_part_of_the_first_column_name(tmp_path: Path) -> None:
    write(tmp_path, "events.csv", b"\xef\xbb\xbf" + "\n".join([FULL, *rows(2)]).encode())
    raw, split = stage(tmp_path)
    assert split.clean["event_id"].to_list() == ["e1", "e2"]


def test_a_utf16_file_with_its_bom_is_read(tmp_path: Path) -> None:
    write(tmp_path, "events.csv", "\r\n".join([FULL.replace(",", "\t"), *rows(2, sep="\t")]).encode("utf-16"))
    raw, split = stage(tmp_path)
    assert split.clean["event_id"].to_list() == ["e1", "e2"]


def test_quoted_values_with_delimiters_quotes_and_line_breaks(tmp_path: Path) -> None:
    header = FULL + ",query"
    text = (
        header + "\n"
        'e1,2024-05-01T10:00:00Z,u1,s1,,search,"red, blue"\n'
        'e2,2024-05-01T10:00:00Z,u1,s1,,search,"say ""hi"""\n'
        'e3,2024-05-01T10:00:00Z,u1,s1,,search,"two\r\nlines, and ""more"""\n'
        '"e4","2024-05-01T10:00:00Z","u1","s1","","search",""\n'
        "e5,2024-05-01T10:00:00Z,u1,s1,i1,view,\n"
    )
    write(tmp_path, "events.csv", text)
    raw, split = stage(tmp_path)
    assert split.clean["query"].to_list() == ["red, blue", 'say "hi"', 'two\r\nlines, and "more"', None, None]
    assert raw["_line"].to_list() == [1, 2, 3, 5, 6]  # e3 spans lines 3-4 of the data
    assert raw["_raw_line"][2] == 'e3,2024-05-01T10:00:00Z,u1,s1,,search,"two\r\nlines, and ""more"""'
    assert files.source_record_count(tmp_path) == 6  # counts lines, not records


def test_a_quote_inside_an_unquoted_value_is_plain_text(tmp_path: Path) -> None:
    write(tmp_path, "events.csv", FULL + ',query\ne1,2024-05-01T10:00:00Z,u1,s1,,search,27" screen\n')
    raw, split = stage(tmp_path)
    assert split.clean["query"].to_list() == ['27" screen']


def test_text_after_a_closing_quote_quarantines_that_line_only(tmp_path: Path) -> None:
    write(tmp_path, "events.csv", "\n".join([FULL, rows(1)[0], 'e2,2024-05-01T10:00:00Z,"u2"x,s2,i1,view', *rows(1, 3)]))
    raw, split = stage(tmp_path)
    assert split.clean["event_id"].to_list() == ["e1", "e3"]
    assert reasons(split) == {2: "line 3: a quoted value is not closed properly (text right after its closing quote)"}


def test_bytes_that_are_not_utf8_are_quarantined_losslessly(tmp_path: Path) -> None:
    bad = b"e2,2024-05-01T10:00:00Z,s\xe9-0901,s2,i1,view"
    write(tmp_path, "events.csv", "\n".join([FULL, *rows(1)]).encode() + b"\n" + bad + b"\n" + rows(1, 3)[0].encode())
    raw, split = stage(tmp_path)
    assert split.clean["event_id"].to_list() == ["e1", "e3"]
    (row,) = split.quarantine.iter_rows(named=True)
    assert row["_line"] == 2 and row["_reason"].startswith("line 3: the text is not valid UTF-8 (byte 0xE9")
    assert row["_raw_line"] == "e2,2024-05-01T10:00:00Z,sé-0901,s2,i1,view"
    assert row["_raw_line"].encode("latin-1") == bad  # byte for byte


def test_gzip_compressed_events_are_read(tmp_path: Path) -> None:
    write(tmp_path, "events.csv.gz", gzip.compress("\n".join([FULL, *rows(3)]).encode()))
    raw, split = stage(tmp_path)
    assert split.clean.height == 3 and raw["_source"][0] == "files:events.csv.gz"
    assert files.source_record_count(tmp_path) == 3
    assert files.extra_columns(tmp_path, "events") == []


def test_gzip_and_plain_csv_together_are_refused(tmp_path: Path) -> None:
    write(tmp_path, "events.csv", FULL + "\n")
    write(tmp_path, "events.csv.gz", gzip.compress(FULL.encode()))
    with pytest.raises(ValueError, match=r"Both events\.csv and events\.csv\.gz"):
        files.load_raw_events(tmp_path)


@pytest.mark.parametrize("sep", [";", "\t", "|"], ids=["semicolon", "tab", "pipe"])
def test_other_delimiters_are_detected_from_the_header(tmp_path: Path, sep: str) -> None:
    # Commas inside values must stay values once the delimiter is not a comma.
    text = "\n".join([(FULL + ",query").replace(",", sep), *(r + sep + "a, b" for r in rows(2, sep=sep))])
    write(tmp_path, "events.csv", text)
    raw, split = stage(tmp_path)
    assert split.clean["query"].to_list() == ["a, b", "a, b"]


def test_a_configured_delimiter_wins_and_a_wrong_one_says_how_the_header_was_split(tmp_path: Path) -> None:
    write(tmp_path, "events.csv", "\n".join([FULL.replace(",", ";"), *rows(2, sep=";")]))
    raw, split = stage(tmp_path, delimiter=";")
    assert split.clean.height == 2
    with pytest.raises(ValueError, match=r"line 1 \(header\): missing required column.*\(split on '\|'\)"):
        files.load_raw_events(tmp_path, delimiter="|")
    with pytest.raises(ValueError, match="must be one character"):
        files.load_raw_events(tmp_path, delimiter=";;")


def test_epoch_second_and_offset_timestamps_become_utc(tmp_path: Path) -> None:
    times = ["1714566600", "1714566600.5", "2024-05-01T14:30:00+02:00", "2024-05-01 07:30:00-05", "2024-05-01 12:30:00 UTC"]
    lines = [f"e{n},{t},u1,s1,i1,view" for n, t in enumerate(times)]
    write(tmp_path, "events.csv", "\n".join([FULL, *lines]))
    raw, split = stage(tmp_path)
    assert split.quarantine.height == 0
    expected = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    assert split.clean["event_at"].to_list() == [expected, expected.replace(microsecond=500_000), *[expected] * 3]


def test_a_number_too_short_to_be_an_epoch_time_is_quarantined_not_misread(tmp_path: Path) -> None:
    write(tmp_path, "events.csv", "\n".join([FULL, "e1,20240501,u1,s1,i1,view"]))
    raw, split = stage(tmp_path)
    assert reasons(split)[1].startswith("event_at: '20240501' is not a valid timestamp (ISO 8601, or seconds since 1970)")


def test_extra_columns_anywhere_are_ignored_and_the_batch_reconciles(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write(tmp_path, "events.csv", "\n".join(["colour," + FULL + ",_raw_line,notes", *("red," + r + ",x,y" for r in rows(2))]))
    with caplog.at_level(logging.WARNING, logger=files.__name__):
        raw, split = stage(tmp_path)
    assert split.clean.height == 2 and raw["_raw_line"].null_count() == 2  # the file's own "_raw_line" is not ours
    assert "colour" in caplog.text and "notes" in caplog.text


def test_an_unclosed_quote_at_row_1000_of_2000_costs_one_line(tmp_path: Path) -> None:
    lines = rows(2000)
    broken = 'e1000,2024-05-01T10:40:00Z,u1000,s1000,i0027,"view,51.33'
    lines[999] = broken
    write(tmp_path, "events.csv", "\n".join([FULL, *lines]) + "\n")
    raw, split = stage(tmp_path)
    assert split.clean.height == 1999 and split.quarantine.height == 1
    (row,) = split.quarantine.iter_rows(named=True)
    assert row["_line"] == 1000 and row["_raw_line"] == broken
    assert row["_reason"].startswith("line 1001: a quoted value opens on this line and is never closed")
    assert split.clean["event_id"].to_list()[999] == "e1001"


def test_an_unclosed_quote_followed_by_quoted_values_still_costs_one_line(tmp_path: Path) -> None:
    header = FULL + ",query"
    lines = [r + ',"a, b"' for r in rows(6)]
    lines[1] = 'e2,2024-05-01T10:00:00Z,u2,s2,i1,view,"never closed'
    write(tmp_path, "events.csv", "\n".join([header, *lines]))
    raw, split = stage(tmp_path)
    assert split.clean["event_id"].to_list() == ["e1", "e3", "e4", "e5", "e6"]
    assert list(reasons(split)) == [2]


def test_a_line_longer_than_ten_thousand_characters_is_kept_whole(tmp_path: Path) -> None:
    long_line = "e2,2024-05-01T10:00:00Z,u2,s2,i1,view," + "x" * 20_000  # one column too many
    write(tmp_path, "events.csv", "\n".join([FULL, *rows(1), long_line, *rows(1, 3)]))
    raw, split = stage(tmp_path)
    assert split.quarantine["_raw_line"].to_list() == [long_line]
    assert reasons(split) == {2: "line 3: expected 6 columns, found 7 (too many columns)"}


def test_empty_user_id_with_a_session_is_an_anonymous_shopper(tmp_path: Path) -> None:
    write(tmp_path, "events.csv", "\n".join([FULL, "e1,2024-05-01T10:00:00Z,,s9,i1,view", "e2,2024-05-01T10:00:00Z,,,i1,view"]))
    raw, split = stage(tmp_path)
    assert split.clean["user_id"].to_list() == [contract.ANONYMOUS_USER_PREFIX + "s9"]
    assert reasons(split) == {2: "user_id and session_id are both missing (an anonymous shopper's event needs its session_id)"}
    assert split.quarantine["user_id"].to_list() == [None]  # kept as it came


def test_many_broken_quotes_each_cost_only_their_own_line(tmp_path: Path) -> None:
    # How the read time grows with such a file is benchmarks/growth.py's question; here, that an
    # unclosed quote never swallows the lines after it, however many there are.
    lines = [('e%d,2024-05-01T10:00:00Z,"u%d,s1,i1,view' if n % 2 else "e%d,2024-05-01T10:00:00Z,u%d,s1,i1,view") % (n, n) for n in range(20_000)]
    write(tmp_path, "events.csv", "\n".join([FULL, *lines]))
    raw, split = stage(tmp_path)
    assert (split.clean.height, split.quarantine.height) == (10_000, 10_000)
    assert split.clean["event_id"].to_list() == [f"e{n}" for n in range(0, 20_000, 2)]
    # Each unreadable row is its own line, kept as it came.
    assert split.quarantine["_raw_line"].to_list() == [lines[n] for n in range(1, 20_000, 2)]


@pytest.mark.slow
def test_a_million_rows_load_whole_and_are_counted_at_the_source(tmp_path: Path) -> None:
    # How fast is benchmarks/ingest.py's question (tests never time themselves): here, that nothing is lost.
    n = 1_000_000
    pl.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(n)],
            "event_at": ["2024-05-01T10:00:00Z"] * n,
            "user_id": [f"u{i % 5000}" for i in range(n)],
            "event_type": ["view"] * n,
            "query": [("red, shoes" if i % 50 == 0 else None) for i in range(n)],
        }
    ).write_csv(tmp_path / "events.csv")
    raw = files.load_raw_events(tmp_path)
    assert raw.height == n and raw["_parse_error"].null_count() == n
    assert files.source_record_count(tmp_path) == n
