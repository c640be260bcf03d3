"""The `staging` group: `events` and `events_quarantine`, raw events checked, typed and de-duplicated, the rejects kept with reasons.

Three blocking checks on `events`: nothing reaches features or models unless all pass.
"""


from datetime import UTC, datetime, timedelta

import dagster as dg
import polars as pl

from recs_assets.defs.common import events_metadata, preview, schema_check_result
from recs_assets.profiling import reason_counts
from recs_assets.streaming.landing import with_live_events
from recs_assets.validation.quarantine import invalid_share, reconcile, split_events
from recs_assets.validation.reconciliation import reconcile_with_source
from recs_assets.validation.schemas import events_schema
from resources.marketplace_source import MarketplaceSource


class StagingConfig(dg.Config):
    """What counts as a plausible event time."""

    earliest_event_at: str = "1970-01-02T00:00:00+00:00"
    future_tolerance_hours: float = 24.0


def events_have_time(source: MarketplaceSource, events: pl.DataFrame) -> bool:
    """Whether event times are required: the source has them, and the batch is not wholly without them.

    A file exported without times (every `event_at` empty) is an untimed dataset, not a batch of bad rows.
    """
    if not source.has_timestamps or "event_at" not in events.columns:
        return False
    column = events["event_at"]
    if column.dtype == pl.String:
        column = column.str.strip_chars().replace("", None)
    return column.null_count() < events.height


def staging_schema(config: StagingConfig, source: MarketplaceSource, raw_events: pl.DataFrame, items: pl.DataFrame, users: pl.DataFrame):
    """The rules an event must meet in this run (its ids must exist; its time must be plausible)."""
    return events_schema(
        item_ids=items["item_id"],
        user_ids=users["user_id"],
        earliest_event_at=datetime.fromisoformat(config.earliest_event_at),
        latest_event_at=datetime.now(UTC) + timedelta(hours=config.future_tolerance_hours),
        require_timestamps=events_have_time(source, raw_events),
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
    live_events: pl.DataFrame,
    items: pl.DataFrame,
    users: pl.DataFrame,
):
    """Split raw events (the batch source's and the live ones) into clean `events` and `events_quarantine`;
    exact duplicates (a live event landed twice) are counted and dropped."""
    raw_events = with_live_events(raw_events, live_events)
    split = split_events(raw_events, staging_schema(config, source, raw_events, items, users))
    counts = {
        "raw_rows": dg.MetadataValue.int(raw_events.height),
        "live_rows": dg.MetadataValue.int(live_events.height),
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
        item_ids=items["item_id"], user_ids=users["user_id"], require_timestamps=events_have_time(source, events)
    )
    return schema_check_result(schema, events, "events")


# Only the ids of the clean and quarantined events are read: the balance needs their counts and ids, and
# at 10M events the whole clean table beside the raw batch was the run's memory peak.
# The reader is the lake IO manager limited to event_id (resource key EVENT_IDS_READER in definitions).
EVENT_IDS_READER = "event_ids_reader"
# The raw batch reaches the reconcile check as a lazy scan of its Parquet partitions (resource key
# LAKE_SCANNER): the check streams row hashes and reads only the columns it counts, instead of holding
# every column of every raw event (2.3 GiB at 10M events, the run's memory peak).
LAKE_SCANNER = "lake_scanner"


@dg.multi_asset_check(
    specs=[dg.AssetCheckSpec(
        "events_reconcile_with_raw", asset="events", blocking=True,
        additional_deps=["raw_events", "live_events", "events_quarantine"],
    )],
    ins={
        "events": dg.AssetIn("events", input_manager_key=EVENT_IDS_READER),
        "raw_events": dg.AssetIn("raw_events", input_manager_key=LAKE_SCANNER),
        "live_events": dg.AssetIn("live_events"),
        "events_quarantine": dg.AssetIn("events_quarantine", input_manager_key=EVENT_IDS_READER),
    },
)
def events_reconcile_with_raw(
    source: MarketplaceSource,
    raw_events: pl.LazyFrame,
    events: pl.DataFrame,
    events_quarantine: pl.DataFrame,
    live_events: pl.DataFrame | None = None,
):
    """Nothing was lost: raw rows (batch and live) = clean + quarantined + exact duplicates, every raw event id
    landed somewhere, and the raw rows account for every record of the source file (and every landed live
    event), counted without its parser. The raw batch arrives as a lazy scan (a frame works too)."""
    expected = source.expected_raw_rows()
    if live_events is not None:  # None only when called outside a run (tests of the batch rules)
        expected = None if expected is None else expected + live_events.height
        raw_events = with_live_events(raw_events, live_events)
    r = reconcile(raw_events, events, events_quarantine)
    passed, description, problems = reconcile_with_source(raw_events, events, events_quarantine, expected, r)
    yield dg.AssetCheckResult(
        passed=passed,
        description=description,
        metadata={
            "raw_rows": r.raw_rows,
            "clean_rows": r.clean_rows,
            "quarantined_rows": r.quarantined_rows,
            "duplicate_rows": r.duplicate_rows,
            "lost_event_ids": dg.MetadataValue.json(r.lost_event_ids),
            "problems": dg.MetadataValue.json(problems),
        },
    )


# The clean events count here only by their rows: read through the id-only reader, not whole.
@dg.multi_asset_check(
    specs=[dg.AssetCheckSpec(
        "events_invalid_share_within_limit", asset="events", blocking=True, additional_deps=["events_quarantine"],
    )],
    ins={
        "events": dg.AssetIn("events", input_manager_key=EVENT_IDS_READER),
        "events_quarantine": dg.AssetIn("events_quarantine"),
    },
)
def events_invalid_share_within_limit(config: InvalidShareConfig, events: pl.DataFrame, events_quarantine: pl.DataFrame):
    """The share of quarantined events stays under the configured limit; above it the batch is treated as broken."""
    share = invalid_share(events.height, events_quarantine.height)
    distinct = events.height + events_quarantine.height
    yield dg.AssetCheckResult(
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
