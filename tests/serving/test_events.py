"""Posted live events: validated against the contract's live event types, stored one JSON line each."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from recs_assets.contract import LIVE_EVENT_TYPES
from recs_assets.layout import HomeLayout
from recs_assets.serving.events import Event, EventBatch, EventsWriter, event_record, events_file


def test_only_the_contracts_live_event_types_are_accepted() -> None:
    for kind in LIVE_EVENT_TYPES:
        assert Event(user_id="u", item_id="i", event_type=kind).event_type == kind
    with pytest.raises(ValidationError, match="'view', 'add_to_cart' or 'purchase'"):
        Event(user_id="u", item_id="i", event_type="impression")
    with pytest.raises(ValidationError, match="at least 1"):
        EventBatch(events=[])


def test_a_record_keeps_the_event_time_as_utc_or_uses_the_receipt_time() -> None:
    received = datetime(2026, 9, 20, 10, 0, 0, 123456, tzinfo=timezone.utc)
    naive = event_record(Event(user_id="u", item_id="i", event_type="view", event_at=datetime(2026, 1, 2, 3)), received)
    assert naive["event_at"] == "2026-01-02T03:00:00+00:00" and naive["received_at"] == "2026-09-20T10:00:00.123+00:00"
    plus2 = timezone(timedelta(hours=2))
    aware = event_record(Event(user_id="u", item_id="i", event_type="view", event_at=datetime(2026, 1, 2, 3, tzinfo=plus2)), received)
    assert aware["event_at"] == "2026-01-02T03:00:00+02:00"
    untimed = event_record(Event(user_id="u", item_id="i", event_type="purchase"), received)
    assert untimed["event_at"] == received.isoformat() and untimed["session_id"] is None


def test_the_writer_appends_one_line_per_event_to_the_days_file(tmp_path: Path) -> None:
    folder = HomeLayout(tmp_path).live_events
    writer = EventsWriter(folder)
    first = writer.write([Event(user_id="u1", item_id="a", event_type="view")])
    second = writer.write([Event(user_id="u2", item_id="b", event_type="add_to_cart"),
                           Event(user_id="u2", item_id="b", event_type="purchase")])
    assert first == second == events_file(folder, datetime.now(timezone.utc).date())
    lines = [json.loads(x) for x in first.read_text().splitlines()]
    assert [(x["user_id"], x["event_type"]) for x in lines] == [("u1", "view"), ("u2", "add_to_cart"), ("u2", "purchase")]
    assert events_file(Path("/x"), datetime(2026, 9, 1).date()) == Path("/x/events-2026-09-01.jsonl")
