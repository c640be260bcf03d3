"""Blocking checks on `events`: nothing reaches features or models unless all three pass."""


import dagster as dg
import polars as pl

from recs_assets.metadata import preview, schema_check_result
from recs_assets.profiling import reason_counts
from recs_assets.validation.quarantine import invalid_share, reconcile
from recs_assets.validation.schemas import events_schema
from resources.marketplace_source import MarketplaceSource


class InvalidShareConfig(dg.Config):
    """The largest share of a batch that may be quarantined before the batch itself is judged broken."""

    max_invalid_share: float = 0.05


@dg.asset_check(
    asset="events",
    blocking=True,
    additional_ins={"items": dg.AssetIn("items"), "users": dg.AssetIn("users")},
)
def events_match_schema(
    source: MarketplaceSource, events: pl.DataFrame, items: pl.DataFrame, users: pl.DataFrame
) -> dg.AssetCheckResult:
    """Clean events obey every rule: unique ids, known users and items, valid types, prices and times."""
    schema = events_schema(
        item_ids=items["item_id"], user_ids=users["user_id"], require_timestamps=source.has_timestamps
    )
    return schema_check_result(schema, events, "events")


@dg.asset_check(
    asset="events",
    blocking=True,
    additional_ins={"raw_events": dg.AssetIn("raw_events"), "events_quarantine": dg.AssetIn("events_quarantine")},
)
def events_reconcile_with_raw(
    raw_events: pl.DataFrame, events: pl.DataFrame, events_quarantine: pl.DataFrame
) -> dg.AssetCheckResult:
    """Nothing was lost: raw rows = clean + quarantined + exact duplicates, and every raw event id landed somewhere."""
    r = reconcile(raw_events, events, events_quarantine)
    description = (
        f"raw {r.raw_rows:,} = clean {r.clean_rows:,} + quarantined {r.quarantined_rows:,} "
        f"+ duplicates {r.duplicate_rows:,}"
    )
    if not r.balanced:
        gap = r.raw_rows - (r.clean_rows + r.quarantined_rows + r.duplicate_rows)
        description = f"rows unaccounted for: {gap:,}; event ids lost: {r.lost_event_ids[:5]}. " + description
    return dg.AssetCheckResult(
        passed=r.balanced,
        description=description,
        metadata={
            "raw_rows": r.raw_rows,
            "clean_rows": r.clean_rows,
            "quarantined_rows": r.quarantined_rows,
            "duplicate_rows": r.duplicate_rows,
            "lost_event_ids": dg.MetadataValue.json(r.lost_event_ids),
        },
    )


@dg.asset_check(
    asset="events", blocking=True, additional_ins={"events_quarantine": dg.AssetIn("events_quarantine")}
)
def events_invalid_share_within_limit(
    config: InvalidShareConfig, events: pl.DataFrame, events_quarantine: pl.DataFrame
) -> dg.AssetCheckResult:
    """The share of quarantined events stays under the configured limit; above it the batch is treated as broken."""
    share = invalid_share(events.height, events_quarantine.height)
    distinct = events.height + events_quarantine.height
    return dg.AssetCheckResult(
        passed=share <= config.max_invalid_share,
        description=(
            f"{share:.2%} of {distinct:,} distinct raw events quarantined (limit {config.max_invalid_share:.2%})"
        ),
        metadata={
            "invalid_share": dg.MetadataValue.float(share),
            "max_invalid_share": dg.MetadataValue.float(config.max_invalid_share),
            "rows_by_rule": dg.MetadataValue.json(reason_counts(events_quarantine)),
            "sample_rows": preview(events_quarantine.select("_reason", "_source", "_line", "event_id", "event_type")),
        },
    )
