"""The app factory takes its configuration from `Settings` and every path from `HomeLayout`."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from fastapi.testclient import TestClient

from recs_assets.layout import HomeLayout
from recs_assets.serving.api import create_app
from recs_assets.serving.request_log import read_request_log
from recs_assets.settings import Settings


def test_the_api_knobs_are_read_from_the_environment(tmp_path: Path) -> None:
    s = Settings.from_env({"RECS_HOME": str(tmp_path), "RECS_API_PORT": "8123", "RECS_API_RELOAD_INTERVAL": "0.5",
                           "RECS_API_LOG_FLUSH_INTERVAL": "3", "RECS_API_LOG_LEVEL": "INFO"})
    assert (s.api_port, s.api_reload_interval, s.api_log_flush_interval, s.api_log_level) == (8123, 0.5, 3.0, "info")
    d = Settings.from_env({"RECS_HOME": str(tmp_path)})
    assert (d.api_port, d.api_reload_interval, d.api_log_flush_interval, d.api_log_level) == (8000, 2.0, 1.0, "warning")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RECS_API_PORT": "http"}, "RECS_API_PORT must be a whole number"),
        ({"RECS_API_PORT": "70000"}, "RECS_API_PORT must be between 1 and 65535"),
        ({"RECS_API_RELOAD_INTERVAL": "soon"}, "RECS_API_RELOAD_INTERVAL must be a number"),
        ({"RECS_API_RELOAD_INTERVAL": "0"}, "RECS_API_RELOAD_INTERVAL must be a positive number of seconds"),
        ({"RECS_API_LOG_FLUSH_INTERVAL": "nan"}, "RECS_API_LOG_FLUSH_INTERVAL must be a positive number"),
        ({"RECS_API_LOG_LEVEL": "loud"}, "RECS_API_LOG_LEVEL must be one of critical, error, warning"),
    ],
)
def test_bad_api_settings_are_named(tmp_path: Path, env: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings.from_env({"RECS_HOME": str(tmp_path), **env})


def test_the_app_reads_and_writes_only_where_the_layout_says(tmp_path: Path) -> None:
    layout = HomeLayout(tmp_path / "home")
    layout.lake.mkdir(parents=True)
    pl.DataFrame({"user_id": ["u1"], "item_id": ["a"], "rank": [1], "score": [1.0], "model": ["m"], "model_version": [7]}
                 ).write_parquet(layout.lake / "recommendation_snapshot.parquet")
    app = create_app(Settings(home=layout.root, api_reload_interval=30, api_log_flush_interval=30))
    with TestClient(app) as client:
        assert client.get("/recommendations/u1").json()["model_version"] == 7
        assert client.post("/events", json={"events": [{"user_id": "u1", "item_id": "a", "event_type": "view"}]}).status_code == 202
    assert [r.path for r in read_request_log(layout.request_log).records] == ["/recommendations/u1", "/events"]
    assert len(list(layout.live_events.glob("events-*.jsonl"))) == 1
    assert sorted(p.name for p in layout.root.iterdir()) == sorted({layout.lake.name, layout.serving.name, layout.live_events.name})


def test_an_api_started_on_a_broken_snapshot_serves_the_fallback_and_says_degraded(tmp_path: Path) -> None:
    # The probe's case: a truncated recommendation snapshot and no popular list; before, everyone got
    # `items: []` and /health said ok.
    layout = HomeLayout(tmp_path / "home")
    layout.lake.mkdir(parents=True)
    recs = layout.lake / "recommendation_snapshot.parquet"
    pl.DataFrame({"user_id": ["u1", "u2"], "item_id": ["a", "b"], "rank": [1, 1], "score": [1.0, 1.0],
                  "model": ["m", "m"], "model_version": [7, 7]}).write_parquet(recs)
    recs.write_bytes(recs.read_bytes()[:40])
    pl.DataFrame({"user_id": ["u1", "u2", "u3"], "item_id": ["x", "x", "y"]}).write_parquet(layout.lake / "user_history_snapshot.parquet")
    app = create_app(Settings(home=layout.root, api_reload_interval=30, api_log_flush_interval=30))
    with TestClient(app) as client:
        body = client.get("/recommendations/u1?n=5").json()
        # u1 already had x: the fallback serves what is left of it, never an empty list from a broken file.
        assert [i["item_id"] for i in body["items"]] == ["y"] and body["source"] == "fallback"
        health = client.get("/health").json()
    assert health["status"] == "degraded"
    assert any("recommendation_snapshot.parquet is unreadable" in p for p in health["problems"])
    assert any("popular_items_snapshot.parquet is missing" in p for p in health["problems"])
