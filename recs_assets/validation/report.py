"""Summaries of broken rules that a person can act on: which column, which rule, how many, which rows."""

from __future__ import annotations

import polars as pl


def failures_by_rule(failures: pl.DataFrame) -> pl.DataFrame:
    """One row per (column, rule) with how many rows break it and one example, worst first."""
    return (
        failures.group_by("column", "rule")
        .agg(pl.len().alias("rows"), pl.col("reason").first().alias("example"))
        .sort(["rows", "column", "rule"], descending=[True, False, False])
    )


def failing_rows(failures: pl.DataFrame, df: pl.DataFrame, limit: int = 5) -> pl.DataFrame:
    """The first few offending rows of `df`, each with every rule it breaks."""
    reasons = (
        failures.drop_nulls("_row")
        .group_by("_row")
        .agg(pl.col("reason").str.join("; ").alias("_reason"))
        .sort("_row")
        .head(limit)
    )
    rows = df.with_row_index("_row").with_columns(pl.col("_row").cast(pl.Int64))
    return reasons.join(rows, on="_row", how="left").select([*df.columns, "_reason"])
