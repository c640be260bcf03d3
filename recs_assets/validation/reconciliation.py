"""Did every record of the source land somewhere? Checked against a count the parser had no hand in.

`raw = clean + quarantined + duplicates` alone cannot catch a reader that merges lines: an unclosed
quote that swallows a thousand rows into one quarantined row still balances. So the raw rows are also
compared with the source's own count of its records, taken without parsing (for a CSV file: its
non-empty data lines; for Parquet: the row count in the file). Each raw row accounts for one source
line, or, when `_raw_line` holds its text (a value spanning lines, or an unreadable line), for the
non-empty lines of that text.
"""

from __future__ import annotations

import re

import polars as pl

from recs_assets.contract import RAW_PROVENANCE_SCHEMA
from recs_assets.validation.quarantine import Reconciliation, reconcile

_LINE_PREFIX = re.compile(r"^line (\d+):")
_MAX_LISTED = 5


def source_lines_per_row(raw: pl.DataFrame) -> pl.Series:
    """How many non-empty source lines each raw row stands for (1 unless `_raw_line` spans several)."""
    if "_raw_line" not in raw.columns:
        return pl.repeat(1, raw.height, dtype=pl.Int64, eager=True).alias("source_lines")
    pieces = pl.col("_raw_line").str.split("\n").list.eval(
        (pl.element().str.strip_suffix("\r") != "").cast(pl.Int64)
    ).list.sum()
    return raw.select(
        pl.when(pl.col("_raw_line").is_null()).then(1).otherwise(pl.max_horizontal(pieces, 1)).cast(pl.Int64)
        .alias("source_lines")
    ).to_series()


def reconcile_with_source(
    raw: pl.DataFrame | pl.LazyFrame, clean: pl.DataFrame, quarantine: pl.DataFrame, source_records: int | None,
    reconciliation: Reconciliation | None = None,
) -> tuple[bool, str, list[str]]:
    """Every raw row has a home, and the raw rows cover exactly the records the source holds.

    `source_records` is the source's independent count (see `MarketplaceSource.expected_raw_rows`),
    None when there is none (the simulator; an adapter that does not count its records): then only the
    row balance and event ids are checked.
    Returns (passed, a one-paragraph description, the problems found, one line each). `reconciliation`:
    `reconcile(raw, clean, quarantine)` when the caller has it already (at 10M events it takes seconds).
    `raw` may be a lazy scan of the lake: past the balance, only its provenance columns are read.
    """
    r = reconciliation if reconciliation is not None else reconcile(raw, clean, quarantine)
    names = raw.collect_schema().names()
    raw = raw.lazy().select([c for c in RAW_PROVENANCE_SCHEMA if c in names]).collect()
    if not raw.width:  # no provenance at all: a frame of the right height, for the counts below
        raw = pl.DataFrame({"_rows": pl.repeat(None, r.raw_rows, dtype=pl.Null, eager=True)})
    problems: list[str] = []
    gap = r.raw_rows - (r.clean_rows + r.quarantined_rows + r.duplicate_rows)
    if gap:
        problems.append(
            f"{gap:,} raw row(s) unaccounted for: raw {r.raw_rows:,} but clean {r.clean_rows:,} + "
            f"quarantined {r.quarantined_rows:,} + duplicates {r.duplicate_rows:,}"
        )
    if r.lost_event_ids:
        problems.append(f"event ids in raw_events that landed nowhere: {r.lost_event_ids[:_MAX_LISTED]}")

    lines = source_lines_per_row(raw)
    problems += _merged_unreadable_rows(raw, lines)
    problems += _lines_claimed_twice(raw)
    covered = int(lines.sum()) if raw.height else 0
    balance = (
        f"raw {r.raw_rows:,} = clean {r.clean_rows:,} + quarantined {r.quarantined_rows:,} "
        f"+ duplicates {r.duplicate_rows:,}"
    )
    if source_records is None:
        source_text = "no independent count of the source's records to compare with (the simulator, or a source whose reader does not count them)"
    else:
        source_text = f"source records {source_records:,}, raw rows account for {covered:,}"
        if covered != source_records:
            missing = source_records - covered
            what = f"{missing:,} missing" if missing > 0 else f"{-missing:,} more than the source holds"
            problems.append(
                f"the source holds {source_records:,} record(s) but raw_events accounts for {covered:,} "
                f"({what}){_largest_gap(raw) if missing > 0 else ''}"
            )
    description = f"{balance}; {source_text}."
    if problems:
        description = "; ".join(problems) + ". " + description
    return not problems, description, problems


def _location(parse_error: str | None, line: int | None, source: str | None) -> str:
    match = _LINE_PREFIX.match(parse_error or "")
    where = f"line {match.group(1)}" if match else f"_line {line}"
    return f"{source}, {where}" if source else where


def _merged_unreadable_rows(raw: pl.DataFrame, lines: pl.Series) -> list[str]:
    """Unreadable rows whose raw text spans several lines: a broken quote that took the next lines."""
    if "_parse_error" not in raw.columns:
        return []
    merged = raw.with_columns(lines).filter(pl.col("_parse_error").is_not_null() & (pl.col("source_lines") > 1))
    problems = []
    for row in merged.head(_MAX_LISTED).iter_rows(named=True):
        where = _location(row["_parse_error"], row.get("_line"), row.get("_source"))
        problems.append(
            f"{where}: one unreadable row holds {row['source_lines']:,} lines of the source; a quote that is "
            "never closed probably swallowed the rows after it"
        )
    if merged.height > _MAX_LISTED:
        problems.append(f"... and {merged.height - _MAX_LISTED:,} more unreadable rows spanning several lines")
    return problems


def _physical_span() -> pl.Expr:
    """Lines a row occupies in its file, blank ones included: 1 + the line breaks in its raw text."""
    return (1 + pl.col("_raw_line").str.count_matches("\n").fill_null(0)).cast(pl.Int64)


def _lines_claimed_twice(raw: pl.DataFrame) -> list[str]:
    """Two rows starting on the same line, or a row starting inside the lines of the one before."""
    if "_line" not in raw.columns or raw.height == 0:
        return []
    source = pl.col("_source") if "_source" in raw.columns else pl.lit("")
    rows = raw.select(
        source.alias("_src"),
        pl.col("_line"),
        _physical_span().alias("_span") if "_raw_line" in raw.columns else pl.lit(1, dtype=pl.Int64).alias("_span"),
    ).drop_nulls("_line").sort("_src", "_line")
    clash = rows.with_columns(
        (pl.col("_line") + pl.col("_span") - 1).shift(1).over("_src").alias("_prev_end")
    ).filter(pl.col("_line") <= pl.col("_prev_end"))
    if clash.is_empty():
        return []
    examples = clash.select("_src", "_line").head(_MAX_LISTED).rows()
    shown = ", ".join(f"{src + ' ' if src else ''}_line {line}" for src, line in examples)
    return [f"{clash.height:,} raw row(s) claim source lines another row already holds (e.g. {shown})"]


def _largest_gap(raw: pl.DataFrame) -> str:
    """Where the biggest stretch of source lines with no row is: a hint for finding the lost records."""
    if "_line" not in raw.columns or raw.height == 0:
        return ""
    span = _physical_span() if "_raw_line" in raw.columns else pl.lit(1, dtype=pl.Int64)
    rows = raw.select("_line", span.alias("_span")).drop_nulls("_line").sort("_line")
    gaps = rows.with_columns(
        (pl.col("_line").shift(-1) - (pl.col("_line") + pl.col("_span"))).alias("_gap")
    ).filter(pl.col("_gap") > 0)
    if gaps.is_empty():
        return f"; the last row starts at _line {rows['_line'][-1]:,}, look after it"
    worst = gaps.sort("_gap", descending=True).row(0, named=True)
    return f"; the largest stretch with no row is {worst['_gap']:,} line(s) after _line {worst['_line']:,}"
