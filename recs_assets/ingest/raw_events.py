"""`raw_events`: behaviour exactly as the source delivered it, one Parquet file per day."""


import dagster as dg

from recs_assets.ingest.loading import load_or_fail
from recs_assets.metadata import events_metadata
from recs_assets.profiling import split_by_day
from resources.marketplace_source import MarketplaceSource


def build_raw_events(partitions_def: dg.PartitionsDefinition | None) -> dg.AssetsDefinition:
    """The raw_events asset, daily-partitioned when the source has event times, else one batch."""

    @dg.asset(
        name="raw_events",
        group_name="ingest",
        partitions_def=partitions_def,
        # A backfill of many days runs as one step, so the source is read once, not once per day.
        backfill_policy=dg.BackfillPolicy.single_run() if partitions_def else None,
        kinds={"parquet", "duckdb"},
    )
    def raw_events(context: dg.AssetExecutionContext, source: MarketplaceSource):
        """Every user action (impressions, views, carts, purchases, searches, ratings, plays) as it arrived, unedited.

        Nothing is fixed or dropped here; the `events` asset does the checking. Extra columns `_source`,
        `_line`, `_parse_error` and `_raw_line` trace each row back to where it came from.
        """
        raw = load_or_fail("raw_events", source.load_raw_events)
        metadata = {
            **events_metadata(raw),
            "source": dg.MetadataValue.text(source.label),
            "has_timestamps": dg.MetadataValue.bool(source.has_timestamps),
        }
        if not source.has_timestamps:
            metadata["note"] = dg.MetadataValue.text(
                "This source has no event times: later stages must split train/test without time."
            )
        if partitions_def is None:
            return dg.Output(raw, metadata=metadata)
        days = context.partition_keys
        by_day = split_by_day(raw, days)
        rows = {day: frame.height for day, frame in by_day.items()}
        metadata.update(
            {
                "rows": dg.MetadataValue.int(sum(rows.values())),
                "partitions": dg.MetadataValue.int(len(days)),
                "rows_per_day": dg.MetadataValue.json(rows),
            }
        )
        return dg.Output(by_day, metadata=metadata)

    return raw_events
