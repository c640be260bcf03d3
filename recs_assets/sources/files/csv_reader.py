"""Read a CSV file line by line, so that one broken line costs that line and never the rows after it.

Why not hand the file to a CSV library: every library we tried treats an unclosed quote as the start
of one long value that runs to the next quote or the end of the file, so a single stray `"` silently
merges thousands of rows into one; some also give up on mixed CRLF/LF line ends or replace bytes
that are not UTF-8. Here the unit is the physical line:

- Lines without a quote are split on the delimiter, and lines whose quoting closes on the line are
  matched by one regular expression; both run vectorised (Polars), so a million rows take seconds.
- Only the remaining lines are looked at one by one (Python's `csv` module, strict). A line whose
  quoted value is still open at its end may continue on the next lines (a value holding a line
  break) only if the joined lines then form exactly one record with the header's number of columns.
  Otherwise that one line is set aside with the reason, and reading resumes on the next line.
- A line that is not valid UTF-8 is set aside too; its text is kept decoded as latin-1, which maps
  each byte to one character, so `raw.encode("latin-1")` gives back the bytes of the file exactly.

Line numbers are the file's own (the header is line 1): what an editor shows.
"""

from __future__ import annotations

import bisect
import csv
import gzip
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

# Delimiters recognised from the header when none is configured, in order of preference on a tie.
DELIMITERS = (",", ";", "\t", "|")
QUOTE = '"'
# A quoted value may hold line breaks, but a value longer than this many lines is taken to be an
# unclosed quote: no real export writes a thousand-line cell, and the cap bounds the work per line.
MAX_RECORD_LINES = 1_000
RAW_ENCODING_NOTE = "_raw_line holds the line decoded as latin-1 (one character per byte, lossless)"

_OURS = ("_file_line", "_raw_line")
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class ParsedCsv:
    """A CSV file read into text columns, with every line that could not be read kept apart."""

    header: list[str]
    delimiter: str
    # One column per header name (text, empty values null), plus `_file_line` (the line a record
    # starts on) and `_raw_line` (the verbatim text of a record spanning several lines, else null).
    rows: pl.DataFrame
    # `_file_line`, `_parse_error` (starts with "line N: "), `_raw_line` (the line as it is in the file).
    rejects: pl.DataFrame


def read_source_bytes(path: Path) -> bytes:
    """The file's bytes as text bytes: gunzipped if compressed, UTF-16 re-encoded as UTF-8."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}: cannot be read ({exc.strerror or exc}).") from exc
    if path.name.endswith(".gz") or data.startswith(_GZIP_MAGIC):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{path}: line 1: not a readable gzip file ({exc}).") from exc
    if data.startswith(_UTF16_BOMS):
        # Spreadsheet "Unicode text" exports are UTF-16; the BOM says so without guessing.
        try:
            data = data.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path}: starts with a UTF-16 byte order mark but is not valid UTF-16 ({exc}).") from exc
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM):]
    if b"\n" not in data and b"\r" in data:
        data = data.replace(b"\r", b"\n")  # classic Mac line ends: CR alone
    return data


def count_data_lines(data: bytes) -> int:
    """Non-empty lines after the first (the header): the source's own count, for reconciliation.

    Deliberately knows nothing about CSV: quotes, delimiters and columns play no part, so a reader
    that merges lines (an unclosed quote) or drops them cannot agree with it by mistake. A line
    holding only a CR counts as empty, as it does for the reader.
    """
    if not data:
        return 0
    arr = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(arr == 0x0A)
    starts = np.concatenate(([0], ends + 1))
    stops = np.concatenate((ends, [len(data)]))
    if starts[-1] == len(data):  # the file ends with a line end: no line after it
        starts, stops = starts[:-1], stops[:-1]
    lengths = stops - starts
    last_byte = arr[np.maximum(stops - 1, 0)]
    empty = (lengths == 0) | ((lengths == 1) & (last_byte == 0x0D))
    return int((~empty[1:]).sum())


def parse_csv(
    data: bytes, path: Path, required: tuple[str, ...], delimiter: str | None = None
) -> ParsedCsv:
    """Split the file into the header, the readable records and the lines that are set aside."""
    if not data.strip():
        raise ValueError(f"{path}: line 1: the file is empty; it needs a header row and at least one data row.")
    if b"\x00" in data[:4096]:
        raise ValueError(
            f"{path}: line 1: this is a binary file (or UTF-16 without a byte order mark), not a UTF-8 text "
            "CSV file: it holds NUL bytes."
        )
    lines, bad_utf8 = _split_lines(data)
    if lines and lines[-1] == "":
        lines.pop()  # what follows the final line end
    header_line = lines[0].removesuffix("\r") if lines else ""
    if 0 in bad_utf8:
        raise ValueError(
            f"{path}: line 1: the header is not UTF-8 text (first bytes {data[:40]!r}); "
            "save the file as UTF-8 CSV."
        )
    delimiter, header = _read_header(header_line, path, required, delimiter)
    body = lines[1:]
    rows, rejects = _parse_body(body, {i - 1: why for i, why in bad_utf8.items()}, header, delimiter)
    return ParsedCsv(header=header, delimiter=delimiter, rows=rows, rejects=rejects)


# --- lines and header ---------------------------------------------------------------------------------


def _split_lines(data: bytes) -> tuple[list[str], dict[int, str]]:
    """The physical lines (split at LF, a CR before it kept) and, per invalid-UTF-8 line, the reason."""
    try:
        return data.decode("utf-8").split("\n"), {}
    except UnicodeDecodeError:
        pass
    lines, bad = [], {}
    for index, raw in enumerate(data.split(b"\n")):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            lines.append(raw.decode("latin-1"))
            byte = raw[exc.start]
            bad[index] = (
                f"the text is not valid UTF-8 (byte 0x{byte:02X} at position {exc.start + 1}); {RAW_ENCODING_NOTE}"
            )
    return lines, bad


def _read_header(
    line: str, path: Path, required: tuple[str, ...], delimiter: str | None
) -> tuple[str, list[str]]:
    if not line.strip():
        raise ValueError(
            f"{path}: line 1: the first line must be the header row with the column names, but it is blank."
        )
    if delimiter is not None:
        if len(delimiter) != 1 or delimiter in (QUOTE, "\n", "\r"):
            raise ValueError(
                f"{path}: the configured CSV delimiter {delimiter!r} must be one character, not a quote or line end."
            )
        candidates = [delimiter]
    else:
        candidates = list(DELIMITERS)
    parsed: list[tuple[str, list[str]]] = []
    for candidate in candidates:
        try:
            fields = next(csv.reader([line], delimiter=candidate, strict=True))
        except csv.Error as exc:
            if delimiter is not None or candidate == ",":
                raise ValueError(f"{path}: line 1: the header row is not valid CSV on one line ({exc}).") from exc
            continue
        parsed.append((candidate, [field.strip() for field in fields]))
    # The delimiter is the one that makes the header name the required columns; among several, the
    # one giving most columns (a header "a;b,c" split on "," would be two odd names).
    complete = [(d, h) for d, h in parsed if all(column in h for column in required)]
    chosen_delimiter, header = max(complete or parsed, key=lambda pair: len(pair[1]))
    _check_header_names(path, header)
    return chosen_delimiter, header


def _check_header_names(path: Path, header: list[str]) -> None:
    empty = [i + 1 for i, column in enumerate(header) if not column]
    if empty:
        raise ValueError(f"{path}: line 1: the header row has empty column name(s) at position(s) {empty}: {header}")
    seen: dict[str, str] = {}
    for column in header:
        # Column names are matched case-insensitively downstream (DuckDB), so these would collide.
        if column.lower() in seen:
            raise ValueError(f"{path}: line 1: the header repeats column {column!r} (as {seen[column.lower()]!r}).")
        seen[column.lower()] = column


# --- the data lines -------------------------------------------------------------------------------------


def _record_pattern(n_columns: int, delimiter: str) -> str:
    """A regular expression matching one whole line that is exactly one record of `n_columns` values."""
    d = re.escape(delimiter)
    # A quoted value ("" inside is a quote), or an unquoted value that does not start with a quote
    # (a quote later in an unquoted value is plain text, as in Python's csv module), or nothing.
    value = f'("(?:[^"]|"")*"|[^{d}"][^{d}]*|)'
    return "^" + value + f"{d}{value}" * (n_columns - 1) + "$"


def _parse_body(
    lines: list[str], bad_utf8: dict[int, str], header: list[str], delimiter: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    n = len(header)
    fields = [f"_f{i}" for i in range(n)]
    text = pl.Series("_text", lines, dtype=pl.String).str.strip_suffix("\r")
    index = pl.int_range(0, len(lines), dtype=pl.Int64, eager=True).alias("_i")
    frame = pl.DataFrame([index, text])
    bad_mask = np.zeros(len(lines), dtype=bool)
    bad_mask[list(bad_utf8)] = True
    bad = pl.Series(bad_mask)
    frame = frame.with_columns(
        (pl.col("_text") == "").alias("_blank"),
        pl.col("_text").str.contains(QUOTE, literal=True).alias("_quoted"),
        bad.alias("_bad"),
    )

    plain = frame.filter(~pl.col("_blank") & ~pl.col("_quoted") & ~pl.col("_bad"))
    split = plain.select("_i", pl.col("_text").str.split(delimiter).alias("_parts"))
    split = split.with_columns(pl.col("_parts").list.len().alias("_n"))
    plain_rows = split.filter(pl.col("_n") == n).select(
        "_i", *(pl.col("_parts").list.get(i).alias(f) for i, f in enumerate(fields))
    )
    plain_wrong = split.filter(pl.col("_n") != n).select("_i", "_n")

    quoted = frame.filter(pl.col("_quoted") & ~pl.col("_bad"))
    if n == 1:
        groups = quoted.select("_i", pl.col("_text").str.extract(_record_pattern(1, delimiter), 1).alias(fields[0]))
    else:
        groups = quoted.select("_i", pl.col("_text").str.extract_groups(_record_pattern(n, delimiter))).unnest("_text")
        groups = groups.rename(dict(zip(groups.columns[1:], fields)))
    matched = groups.filter(pl.col(fields[0]).is_not_null())
    quoted_rows = matched.with_columns(*(_unquote(pl.col(f)).alias(f) for f in fields))
    unmatched = groups.filter(pl.col(fields[0]).is_null())["_i"].to_list()

    # The few lines left are read one at a time; multi-line records consume the lines they span.
    slow = _LineReader(lines, delimiter, n, frame["_quoted"].to_numpy(), set(bad_utf8))
    for i in unmatched:
        slow.read(i)

    reject_i = plain_wrong["_i"].to_list()
    reject_msg = [_wrong_count(n, found) for found in plain_wrong["_n"].to_list()]
    reject_i += list(bad_utf8)
    reject_msg += list(bad_utf8.values())
    rejects = pl.DataFrame(
        {"_i": reject_i + slow.reject_i, "_why": reject_msg + slow.reject_why},
        schema={"_i": pl.Int64, "_why": pl.String},
    )
    rows = pl.concat(
        [
            plain_rows.with_columns(pl.lit(None, dtype=pl.String).alias("_raw_line")),
            quoted_rows.with_columns(pl.lit(None, dtype=pl.String).alias("_raw_line")),
            pl.DataFrame(
                {
                    "_i": slow.row_i,
                    **{f: [record[k] for record in slow.row_fields] for k, f in enumerate(fields)},
                    "_raw_line": slow.row_raw,
                },
                schema={"_i": pl.Int64, **{f: pl.String for f in fields}, "_raw_line": pl.String},
            ),
        ]
    )
    if slow.consumed:
        # A line inside a multi-line value is part of that record, even if it looks like a row itself.
        consumed = pl.Series(sorted(slow.consumed), dtype=pl.Int64).implode()
        rows = rows.filter(~pl.col("_i").is_in(consumed))
        rejects = rejects.filter(~pl.col("_i").is_in(consumed))
    rows = rows.sort("_i").select(
        (pl.col("_i") + 2).alias("_file_line"),
        # A file's own column called like one of ours is not a contract column: it is left out.
        *(pl.col(f).replace("", None).alias(name) for f, name in zip(fields, header) if name not in _OURS),
        "_raw_line",
    )
    rejects = rejects.sort("_i").join(frame.select("_i", "_text"), on="_i", how="left").select(
        (pl.col("_i") + 2).alias("_file_line"),
        pl.format("line {}: {}", pl.col("_i") + 2, pl.col("_why")).alias("_parse_error"),
        pl.col("_text").alias("_raw_line"),
    )
    return rows, rejects


def _wrong_count(expected: int, found: int) -> str:
    return f"expected {expected} columns, found {found} ({'missing' if found < expected else 'too many'} columns)"


def _unquote(value: pl.Expr) -> pl.Expr:
    inner = value.str.slice(1, value.str.len_chars() - 2).str.replace_all('""', '"', literal=True)
    return pl.when(value.str.starts_with(QUOTE)).then(inner).otherwise(value)


class _LineReader:
    """Reads the lines the vectorised pass could not, one by one, with Python's strict csv module."""

    def __init__(self, lines: list[str], delimiter: str, n_columns: int, quoted: np.ndarray, bad: set[int]) -> None:
        self.lines = lines
        self.delimiter = delimiter
        self.n = n_columns
        self.bad = bad
        # Lines a multi-line value must look at: those with a quote (they may close it) or bad bytes.
        self.stops = sorted(set(np.flatnonzero(quoted).tolist()) | bad)
        self.consumed: set[int] = set()
        self.row_i: list[int] = []
        self.row_fields: list[list[str]] = []
        self.row_raw: list[str | None] = []
        self.reject_i: list[int] = []
        self.reject_why: list[str] = []

    def read(self, i: int) -> None:
        if i in self.consumed:
            return
        body = self.lines[i].removesuffix("\r")
        try:
            records = list(csv.reader([body], delimiter=self.delimiter, strict=True))
        except csv.Error:
            records = None
        if records is not None:
            found = len(records[0]) if records else 0
            if found == self.n:
                self._row(i, records[0], None)
            else:
                self._reject(i, _wrong_count(self.n, found))
            return
        if not _ends_inside_quotes(body, False, self.delimiter):
            self._reject(i, "a quoted value is not closed properly (text right after its closing quote)")
            return
        self._read_multiline(i)

    def _read_multiline(self, i: int) -> None:
        """A quoted value open at the end of line i: the record may go on, if the result is one record."""
        position = bisect.bisect_right(self.stops, i)
        in_quotes = True
        while position < len(self.stops):
            j = self.stops[position]
            if j - i >= MAX_RECORD_LINES or j in self.bad:
                break
            body = self.lines[j].removesuffix("\r")
            in_quotes = _ends_inside_quotes(body, True, self.delimiter)
            if not in_quotes:
                raw = "\n".join(self.lines[i:j + 1]).removesuffix("\r")
                try:
                    records = list(csv.reader([raw], delimiter=self.delimiter, strict=True))
                except csv.Error:
                    records = []
                if len(records) == 1 and len(records[0]) == self.n:
                    self.consumed.update(range(i + 1, j + 1))
                    self._row(i, records[0], raw)
                    return
                break
            position += 1
        self._reject(
            i,
            "a quoted value opens on this line and is never closed (an unclosed quote); only this line "
            "was set aside and reading went on with the next line",
        )

    def _row(self, i: int, fields: list[str], raw: str | None) -> None:
        self.row_i.append(i)
        self.row_fields.append(fields)
        self.row_raw.append(raw)

    def _reject(self, i: int, why: str) -> None:
        self.reject_i.append(i)
        self.reject_why.append(why)


def _ends_inside_quotes(body: str, in_quotes: bool, delimiter: str) -> bool:
    """Whether a quoted value is still open at the end of the line (quotes open only at a value's start)."""
    start, unquoted, quoted, quote_seen = 0, 1, 2, 3
    state = quoted if in_quotes else start
    for char in body:
        if state == start:
            state = quoted if char == QUOTE else start if char == delimiter else unquoted
        elif state == unquoted:
            if char == delimiter:
                state = start
        elif state == quoted:
            if char == QUOTE:
                state = quote_seen
        elif char == QUOTE:
            state = quoted  # a doubled quote inside a quoted value
        else:
            state = start if char == delimiter else unquoted
    return state == quoted
