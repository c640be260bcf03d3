"""Turn raw values (text from a CSV, or already-typed columns) into the contract's types, row by row.

A value that cannot be read is never silently turned into a null: each row gets a message naming the
column and the value, so the row can be quarantined (events) or the load rejected (items, users).
"""

from __future__ import annotations

import polars as pl

# Accepted text forms of a timestamp; naive values are taken as UTC.
_AWARE_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z")
_NAIVE_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d",
)
_TRUE = ("true", "t", "1", "yes")
_FALSE = ("false", "f", "0", "no")
_SAMPLE_CHARS = 60


def _parse_text(text: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Parse a stripped text column into `dtype`; unreadable values become null."""
    if dtype == pl.String:
        return text
    if isinstance(dtype, pl.Datetime):
        iso = text.str.replace(r"Z$", "+00:00")
        aware = [
            iso.str.to_datetime(f, strict=False, time_unit="us", time_zone="UTC") for f in _AWARE_FORMATS
        ]
        naive = [
            iso.str.to_datetime(f, strict=False, time_unit="us").dt.replace_time_zone("UTC")
            for f in _NAIVE_FORMATS
        ]
        return pl.coalesce(*aware, *naive)
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
    if source == pl.Null:
        return col.cast(target)
    converted = col.cast(target, strict=False)
    if target.is_float():
        return pl.when(converted.is_finite()).then(converted).otherwise(None)
    return converted


def _describe(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.Datetime):
        return "timestamp (ISO 8601, UTC)"
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


def cast_or_raise(df: pl.DataFrame, schema: dict[str, pl.DataType], table: str) -> pl.DataFrame:
    """Cast a dimension table (items, users) to the contract, or raise naming each bad value.

    A catalogue with unreadable values is rejected whole rather than silently shrunk: a missing item
    would make every event that points at it look invalid.
    """
    typed, errors = cast_to_contract(df, schema)
    bad = errors.is_not_null()
    if bad.any():
        # Readers number data rows in `_line` (1 = first row after the header); else count here.
        numbers = df["_line"] if "_line" in df.columns else pl.int_range(1, df.height + 1, eager=True)
        rows = numbers.filter(bad)
        sample = "; ".join(
            f"row {row}: {message}" for row, message in zip(rows.head(5), errors.filter(bad).head(5))
        )
        raise ValueError(f"{table}: {int(bad.sum())} row(s) have values that cannot be read. {sample}")
    return typed
