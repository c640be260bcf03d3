"""Live events a shop's front end posts to the API (views, carts, purchases): checked at the edge, given
an identity, and handed to the broker (or, with none configured, to a durable file log).

Checked with the contract's rules before anything is stored, each refusal a 422 naming the field and
the event's position in the batch:

- ids (`user_id`, `session_id`, `item_id`) are 1 to 200 printable characters, not only whitespace: no
  control characters, no lone surrogates;
- an anonymous shopper's event has no `user_id` (absent, null or "") but a `session_id`: it is kept under
  ``anonymous:<session_id>``, the warehouse's rule (:data:`~recs_assets.contract.ANONYMOUS_USER_PREFIX`),
  and that is the id to ask ``GET /recommendations`` for; a `user_id` that itself starts with the prefix
  must be exactly that, or staging would quarantine the event;
- `event_at` is an ISO 8601 text (``2026-09-01T10:00:00Z``; without an offset it is UTC), never a number
  (a bare number is ambiguous: seconds? milliseconds? and was stored as 1970), between
  :data:`~recs_assets.contract.EARLIEST_LIVE_EVENT_AT` and :data:`~recs_assets.contract.LIVE_EVENT_MAX_FUTURE`
  ahead of the server's clock;
- `item_id` is in the catalogue the API serves (checked by the API against its snapshot, see
  :func:`unknown_item_errors`);
- `event_id`, when the front end supplies one as its idempotency key, is 8 to 128 characters of
  ``A-Z a-z 0-9 . _ : -`` and comes with the event's own `event_at` (a retry must be the very same event;
  a receipt time would differ between the two attempts). Otherwise the API assigns a time-ordered
  UUIDv7 (32 hex digits). The ids are returned in the 202 answer.

A retried batch therefore reaches the warehouse twice as exact copies, which staging counts as
duplicates and drops: nothing is doubled in `events`.

Without a broker the records are appended to ``<live_events>/events-YYYY-MM-DD.jsonl`` (UTC date of
receipt), one JSON line each, flushed and fsync'ed per batch before they change any session.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Container, Iterable, Mapping, Sequence
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, model_validator

from recs_assets.contract import ANONYMOUS_USER_PREFIX, EARLIEST_LIVE_EVENT_AT, LIVE_EVENT_MAX_FUTURE, LIVE_EVENT_TYPES
from recs_assets.streaming.broker import Broker, BrokerUnavailable

MAX_EVENTS_PER_BATCH = 1000
MAX_ID_LENGTH = 200
EVENT_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,127}")


def _printable(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank (only whitespace)")
    for position, char in enumerate(value):
        if not char.isprintable() and char != " ":
            raise ValueError(f"holds a control or non-printable character {char!r} at position {position}")
    return value


def _iso_text(value: object) -> object:
    if isinstance(value, datetime):  # built in Python (tests, internal callers): already a time
        return value
    if not isinstance(value, str):
        raise ValueError(
            f"must be an ISO 8601 date-time text such as '2026-09-01T10:00:00Z', not a {type(value).__name__} "
            f"({value!r}): a bare number could be seconds or milliseconds"
        )
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{value[:60]!r} is not an ISO 8601 date-time such as '2026-09-01T10:00:00Z'") from None


def _in_live_range(value: datetime) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    latest = datetime.now(timezone.utc) + LIVE_EVENT_MAX_FUTURE
    try:
        too_early, too_late = value < EARLIEST_LIVE_EVENT_AT, value > latest
    except OverflowError:  # the offset pushes it past year 1 or 9999 in UTC: far out either way
        too_early = value.year < 5000
        too_late = not too_early
    if too_early:
        raise ValueError(f"{value.isoformat()} is before {EARLIEST_LIVE_EVENT_AT.date().isoformat()}, the earliest time a live event may have")
    if too_late:
        minutes = LIVE_EVENT_MAX_FUTURE.total_seconds() / 60
        raise ValueError(
            f"{value.isoformat()} is more than {minutes:g} minutes in the future (server time "
            f"{datetime.now(timezone.utc).isoformat(timespec='seconds')})"
        )
    return value


def _event_id(value: str) -> str:
    if not EVENT_ID_PATTERN.fullmatch(value):
        raise ValueError(
            "must be 8 to 128 characters of letters, digits and . _ : - (starting with a letter or digit), "
            "such as a UUID"
        )
    return value


Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH), AfterValidator(_printable)]
EventTime = Annotated[datetime, BeforeValidator(_iso_text), AfterValidator(_in_live_range)]
EventId = Annotated[str, AfterValidator(_event_id)]


def _no_user(value: object) -> object:
    """An empty user id is how exports write "no account" (an anonymous visit): the same as none."""
    return None if value == "" else value


def anonymous_user_id(session_id: str) -> str:
    """The user id an anonymous visit is kept, evaluated and served under (the warehouse's rule)."""
    return ANONYMOUS_USER_PREFIX + session_id


class Event(BaseModel):
    """One shopper action as posted to ``POST /events``."""

    event_id: EventId | None = Field(
        default=None, description="the front end's idempotency key (8-128 of A-Z a-z 0-9 . _ : -); assigned when absent"
    )
    user_id: Annotated[Id | None, BeforeValidator(_no_user)] = Field(
        default=None, description="the shopper's account; absent or empty for an anonymous visit (then session_id is needed)"
    )
    session_id: Id | None = None
    item_id: Id
    event_type: Literal[LIVE_EVENT_TYPES]  # type: ignore[valid-type]
    event_at: EventTime | None = Field(
        default=None, description="ISO 8601 text; UTC when it has no offset; the receipt time when absent"
    )

    @model_validator(mode="after")
    def _retry_is_the_same_event(self) -> Event:
        if self.event_id is not None and self.event_at is None:
            raise ValueError(
                "event_id is given without event_at: an event with its own id must carry its own time, so that "
                "a retry is the same event"
            )
        if self.user_id is None:
            if self.session_id is None:
                raise ValueError(
                    "user_id is empty and session_id is missing: an anonymous shopper's events are kept under "
                    f"'{ANONYMOUS_USER_PREFIX}<session_id>', so they need the session_id"
                )
            self.user_id = anonymous_user_id(self.session_id)
        elif self.user_id.startswith(ANONYMOUS_USER_PREFIX) and self.user_id != anonymous_user_id(self.session_id or ""):
            raise ValueError(
                f"user_id {self.user_id[:60]!r} starts with '{ANONYMOUS_USER_PREFIX}', which is kept for anonymous "
                f"shoppers: it must be '{ANONYMOUS_USER_PREFIX}' + session_id (session_id {self.session_id!r}), "
                "or leave user_id empty and send the session_id"
            )
        return self


class EventBatch(BaseModel):
    """The body of ``POST /events``: 1 to 1000 events."""

    events: list[Event] = Field(min_length=1, max_length=MAX_EVENTS_PER_BATCH)


def new_event_id(now_ns: int | None = None) -> str:
    """A UUIDv7 as 32 hex digits: milliseconds since 1970 first, so ids sort by creation time."""
    ms = (time.time_ns() if now_ns is None else now_ns) // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & (2**48 - 1)) << 80 | 0x7 << 76 | (rand >> 62 & 0xFFF) << 64 | 0b10 << 62 | rand & (2**62 - 1)
    return f"{value:032x}"


def unknown_item_errors(events: Sequence[Event], catalogue: Container[str] | None) -> list[dict]:
    """422 error entries (FastAPI's shape) for events whose item is not in `catalogue`; none when the
    API has no catalogue loaded (it cannot tell, and staging checks every event against `items`)."""
    if not catalogue:
        return []
    return [
        {
            "type": "unknown_item",
            "loc": ["body", "events", position, "item_id"],
            "msg": f"unknown item_id {event.item_id!r}: not in the catalogue this API serves",
            "input": event.item_id,
        }
        for position, event in enumerate(events)
        if event.item_id not in catalogue
    ]


def events_file(directory: Path, day: date) -> Path:
    """The day's live-events file (UTC date of receipt)."""
    return Path(directory) / f"events-{day:%Y-%m-%d}.jsonl"


def event_record(event: Event, received: datetime) -> dict:
    """The record stored for `event` (one JSON line; one stream entry): an event without a time happened
    when it was received, one without an id gets a new one."""
    at = event.event_at or received
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return {
        "event_id": event.event_id or new_event_id(),
        "user_id": event.user_id,
        "session_id": event.session_id,
        "item_id": event.item_id,
        "event_type": event.event_type,
        "event_at": at.isoformat(),
        "received_at": received.isoformat(timespec="milliseconds"),
    }


class EventsWriter:
    """Durable append of live event records: one JSON line each, flush + fsync per batch."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()

    def write(self, events: Iterable[Event | Mapping]) -> Path:
        now = datetime.now(timezone.utc)
        records = [e if isinstance(e, Mapping) else event_record(e, now) for e in events]
        lines = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
        path = events_file(self.directory, now.date())
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(lines)
                fh.flush()
                os.fsync(fh.fileno())
        return path


class LiveEventsUnavailable(RuntimeError):
    """Live events cannot be stored right now (the broker is unreachable): the API answers 503."""


class EventSink:
    """Where accepted events go: the broker when one is configured, else the durable file log."""

    def __init__(self, broker: Broker | None, directory: Path) -> None:
        self.broker = broker
        self.writer = EventsWriter(directory)

    @property
    def target(self) -> str:
        return self.broker.address if self.broker is not None else str(self.writer.directory)

    def store(self, events: Sequence[Event]) -> dict:
        """Store the batch (all or nothing); the answer's fields: the event ids and where they went."""
        now = datetime.now(timezone.utc)
        records = [event_record(e, now) for e in events]
        if self.broker is None:
            path = self.writer.write(records)
            where = {"file": path.name}
        else:
            try:
                self.broker.publish(records)
            except BrokerUnavailable as error:
                raise LiveEventsUnavailable(
                    f"live events are not accepted right now: the broker at {self.broker.address} is unreachable "
                    f"({error}). Retry later; an event_id on each event makes a retry safe"
                ) from None
            where = {"broker": self.broker.address}
        return {"accepted": len(records), "event_ids": [r["event_id"] for r in records], **where}


# Every answer POST /events can give, for the OpenAPI schema.
EVENTS_RESPONSES: dict[int | str, dict] = {
    202: {"description": "stored: the events' ids (assigned, or the front end's own) and where they went"},
    400: {"description": "the body could not be read (not UTF-8, or broken while it was sent)"},
    413: {"description": "the body is larger than the limit (counted as it streams in, chunked or not)"},
    422: {
        "description": "an event breaks a rule (type, ids, time range, unknown item, event_id); the detail names "
        "the field and the event's position (loc: body, events, <position>, <field>)"
    },
    503: {"description": "the broker is unreachable: nothing was stored; the API keeps serving recommendations"},
}
