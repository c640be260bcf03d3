"""Your own data: a folder of events, items and users files (CSV or Parquet) read into the shared tables.

Folder layout (RECS_DATA_DIR points at the folder):
- `events.csv`, `events.csv.gz` or `events.parquet`: required. `items.*` and `users.*` the same way.
  Exactly one file per table: having both `events.csv` and `events.parquet` is an error, because we
  would have to guess.
- Column names are the contract's (see `recs_assets/contract.py`), lower case, e.g. `event_id`,
  `event_at`, `user_id`, `event_type` (the required columns for events; `user_id` may be empty on an
  anonymous shopper's event that has a `session_id`). Missing optional columns are filled with nulls.
  Extra columns are ignored; `extra_columns()` lists them and loading logs a warning.

CSV conventions (what common tools export):
- The first line is the header row with the column names (spaces around a name are ignored).
- The delimiter is `,`, `;`, tab or `|`: the one that makes the header name the required columns, unless
  one is given (`delimiter=`). Double-quote quoting: a quote inside a quoted value is written twice
  (""), and a quoted value may hold delimiters and line breaks.
- UTF-8, with or without a BOM (a UTF-16 file with its BOM is read too); gzip-compressed when the name
  ends in `.gz`. Line ends LF, CRLF, a mix of both, or CR alone.
- An empty field, quoted or not, means "missing" (null). Anything else is kept as written, spaces
  included.
- Timestamps: ISO-8601 (`2024-05-01T12:30:00Z`, `2024-05-01 12:30:00+02:00`, `2024-05-01`; no offset
  means UTC) or seconds since 1970 (`1714566600`); see `validation.casting` for every accepted form.
- Booleans (`is_active`) are true/false or 1/0, in any letter case.

What each loader guarantees:
- `load_raw_events` does not judge values: every value of a CSV stays text exactly as written (a price
  of "abc" or an event in 2099 is kept; judging is the staging layer's job), and a Parquet file's
  columns keep their own types. A line that cannot be read as one record (missing or extra columns, a
  broken or unclosed quote, bytes that are not UTF-8) is never dropped and never takes other lines
  with it: it becomes a row with every contract column null, `_parse_error` saying what is wrong and
  where ("line N: ...") and `_raw_line` holding the line exactly as in the file (bytes that are not
  UTF-8: decoded as latin-1, one character per byte, so nothing is lost). See `csv_reader` for how.
- `load_items` and `load_users` do convert to the contract types, and stop with a ValueError that names
  the file, the column and sample values when something cannot be converted: these small reference
  tables have no quarantine, so a bad value would otherwise vanish silently.
- Line numbers: `_line` is the data line a record starts on, the line right after the header being 1,
  so the file's own line number (what an editor shows, and what messages call "line N") is `_line + 1`.
  Blank lines hold no data and produce no row. A record whose quoted value spans several lines keeps
  its verbatim text in `_raw_line` too, so every line of the file is accounted for.
- `source_record_count` counts the events file's non-empty data lines (Parquet: its rows) without
  parsing it, for the reconciliation check (`validation.reconciliation`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from recs_assets import contract
from recs_assets.sources.files.csv_reader import count_data_lines, parse_csv, read_source_bytes
from recs_assets.validation.casting import cast_or_raise

logger = logging.getLogger(__name__)

HAS_TIMESTAMPS = True

SOURCE_NAME = "files"

SUFFIXES = (".csv", ".csv.gz", ".parquet")

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
    """The one file holding a table, `<name>.csv`, `<name>.csv.gz` or `<name>.parquet`, in the data folder."""
    folder = Path(data_dir)
    candidates = [folder / f"{name}{suffix}" for suffix in SUFFIXES]
    found = [path for path in candidates if path.is_file()]
    if len(found) > 1:
        raise ValueError(
            f"Both {found[0].name} and {found[1].name} are in {folder}; keep only one of them so it is "
            f"clear which holds the {name} table."
        )
    if not found:
        where = "does not exist" if not folder.is_dir() else "has none of them"
        names = ", ".join(path.name for path in candidates[:-1]) + f" or {candidates[-1].name}"
        raise FileNotFoundError(
            f"Expected {names} in folder {folder}, but the folder {where}. "
            f"Set RECS_DATA_DIR to the folder holding your events, items and users files."
        )
    return found[0]


def extra_columns(data_dir: str | os.PathLike[str], name: str, *, delimiter: str | None = None) -> list[str]:
    """Columns of a table's file that the contract does not know (they are ignored when loading)."""
    path = find_table_file(data_dir, name)
    if _is_csv(path):
        columns = parse_csv(_head(path), path, TABLE_REQUIRED[name], delimiter).header
    else:
        columns = _parquet_columns(path)
    return [column for column in columns if column not in TABLE_SCHEMAS[name]]


def load_raw_events(data_dir: str | os.PathLike[str], *, delimiter: str | None = None) -> pl.DataFrame:
    """The events file as raw rows: values as written, unreadable lines kept with the reason."""
    path = find_table_file(data_dir, "events")
    table = _read_table(path, "events", delimiter)
    source = pl.lit(f"{SOURCE_NAME}:{path.name}").alias("_source")
    events = table.rows.select(
        [
            pl.col(name) if name in table.rows.columns else pl.lit(None, dtype=pl.String).alias(name)
            for name in contract.EVENTS_SCHEMA
        ]
        + [
            source,
            pl.col("_line").cast(pl.Int64),
            pl.lit(None, dtype=pl.String).alias("_parse_error"),
            pl.col("_raw_line"),
        ]
    )
    if table.rejects.is_empty():
        return events
    rejects = table.rejects.select(
        [pl.lit(None, dtype=events.schema[name]).alias(name) for name in contract.EVENTS_SCHEMA]
        + [source, pl.col("_line").cast(pl.Int64), pl.col("_parse_error"), pl.col("_raw_line")]
    )
    return pl.concat([events, rejects]).sort("_line", maintain_order=True)


def source_record_count(data_dir: str | os.PathLike[str]) -> int:
    """How many records the events file holds, counted without parsing it: what reconciliation expects.

    CSV: the non-empty lines after the header (a value spanning two lines counts two, as the raw rows'
    `_raw_line` does). Parquet: the row count in the file's metadata.
    """
    path = find_table_file(data_dir, "events")
    if _is_csv(path):
        return count_data_lines(read_source_bytes(path))
    try:
        return pl.scan_parquet(path).select(pl.len()).collect().item()
    except Exception as exc:
        raise ValueError(f"{path} is not a readable Parquet file: {exc}") from exc


def load_items(data_dir: str | os.PathLike[str], *, delimiter: str | None = None) -> pl.DataFrame:
    """The items file converted to the contract's items table; stops on values that cannot be read."""
    return _load_reference_table(data_dir, "items", delimiter)


def load_users(data_dir: str | os.PathLike[str], *, delimiter: str | None = None) -> pl.DataFrame:
    """The users file converted to the contract's users table; stops on values that cannot be read."""
    return _load_reference_table(data_dir, "users", delimiter)


def event_date_range(data_dir: str | os.PathLike[str]) -> tuple[date, date] | None:
    """None: a folder of files is loaded as one batch, not by day.

    Finding its days would mean reading the whole events file every time the asset graph is loaded,
    and a single bad timestamp (say 2099) would stretch the partitions over decades.
    """
    return None


# --- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Table:
    """A file's rows (its contract columns plus `_line`, `_raw_line`) and, for CSV, the lines set aside."""

    rows: pl.DataFrame
    rejects: pl.DataFrame  # _line, _parse_error, _raw_line


def _is_csv(path: Path) -> bool:
    return path.name.endswith((".csv", ".csv.gz"))


def _head(path: Path) -> bytes:
    """Enough of the file to read its header (the whole file when compressed)."""
    data = read_source_bytes(path)
    end = data.find(b"\n")
    return data if end < 0 else data[: end + 1]


def _read_table(path: Path, name: str, delimiter: str | None) -> _Table:
    if _is_csv(path):
        parsed = parse_csv(read_source_bytes(path), path, TABLE_REQUIRED[name], delimiter)
        _check_required(path, name, parsed.header, f" (split on {parsed.delimiter!r})")
        # Data line numbers: the first line after the header is 1 (file line 2).
        rows = parsed.rows.with_columns((pl.col("_file_line") - 1).alias("_line")).drop("_file_line")
        rejects = parsed.rejects.with_columns((pl.col("_file_line") - 1).alias("_line")).drop("_file_line")
    else:
        rows = _read_parquet(path)
        _check_required(path, name, rows.columns, "")
        rows = rows.with_columns(
            pl.int_range(1, rows.height + 1, dtype=pl.Int64).alias("_line"),
            pl.lit(None, dtype=pl.String).alias("_raw_line"),
        )
        rejects = pl.DataFrame(schema={"_line": pl.Int64, "_parse_error": pl.String, "_raw_line": pl.String})
    if rows.height + rejects.height == 0:
        raise ValueError(f"{path}: line 2: the file has no data rows (only a header, or nothing but blank lines).")
    known = TABLE_SCHEMAS[name]
    unknown = [column for column in rows.columns if column not in known and column not in ("_line", "_raw_line")]
    if unknown:
        logger.warning("%s: ignoring columns that are not in the %s contract: %s", path, name, unknown)
    rows = rows.select([column for column in rows.columns if column in known] + ["_line", "_raw_line"])
    return _Table(rows=rows, rejects=rejects.select("_line", "_parse_error", "_raw_line"))


def _parquet_columns(path: Path) -> list[str]:
    try:
        return list(pl.read_parquet_schema(path))
    except Exception as exc:
        raise ValueError(f"{path} is not a readable Parquet file: {exc}") from exc


def _check_required(path: Path, name: str, columns: list[str], how: str) -> None:
    missing = [column for column in TABLE_REQUIRED[name] if column not in columns]
    if missing:
        where = "line 1 (header): " if how else ""
        raise ValueError(
            f"{path}: {where}missing required column(s) {missing}. Columns found: {list(columns)}{how}. "
            f"The {name} table needs {list(TABLE_REQUIRED[name])}."
        )


def _read_parquet(path: Path) -> pl.DataFrame:
    try:
        rows = pl.read_parquet(path)
    except Exception as exc:
        raise ValueError(f"{path} is not a readable Parquet file: {exc}") from exc
    # A file's own provenance-like columns must not pass for ours.
    return rows.drop([c for c in ("_line", "_raw_line") if c in rows.columns])


# --- converting items and users to contract types ----------------------------------------------


def _load_reference_table(data_dir: str | os.PathLike[str], name: str, delimiter: str | None) -> pl.DataFrame:
    path = find_table_file(data_dir, name)
    table = _read_table(path, name, delimiter)
    if not table.rejects.is_empty():
        samples = "; ".join(table.rejects.get_column("_parse_error").head(MAX_SAMPLES).to_list())
        raise ValueError(
            f"{path}: {table.rejects.height} line(s) could not be read as CSV, e.g. {samples}. "
            f"Fix them: the {name} table has no quarantine, so they would otherwise be lost."
        )
    typed = cast_or_raise(table.rows, TABLE_SCHEMAS[name], str(path), line_offset=1 if _is_csv(path) else None)
    if name == "items" and "is_active" not in table.rows.columns:
        # A catalogue that does not say otherwise is for sale; null would hide every item downstream.
        typed = typed.with_columns(pl.lit(True).alias("is_active"))
    return typed
