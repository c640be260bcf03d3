"""Live events into the warehouse: the sensor's decision, and end to end, an event posted to the API is in
`events` exactly once after ingestion, also when the consumer died between reading and acknowledging."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from fastapi.testclient import TestClient

from recs_assets.defs.automation import LIVE_INGEST_JOB, build_live_events_sensor, live_ingestion_request
from recs_assets.layout import HomeLayout
from recs_assets.settings import Settings
from recs_assets.streaming.broker import BrokerStatus
from recs_assets.streaming.landing import LANDING_CONSUMER, write_landed
from recs_assets.streaming.redis_streams import RedisStreamsBroker
from tests.streaming.broker_fixtures import broker_server  # noqa: F401  (fixture)

TINY = dict(sim_users=150, sim_items=80, sim_days=24)


def test_the_sensor_lands_only_when_events_wait_and_once_per_stream_position() -> None:
    assert live_ingestion_request(None, None) == (False, "no broker is running: no live events can have arrived")
    landed = BrokerStatus(length=10, last_id="5-0", pending=0, lag=0)
    assert live_ingestion_request(landed, None)[0] is False
    waiting = BrokerStatus(length=12, last_id="7-1", pending=0, lag=2)
    go, why = live_ingestion_request(waiting, "5-0")
    assert go and "2 live event(s) waiting" in why
    assert live_ingestion_request(waiting, "7-1")[0] is False  # already requested for this position
    stuck = BrokerStatus(length=12, last_id="7-2", pending=3, lag=0)  # a consumer died holding 3
    assert live_ingestion_request(stuck, "7-1")[0] is True


def test_the_sensor_reads_the_broker(tmp_path: Path, broker_server) -> None:
    sensor = build_live_events_sensor(broker_server.url, tmp_path / "unused")
    assert isinstance(sensor(dg.build_sensor_context()), dg.SkipReason)
    (last,) = RedisStreamsBroker(broker_server.url).publish([{"event_id": "e1", "user_id": "u"}])
    context = dg.build_sensor_context()
    request = sensor(context)
    assert isinstance(request, dg.RunRequest) and request.run_key == f"live-{last}" and context.cursor == last
    # No broker configured and no embedded one running: nothing can have arrived.
    idle = build_live_events_sensor(None, tmp_path / "no-broker")
    assert "no broker is running" in idle(dg.build_sensor_context()).skip_message
    broker_server.stop()
    assert "unreachable" in sensor(dg.build_sensor_context()).skip_message


def _table(settings: Settings, sql: str) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        return conn.sql(sql).fetchall()


def test_without_a_broker_or_landed_files_the_live_asset_is_empty_with_a_note(tmp_path: Path) -> None:
    from recs_assets.defs.streaming import build_live_events
    from resources.home_folder import HomeFolder

    result = dg.materialize(
        [build_live_events(None)],
        resources={"home": HomeFolder(path=str(tmp_path)), "io_manager": dg.mem_io_manager},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    meta = result.asset_materializations_for_node("live_events")[0].metadata
    assert meta["rows"].value == 0 and "No live events yet" in meta["note"].value
    assert "none configured" in meta["broker"].value
    assert result.output_for_node("live_events").height == 0


@pytest.mark.slow
def test_an_event_posted_to_the_api_is_in_events_exactly_once_after_ingestion(home: Path, broker_server) -> None:
    from recs_assets.cli import prepare_home, run_everything
    from recs_assets.definitions import INGEST_JOB, build_definitions, build_source
    from recs_assets.serving.api import create_app

    settings = Settings(home=home, broker_url=broker_server.url, api_reload_interval=30, api_log_flush_interval=30, **TINY)
    prepare_home(settings)
    source = build_source(settings)
    user, item = source.load_users()["user_id"][0], source.load_items()["item_id"][0]
    # The API publishes to a real broker; one shopper views and buys, with a retry of the same purchase.
    at = (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat()
    batch = {"events": [
        {"user_id": user, "item_id": item, "event_type": "view"},
        {"event_id": "checkout-0000001", "user_id": user, "item_id": item, "event_type": "purchase", "event_at": at},
    ]}  # fmt: skip
    with TestClient(create_app(settings)) as client:
        first = client.post("/events", json=batch)
        assert first.status_code == 202, first.text
        view_id, purchase_id = first.json()["event_ids"]
        # The client saw a timeout and sends the purchase again: same id, same time, same event.
        assert client.post("/events", json={"events": [batch["events"][1]]}).status_code == 202
    # A malformed event published straight to the broker, bypassing the API's checks.
    broker = RedisStreamsBroker(broker_server.url)
    broker.publish([{"event_id": "sneaky-00000001", "user_id": user, "item_id": item, "event_type": "view", "event_at": "yesterday"}])
    # The warehouse consumer reads two entries, writes their file and dies before acknowledging them.
    entries = broker.read_group(LANDING_CONSUMER, count=2)
    write_landed(entries, HomeLayout(home).live_landing)

    # Ingestion (what the daily schedule runs; the live-events sensor runs its live part): land, stage, check.
    result, _ = run_everything(settings, job_name=INGEST_JOB)
    assert result.success
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["events_reconcile_with_raw"].passed, checks["events_reconcile_with_raw"].description
    assert all(c.passed for c in checks.values()), {n: c.description for n, c in checks.items() if not c.passed}
    meta = result.asset_materializations_for_node("live_events")[0].metadata
    assert meta["landed_events"].value == 4 and meta["consumer_lag"].value == 0 and meta["pending"].value == 0
    assert meta["rows"].value == 6  # 4 landed now + the 2 the dead consumer had written
    assert broker.status().pending == 0

    counts = dict(_table(settings, f"select event_id, count(*) from events where event_id in ('{view_id}', '{purchase_id}') group by 1"))
    assert counts == {view_id: 1, purchase_id: 1}
    ((raw, live, clean),) = _table(settings, "select (select count(*) from raw_events), (select count(*) from live_events), (select count(*) from events)")
    assert clean == raw + 2  # the simulator's rows and the two live events, each once
    ((reason, origin),) = _table(settings, "select _reason, _source from events_quarantine where event_id = 'sneaky-00000001'")
    assert "'yesterday'" in reason and origin.startswith("live:live-")
    assert LIVE_INGEST_JOB in {job.name for job in build_definitions(settings).resolve_all_job_defs()}
