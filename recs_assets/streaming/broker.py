"""The broker interface live events travel through, and the record every part of the loop agrees on.

The API publishes accepted events; the warehouse consumer reads them in a consumer group, lands them
and only then acknowledges them; the API replays the stream to rebuild sessions after a restart. Any
broker with an append-only log, consumer groups and acknowledgements fits :class:`Broker`: Redis
Streams (:mod:`recs_assets.streaming.redis_streams`, the embedded default) or a Kafka topic.

How a Kafka client (``confluent-kafka``) takes Redis's place, method by method:

- ``publish``: ``Producer(acks="all", enable.idempotence=True).produce(topic, key=user_id, value=json)``
  per record, then ``flush()``; the ids are ``"<partition>:<offset>"`` from the delivery callbacks.
  Keying by user keeps one shopper's events in order on one partition.
- ``read_group``: ``Consumer(group.id="warehouse", enable.auto.commit=False).consume(count, timeout)``.
  Kafka's group coordinator does what XAUTOCLAIM does here: when a consumer dies, its partitions are
  reassigned and everything after the last committed offset is delivered again.
- ``ack``: ``commit(offsets=..., asynchronous=False)`` of the highest offset read per partition, after
  the batch has landed: the same at-least-once order as XACK after the Parquet rename.
- ``status``: ``pending`` is what was consumed but not committed; ``lag`` is the high watermark
  (``get_watermark_offsets``) minus the committed offset, summed over partitions.
- ``replay(since)``: a consumer without a group, ``offsets_for_times`` at `since`, then read to the end.

Delivery is at-least-once on every broker, so every record carries an ``event_id`` and staging drops
the exact copies a redelivery produces.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import NamedTuple, Protocol, runtime_checkable

# The fields of one live event record: the JSON line of the file log and the fields of a stream entry.
# `received_at` is when the API accepted it; `event_at` when the shopper acted (the receipt time when
# the front end did not say).
LIVE_RECORD_FIELDS: tuple[str, ...] = (
    "event_id",
    "user_id",
    "session_id",
    "item_id",
    "event_type",
    "event_at",
    "received_at",
)


class BrokerUnavailable(RuntimeError):
    """The broker could not be reached (refused, timed out, or went away mid-request)."""


class StreamEntry(NamedTuple):
    """One message as the broker holds it: its position in the stream and the event record."""

    id: str
    record: dict[str, str | None]


class BrokerStatus(NamedTuple):
    """How far the warehouse consumer is behind."""

    length: int  # entries the stream holds
    last_id: str | None  # the newest entry's id (None for an empty stream)
    pending: int  # delivered to a consumer but not acknowledged (in flight, or its consumer died)
    lag: int  # entries never delivered to the consumer group


@runtime_checkable
class Broker(Protocol):
    """An append-only stream of live event records with one consumer group (the warehouse)."""

    address: str  # where it is, for messages (no credentials)

    def publish(self, records: Sequence[Mapping[str, str | None]]) -> list[str]:
        """Append the records, all or none; their stream ids in order. BrokerUnavailable when unreachable."""
        ...

    def read_group(self, consumer: str, count: int, block_ms: int | None = None) -> list[StreamEntry]:
        """Up to `count` entries for `consumer`: first its own unacknowledged ones (it crashed before
        acknowledging), then ones another consumer left unacknowledged for too long, then new ones
        (waiting up to `block_ms` for them; None = do not wait)."""
        ...

    def ack(self, ids: Sequence[str]) -> int:
        """Acknowledge entries as landed; how many were pending."""
        ...

    def status(self) -> BrokerStatus:
        """Stream length, newest id, pending and lag of the consumer group."""
        ...

    def replay(self, since: datetime | None = None) -> Iterator[StreamEntry]:
        """Every entry received at or after `since` (all when None), oldest first, without consuming."""
        ...

    def close(self) -> None: ...


def encode_record(record: Mapping[str, str | None]) -> dict[str, str]:
    """A record as stream fields: text values only, a missing value left out (no broker stores None)."""
    fields = {}
    for key, value in record.items():
        if value is None:
            continue
        if not isinstance(value, str):
            raise TypeError(f"live event field {key!r} must be text, got {type(value).__name__} {value!r}")
        fields[key] = value
    return fields


def decode_record(fields: Mapping[str, str] | None) -> dict[str, str | None]:
    """Stream fields back to a record: every known field present (None when absent), extra fields kept."""
    fields = dict(fields or {})
    record: dict[str, str | None] = {name: fields.pop(name, None) for name in LIVE_RECORD_FIELDS}
    record.update(fields)
    return record


def live_event_records(broker: Broker, since: datetime | None = None) -> Iterator[dict[str, str | None]]:
    """The live event records received at or after `since`, oldest first, as the JSON-lines log holds them.

    What session rebuilding reads when a broker is configured: the same dicts (``event_id``,
    ``user_id``, ``session_id``, ``item_id``, ``event_type``, ``event_at``, ``received_at``) as one
    line of ``live_events/events-*.jsonl``, so one rebuild function consumes either.
    """
    for entry in broker.replay(since):
        yield entry.record
