"""The `ingest` group: raw_events (one Parquet file per day), items and users, as the source delivered them.

The blocking checks on the catalogue and the user table stop staging when a dimension table is broken.
"""

import dagster as dg
import polars as pl

from recs_assets.defs.common import events_metadata, load_or_fail, preview, schema_check_result
from recs_assets.profiling import split_by_day
from recs_assets.validation.schemas import items_schema, users_schema
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


@dg.asset(group_name="ingest", kinds={"parquet", "duckdb"})
def items(source: MarketplaceSource) -> dg.Output[pl.DataFrame]:
    """The catalogue: every item (game title, listing) with its category, brand, price and whether it can still be sold.

    A catalogue with unreadable values is rejected whole, with the bad values named: a silently
    missing item would make every event that points at it look invalid.
    """
    catalogue = load_or_fail("items", source.load_items)
    categories = catalogue.group_by("category").len().sort("len", descending=True).head(15)
    return dg.Output(
        catalogue,
        metadata={
            "rows": dg.MetadataValue.int(catalogue.height),
            "active_items": dg.MetadataValue.int(int(catalogue["is_active"].sum() or 0)),
            "categories": dg.MetadataValue.int(catalogue["category"].n_unique()),
            "items_per_category": dg.MetadataValue.json({str(c): int(n) for c, n in categories.iter_rows()}),
            "preview": preview(catalogue),
        },
    )


@dg.asset(group_name="ingest", kinds={"parquet", "duckdb"})
def users(source: MarketplaceSource) -> dg.Output[pl.DataFrame]:
    """Every known user with sign-up date, country and segment (used for cold-start fallbacks and reporting).

    A user table with unreadable values is rejected whole, with the bad values named.
    """
    people = load_or_fail("users", source.load_users)
    segments = people.group_by("segment").len().sort("len", descending=True).head(15)
    return dg.Output(
        people,
        metadata={
            "rows": dg.MetadataValue.int(people.height),
            "users_per_segment": dg.MetadataValue.json({str(s): int(n) for s, n in segments.iter_rows()}),
            "preview": preview(people),
        },
    )


@dg.asset_check(asset=items, blocking=True)
def items_match_schema(items: pl.DataFrame) -> dg.AssetCheckResult:
    """Every item has a unique id, a non-negative price and a known availability."""
    return schema_check_result(items_schema(), items, "items")


@dg.asset_check(asset=users, blocking=True)
def users_match_schema(users: pl.DataFrame) -> dg.AssetCheckResult:
    """Every user has a unique id."""
    return schema_check_result(users_schema(), users, "users")
