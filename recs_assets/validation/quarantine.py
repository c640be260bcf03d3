"""Sort a raw batch of events into clean rows, quarantined rows (with the reason) and exact duplicates.

Nothing is lost: every raw row ends up in exactly one of the three, so
`raw rows = clean + quarantined + duplicates` always holds. Quarantined rows keep their values as they
came (as text), so a person can read them and fix the source.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaErrors

from recs_assets.contract import EVENTS_SCHEMA, RAW_PROVENANCE_SCHEMA
from recs_assets.validation.casting import cast_to_contract

QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    **{name: pl.String() for name in EVENTS_SCHEMA},
    **RAW_PROVENANCE_SCHEMA,
    "_reason": pl.String(),
}
_ROW = "_row"


@dataclass(frozen=True)
class EventsSplit:
    """The outcome of staging one batch of raw events."""

    clean: pl.DataFrame
    quarantine: pl.DataFrame
    duplicates: int

    @property
    def raw_rows(self) -> int:
        return self.clean.height + self.quarantine.height + self.duplicates


def schema_failures(schema: pa.DataFrameSchema, df: pl.DataFrame) -> pl.DataFrame:
    """Every rule a frame breaks, one row per (row, rule).

    Columns: `_row` (position in `df`; null when the failure concerns the whole table, such as a wrong
    column type), `column`, `rule` (a readable sentence) and `reason` (the rule with the offending value).
    """
    empty = pl.DataFrame(schema={_ROW: pl.Int64, "column": pl.String, "rule": pl.String, "reason": pl.String})
    try:
        schema.validate(df, lazy=True)
    except SchemaErrors as errors:
        cases = errors.failure_cases
    else:
        return empty
    column = pl.col("column").fill_null("")
    check = pl.col("check").cast(pl.String)
    value = pl.col("failure_case").cast(pl.String).str.slice(0, 60).fill_null("null")
    row_wide = pl.col("schema_context") == "DataFrameSchema"
    rule = (
        pl.when(check == "not_nullable")
        .then(pl.format("{} is missing", column))
        .when(check == "field_uniqueness")
        .then(pl.format("{} is not unique", column))
        # Checks we named carry a sentence as their `check`; pandera's built-ins need the column.
        .when(check.str.contains(" ") | row_wide)
        .then(check)
        .otherwise(pl.format("{}: {}", column, check))
    )
    # A row-wise rule's failure case is the whole row: too long to repeat in the reason.
    show_value = ~row_wide & (check != "not_nullable")
    return cases.select(
        pl.col("index").cast(pl.Int64).alias(_ROW),
        column.alias("column"),
        rule.alias("rule"),
        pl.when(show_value).then(pl.format("{} ('{}')", rule, value)).otherwise(rule).alias("reason"),
    )


def _as_text(raw: pl.DataFrame) -> pl.DataFrame:
    """The contract's columns exactly as they came, rendered as text, plus provenance."""
    exprs = []
    for name, dtype in QUARANTINE_SCHEMA.items():
        if name == "_reason":
            continue
        if name in raw.columns:
            exprs.append(pl.col(name).cast(dtype).alias(name))
        else:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
    return raw.select(exprs)


def split_events(raw: pl.DataFrame, schema: pa.DataFrameSchema) -> EventsSplit:
    """Stage a raw batch: drop exact duplicates, quarantine what breaks a rule, keep the rest typed.

    Rules, in order: a line the reader could not parse; a value that cannot be read as its type; an
    event id already used by a different, earlier event (the first one wins); then every rule of the
    `schema` (see `validation.schemas.events_schema`). A row breaking several rules lists them all.
    """
    text = _as_text(raw)
    typed, cast_errors = cast_to_contract(raw, EVENTS_SCHEMA)
    content = pl.struct([*EVENTS_SCHEMA, "_raw_line", "_parse_error"])
    flags = text.select(
        (~content.is_first_distinct()).alias("duplicate"),
        # An exact duplicate shares its id with an earlier copy, so only non-duplicates can conflict.
        (pl.col("event_id").is_not_null() & ~pl.col("event_id").is_first_distinct() & content.is_first_distinct())
        .alias("id_conflict"),
    )
    # An unparseable line has no values to judge: its parse error is the whole story.
    checkable = ~flags["duplicate"] & ~flags["id_conflict"] & text["_parse_error"].is_null()

    failures = schema_failures(schema, typed.filter(checkable))
    if failures[_ROW].null_count():
        # A table-level failure (a wrong type after casting) is a bug in this code, not bad data.
        raise RuntimeError(f"events: table-level schema failure: {failures['reason'].to_list()}")
    original_row = pl.arg_where(checkable, eager=True).cast(pl.Int64)
    rule_errors = (
        failures.select(original_row.gather(failures[_ROW]).alias(_ROW), "reason")
        .group_by(_ROW)
        .agg(pl.col("reason").unique(maintain_order=True).str.join("; ").alias("rule_error"))
    )
    staged = (
        text.with_columns(
            flags["duplicate"].alias("_duplicate"),
            cast_errors.alias("_cast_error"),
            pl.when(flags["id_conflict"])
            .then(pl.format("event_id '{}' already used by an earlier, different event", pl.col("event_id")))
            .alias("_id_error"),
        )
        .with_row_index(_ROW)
        .with_columns(pl.col(_ROW).cast(pl.Int64))
        .join(rule_errors, on=_ROW, how="left", maintain_order="left")
        .with_columns(
            pl.concat_str(
                ["_parse_error", "_cast_error", "_id_error", "rule_error"], separator="; ", ignore_nulls=True
            )
            .replace("", None)
            .alias("_reason")
        )
    )
    is_clean = staged.select(~pl.col("_duplicate") & pl.col("_reason").is_null()).to_series()
    quarantine = staged.filter(~pl.col("_duplicate") & pl.col("_reason").is_not_null())
    return EventsSplit(
        clean=typed.filter(is_clean),
        quarantine=quarantine.select(list(QUARANTINE_SCHEMA)),
        duplicates=int(flags["duplicate"].sum()),
    )


@dataclass(frozen=True)
class Reconciliation:
    """Does every raw row have a home? `raw = clean + quarantined + duplicates`, and no event id is lost."""

    raw_rows: int
    clean_rows: int
    quarantined_rows: int
    duplicate_rows: int
    lost_event_ids: list[str]

    @property
    def balanced(self) -> bool:
        return (
            self.raw_rows == self.clean_rows + self.quarantined_rows + self.duplicate_rows
            and not self.lost_event_ids
        )



def reconcile(raw: pl.DataFrame, clean: pl.DataFrame, quarantine: pl.DataFrame) -> Reconciliation:
    """Account for every raw row, counting exact duplicates independently of `split_events`."""
    text = _as_text(raw)
    distinct = text.select([*EVENTS_SCHEMA, "_raw_line", "_parse_error"]).n_unique() if raw.height else 0
    landed = pl.concat([clean.select("event_id"), quarantine.select("event_id")])["event_id"]
    lost = text.select("event_id").drop_nulls().unique().filter(~pl.col("event_id").is_in(landed.implode()))
    return Reconciliation(
        raw_rows=raw.height,
        clean_rows=clean.height,
        quarantined_rows=quarantine.height,
        duplicate_rows=raw.height - distinct,
        lost_event_ids=sorted(lost["event_id"].head(20).to_list()),
    )


def invalid_share(clean_rows: int, quarantined_rows: int) -> float:
    """Quarantined rows as a share of the distinct rows received (0 for an empty batch)."""
    distinct = clean_rows + quarantined_rows
    return quarantined_rows / distinct if distinct else 0.0
