"""`events` and `events_quarantine`: raw events checked, typed and de-duplicated; the rejects kept with reasons."""


from datetime import UTC, datetime, timedelta

import dagster as dg
import polars as pl

from recs_assets.metadata import events_metadata, preview
from recs_assets.profiling import reason_counts
from recs_assets.validation.quarantine import split_events
from recs_assets.validation.schemas import events_schema
from resources.marketplace_source import MarketplaceSource


class StagingConfig(dg.Config):
    """What counts as a plausible event time."""

    earliest_event_at: str = "1970-01-02T00:00:00+00:00"
    future_tolerance_hours: float = 24.0


def staging_schema(config: StagingConfig, source: MarketplaceSource, items: pl.DataFrame, users: pl.DataFrame):
    """The rules an event must meet in this run (its ids must exist; its time must be plausible)."""
    return events_schema(
        item_ids=items["item_id"],
        user_ids=users["user_id"],
        earliest_event_at=datetime.fromisoformat(config.earliest_event_at),
        latest_event_at=datetime.now(UTC) + timedelta(hours=config.future_tolerance_hours),
        require_timestamps=source.has_timestamps,
    )


@dg.multi_asset(
    outs={
        "events": dg.AssetOut(
            group_name="staging",
            description="Clean behaviour events: typed, de-duplicated and checked against the catalogue and user list; what every model learns from.",
            kinds={"parquet", "duckdb"},
        ),
        "events_quarantine": dg.AssetOut(
            group_name="staging",
            description="Every raw event that failed a rule, kept exactly as it came, with the reason; fix the source and re-run to recover them.",
            kinds={"parquet", "duckdb"},
        ),
    },
)
def stage_events(
    config: StagingConfig,
    source: MarketplaceSource,
    raw_events: pl.DataFrame,
    items: pl.DataFrame,
    users: pl.DataFrame,
):
    """Split raw events into clean `events` and `events_quarantine`; exact duplicates are counted and dropped."""
    split = split_events(raw_events, staging_schema(config, source, items, users))
    counts = {
        "raw_rows": dg.MetadataValue.int(raw_events.height),
        "clean_rows": dg.MetadataValue.int(split.clean.height),
        "quarantined_rows": dg.MetadataValue.int(split.quarantine.height),
        "duplicate_rows": dg.MetadataValue.int(split.duplicates),
    }
    yield dg.Output(split.clean, "events", metadata={**events_metadata(split.clean), **counts})
    yield dg.Output(
        split.quarantine,
        "events_quarantine",
        metadata={
            "rows": dg.MetadataValue.int(split.quarantine.height),
            "rows_by_rule": dg.MetadataValue.json(reason_counts(split.quarantine)),
            "preview": preview(split.quarantine.select("_reason", "_source", "_line", "event_id", "event_type", "event_at")),
            **counts,
        },
    )
