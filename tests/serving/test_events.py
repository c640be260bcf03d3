"""Posted live events: checked at the edge with the contract's rules, given an id, published to the broker
(or, with none, appended to the file log); a broker that is down refuses writes with 503, reads go on."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest
import uvicorn
from fastapi.testclient import TestClient
from pydantic import ValidationError

from recs_assets.contract import LIVE_EVENT_TYPES
from recs_assets.layout import HomeLayout
from recs_assets.serving.api import MAX_BODY_BYTES, create_app
from recs_assets.serving.events import Event, EventBatch, EventsWriter, event_record, events_file, new_event_id
from recs_assets.serving.middleware import BodySizeLimitMiddleware
from recs_assets.settings import Settings
from recs_assets.streaming.broker import live_event_records
from recs_assets.streaming.redis_streams import RedisStreamsBroker
from tests.streaming.broker_fixtures import broker_server  # noqa: F401  (fixture)

NOW = datetime.now(timezone.utc)


def test_only_the_contracts_live_event_types_are_accepted() -> None:
    for kind in LIVE_EVENT_TYPES:
        assert Event(user_id="u", item_id="i", event_type=kind).event_type == kind
    with pytest.raises(ValidationError, match="'view', 'add_to_cart' or 'purchase'"):
        Event(user_id="u", item_id="i", event_type="impression")
    with pytest.raises(ValidationError, match="at least 1"):
        EventBatch(events=[])


@pytest.mark.parametrize(
    ("event_at", "needle"),
    [
        (1700000000, "not a int"),
        (1.5e12, "not a float"),
        ("9999-12-31", "minutes in the future"),
        ("0001-01-01", "before 2000-01-01"),
        ("0001-01-01T00:00:00+05:00", "before 2000-01-01"),
        ("1970-01-01T00:00:00Z", "before 2000-01-01"),
        ((NOW + timedelta(hours=1)).isoformat(), "more than 5 minutes in the future"),
        ("yesterday", "is not an ISO 8601 date-time"),
    ],
)
def test_event_times_outside_the_live_range_or_not_iso_text_are_refused(event_at, needle) -> None:
    with pytest.raises(ValidationError, match=needle) as error:
        Event(user_id="u", item_id="i", event_type="view", event_at=event_at)
    assert error.value.errors()[0]["loc"] == ("event_at",)


def test_event_times_in_range_are_kept_as_utc_when_naive() -> None:
    recent = (NOW - timedelta(days=3)).replace(microsecond=0)
    assert Event(user_id="u", item_id="i", event_type="view", event_at=recent.isoformat()).event_at == recent
    naive = Event(user_id="u", item_id="i", event_type="view", event_at="2026-01-02T03:00:00").event_at
    assert naive == datetime(2026, 1, 2, 3, tzinfo=timezone.utc)
    soon = Event(user_id="u", item_id="i", event_type="view", event_at=(NOW + timedelta(minutes=2)).isoformat())
    assert soon.event_at > NOW  # a front end's clock a little ahead is fine


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("user_id", "u\x00001", "control or non-printable character '\\\\x00' at position 1"),
        ("item_id", "\x1b[31mi1", "control or non-printable"),
        ("session_id", "s\n1", "control or non-printable"),
        ("user_id", "   ", "must not be blank"),
        ("user_id", "\u2028", "must not be blank"),
        ("item_id", "i\ud800", "valid string"),  # a lone surrogate: pydantic refuses it first
        ("user_id", "x" * 201, "at most 200 characters"),
    ],
)
def test_ids_must_be_printable_and_not_blank(field: str, value: str, needle: str) -> None:
    body = {"user_id": "u", "item_id": "i", "event_type": "view", field: value}
    with pytest.raises(ValidationError, match=needle) as error:
        Event(**body)
    assert error.value.errors()[0]["loc"] == (field,)
    assert Event(**{**body, field: "ok id with spaces é"}).model_dump()[field] == "ok id with spaces é"


def test_a_front_end_event_id_is_kept_when_well_formed_and_needs_the_events_own_time() -> None:
    at = (NOW - timedelta(minutes=1)).isoformat()
    kept = event_record(Event(event_id="0b9f4e2a-1c3d-4e5f-8a9b-0c1d2e3f4a5b", user_id="u", item_id="i", event_type="view", event_at=at), NOW)
    assert kept["event_id"] == "0b9f4e2a-1c3d-4e5f-8a9b-0c1d2e3f4a5b"
    for bad in ("short", "has space in it", "x" * 129, "-starts-with-dash"):
        with pytest.raises(ValidationError, match="8 to 128 characters"):
            Event(event_id=bad, user_id="u", item_id="i", event_type="view", event_at=at)
    with pytest.raises(ValidationError, match="event_id is given without event_at"):
        Event(event_id="abcdefgh1", user_id="u", item_id="i", event_type="view")


def test_assigned_event_ids_are_uuid7_hex_and_sort_by_time() -> None:
    first, second = new_event_id(1_000_000_000_000_000_000), new_event_id(1_000_000_000_001_000_000)
    assert len(first) == 32 and int(first, 16) and first[12] == "7" and first[16] in "89ab"
    assert first < second
    assert len({new_event_id() for _ in range(1000)}) == 1000


def test_a_record_keeps_the_event_time_as_utc_or_uses_the_receipt_time() -> None:
    received = datetime(2026, 9, 20, 10, 0, 0, 123456, tzinfo=timezone.utc)
    naive = event_record(Event(user_id="u", item_id="i", event_type="view", event_at=datetime(2026, 1, 2, 3)), received)
    assert naive["event_at"] == "2026-01-02T03:00:00+00:00" and naive["received_at"] == "2026-09-20T10:00:00.123+00:00"
    plus2 = timezone(timedelta(hours=2))
    aware = event_record(Event(user_id="u", item_id="i", event_type="view", event_at=datetime(2026, 1, 2, 3, tzinfo=plus2)), received)
    assert aware["event_at"] == "2026-01-02T03:00:00+02:00"
    untimed = event_record(Event(user_id="u", item_id="i", event_type="purchase"), received)
    assert untimed["event_at"] == received.isoformat() and untimed["session_id"] is None
    assert len(untimed["event_id"]) == 32


def test_the_writer_appends_one_line_per_event_to_the_days_file(tmp_path: Path) -> None:
    folder = HomeLayout(tmp_path).live_events
    writer = EventsWriter(folder)
    first = writer.write([Event(user_id="u1", item_id="a", event_type="view")])
    second = writer.write([Event(user_id="u2", item_id="b", event_type="add_to_cart"),
                           Event(user_id="u2", item_id="b", event_type="purchase")])
    assert first == second == events_file(folder, datetime.now(timezone.utc).date())
    lines = [json.loads(x) for x in first.read_text().splitlines()]
    assert [(x["user_id"], x["event_type"]) for x in lines] == [("u1", "view"), ("u2", "add_to_cart"), ("u2", "purchase")]
    assert all(len(x["event_id"]) == 32 for x in lines)
    assert events_file(Path("/x"), datetime(2026, 9, 1).date()) == Path("/x/events-2026-09-01.jsonl")


# --- through the API ---------------------------------------------------------------------------


def write_catalogue(home: Path) -> None:
    lake = HomeLayout(home).lake
    lake.mkdir(parents=True, exist_ok=True)
    pl.DataFrame({"item_id": ["i1", "i2", "i3"], "category": ["a", "a", "b"], "is_active": [True, True, False]}).write_parquet(lake / "items.parquet")
    pl.DataFrame({"user_id": ["u1"], "item_id": ["i2"], "rank": [1], "score": [1.0], "model": ["m"], "model_version": [4]}).write_parquet(
        lake / "recommendation_snapshot.parquet"
    )


def settings_for(home: Path, **over) -> Settings:
    return Settings(home=home, api_reload_interval=30, api_log_flush_interval=30, **over)


def test_posted_events_are_published_with_their_ids(tmp_path: Path, broker_server) -> None:
    write_catalogue(tmp_path)
    at = (NOW - timedelta(minutes=3)).isoformat()
    events = [
        {"user_id": "u1", "item_id": "i1", "event_type": "view"},
        {"event_id": "client-key-0001", "user_id": "u1", "session_id": "s9", "item_id": "i3", "event_type": "purchase", "event_at": at},
    ]
    with TestClient(create_app(settings_for(tmp_path, broker_url=broker_server.url))) as client:
        r = client.post("/events", json={"events": events})
        assert r.status_code == 202, r.text
        body = r.json()
    assert body["accepted"] == 2 and body["broker"] == broker_server.url
    assigned, kept = body["event_ids"]
    assert len(assigned) == 32 and kept == "client-key-0001"
    records = list(live_event_records(RedisStreamsBroker(broker_server.url)))
    assert [r["event_id"] for r in records] == [assigned, "client-key-0001"]
    assert records[1]["session_id"] == "s9" and records[1]["event_at"] == at and records[0]["session_id"] is None
    assert not HomeLayout(tmp_path).live_events.exists()  # the broker is the log


def test_unknown_items_are_refused_with_422_naming_them(tmp_path: Path, broker_server) -> None:
    write_catalogue(tmp_path)
    events = [
        {"user_id": "u1", "item_id": "i1", "event_type": "view"},
        {"user_id": "u1", "item_id": "nope", "event_type": "view"},
        {"user_id": "u1", "item_id": "i9", "event_type": "purchase"},
    ]
    with TestClient(create_app(settings_for(tmp_path, broker_url=broker_server.url))) as client:
        r = client.post("/events", json={"events": events})
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert [(d["loc"], d["input"]) for d in detail] == [
        (["body", "events", 1, "item_id"], "nope"),
        (["body", "events", 2, "item_id"], "i9"),
    ]
    assert "unknown item_id 'nope'" in detail[0]["msg"]
    assert list(live_event_records(RedisStreamsBroker(broker_server.url))) == []  # none of the batch was stored


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"event_at": 1700000000}, "event_at"),
        ({"event_at": "9999-12-31"}, "event_at"),
        ({"event_at": "0001-01-01"}, "event_at"),
        ({"user_id": "\x07\x08"}, "user_id"),
        ({"item_id": "i1\x00"}, "item_id"),
    ],
)
def test_bad_events_are_refused_with_422_naming_the_field_and_the_row(tmp_path: Path, event: dict, field: str) -> None:
    write_catalogue(tmp_path)
    good = {"user_id": "u1", "item_id": "i1", "event_type": "view"}
    with TestClient(create_app(settings_for(tmp_path))) as client:
        r = client.post("/events", json={"events": [good, {**good, **event}]})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "events", 1, field]
    assert not HomeLayout(tmp_path).live_events.exists()


def test_without_a_broker_events_go_to_the_file_log(tmp_path: Path) -> None:
    write_catalogue(tmp_path)
    with TestClient(create_app(settings_for(tmp_path))) as client:
        body = client.post("/events", json={"events": [{"user_id": "u1", "item_id": "i1", "event_type": "view"}]}).json()
    (line,) = events_file(HomeLayout(tmp_path).live_events, datetime.now(timezone.utc).date()).read_text().splitlines()
    assert json.loads(line)["event_id"] == body["event_ids"][0] and body["file"].startswith("events-")


def test_a_broker_that_is_down_refuses_writes_with_503_and_reads_go_on(tmp_path: Path, broker_server) -> None:
    write_catalogue(tmp_path)
    url = broker_server.url
    with TestClient(create_app(settings_for(tmp_path, broker_url=url))) as client:
        event = {"events": [{"user_id": "u1", "item_id": "i1", "event_type": "view"}]}
        assert client.post("/events", json=event).status_code == 202
        broker_server.stop()
        r = client.post("/events", json=event)
        assert r.status_code == 503
        assert f"live events are not accepted right now: the broker at {url} is unreachable" in r.json()["detail"]
        assert client.get("/recommendations/u1").json()["items"][0]["item_id"] == "i2"
        assert client.get("/health").status_code == 200
        broker_server.start()  # the same folder: the first event is still there, the refused one is not
        assert client.post("/events", json=event).status_code == 202
        assert len(list(live_event_records(RedisStreamsBroker(broker_server.url)))) == 2


def test_every_status_of_post_events_is_in_the_openapi_schema(tmp_path: Path) -> None:
    with TestClient(create_app(settings_for(tmp_path))) as client:
        schema = client.get("/openapi.json").json()
        not_utf8 = client.post("/events", content=b'{"events":[{"user_id":"\xff\xfe"}]}', headers={"content-type": "application/json"})
    assert not_utf8.status_code == 400  # documented below
    assert set(schema["paths"]["/events"]["post"]["responses"]) >= {"202", "400", "413", "422", "503"}
    assert "404" in schema["paths"]["/similar/{item_id}"]["get"]["responses"]


# --- the body limit, chunked or not ------------------------------------------------------------


async def _drive(chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> tuple[int, int, bytes]:
    """Send `chunks` as one request through an ASGI middleware; (status, chunks read, body the app saw)."""
    read = 0
    seen = bytearray()
    sent: dict = {}

    async def receive():
        nonlocal read
        read += 1
        if read <= len(chunks):
            return {"type": "http.request", "body": chunks[read - 1], "more_body": read < len(chunks)}
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            sent["status"] = message["status"]

    async def app(scope, receive, send):
        while True:
            message = await receive()
            seen.extend(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    scope = {"type": "http", "method": "POST", "path": "/events", "headers": headers}
    await BodySizeLimitMiddleware(app, max_bytes=100)(scope, receive, send)
    return sent["status"], read, bytes(seen)


def test_a_chunked_body_over_the_limit_is_refused_without_reading_the_rest() -> None:
    chunked = [(b"transfer-encoding", b"chunked")]
    status, read, _ = asyncio.run(_drive([b"x" * 40] * 1000, chunked))
    assert status == 413 and read == 3  # stopped at the first chunk past 100 bytes, 997 never read
    status, _, seen = asyncio.run(_drive([b"x" * 40, b"y" * 60], chunked))
    assert status == 202 and seen == b"x" * 40 + b"y" * 60  # exactly at the limit: passed on whole
    # A declared length over the limit is refused before reading; one that lies is caught by counting.
    assert asyncio.run(_drive([b"x"], [(b"content-length", b"101")]))[:2] == (413, 0)
    assert asyncio.run(_drive([b"x" * 60] * 3, [(b"content-length", b"10")]))[0] == 413


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_chunked_body_over_the_limit_gets_413_from_a_real_server(tmp_path: Path) -> None:
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings_for(tmp_path)), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:  # no clock: a loaded machine only makes it slower
            assert thread.is_alive(), "the API stopped before it started"
            time.sleep(0.02)
        chunk = b"x" * 65536
        total = MAX_BODY_BYTES + len(chunk)
        with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
            sock.sendall(b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            try:
                for _ in range(total // len(chunk) + 1):
                    sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sock.sendall(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server answered and stopped reading: what the limit is for
            answer = sock.recv(65536).decode()
        assert answer.startswith("HTTP/1.1 413"), answer[:200]
        assert "request body too large" in answer
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.mark.parametrize("user_id", [None, "", "absent"])
def test_an_anonymous_visit_is_kept_under_the_warehouses_anonymous_id(user_id) -> None:
    body = {"session_id": "s9", "item_id": "i1", "event_type": "view"}
    if user_id != "absent":
        body["user_id"] = user_id
    assert Event(**body).user_id == "anonymous:s9"
    assert event_record(Event(**body), NOW)["user_id"] == "anonymous:s9"


def test_an_anonymous_event_needs_its_session_and_the_prefix_is_kept_for_it() -> None:
    with pytest.raises(ValidationError, match="session_id is missing"):
        Event(user_id="", item_id="i1", event_type="view")
    with pytest.raises(ValidationError, match="must be 'anonymous:' \\+ session_id"):
        Event(user_id="anonymous:someone", session_id="s1", item_id="i1", event_type="view")
    assert Event(user_id="anonymous:s1", session_id="s1", item_id="i1", event_type="view").user_id == "anonymous:s1"
    with pytest.raises(ValidationError, match="must not be blank"):
        Event(user_id="  ", session_id="s1", item_id="i1", event_type="view")  # blank is not empty: a broken id


def test_an_anonymous_shoppers_events_reach_the_id_its_recommendations_are_asked_for(tmp_path: Path) -> None:
    write_catalogue(tmp_path)
    with TestClient(create_app(settings_for(tmp_path))) as client:
        posted = client.post("/events", json={"events": [{"user_id": "", "session_id": "v1", "item_id": "i1", "event_type": "purchase"}]})
        got = client.get("/recommendations/anonymous:v1", params={"n": 3}).json()
        empty = client.get("/recommendations/", params={"n": 3})
    assert posted.status_code == 202
    (line,) = events_file(HomeLayout(tmp_path).live_events, datetime.now(timezone.utc).date()).read_text().splitlines()
    assert json.loads(line)["user_id"] == "anonymous:v1"
    assert "i1" not in [r["item_id"] for r in got["items"]]  # bought in this visit: never offered again
    assert empty.status_code == 422 and "anonymous:<session_id>" in empty.json()["detail"]
