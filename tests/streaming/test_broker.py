"""The broker on a real redis-server: round trip, redelivery to a new consumer, a kill of the broker."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from recs_assets.streaming.broker import Broker, BrokerUnavailable, decode_record, encode_record, live_event_records
from recs_assets.streaming.embedded import EmbeddedRedis, embedded_broker, running_url
from recs_assets.streaming.redis_streams import RedisStreamsBroker, redact
from tests.streaming.broker_fixtures import broker_server, needs_redis  # noqa: F401  (fixture)


def record(n: int, **extra) -> dict:
    return {
        "event_id": f"evt{n:05d}",
        "user_id": f"u{n % 3}",
        "session_id": None,
        "item_id": f"i{n}",
        "event_type": "view",
        "event_at": "2026-11-30T10:00:00+00:00",
        "received_at": "2026-11-30T10:00:00.123+00:00",
        **extra,
    }


def test_publish_read_ack_round_trip(broker_server) -> None:
    broker = RedisStreamsBroker(broker_server.url)
    assert isinstance(broker, Broker)
    ids = broker.publish([record(1), record(2), record(3)])
    assert len(ids) == 3 and ids == sorted(ids)
    status = broker.status()
    assert (status.length, status.last_id, status.pending, status.lag) == (3, ids[-1], 0, 3)

    got = broker.read_group("lander", count=2)
    assert [e.id for e in got] == ids[:2]
    assert got[0].record == record(1)  # None fields come back as None, every field as text
    assert broker.status().pending == 2
    assert broker.ack([e.id for e in got]) == 2
    rest = broker.read_group("lander", count=10)
    assert [e.record["event_id"] for e in rest] == ["evt00003"]
    broker.ack([e.id for e in rest])
    assert broker.read_group("lander", count=10) == []
    status = broker.status()
    assert (status.pending, status.lag, status.length) == (0, 0, 3)
    broker.close()


def test_entries_a_killed_consumer_did_not_acknowledge_are_delivered_again(broker_server) -> None:
    publisher = RedisStreamsBroker(broker_server.url)
    ids = publisher.publish([record(n) for n in range(5)])
    # Consumer A reads everything and dies before acknowledging.
    doomed = RedisStreamsBroker(broker_server.url)
    assert [e.id for e in doomed.read_group("consumer-a", count=10)] == ids
    doomed.close()
    # A itself, restarted under its name, gets its own unacknowledged entries back first.
    restarted = RedisStreamsBroker(broker_server.url)
    assert [e.id for e in restarted.read_group("consumer-a", count=10)] == ids
    # Another consumer claims them once they are idle long enough (0 here: no waiting in a test).
    other = RedisStreamsBroker(broker_server.url, claim_idle_ms=0)
    claimed = other.read_group("consumer-b", count=10)
    assert [e.id for e in claimed] == ids and claimed[4].record == record(4)
    other.ack([e.id for e in claimed])
    assert other.status().pending == 0
    # With a long idle limit nothing in flight is taken from a live consumer.
    publisher.publish([record(9)])
    assert [e.record["event_id"] for e in restarted.read_group("consumer-a", count=10)] == ["evt00009"]
    patient = RedisStreamsBroker(broker_server.url, claim_idle_ms=60_000)
    assert patient.read_group("consumer-c", count=10) == []


def test_kill_and_restart_the_broker_loses_nothing(tmp_path: Path, broker_server) -> None:
    broker = RedisStreamsBroker(broker_server.url)
    ids = broker.publish([record(n) for n in range(200)])
    first = broker.read_group("lander", count=50)
    broker.ack([e.id for e in first])
    in_flight = broker.read_group("lander", count=25)  # read, not acknowledged when the broker dies
    broker_server.kill()  # SIGKILL: only what each write fsync'ed survives
    with pytest.raises(BrokerUnavailable, match="unreachable"):
        broker.publish([record(999)])
    broker.close()

    restarted = EmbeddedRedis(broker_server.folder)
    restarted.start()
    try:
        again = RedisStreamsBroker(restarted.url)
        assert [e.id for e in again.replay()] == ids
        status = again.status()
        assert (status.length, status.pending, status.lag) == (200, 25, 125)
        # The in-flight batch comes back to its consumer; then the rest, in order.
        assert [e.id for e in again.read_group("lander", count=100)] == [e.id for e in in_flight]
    finally:
        restarted.stop()


def test_a_broker_that_is_down_is_named_and_fails_fast(broker_server, monkeypatch) -> None:
    # Fast by construction, not by a stopwatch (benchmarks/growth.py times it): two connection attempts
    # at most (one retry for a dropped idle connection), each given up after the 1 s connect timeout.
    import redis.connection

    attempts: list[float] = []
    connect = redis.connection.Connection._connect

    def counted(self):
        attempts.append(self.socket_connect_timeout)
        return connect(self)

    monkeypatch.setattr(redis.connection.Connection, "_connect", counted)
    url = broker_server.url
    broker_server.stop()
    broker = RedisStreamsBroker(url)
    with pytest.raises(BrokerUnavailable, match=f"the broker at {url} is unreachable"):
        broker.publish([record(1)])
    assert attempts == [1.0, 1.0]
    with pytest.raises(BrokerUnavailable):
        broker.status()
    assert not broker.ping()


def test_replay_from_a_time_and_the_records_sessions_are_rebuilt_from(broker_server) -> None:
    broker = RedisStreamsBroker(broker_server.url)
    broker.publish([record(1)])
    time.sleep(0.01)  # stream ids carry the receipt millisecond: the next batch is strictly later
    cut = datetime.now(timezone.utc)
    time.sleep(0.01)
    broker.publish([record(2), record(3)])
    assert [r["event_id"] for r in live_event_records(broker)] == ["evt00001", "evt00002", "evt00003"]
    later = list(live_event_records(broker, since=cut))
    assert [r["event_id"] for r in later] == ["evt00002", "evt00003"]
    assert later[0] == record(2)
    assert list(live_event_records(broker, since=cut + timedelta(days=1))) == []
    # Reading the stream does not consume it: the warehouse consumer still gets everything.
    assert len(broker.read_group("lander", count=10)) == 3


def test_replay_pages_through_a_long_stream(broker_server) -> None:
    broker = RedisStreamsBroker(broker_server.url)
    broker.publish([record(n) for n in range(2_500)])
    assert [r["event_id"] for r in live_event_records(broker)] == [f"evt{n:05d}" for n in range(2_500)]


def test_one_folder_one_server(broker_server) -> None:
    with pytest.raises(RuntimeError, match="already serves"):
        EmbeddedRedis(broker_server.folder).start()
    assert running_url(broker_server.folder) == broker_server.url
    with embedded_broker(broker_server.folder) as url:  # joins the running one, does not stop it
        assert url == broker_server.url
    assert running_url(broker_server.folder) == broker_server.url


@needs_redis
def test_embedded_broker_starts_and_stops_one_when_none_runs(tmp_path: Path) -> None:
    folder = tmp_path / "broker"
    with embedded_broker(folder) as url:
        assert url.startswith("redis://127.0.0.1:") and running_url(folder) == url
        RedisStreamsBroker(url).publish([record(1)])
    assert running_url(folder) is None
    with embedded_broker(folder) as url:  # the events survived the stop
        assert [r["event_id"] for r in live_event_records(RedisStreamsBroker(url))] == ["evt00001"]


def test_records_are_text_and_absent_values_are_left_out() -> None:
    assert encode_record({"a": "x", "b": None}) == {"a": "x"}
    with pytest.raises(TypeError, match="'event_at' must be text, got int"):
        encode_record({"event_at": 1700000000})
    decoded = decode_record({"event_id": "e", "colour": "red"})
    assert decoded["event_id"] == "e" and decoded["user_id"] is None and decoded["colour"] == "red"
    assert redact("redis://user:secret@host:6380/0") == "redis://user:***@host:6380/0"
    assert redact("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    with pytest.raises(ValueError, match="must start with redis://"):
        RedisStreamsBroker("http://localhost:6379")
