"""Your own data: a folder of events, items and users files (CSV or Parquet) read into the shared tables.

Folder layout (RECS_DATA_DIR points at the folder):
- `events.csv` or `events.parquet`: required. `items.*` and `users.*` the same way. Exactly one file per
  table: having both `events.csv` and `events.parquet` is an error, because we would have to guess.
- Column names are the contract's (see `recs_assets/contract.py`), lower case, e.g. `event_id`,
  `event_at`, `user_id`, `event_type` (the required ones for events). Missing optional columns are
  filled with nulls. Extra columns are ignored; `extra_columns()` lists them and loading logs a warning.

CSV conventions:
- The first line is the header row with the column names. Comma separator, double-quote quoting (a
  quote inside a quoted value is written twice, ""), UTF-8 (a BOM is fine), LF or CRLF line ends.
- An empty field, quoted or not, means "missing" (null). Anything else is kept as written, spaces
  included.
- Timestamps are ISO-8601: `2024-05-01T12:30:00Z`, `2024-05-01 12:30:00+02:00`, `2024-05-01`. A time
  without an offset is taken to be UTC.
- Booleans (`is_active`) are true/false or 1/0, in any letter case.

What each loader guarantees:
- `load_raw_events` does not judge values: every value of a CSV stays text exactly as written (a price
  of "abc" or an event in 2099 is kept; judging is the staging layer's job), and a Parquet file's
  columns keep their own types. Lines the CSV parser cannot split into the header's columns (missing
  or extra columns, a broken quote, bytes that are not UTF-8) are not dropped: each becomes a row with
  every contract column null, `_parse_error` saying what is wrong and `_raw_line` holding its text.
- `load_items` and `load_users` do convert to the contract types, and stop with a ValueError that names
  the file, the column and sample values when something cannot be converted: these small reference
  tables have no quarantine, so a bad value would otherwise vanish silently.
- Row numbers: `_line` counts data rows, the first row after the header being 1. Messages say "line N"
  meaning the line of the file (the header is line 1, so N = `_line` + 1); the two differ only after a
  quoted value that itself spans several lines. Blank lines hold no data and produce no row but are
  counted, so numbers still match the file.
"""

from __future__ import annotations

import csv
import io
import logging
import mmap
import os
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from recs_assets import contract
from recs_assets.validation.casting import cast_or_raise

logger = logging.getLogger(__name__)

HAS_TIMESTAMPS = True

SOURCE_NAME = "files"

SUFFIXES = (".csv", ".parquet")

TABLE_SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "events": contract.EVENTS_SCHEMA,
    "items": contract.ITEMS_SCHEMA,
    "users": contract.USERS_SCHEMA,
}
TABLE_REQUIRED: dict[str, tuple[str, ...]] = {
    "events": contract.EVENTS_REQUIRED,
    "items": contract.ITEMS_REQUIRED,
    "users": contract.USERS_REQUIRED,
}

MAX_SAMPLES = 5



def find_table_file(data_dir: str | os.PathLike[str], name: str) -> Path:
    """The one file holding a table, `<name>.csv` or `<name>.parquet`, in the data folder."""
    folder = Path(data_dir)
    candidates = [folder / f"{name}{suffix}" for suffix in SUFFIXES]
    found = [path for path in candidates if path.is_file()]
    if len(found) > 1:
        raise ValueError(
            f"Both {found[0].name} and {found[1].name} are in {folder}; keep only one of them so it is "
            f"clear which holds the {name} table."
        )
    if not found:
        where = "does not exist" if not folder.is_dir() else "has neither"
        raise FileNotFoundError(
            f"Expected {candidates[0].name} or {candidates[1].name} in folder {folder}, but the folder "
            f"{where}. Set RECS_DATA_DIR to the folder holding your events, items and users files."
        )
    return found[0]


def extra_columns(data_dir: str | os.PathLike[str], name: str) -> list[str]:
    """Columns of a table's file that the contract does not know (they are ignored when loading)."""
    path = find_table_file(data_dir, name)
    return [column for column in _file_columns(path) if column not in TABLE_SCHEMAS[name]]


def load_raw_events(data_dir: str | os.PathLike[str]) -> pl.DataFrame:
    """The events file as raw rows: values as written, unreadable lines kept with the reason."""
    path = find_table_file(data_dir, "events")
    table = _read_table(path, "events")
    present = [name for name in contract.EVENTS_SCHEMA if name in table.rows.columns]
    columns = [
        pl.col(name) if name in present else pl.lit(None, dtype=pl.String).alias(name)
        for name in contract.EVENTS_SCHEMA
    ]
    provenance = [
        pl.lit(f"{SOURCE_NAME}:{path.name}").alias("_source"),
        pl.col("_line").cast(pl.Int64),
        pl.lit(None, dtype=pl.String).alias("_parse_error"),
        pl.lit(None, dtype=pl.String).alias("_raw_line"),
    ]
    events = table.rows.select(columns + provenance)
    if table.rejects.is_empty():
        return events
    rejects = table.rejects.select(
        [pl.lit(None, dtype=events.schema[name]).alias(name) for name in contract.EVENTS_SCHEMA]
        + [
            pl.lit(f"{SOURCE_NAME}:{path.name}").alias("_source"),
            pl.col("_line").cast(pl.Int64),
            pl.col("_parse_error").cast(pl.String),
            pl.col("_raw_line").cast(pl.String),
        ]
    )
    return pl.concat([events, rejects]).sort("_line", maintain_order=True)


def load_items(data_dir: str | os.PathLike[str]) -> pl.DataFrame:
    """The items file converted to the contract's items table; stops on values that cannot be read."""
    return _load_reference_table(data_dir, "items")


def load_users(data_dir: str | os.PathLike[str]) -> pl.DataFrame:
    """The users file converted to the contract's users table; stops on values that cannot be read."""
    return _load_reference_table(data_dir, "users")


def event_date_range(data_dir: str | os.PathLike[str]) -> tuple[date, date] | None:
    """None: a folder of files is loaded as one batch, not by day.

    Finding its days would mean reading the whole events file every time the asset graph is loaded,
    and a single bad timestamp (say 2099) would stretch the partitions over decades.
    """
    return None


# --- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Table:
    """A file's rows (its contract columns plus `_line`) and, for CSV, the lines that could not be read."""

    rows: pl.DataFrame
    rejects: pl.DataFrame  # _line, _parse_error, _raw_line
    is_csv: bool


def _read_table(path: Path, name: str) -> _Table:
    if path.suffix == ".csv":
        header = _read_csv_header(path)
        _check_required(path, name, header)
        rows, line_numbers, rejects = _read_csv_as_text(path, header)
        is_csv = True
    else:
        rows = _read_parquet(path)
        _check_required(path, name, rows.columns)
        line_numbers = pl.int_range(1, rows.height + 1, dtype=pl.Int64, eager=True)
        rejects = pl.DataFrame(schema={"_line": pl.Int64, "_parse_error": pl.String, "_raw_line": pl.String})
        is_csv = False
    if rows.height + rejects.height == 0:
        raise ValueError(f"{path} has no data rows (only a header, or nothing but blank lines).")
    unknown = [column for column in rows.columns if column not in TABLE_SCHEMAS[name]]
    if unknown:
        logger.warning("%s: ignoring columns that are not in the %s contract: %s", path, name, unknown)
    rows = rows.select([column for column in rows.columns if column in TABLE_SCHEMAS[name]])
    return _Table(rows=rows.with_columns(line_numbers.alias("_line")), rejects=rejects, is_csv=is_csv)


def _file_columns(path: Path) -> list[str]:
    if path.suffix == ".csv":
        return _read_csv_header(path)
    try:
        return list(pl.read_parquet_schema(path))
    except Exception as exc:
        raise ValueError(f"{path} is not a readable Parquet file: {exc}") from exc


def _check_required(path: Path, name: str, columns: list[str]) -> None:
    missing = [column for column in TABLE_REQUIRED[name] if column not in columns]
    if missing:
        raise ValueError(
            f"{path} is missing required column(s) {missing}. Columns found: {list(columns)}. "
            f"The {name} table needs {list(TABLE_REQUIRED[name])}."
        )


def _read_parquet(path: Path) -> pl.DataFrame:
    try:
        return pl.read_parquet(path)
    except Exception as exc:
        raise ValueError(f"{path} is not a readable Parquet file: {exc}") from exc


def _read_csv_header(path: Path) -> list[str]:
    """The column names on the first line, after checking the file is non-empty UTF-8 CSV."""
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (0 bytes); it needs a header row and at least one data row.")
    with open(path, "rb") as f:
        first = f.readline()
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not a UTF-8 text CSV file (first line: {first[:60]!r}).") from exc
    text = text.rstrip("\r\n")
    if not text.strip():
        raise ValueError(f"{path}: the first line must be the header row with the column names, but it is blank.")
    try:
        header = next(csv.reader([text], strict=True))
    except csv.Error as exc:
        raise ValueError(f"{path}: the header row (line 1) is not valid CSV on one line: {exc}") from exc
    empty = [i + 1 for i, column in enumerate(header) if not column.strip()]
    if empty:
        raise ValueError(f"{path}: the header row has empty column name(s) at position(s) {empty}: {header}")
    seen: dict[str, str] = {}
    for column in header:
        # DuckDB treats column names case-insensitively, so "price" and "Price" would collide there.
        if column.lower() in seen:
            raise ValueError(f"{path}: the header repeats column {column!r} (as {seen[column.lower()]!r}).")
        seen[column.lower()] = column
    return header


def _read_csv_as_text(path: Path, header: list[str]) -> tuple[pl.DataFrame, pl.Series, pl.DataFrame]:
    """All data rows as text, their row numbers, and the rejected lines with reason and raw text."""
    columns_sql = "{" + ", ".join(f"{_sql_text(column)}: 'VARCHAR'" for column in header) + "}"
    # Every dialect option is pinned: the sniffer would otherwise guess (and on a file with a truncated
    # line it gives up altogether), and a guessed dialect is not the documented convention.
    query = f"""
        select * from read_csv(
            {_sql_text(str(path))}, columns = {columns_sql}, header = true, auto_detect = false,
            delim = ',', quote = '"', escape = '"', encoding = 'utf-8', store_rejects = true
        )
    """
    try:
        with duckdb.connect() as con:
            rows = con.sql(query).pl()
            rejected = con.sql(
                """
                select
                    line,
                    arg_min(error_type::varchar, coalesce(column_idx, 0)) as error_type,
                    arg_min(error_message, coalesce(column_idx, 0)) as error_message,
                    any_value(csv_line) as csv_line
                from reject_errors
                group by line
                order by line
                """
            ).fetchall()
    except duckdb.Error as exc:
        raise ValueError(f"{path} could not be read as CSV: {exc}") from exc

    reject_rows = [int(line) - 1 for line, *_ in rejected]  # DuckDB counts the header as line 1
    blank_rows, total_rows = _blank_data_rows(path) if _may_have_blank_lines(path) else ([], None)
    if total_rows is not None and rows.height + len(reject_rows) + len(blank_rows) != total_rows:
        raise ValueError(
            f"{path}: could not number the rows reliably (blank lines together with broken quoting); "
            "remove the blank lines and load again."
        )
    line_numbers = pl.Series("_line", _accepted_row_numbers(rows.height, reject_rows + blank_rows), dtype=pl.Int64)
    rejects = pl.DataFrame(
        {
            "_line": reject_rows,
            "_parse_error": [
                _reject_message(int(line), error_type, message, csv_line, len(header))
                for line, error_type, message, csv_line in rejected
            ],
            "_raw_line": [_raw_text(csv_line) for *_, csv_line in rejected],
        },
        schema={"_line": pl.Int64, "_parse_error": pl.String, "_raw_line": pl.String},
    )
    return rows, line_numbers, rejects


def _accepted_row_numbers(n_rows: int, excluded: list[int]) -> np.ndarray:
    """Row numbers 1, 2, 3... skipping the excluded ones: where each parsed row sits in the file."""
    # DuckDB keeps file order but reports no row numbers for good rows; the k-th good row is the k-th
    # number that is not a rejected or blank line.
    skipped = np.array(sorted(set(excluded)), dtype=np.int64)
    gaps_before = skipped - np.arange(1, len(skipped) + 1)
    k = np.arange(1, n_rows + 1, dtype=np.int64)
    return k + np.searchsorted(gaps_before, k, side="left")


def _may_have_blank_lines(path: Path) -> bool:
    """Cheap test for an empty line anywhere; false means row numbering needs no blank-line scan."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return _BLANK_LINE.search(data) is not None


def _blank_data_rows(path: Path) -> tuple[list[int], int]:
    """Data-row numbers of blank lines (outside quoted values), and the number of data rows in all.

    DuckDB skips blank lines without a row but still counts them in its line numbers; we need to know
    where they are to number the rows that follow. Quotes open only at the start of a value, as in DuckDB.
    """
    blanks: list[int] = []
    records = 0  # records completed so far, the header included
    in_quotes = False
    with open(path, "rb") as f:
        for line in f:
            body = line.rstrip(b"\r\n")
            if not in_quotes:
                if not body:
                    if records > 0:
                        blanks.append(records)
                    records += 1
                    continue
                if b'"' not in body:
                    records += 1
                    continue
            in_quotes = _ends_inside_quotes(body, in_quotes)
            if not in_quotes:
                records += 1
    if in_quotes:
        records += 1  # an unterminated quote runs to the end of the file: one (rejected) record
    return blanks, records - 1


_BLANK_LINE = re.compile(rb"\n\r?\n")
_QUOTE, _COMMA = ord('"'), ord(",")


def _ends_inside_quotes(body: bytes, in_quotes: bool) -> bool:
    start, unquoted, quoted, quote_seen = 0, 1, 2, 3
    state = quoted if in_quotes else start
    for byte in body:
        if state == start:
            state = quoted if byte == _QUOTE else start if byte == _COMMA else unquoted
        elif state == unquoted:
            if byte == _COMMA:
                state = start
        elif state == quoted:
            if byte == _QUOTE:
                state = quote_seen
        elif byte == _QUOTE:
            state = quoted  # a doubled quote inside a quoted value
        else:
            # A comma ends the value; anything else after a closing quote is an error that DuckDB
            # rejects, carrying on with the rest of the line as plain text.
            state = start if byte == _COMMA else unquoted
    return state == quoted


def _reject_message(line: int, error_type: str, message: str, csv_line: str | None, n_columns: int) -> str:
    prefix = f"line {line}: "
    if error_type in ("MISSING COLUMNS", "TOO MANY COLUMNS"):
        found = _count_fields(csv_line)
        what = "missing columns" if error_type == "MISSING COLUMNS" else "too many columns"
        return prefix + f"expected {n_columns} columns, found {found} ({what})"
    if error_type == "UNQUOTED VALUE":
        return prefix + "a quoted value is not closed properly (a missing closing quote, or text right after it)"
    if error_type == "INVALID ENCODING":
        return prefix + "the text is not valid UTF-8"
    if error_type == "LINE SIZE OVER MAXIMUM":
        return prefix + "the line is longer than the CSV reader's maximum line size"
    return prefix + f"{message} ({error_type.lower()})"


def _count_fields(csv_line: str | None) -> int | str:
    try:
        return len(next(csv.reader(io.StringIO(_raw_text(csv_line) or ""))))
    except (csv.Error, StopIteration):
        return "an unreadable number of"


def _raw_text(csv_line: str | None) -> str | None:
    # DuckDB hands back the line with its line end (and, after blank lines, with their line ends too).
    return None if csv_line is None else csv_line.strip("\r\n")


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# --- converting items and users to contract types ----------------------------------------------


def _load_reference_table(data_dir: str | os.PathLike[str], name: str) -> pl.DataFrame:
    path = find_table_file(data_dir, name)
    table = _read_table(path, name)
    if not table.rejects.is_empty():
        samples = "; ".join(table.rejects.get_column("_parse_error").head(MAX_SAMPLES).to_list())
        raise ValueError(
            f"{path}: {table.rejects.height} line(s) could not be read as CSV, e.g. {samples}. "
            f"Fix them: the {name} table has no quarantine, so they would otherwise be lost."
        )
    typed = cast_or_raise(table.rows, TABLE_SCHEMAS[name], str(path))
    if name == "items" and "is_active" not in table.rows.columns:
        # A catalogue that does not say otherwise is for sale; null would hide every item downstream.
        typed = typed.with_columns(pl.lit(True).alias("is_active"))
    return typed
