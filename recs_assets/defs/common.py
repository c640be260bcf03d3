"""Shared by the Dagster layer: plain summaries turned into UI metadata, and clear failures instead of tracebacks."""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg
import polars as pl

from recs_assets.profiling import events_profile, markdown_table


def preview(df: pl.DataFrame, rows: int = 5) -> dg.MetadataValue:
    return dg.MetadataValue.md(markdown_table(df, rows))


def events_metadata(events: pl.DataFrame) -> dict[str, dg.RawMetadataValue]:
    """Rows, users, items, sessions, event-type mix, date range and a preview."""
    profile = events_profile(events)
    return {
        "rows": dg.MetadataValue.int(profile["rows"]),
        "users": dg.MetadataValue.int(profile["users"]),
        "items": dg.MetadataValue.int(profile["items"]),
        "sessions": dg.MetadataValue.int(profile["sessions"]),
        "event_type_mix": dg.MetadataValue.json(profile["event_type_mix"]),
        "first_event_at": dg.MetadataValue.text(str(profile["first_event_at"])),
        "last_event_at": dg.MetadataValue.text(str(profile["last_event_at"])),
        "preview": preview(events),
    }


def schema_check_result(schema, df: pl.DataFrame, table: str) -> dg.AssetCheckResult:
    """Run a Pandera schema on a table; on failure, name each column and rule, with counts and sample rows."""
    # Imported here so that the presentation helpers above stay cheap to import.
    from recs_assets.validation.quarantine import schema_failures
    from recs_assets.validation.report import failing_rows, failures_by_rule

    failures = schema_failures(schema, df)
    if failures.height == 0:
        return dg.AssetCheckResult(
            passed=True,
            description=f"{table}: all {df.height:,} rows obey every rule",
            metadata={"rows_checked": dg.MetadataValue.int(df.height), "rules_broken": dg.MetadataValue.int(0)},
        )
    by_rule = failures_by_rule(failures)
    worst = by_rule.row(0, named=True)
    return dg.AssetCheckResult(
        passed=False,
        description=(
            f"{table}: {failures['_row'].n_unique()} row(s) break {by_rule.height} rule(s); "
            f"worst: {worst['rule']} ({worst['rows']} rows, e.g. {worst['example']})"
        ),
        metadata={
            "rows_checked": dg.MetadataValue.int(df.height),
            "rules_broken": dg.MetadataValue.int(by_rule.height),
            "failures_by_rule": dg.MetadataValue.md(markdown_table(by_rule, rows=20, width=80)),
            "sample_rows": dg.MetadataValue.md(markdown_table(failing_rows(failures, df), rows=5)),
        },
    )


def load_or_fail(table: str, load: Callable[[], pl.DataFrame]) -> pl.DataFrame:
    """Call a source loader; a bad or missing input file fails the step with the loader's message."""
    try:
        return load()
    except (ValueError, FileNotFoundError) as error:
        raise dg.Failure(description=f"{table} could not be loaded: {error}") from None
