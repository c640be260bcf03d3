"""Live events on a Redis stream: XADD to publish, a consumer group with XREADGROUP / XACK to land them.

A consumer that dies between reading and acknowledging leaves its entries in the group's pending list.
They are not lost: the same consumer gets them back first on its next read, and any other consumer
claims them (XAUTOCLAIM) once they have been idle for `claim_idle_ms`. Delivery is therefore
at-least-once; the event ids make the copies harmless (staging drops exact duplicates).

The server's durability is its own configuration: the embedded broker
(:mod:`recs_assets.streaming.embedded`) runs with an append-only file fsync'ed on every write, so an
entry whose XADD returned survives a kill of the broker.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import ConstantBackoff
from redis.retry import Retry

from recs_assets.streaming.broker import BrokerStatus, BrokerUnavailable, StreamEntry, decode_record, encode_record

STREAM = "recs:live_events"
GROUP = "warehouse"
# Long enough that a consumer still working on a big batch keeps it; short enough that a dead
# consumer's batch is picked up by the next scheduled landing.
CLAIM_IDLE_MS = 60_000
REPLAY_PAGE = 1_000
_UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def redact(url: str) -> str:
    """The URL without its password, fit for messages and metadata."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username + ':***@' if parts.username else ':***@'}{host}{':' + str(parts.port) if parts.port else ''}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _ms(since: datetime) -> int:
    if since.tzinfo is None:
        since = since.replace(tzinfo=timezone.utc)
    return max(0, int(since.timestamp() * 1000))


class RedisStreamsBroker:
    """:class:`recs_assets.streaming.broker.Broker` on one Redis stream and one consumer group."""

    def __init__(
        self,
        url: str,
        *,
        stream: str = STREAM,
        group: str = GROUP,
        claim_idle_ms: int = CLAIM_IDLE_MS,
        connect_timeout: float = 1.0,
        timeout: float = 5.0,
    ) -> None:
        if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"broker URL must start with redis://, rediss:// or unix://; got {redact(url)!r}")
        self.address = redact(url)
        self.stream = stream
        self.group = group
        self.claim_idle_ms = claim_idle_ms
        self._timeout = timeout
        # One quick retry covers a dropped idle connection; a broker that is down must fail fast
        # (the API answers 503 rather than holding the shop's request).
        self._client = redis.Redis.from_url(
            url,
            decode_responses=True,
            # Bytes that are not UTF-8 (published by another producer) stay visible instead of
            # crashing the consumer; staging then rejects the ids they make.
            encoding_errors="backslashreplace",
            socket_connect_timeout=connect_timeout,
            socket_timeout=timeout,
            retry=Retry(ConstantBackoff(0.05), 1),
        )
        self._group_ready = False

    def _unreachable(self, error: Exception) -> BrokerUnavailable:
        return BrokerUnavailable(f"the broker at {self.address} is unreachable: {error}")

    def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            # From the stream's start ("0"): events published before the first consumer ever ran belong
            # to the warehouse too.
            self._client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.exceptions.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        self._group_ready = True

    def ping(self) -> bool:
        try:
            return bool(self._client.ping())
        except _UNREACHABLE:
            return False

    def publish(self, records: Sequence[Mapping[str, str | None]]) -> list[str]:
        if not records:
            return []
        encoded = [encode_record(r) for r in records]
        for fields in encoded:
            if not fields:
                raise ValueError("a live event record with no fields cannot be published")
        try:
            # MULTI/EXEC: a batch is in the stream whole or not at all.
            with self._client.pipeline(transaction=True) as pipe:
                for fields in encoded:
                    pipe.xadd(self.stream, fields)
                return list(pipe.execute())
        except _UNREACHABLE as error:
            raise self._unreachable(error) from None

    def _entries(self, raw) -> list[StreamEntry]:
        gone = [entry_id for entry_id, fields in raw if fields is None]
        if gone:
            # A pending entry trimmed from the stream has nothing left to land: release it.
            self._client.xack(self.stream, self.group, *gone)
        return [StreamEntry(entry_id, decode_record(fields)) for entry_id, fields in raw if fields is not None]

    def read_group(self, consumer: str, count: int, block_ms: int | None = None) -> list[StreamEntry]:
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        try:
            self._ensure_group()
            # 1. This consumer's own unacknowledged entries: it stopped before acknowledging them.
            own = self._client.xreadgroup(self.group, consumer, {self.stream: "0"}, count=count)
            entries = self._entries(own[0][1]) if own else []
            if entries:
                return entries
            # 2. Entries another consumer took and has sat on for too long (it died): claim them.
            _, claimed, _ = self._client.xautoclaim(
                self.stream, self.group, consumer, min_idle_time=self.claim_idle_ms, start_id="0-0", count=count
            )
            entries = self._entries(claimed)
            if entries:
                return entries
            # 3. New entries, waiting for them at most block_ms.
            fresh = self._client.xreadgroup(self.group, consumer, {self.stream: ">"}, count=count, block=block_ms)
            return self._entries(fresh[0][1]) if fresh else []
        except _UNREACHABLE as error:
            raise self._unreachable(error) from None

    def ack(self, ids: Sequence[str]) -> int:
        if not ids:
            return 0
        try:
            return int(self._client.xack(self.stream, self.group, *ids))
        except _UNREACHABLE as error:
            raise self._unreachable(error) from None

    def status(self) -> BrokerStatus:
        try:
            self._ensure_group()
            info = self._client.xinfo_stream(self.stream)
            group = next(g for g in self._client.xinfo_groups(self.stream) if g["name"] == self.group)
        except _UNREACHABLE as error:
            raise self._unreachable(error) from None
        length = int(info["length"])
        last = info.get("last-generated-id")
        lag = group.get("lag")
        if lag is None:
            # Redis cannot tell right after a restart (or a deletion): count what follows the group's position.
            lag = self._count_after(group["last-delivered-id"])
        return BrokerStatus(
            length=length,
            last_id=None if length == 0 and last in (None, "0-0") else last,
            pending=int(group["pending"]),
            lag=int(lag),
        )

    def _count_after(self, entry_id: str) -> int:
        count, start = 0, "(" + entry_id
        try:
            while True:
                page = self._client.xrange(self.stream, min=start, max="+", count=10 * REPLAY_PAGE)
                count += len(page)
                if len(page) < 10 * REPLAY_PAGE:
                    return count
                start = "(" + page[-1][0]
        except _UNREACHABLE as error:
            raise self._unreachable(error) from None

    def replay(self, since: datetime | None = None) -> Iterator[StreamEntry]:
        # Entry ids start with the broker's receipt time in milliseconds, so `since` is a range start.
        start = "-" if since is None else f"{_ms(since)}-0"
        while True:
            try:
                page = self._client.xrange(self.stream, min=start, max="+", count=REPLAY_PAGE)
            except _UNREACHABLE as error:
                raise self._unreachable(error) from None
            yield from self._entries(page)
            if len(page) < REPLAY_PAGE:
                return
            start = "(" + page[-1][0]

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RedisStreamsBroker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
