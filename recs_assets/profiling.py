"""Plain summaries of a table, for the metadata people read in the Dagster UI."""

from __future__ import annotations

import re
from datetime import date

import polars as pl

# Values quoted in a quarantine reason, e.g. "price is negative ('-1.0')": drop them to count by rule.
_QUOTED_VALUE = re.compile(r" \('.*?'\)")


def events_profile(events: pl.DataFrame) -> dict[str, object]:
    """Rows, distinct users/items/sessions, the mix of event types and the date range."""
    if events.height == 0:
        return {"rows": 0, "users": 0, "items": 0, "sessions": 0, "event_type_mix": {}, "first_event_at": None, "last_event_at": None}
    mix = events.group_by("event_type").len().sort("len", descending=True)
    timed = events.schema["event_at"] != pl.String
    first = events["event_at"].min() if timed else None
    last = events["event_at"].max() if timed else None
    return {
        "rows": events.height,
        "users": events["user_id"].n_unique(),
        "items": events["item_id"].drop_nulls().n_unique(),
        "sessions": events["session_id"].drop_nulls().n_unique(),
        "event_type_mix": {str(t): int(n) for t, n in mix.iter_rows()},
        "first_event_at": first.isoformat() if first is not None else None,
        "last_event_at": last.isoformat() if last is not None else None,
    }


def reason_counts(quarantine: pl.DataFrame, top: int = 15) -> dict[str, int]:
    """How many quarantined rows broke each rule (a row breaking two rules counts for both)."""
    if quarantine.height == 0:
        return {}
    rules = (
        quarantine.select(pl.col("_reason").str.split("; ").alias("rule"))
        .explode("rule")
        .with_columns(pl.col("rule").str.replace_all(_QUOTED_VALUE.pattern, ""))
        .group_by("rule")
        .len()
        .sort(["len", "rule"], descending=[True, False])
        .head(top)
    )
    return {rule: int(n) for rule, n in rules.iter_rows()}


def split_by_day(events: pl.DataFrame, days: list[str]) -> dict[str, pl.DataFrame]:
    """One frame per requested UTC day (ISO date strings), each holding exactly that day's events.

    An event without a time could belong to no day and would be silently lost, so it is refused.
    """
    missing = events["event_at"].null_count()
    if missing:
        raise ValueError(f"{missing} event(s) have no event_at and cannot be put in a daily partition")
    keyed = events.with_columns(pl.col("event_at").dt.date().alias("_day"))
    return {d: keyed.filter(pl.col("_day") == date.fromisoformat(d)).drop("_day") for d in days}


def markdown_table(df: pl.DataFrame, rows: int = 5, width: int = 40) -> str:
    """A small Markdown preview of a frame (long values cut), for the UI."""
    head = df.head(rows)
    cols = head.columns
    cells = [[("" if v is None else str(v))[:width].replace("|", "\\|") for v in row] for row in head.iter_rows()]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)
