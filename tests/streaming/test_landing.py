"""Landing live events: write then acknowledge, a crash in between, and staging the landed rows with the
same rules as the batch source (exact copies dropped, bad values quarantined with a reason)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest

from recs_assets.contract import EVENTS_SCHEMA, RAW_PROVENANCE_SCHEMA
from recs_assets.streaming.landing import (
    LIVE_RAW_SCHEMA,
    land_available,
    land_batch,
    landed_files,
    live_raw_events,
    with_live_events,
    write_landed,
)
from recs_assets.streaming.redis_streams import RedisStreamsBroker
from recs_assets.validation.quarantine import reconcile, split_events
from recs_assets.validation.schemas import events_schema
from tests.streaming.broker_fixtures import broker_server  # noqa: F401  (fixture)

ITEMS = pl.Series(["i1", "i2", "i3"])
USERS = pl.Series(["u1", "u2"])


def live(event_id: str, item: str = "i1", **over) -> dict:
    return {
        "event_id": event_id,
        "user_id": "u1",
        "session_id": "s1",
        "item_id": item,
        "event_type": "view",
        "event_at": "2026-11-30T10:00:00+00:00",
        "received_at": "2026-11-30T10:00:01.000+00:00",
        **over,
    }


def batch_raw(typed: bool) -> pl.DataFrame:
    """Two batch events as the simulator (typed) or a CSV reader (text) delivers them."""
    frame = pl.DataFrame(
        {
            "event_id": ["b1", "b2"],
            "event_at": [datetime(2026, 11, 1, tzinfo=timezone.utc)] * 2,
            "user_id": ["u1", "u2"],
            "session_id": ["s0", "s0"],
            "item_id": ["i1", "i2"],
            "event_type": ["view", "purchase"],
        }
    ).with_columns(
        *[pl.lit(None, dtype=t).alias(c) for c, t in EVENTS_SCHEMA.items() if c not in ("event_id", "event_at", "user_id", "session_id", "item_id", "event_type")],
        pl.lit("simulator:games").alias("_source"),
        pl.int_range(1, 3, dtype=pl.Int64).alias("_line"),
        pl.lit(None, dtype=pl.String).alias("_parse_error"),
        pl.lit(None, dtype=pl.String).alias("_raw_line"),
    ).select([*EVENTS_SCHEMA, *RAW_PROVENANCE_SCHEMA])
    if typed:
        return frame.with_columns(pl.col(c).cast(t) for c, t in EVENTS_SCHEMA.items())
    return frame.with_columns(pl.col(c).cast(pl.String) for c in EVENTS_SCHEMA)


def stage(raw: pl.DataFrame):
    schema = events_schema(
        item_ids=ITEMS, user_ids=USERS, earliest_event_at=datetime(2000, 1, 1, tzinfo=timezone.utc),
        latest_event_at=datetime(2027, 1, 1, tzinfo=timezone.utc),
    )  # fmt: skip
    return split_events(raw, schema)


def test_a_batch_is_landed_then_acknowledged(tmp_path: Path, broker_server) -> None:
    broker = RedisStreamsBroker(broker_server.url)
    broker.publish([live("e1"), live("e2", "i2")])
    batch = land_batch(broker, tmp_path / "landing")
    assert batch.events == 2 and batch.path.parent == tmp_path / "landing"
    assert broker.status().pending == 0  # acknowledged after the file was in place
    landed = live_raw_events(tmp_path / "landing")
    assert landed.schema == pl.Schema(LIVE_RAW_SCHEMA)
    assert landed["event_id"].to_list() == ["e1", "e2"]
    assert landed["_source"].to_list() == [f"live:{batch.path.name}"] * 2 and landed["_line"].to_list() == [1, 2]
    assert landed["received_at"][0] == "2026-11-30T10:00:01.000+00:00"
    assert land_batch(broker, tmp_path / "landing").path is None  # nothing left
    assert not list((tmp_path / "landing").glob(".*.tmp"))


def test_a_crash_between_writing_and_acknowledging_lands_each_event_exactly_once_in_events(
    tmp_path: Path, broker_server
) -> None:
    landing = tmp_path / "landing"
    broker = RedisStreamsBroker(broker_server.url)
    broker.publish([live(f"e{n}", f"i{n % 3 + 1}") for n in range(6)])
    # Consumer A reads a batch and writes its file, then dies before acknowledging it.
    doomed = RedisStreamsBroker(broker_server.url)
    entries = doomed.read_group("lander-a", count=4)
    write_landed(entries, landing)
    doomed.close()
    # A new consumer claims A's batch (redelivery) and lands it again, then the rest.
    survivor = RedisStreamsBroker(broker_server.url, claim_idle_ms=0)
    report = land_available(survivor, landing, consumer="lander-b")
    assert report.events == 6 and report.status.pending == 0 and report.status.lag == 0
    assert len(landed_files(landing)) == 3  # the crashed copy, its redelivery, the rest
    raw_live = live_raw_events(landing)
    assert raw_live.height == 10  # four events landed twice

    for typed in (True, False):
        raw = with_live_events(batch_raw(typed), raw_live)
        split = stage(raw)
        ids = split.clean["event_id"].to_list()
        assert sorted(ids) == sorted(["b1", "b2"] + [f"e{n}" for n in range(6)]), typed
        assert split.duplicates == 4 and split.quarantine.height == 0
        r = reconcile(raw, split.clean, split.quarantine)
        assert r.balanced and r.raw_rows == 12 and r.duplicate_rows == 4
        # The reconcile check's way: the batch as a lazy scan, the live rows joined to it lazily.
        scanned = with_live_events(batch_raw(typed).lazy(), raw_live)
        assert isinstance(scanned, pl.LazyFrame) and scanned.collect().equals(raw)
        assert reconcile(scanned, split.clean, split.quarantine) == r
        at = split.clean.filter(pl.col("event_id") == "e0")["event_at"][0]
        assert at == datetime(2026, 11, 30, 10, tzinfo=timezone.utc)


def test_malformed_live_events_are_quarantined_with_a_reason(tmp_path: Path) -> None:
    # Published straight to the broker by some other producer: nothing at the edge checked them.
    from recs_assets.streaming.broker import StreamEntry

    bad = [
        StreamEntry("1-0", live("ok1")),
        StreamEntry("1-1", live("late", event_at="soon")),
        StreamEntry("1-2", live("ghost", item="i404")),
        StreamEntry("1-3", {**live("x"), "event_id": None}),
        StreamEntry("1-4", live("odd", event_type="like")),
        StreamEntry("1-5", live("b1")),  # reuses a batch event's id with other content
    ]
    write_landed(bad, tmp_path)
    for typed in (True, False):
        raw = with_live_events(batch_raw(typed), live_raw_events(tmp_path))
        split = stage(raw)
        assert sorted(split.clean["event_id"].to_list()) == ["b1", "b2", "ok1"]
        reasons = dict(zip(split.quarantine["event_id"].fill_null("<none>"), split.quarantine["_reason"]))
        assert set(reasons) == {"late", "ghost", "<none>", "odd", "b1"}
        assert "'soon'" in reasons["late"] and "timestamp" in reasons["late"]
        assert "item_id not found in items" in reasons["ghost"]
        assert "event_id is missing" in reasons["<none>"]
        assert "event_type not one of" in reasons["odd"]
        assert "already used by an earlier, different event" in reasons["b1"]
        assert set(split.quarantine["_source"].drop_nulls().str.slice(0, 5)) == {"live:"}
        assert reconcile(raw, split.clean, split.quarantine).balanced
    # The unreadable row keeps the record as it came.
    typed_raw = with_live_events(batch_raw(True), live_raw_events(tmp_path))
    kept = typed_raw.filter(pl.col("_parse_error").is_not_null())
    assert kept.height == 1 and '"event_at":"soon"' in kept["_raw_line"][0]


def test_nothing_landed_reads_as_an_empty_table_and_changes_nothing(tmp_path: Path) -> None:
    empty = live_raw_events(tmp_path / "never")
    assert empty.height == 0 and list(empty.columns) == list(LIVE_RAW_SCHEMA)
    raw = batch_raw(True)
    assert with_live_events(raw, empty) is raw


def test_a_foreign_file_in_the_landing_folder_is_refused(tmp_path: Path) -> None:
    pl.DataFrame({"a": [1]}).write_parquet(tmp_path / "live-0000000000001-000000-x.parquet")
    with pytest.raises(ValueError, match="is not a landed live-events file"):
        live_raw_events(tmp_path)
