"""Turn raw values (text from a CSV, or already-typed columns) into the contract's types, row by row.

A value that cannot be read is never silently turned into a null: each row gets a message naming the
column and the value, so the row can be quarantined (events) or the load rejected (items, users).
"""

from __future__ import annotations

import polars as pl

# Accepted text forms of a timestamp, after normalising: "Z", " UTC" and "+02" become "+00:00"/"+02:00",
# and a space between date and time becomes "T". Values without an offset are taken as UTC.
_AWARE_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z")
_NAIVE_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d")
# Seconds since 1970 (UTC), as exported by databases and logs: 9 or 10 digits (1973 to 2286), with an
# optional fraction. Milliseconds: 12 or 13 digits. Shorter numbers are refused rather than read as
# early 1970: "20240501" is far more likely a compact date than a time on 23 August 1970.
_EPOCH_SECONDS = r"^-?\d{9,10}(\.\d+)?$"
_EPOCH_MILLISECONDS = r"^-?\d{12,13}(\.\d+)?$"
# A number (Parquet, JSON) given for a timestamp: below this it is seconds, else milliseconds.
_EPOCH_MS_FROM = 1e11
_EPOCH_MS_UNTIL = 1e14
_TRUE = ("true", "t", "1", "yes")
_FALSE = ("false", "f", "0", "no")
_SAMPLE_CHARS = 60


def _parse_text(text: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Parse a stripped text column into `dtype`; unreadable values become null."""
    if dtype == pl.String:
        return text
    if isinstance(dtype, pl.Datetime):
        return _parse_timestamp_text(text)
    if dtype == pl.Boolean:
        lower = text.str.to_lowercase()
        return (
            pl.when(lower.is_in(_TRUE)).then(True).when(lower.is_in(_FALSE)).then(False).otherwise(None)
        )
    parsed = text.cast(dtype, strict=False)
    if dtype.is_float():
        # "nan" and "inf" parse as floats but are never a real price, rating or hour count.
        return pl.when(parsed.is_finite()).then(parsed).otherwise(None)
    return parsed


def _parse_timestamp_text(text: pl.Expr) -> pl.Expr:
    iso = (
        text.str.replace(r"(?i)(Z| ?UTC)$", "+00:00")
        .str.replace(r"(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)([+-]\d{2})$", "${1}${2}:00")
        .str.replace(r"^(\d{4}-\d{2}-\d{2}) ", "${1}T")
    )
    aware = [iso.str.to_datetime(f, strict=False, time_unit="us", time_zone="UTC") for f in _AWARE_FORMATS]
    naive = [
        iso.str.to_datetime(f, strict=False, time_unit="us").dt.replace_time_zone("UTC") for f in _NAIVE_FORMATS
    ]
    number = text.cast(pl.Float64, strict=False)
    epoch = (
        pl.when(text.str.contains(_EPOCH_SECONDS))
        .then(_from_epoch(number))
        .when(text.str.contains(_EPOCH_MILLISECONDS))
        .then(_from_epoch(number / 1000))
    )
    return pl.coalesce(*aware, *naive, epoch)


def _from_epoch(seconds: pl.Expr) -> pl.Expr:
    micros = (seconds * 1_000_000).round(0).cast(pl.Int64, strict=False)
    return pl.from_epoch(micros, time_unit="us").dt.replace_time_zone("UTC")


def _number_as_timestamp(col: pl.Expr) -> pl.Expr:
    """A number read as seconds (or, from 1e11 on, milliseconds) since 1970; others unreadable (null)."""
    value = col.cast(pl.Float64)
    magnitude = value.abs()
    return (
        pl.when(value.is_finite() & (magnitude < _EPOCH_MS_FROM))
        .then(_from_epoch(value))
        .when(value.is_finite() & (magnitude < _EPOCH_MS_UNTIL))
        .then(_from_epoch(value / 1000))
    )


def _convert(col: pl.Expr, source: pl.DataType, target: pl.DataType) -> pl.Expr:
    if source == target:
        return col
    if source == pl.String:
        return _parse_text(col.str.strip_chars().replace("", None), target)
    if isinstance(target, pl.Datetime) and isinstance(source, pl.Datetime):
        col = col.dt.cast_time_unit("us")
        if source.time_zone is None:
            return col.dt.replace_time_zone("UTC")
        return col.dt.convert_time_zone("UTC")
    if isinstance(target, pl.Datetime) and source == pl.Date:
        return col.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if isinstance(target, pl.Datetime) and source.is_numeric():
        return _number_as_timestamp(col)
    if source == pl.Null:
        return col.cast(target)
    converted = col.cast(target, strict=False)
    if target.is_float():
        return pl.when(converted.is_finite()).then(converted).otherwise(None)
    return converted


def _describe(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.Datetime):
        return "timestamp (ISO 8601, or seconds since 1970)"
    if dtype.is_float():
        return "number"
    if dtype.is_integer():
        return "whole number"
    if dtype == pl.Boolean:
        return "boolean (true/false)"
    return str(dtype)


def cast_to_contract(df: pl.DataFrame, schema: dict[str, pl.DataType]) -> tuple[pl.DataFrame, pl.Series]:
    """Cast the contract's columns of `df` to their types.

    Returns the typed frame (exactly the schema's columns; absent optional columns as nulls) and, per
    row, a message listing every value that could not be read (null where the row is fine), e.g.
    `price: 'abc' is not a number`.
    """
    typed, errors = [], []
    for name, target in schema.items():
        if name not in df.columns:
            typed.append(pl.lit(None, dtype=target).alias(name))
            continue
        source = df.schema[name]
        converted = _convert(pl.col(name), source, target)
        typed.append(converted.alias(name))
        if source == target:
            continue
        failed = pl.col(name).is_not_null() & converted.is_null()
        if source == pl.String:
            # Blank text is a missing value, not an unreadable one.
            failed = failed & (pl.col(name).str.strip_chars() != "")
        shown = pl.col(name).cast(pl.String).str.slice(0, _SAMPLE_CHARS)
        errors.append(
            pl.when(failed).then(
                pl.format(f"{name}: '{{}}' is not a valid {_describe(target)}", shown)
            )
        )
    out = df.select(typed)
    if not errors:
        return out, pl.Series("cast_error", [None] * df.height, dtype=pl.String)
    messages = df.select(pl.concat_str(errors, separator="; ", ignore_nulls=True).alias("cast_error"))
    return out, messages.to_series().replace("", None)


def cast_or_raise(
    df: pl.DataFrame, schema: dict[str, pl.DataType], table: str, line_offset: int | None = None
) -> pl.DataFrame:
    """Cast a dimension table (items, users) to the contract, or raise naming each bad value.

    A catalogue with unreadable values is rejected whole rather than silently shrunk: a missing item
    would make every event that points at it look invalid. With `line_offset`, rows are named by their
    line in the file (`_line` + offset, as an editor shows it) rather than by row number.
    """
    typed, errors = cast_to_contract(df, schema)
    bad = errors.is_not_null()
    if bad.any():
        # Readers number data rows in `_line` (1 = first row after the header); else count here.
        numbers = df["_line"] if "_line" in df.columns else pl.int_range(1, df.height + 1, eager=True)
        rows = numbers.filter(bad)
        label, offset = ("row", 0) if line_offset is None else ("line", line_offset)
        sample = "; ".join(
            f"{label} {row + offset}: {message}" for row, message in zip(rows.head(5), errors.filter(bad).head(5))
        )
        raise ValueError(f"{table}: {int(bad.sum())} row(s) have values that cannot be read. {sample}")
    return typed
