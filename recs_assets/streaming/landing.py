"""Land live events in the warehouse: read a batch from the broker, write it as Parquet, then acknowledge.

The order is what makes delivery at-least-once: a batch is acknowledged only after its file has been
renamed into place and fsync'ed, so a consumer killed before the acknowledgement gets the batch again
(see :meth:`Broker.read_group`) and lands it a second time. The copies are exact (same record, same
``event_id``), so staging counts them as duplicates and keeps one; nothing is lost and nothing doubled
in ``events``.

Landed files hold every field as the broker delivered it, as text: checking and typing is staging's
job, with the same rules as every other source (:func:`with_live_events` puts the two together).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

from recs_assets.contract import EVENTS_SCHEMA, RAW_PROVENANCE_SCHEMA
from recs_assets.streaming.broker import LIVE_RECORD_FIELDS, Broker, BrokerStatus, StreamEntry
from recs_assets.validation.casting import cast_to_contract

LANDING_CONSUMER = "warehouse-lander"
BATCH_SIZE = 5_000
SOURCE_PREFIX = "live:"
# Columns of a landed file besides the record's own fields.
LANDED_SCHEMA: dict[str, pl.DataType] = {
    "_stream_id": pl.String(),
    "_landed_at": pl.String(),
    **{name: pl.String() for name in LIVE_RECORD_FIELDS},
    "_extra": pl.String(),  # fields the record had beyond LIVE_RECORD_FIELDS, as JSON (a foreign producer)
}
# What the `live_events` raw asset holds: the contract's columns as text, the receipt and stream
# positions, and the provenance columns every raw table carries.
LIVE_RAW_SCHEMA: dict[str, pl.DataType] = {
    **{name: pl.String() for name in EVENTS_SCHEMA},
    "received_at": pl.String(),
    "_stream_id": pl.String(),
    "_landed_at": pl.String(),
    **RAW_PROVENANCE_SCHEMA,
}


@dataclass(frozen=True)
class LandedBatch:
    """One batch written and acknowledged (path None when there was nothing to read)."""

    path: Path | None
    ids: tuple[str, ...]  # stream ids
    event_ids: tuple[str | None, ...] = ()

    @property
    def events(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class LandingReport:
    """What a landing pass did, and how far behind the consumer group is afterwards."""

    files: tuple[Path, ...]
    events: int
    status: BrokerStatus


def landed_frame(entries: Sequence[StreamEntry], landed_at: datetime) -> pl.DataFrame:
    """The rows of one landed file, in stream order."""
    stamp = landed_at.astimezone(timezone.utc).isoformat(timespec="milliseconds")
    rows = []
    for entry in entries:
        extra = {k: v for k, v in entry.record.items() if k not in LIVE_RECORD_FIELDS}
        rows.append(
            {
                "_stream_id": entry.id,
                "_landed_at": stamp,
                **{name: entry.record.get(name) for name in LIVE_RECORD_FIELDS},
                "_extra": json.dumps(extra, sort_keys=True) if extra else None,
            }
        )
    return pl.DataFrame(rows, schema=LANDED_SCHEMA, orient="row")


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_landed(entries: Sequence[StreamEntry], landing_dir: Path, landed_at: datetime | None = None) -> Path:
    """Write a batch as one Parquet file, atomically and durably (temp file, fsync, rename, fsync folder).

    Named by the first entry's stream id (files sort in arrival order) and a random suffix: a batch
    landed twice after a crash makes two files, never a half-overwritten one.
    """
    if not entries:
        raise ValueError("an empty batch is not landed")
    landed_at = landed_at or datetime.now(timezone.utc)
    landing_dir = Path(landing_dir)
    landing_dir.mkdir(parents=True, exist_ok=True)
    ms, _, seq = entries[0].id.partition("-")
    name = f"live-{int(ms):013d}-{int(seq or 0):06d}-{uuid.uuid4().hex[:8]}.parquet"
    path = landing_dir / name
    tmp = landing_dir / f".{name}.tmp"
    try:
        landed_frame(entries, landed_at).write_parquet(tmp, compression="zstd")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(landing_dir)
    return path


def land_batch(
    broker: Broker,
    landing_dir: Path,
    *,
    consumer: str = LANDING_CONSUMER,
    count: int = BATCH_SIZE,
    block_ms: int | None = None,
) -> LandedBatch:
    """Read up to `count` entries for `consumer`, land them as one file, then acknowledge them."""
    entries = broker.read_group(consumer, count, block_ms)
    if not entries:
        return LandedBatch(None, ())
    path = write_landed(entries, landing_dir)
    ids = tuple(e.id for e in entries)
    broker.ack(ids)
    return LandedBatch(path, ids, tuple(e.record.get("event_id") for e in entries))


def land_available(
    broker: Broker, landing_dir: Path, *, consumer: str = LANDING_CONSUMER, count: int = BATCH_SIZE
) -> LandingReport:
    """Land batches until the broker has nothing more for the consumer; what was landed and the lag after."""
    files, events = [], 0
    while True:
        batch = land_batch(broker, landing_dir, consumer=consumer, count=count)
        if batch.path is None:
            break
        files.append(batch.path)
        events += batch.events
    return LandingReport(tuple(files), events, broker.status())


def landed_files(landing_dir: Path) -> list[Path]:
    """Every landed file, oldest first."""
    folder = Path(landing_dir)
    return sorted(folder.glob("live-*.parquet")) if folder.is_dir() else []


def live_raw_events(landing_dir: Path) -> pl.DataFrame:
    """Every landed live event, as it arrived (text), with provenance: `_source` = ``live:<file>``, `_line`
    = its row in that file. Zero rows (with the same columns) when nothing has landed."""
    frames = []
    for path in landed_files(landing_dir):
        landed = pl.read_parquet(path)
        missing = [c for c in LANDED_SCHEMA if c not in landed.columns]
        if missing:
            raise ValueError(f"{path} is not a landed live-events file: columns {missing} are missing")
        frames.append(
            landed.with_columns(
                pl.lit(SOURCE_PREFIX + path.name).alias("_source"),
                pl.int_range(1, landed.height + 1, dtype=pl.Int64).alias("_line"),
                pl.lit(None, dtype=pl.String).alias("_parse_error"),
                pl.lit(None, dtype=pl.String).alias("_raw_line"),
            )
        )
    if not frames:
        return pl.DataFrame(schema=LIVE_RAW_SCHEMA)
    landed = pl.concat(frames, how="vertical")
    return landed.select(
        [pl.col(c).cast(t) if c in landed.columns else pl.lit(None, dtype=t).alias(c) for c, t in LIVE_RAW_SCHEMA.items()]
    )


def with_live_events(raw_events: pl.DataFrame | pl.LazyFrame, live_events: pl.DataFrame) -> pl.DataFrame | pl.LazyFrame:
    """The batch raw events and the live ones as one raw table, for staging to check together.

    Together, so that every rule spans both (an event id a live event reuses from the batch is caught).
    Where the batch source delivers a column as text, the live text joins it unchanged and staging
    reads both alike; where it is typed (the simulator), the live text is read with the contract's own
    casting, and a value that cannot be read marks its row unparseable (`_parse_error` names the value,
    `_raw_line` keeps the record as it came), so staging quarantines it with that reason.
    A lazy scan of the batch gives a lazy result (the reconcile check reads it column by column).
    """
    if live_events.height == 0:
        return raw_events
    schema = raw_events.collect_schema()
    text_cols = [c for c in EVENTS_SCHEMA if schema.get(c, pl.String) == pl.String]
    typed_cols = [c for c in EVENTS_SCHEMA if c not in text_cols]
    if typed_cols:
        typed, errors = cast_to_contract(live_events.select(typed_cols), {c: EVENTS_SCHEMA[c] for c in typed_cols})
    else:
        typed, errors = pl.DataFrame(), pl.repeat(None, live_events.height, dtype=pl.String, eager=True)
    record = pl.struct([pl.col(c) for c in (*EVENTS_SCHEMA, "received_at") if c in live_events.columns])
    raw_line = live_events.select(record.struct.json_encode()).to_series()
    live = live_events.select(pl.col(c) for c in text_cols).with_columns(
        *[typed[c].cast(schema[c], strict=False) for c in typed_cols],
        live_events["_source"],
        live_events["_line"],
        (pl.lit("live event with unreadable values: ") + pl.lit(errors)).alias("_parse_error"),
        pl.when(errors.is_not_null()).then(raw_line).otherwise(None).alias("_raw_line"),
    )
    live = live.select([c for c in schema.names() if c in live.columns])
    return pl.concat([raw_events, live.lazy() if isinstance(raw_events, pl.LazyFrame) else live], how="diagonal")
