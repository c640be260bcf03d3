"""Live events a shop's front end posts to the API (views, carts, purchases), and their durable log.

Posted events are appended to ``<live_events>/events-YYYY-MM-DD.jsonl`` (UTC date of receipt), one JSON
line each, flushed and fsync'ed per batch before they change any session: an accepted event survives
a crash.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from recs_assets.contract import LIVE_EVENT_TYPES

MAX_EVENTS_PER_BATCH = 1000
MAX_ID_LENGTH = 200


class Event(BaseModel):
    """One shopper action as posted to ``POST /events``."""

    user_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    session_id: str | None = Field(default=None, max_length=MAX_ID_LENGTH)
    item_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    event_type: Literal[LIVE_EVENT_TYPES]  # type: ignore[valid-type]
    event_at: datetime | None = None


class EventBatch(BaseModel):
    """The body of ``POST /events``: 1 to 1000 events."""

    events: list[Event] = Field(min_length=1, max_length=MAX_EVENTS_PER_BATCH)


def events_file(directory: Path, day: date) -> Path:
    """The day's live-events file (UTC date of receipt)."""
    return Path(directory) / f"events-{day:%Y-%m-%d}.jsonl"


def event_record(event: Event, received: datetime) -> dict:
    """The JSON line written for `event`; an event without a time happened when it was received."""
    at = event.event_at or received
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return {
        "user_id": event.user_id,
        "session_id": event.session_id,
        "item_id": event.item_id,
        "event_type": event.event_type,
        "event_at": at.isoformat(),
        "received_at": received.isoformat(timespec="milliseconds"),
    }


class EventsWriter:
    """Durable append of live events: one JSON line per event, flush + fsync per batch."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()

    def write(self, events: Iterable[Event]) -> Path:
        now = datetime.now(timezone.utc)
        lines = "".join(json.dumps(event_record(e, now), separators=(",", ":")) + "\n" for e in events)
        path = events_file(self.directory, now.date())
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(lines)
                fh.flush()
                os.fsync(fh.fileno())
        return path
