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

from recs_assets.contract import ANONYMOUS_USER_PREFIX, EVENTS_SCHEMA, RAW_PROVENANCE_SCHEMA
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


def _content_columns(raw: pl.DataFrame | pl.LazyFrame) -> list[str]:
    """A row's whole content as it came: two rows are exact duplicates when these are all equal."""
    names = raw.collect_schema().names()
    return [c for c in (*EVENTS_SCHEMA, "_raw_line", "_parse_error") if c in names]


def first_copies(raw: pl.DataFrame) -> pl.Series:
    """True for each row that is the first with its exact content (False for its later exact copies).

    Exact, and small in memory: rows are hashed first (8 bytes a row), and only the rows whose hash is
    shared are compared value by value. Comparing every row as a struct of all its columns, as the
    obvious one-liner does, costs about five times the frame (1.1 GB per 3M events).
    """
    columns = _content_columns(raw)
    if not raw.height:
        return pl.Series("first_copy", [], dtype=pl.Boolean)
    shared = raw.select(columns).hash_rows(seed=0).is_duplicated()
    first = pl.Series("first_copy", [True] * raw.height, dtype=pl.Boolean)
    rows = shared.arg_true()
    if rows.len():
        candidates = raw.select(columns)[rows]
        # Order is kept, so "first" among the candidates is the first in the batch.
        first = first.scatter(rows, candidates.select(pl.struct(columns).is_first_distinct()).to_series())
    return first


def key_anonymous_shoppers(events: pl.DataFrame) -> pl.DataFrame:
    """Give an event without a user but with a session to an anonymous shopper keyed by that session.

    `user_id` becomes ANONYMOUS_USER_PREFIX + session_id, so later layers can treat the session as a
    user and still tell anonymous shoppers apart. A blank (all-space) user or session counts as missing;
    an event with neither keeps a null user and is quarantined by the schema.
    """
    user, session = pl.col("user_id"), pl.col("session_id")
    no_user = user.is_null() | (user.str.strip_chars() == "")
    has_session = session.is_not_null() & (session.str.strip_chars() != "")
    return events.with_columns(
        pl.when(no_user & has_session)
        .then(pl.lit(ANONYMOUS_USER_PREFIX) + session)
        .when(no_user)
        .then(pl.lit(None, dtype=pl.String))
        .otherwise(user)
        .alias("user_id")
    )


def split_events(raw: pl.DataFrame, schema: pa.DataFrameSchema) -> EventsSplit:
    """Stage a raw batch: drop exact duplicates, quarantine what breaks a rule, keep the rest typed.

    Rules, in order: a line the reader could not parse; a value that cannot be read as its type; an
    event id already used by a different, earlier event (the first one wins); then every rule of the
    `schema` (see `validation.schemas.events_schema`). A row breaking several rules lists them all.
    An event with a session but no user is kept, keyed by its session (`key_anonymous_shoppers`).
    """
    typed, cast_errors = cast_to_contract(raw, EVENTS_SCHEMA)
    typed = key_anonymous_shoppers(typed)
    event_id = typed["event_id"]
    parse_error = raw["_parse_error"] if "_parse_error" in raw.columns else pl.repeat(None, raw.height, dtype=pl.String, eager=True)
    duplicate = ~first_copies(raw)
    # An exact duplicate shares its id with an earlier copy, so only non-duplicates can conflict.
    id_conflict = event_id.is_not_null() & ~event_id.is_first_distinct() & ~duplicate
    # An unparseable line has no values to judge: its parse error is the whole story.
    checkable = ~duplicate & ~id_conflict & parse_error.is_null()

    failures = schema_failures(schema, typed.filter(checkable))
    if failures[_ROW].null_count():
        # A table-level failure (a wrong type after casting) is a bug in this code, not bad data.
        raise RuntimeError(f"events: table-level schema failure: {failures['reason'].to_list()}")
    rule_errors = (
        failures.select(pl.arg_where(checkable, eager=True).gather(failures[_ROW]).alias(_ROW), "reason")
        .group_by(_ROW)
        .agg(pl.col("reason").unique(maintain_order=True).str.join("; "))
    )
    rule_error = pl.repeat(None, raw.height, dtype=pl.String, eager=True).scatter(
        rule_errors[_ROW], rule_errors["reason"]
    )
    id_error = pl.select(
        pl.when(id_conflict).then(pl.format("event_id '{}' already used by an earlier, different event", event_id))
    ).to_series()
    reason = pl.select(
        pl.concat_str([parse_error, cast_errors, id_error, rule_error], separator="; ", ignore_nulls=True)
        .replace("", None)
    ).to_series()
    rejected = ~duplicate & reason.is_not_null()
    # Only rejected rows are rendered as text: a full text copy of a large batch would double its memory.
    quarantine = _as_text(raw.filter(rejected)).with_columns(reason.filter(rejected).alias("_reason"))
    return EventsSplit(
        clean=typed.filter(~duplicate & reason.is_null()),
        quarantine=quarantine,
        duplicates=int(duplicate.sum()),
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



def _row_hash(columns: list[str]) -> pl.Expr:
    """One 64-bit hash of a row's content: equal rows always share it, unequal ones almost never do."""
    return pl.struct(columns).hash(seed=0)


def distinct_rows(raw: pl.DataFrame | pl.LazyFrame) -> int:
    """How many rows of a raw batch are distinct in their whole content (`first_copies(raw).sum()`).

    Takes a lazy scan of the lake as well as a frame: only the 8-byte row hashes are ever held for the
    whole batch (the streaming engine hashes it piece by piece), then the rows whose hash is shared are
    read back and compared value by value, so the count is exact. At 10M events this holds about 0.5
    GiB where the batch itself is 2.3.
    """
    lazy = raw.lazy()
    columns = _content_columns(lazy)
    hashes = lazy.select(_row_hash(columns).alias("_hash")).collect(engine="streaming")["_hash"]
    shared = hashes.is_duplicated()
    del hashes
    rows = shared.arg_true()
    if not rows.len():
        return shared.len()
    candidates = (
        lazy.select(columns).with_row_index(_ROW).filter(pl.col(_ROW).is_in(rows.implode())).drop(_ROW).collect()
    )
    # Order is kept, so the first among the candidates is the first in the batch, as in `first_copies`.
    repeats = rows.len() - int(candidates.select(pl.struct(columns).is_first_distinct().sum()).item())
    return shared.len() - repeats


def ids_landed_nowhere(raw_ids: pl.Series, landed: pl.Series, limit: int = 20) -> list[str]:
    """The first `limit` raw event ids (sorted) that are in neither the clean nor the quarantined events.

    Exact, by binary search in the sorted landed ids: at 10M ids a quarter of the memory and time of a
    hash set of the distinct raw ids.
    """
    raw_ids = raw_ids.cast(pl.String).drop_nulls()
    landed = landed.cast(pl.String).drop_nulls().sort()
    if landed.is_empty():
        lost = raw_ids
    else:
        at = landed.search_sorted(raw_ids, side="left").clip(0, landed.len() - 1)
        lost = raw_ids.filter(landed.gather(at) != raw_ids)
    return lost.unique().sort().head(limit).to_list()


def reconcile(raw: pl.DataFrame | pl.LazyFrame, clean: pl.DataFrame, quarantine: pl.DataFrame) -> Reconciliation:
    """Account for every raw row, counting exact duplicates independently of `split_events`.

    `raw` may be a lazy scan of the lake: then neither it nor its event ids are held whole beside the
    others' (only `clean` and `quarantine`'s `event_id` columns are read).
    """
    lazy = raw.lazy()
    raw_ids = lazy.select("event_id").collect()["event_id"]
    lost = ids_landed_nowhere(raw_ids, pl.concat([clean["event_id"].cast(pl.String), quarantine["event_id"].cast(pl.String)]))
    raw_rows = raw_ids.len()
    del raw_ids
    return Reconciliation(
        raw_rows=raw_rows,
        clean_rows=clean.height,
        quarantined_rows=quarantine.height,
        duplicate_rows=raw_rows - distinct_rows(lazy),
        lost_event_ids=lost,
    )


def invalid_share(clean_rows: int, quarantined_rows: int) -> float:
    """Quarantined rows as a share of the distinct rows received (0 for an empty batch)."""
    distinct = clean_rows + quarantined_rows
    return quarantined_rows / distinct if distinct else 0.0
