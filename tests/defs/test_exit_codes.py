"""`make run`'s exit code tells a scheduler what happened: 1 for a failed step or blocking check, 0 for a warning
(printed WARN), and 1 for a warning too when RECS_STRICT=1. Whole-graph runs on a tiny simulated shop."""

from __future__ import annotations

import datetime as dt

import pytest

from recs_assets.cli import main
from recs_assets.layout import HomeLayout
from recs_assets.serving.request_log import RequestRecord

pytestmark = pytest.mark.slow

TINY = {"RECS_SIM_USERS": "150", "RECS_SIM_ITEMS": "80", "RECS_SIM_DAYS": "24"}


@pytest.fixture
def tiny_shop(home, monkeypatch):
    for name, value in TINY.items():
        monkeypatch.setenv(name, value)
    return home


def _slow_traffic(home) -> None:
    """A request log whose p99 is far over the serving-health budget: a warning-level failure."""
    log = HomeLayout(home).request_log
    log.parent.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    records = [
        RequestRecord(ts=(now - dt.timedelta(seconds=n)).isoformat(timespec="milliseconds"), method="GET",
                      path="/recommendations/u1", status=200, latency_ms=900.0)
        for n in range(50)
    ]
    log.write_text("".join(r.to_json() + "\n" for r in records))


def test_a_failed_warning_check_prints_warn_and_exits_0_unless_strict(tiny_shop, monkeypatch, capsys):
    _slow_traffic(tiny_shop)
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert "WARN recommendation_snapshot.serving_health_check" in out and "Exit 1" not in out
    monkeypatch.setenv("RECS_STRICT", "1")
    assert main(["run"]) == 1
    out = capsys.readouterr().out
    assert "WARN recommendation_snapshot.serving_health_check" in out and "warnings count as failures" in out


def test_a_failed_blocking_check_exits_1(home, tmp_path, monkeypatch, capsys):
    shop = tmp_path / "shop"
    shop.mkdir()
    (shop / "items.csv").write_text("item_id\ni1\n")
    (shop / "users.csv").write_text("user_id\nu1\n")
    # Half the events name an item the catalogue does not have: far over the 5% quarantine limit.
    rows = [f"e{n},2026-09-01T10:{n:02d}:00Z,u1,s1,{'i1' if n % 2 else 'i404'},view" for n in range(40)]
    (shop / "events.csv").write_text("event_id,event_at,user_id,session_id,item_id,event_type\n" + "\n".join(rows) + "\n")
    monkeypatch.setenv("RECS_SOURCE", "files")
    monkeypatch.setenv("RECS_DATA_DIR", str(shop))
    assert main(["run"]) == 1
    out = capsys.readouterr().out
    assert "FAIL events.events_invalid_share_within_limit" in out and "a blocking check failed" in out


def test_a_failed_step_exits_1(home, tmp_path, monkeypatch, capsys):
    shop = tmp_path / "shop"
    shop.mkdir()
    (shop / "events.csv").write_text("event_id,event_at,event_type\ne1,2026-09-01,view\n")  # no user_id column
    monkeypatch.setenv("RECS_SOURCE", "files")
    monkeypatch.setenv("RECS_DATA_DIR", str(shop))
    assert main(["run"]) == 1
    out = capsys.readouterr().out
    assert "raw_events could not be loaded" in out and "a step failed" in out
