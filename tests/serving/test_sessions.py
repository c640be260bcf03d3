"""Live sessions: anchors newest first, purchases remembered, memory bounded."""

from __future__ import annotations

from recs_assets.serving import sessions as sessions_module
from recs_assets.serving.sessions import Sessions, SessionState


def test_anchors_are_the_last_three_distinct_viewed_or_carted_items_not_bought() -> None:
    s = Sessions()
    for item, kind in [("a", "view"), ("b", "view"), ("c", "add_to_cart"), ("b", "view"), ("d", "purchase"),
                       ("e", "view"), ("e", "view"), ("c", "purchase")]:
        s.add("u", item, kind)
    state = s.get("u")
    assert state.anchors == ["e", "b", "a"]  # c was bought, d only bought, e twice counts once
    assert state.seen == {"a", "b", "c", "d", "e"} and state.bought == {"c", "d"}


def test_an_unknown_user_has_an_empty_session_that_callers_cannot_share() -> None:
    s = Sessions()
    first = s.get("nobody")
    assert first == SessionState([], set(), set())
    first.seen.add("x")
    assert s.get("nobody").seen == set()


def test_least_recently_active_user_is_dropped_beyond_max_users() -> None:
    s = Sessions(max_users=2)
    s.add("u1", "a", "view")
    s.add("u2", "a", "view")
    s.add("u1", "b", "view")  # u1 is now the most recent
    s.add("u3", "a", "view")
    assert len(s) == 2 and s.get("u2").anchors == [] and s.get("u1").anchors == ["b", "a"]


def test_only_the_last_events_per_user_are_kept(monkeypatch) -> None:
    monkeypatch.setattr(sessions_module, "SESSION_EVENTS_PER_USER", 2)
    s = Sessions()
    for item in ("a", "b", "c"):
        s.add("u", item, "view")
    assert s.get("u").seen == {"b", "c"}


# --- the current visit, and rebuilding sessions from the live event log -----------------------------

import json  # noqa: E402
from datetime import datetime, timedelta, timezone  # noqa: E402

import polars as pl  # noqa: E402

from recs_assets.layout import HomeLayout  # noqa: E402
from recs_assets.models.session_knn import SessionKNNRecommender  # noqa: E402
from recs_assets.serving.sessions import file_log_records, rebuild_sessions  # noqa: E402
from recs_assets.serving.store import SNAPSHOT_FILES  # noqa: E402


def test_the_current_visit_is_the_latest_session_in_order_with_repeats_once() -> None:
    s = Sessions()
    for item, kind, session in [("a", "view", "s1"), ("b", "view", "s1"), ("c", "view", "s2"), ("c", "add_to_cart", "s2"),
                                ("d", "view", "s2"), ("c", "view", "s2")]:
        s.add("u", item, kind, session)
    assert s.get("u").items == ("c", "d", "c")
    s.add("v", "x", "view")
    s.add("v", "y", "view")
    assert s.get("v").items == ("x", "y")  # no session ids: every recent event is the visit


def _write_log(directory, records) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    by_day: dict[str, list[str]] = {}
    for r in records:
        by_day.setdefault(r["received_at"][:10], []).append(json.dumps(r))
    for day, lines in by_day.items():
        (directory / f"events-{day}.jsonl").write_text("\n".join(lines) + "\n")


def test_sessions_are_rebuilt_from_the_file_log_within_the_window(tmp_path) -> None:
    now = datetime.now(timezone.utc)
    old = (now - timedelta(days=5)).isoformat()
    recent = (now - timedelta(minutes=5)).isoformat()
    _write_log(tmp_path, [
        {"user_id": "u", "session_id": "s0", "item_id": "old", "event_type": "view", "event_at": old, "received_at": old},
        {"user_id": "u", "session_id": "s1", "item_id": "a", "event_type": "view", "event_at": recent, "received_at": recent},
        {"user_id": "u", "session_id": "s1", "item_id": "b", "event_type": "purchase", "event_at": recent, "received_at": recent},
    ])
    with open(tmp_path / f"events-{now:%Y-%m-%d}.jsonl", "a") as handle:
        handle.write('{"user_id": "u", "item_id": "cut sho')  # a crash mid-line: never acknowledged
    s = Sessions()
    since = now - timedelta(days=2)
    assert rebuild_sessions(s, file_log_records(tmp_path, since), since) == 2
    state = s.get("u")
    assert state.items == ("a", "b") and state.bought == {"b"} and "old" not in state.seen


# --- through the API: an anonymous shopper's list follows their visit, and survives a restart -------

TOYS = ["i6", "i7", "i8", "i10"]
BOOKS = ["i1", "i2", "i3", "i5"]


def write_session_model(lake) -> None:
    """A session model that learnt that toys follow toys and books follow books."""
    visits = pl.DataFrame({
        "session_id": [f"v{k}" for k in range(8)], "user_id": [f"anonymous:v{k}" for k in range(8)],
        "started_at": list(range(8)), "item_ids": [TOYS, BOOKS] * 4,
    })
    interactions = visits.select("user_id", pl.col("item_ids").alias("item_id")).explode("item_id").with_columns(strength=pl.lit(1.0))
    model = SessionKNNRecommender(k=10).fit(interactions, sequences=visits)
    model.save(lake / SNAPSHOT_FILES["session_model"])
    pl.DataFrame({"model": ["session_knn_model"], "blend_weight": [0.7]}).write_parquet(lake / SNAPSHOT_FILES["session"])


def test_an_anonymous_visit_moves_the_list_to_its_category_and_survives_a_restart(tmp_path) -> None:
    from tests.serving.test_api import Server, write_lake

    lake = write_lake(tmp_path)
    write_session_model(lake)
    shopper = "anonymous:visit1"
    server = Server(tmp_path)
    try:
        before = server.client.get(f"/recommendations/{shopper}", params={"n": 3}).json()
        assert before["source"] == "fallback" and [r["item_id"] for r in before["items"]] == ["i5", "i4", "i1"]  # books
        events = [{"user_id": shopper, "session_id": "visit1", "item_id": item, "event_type": "view"} for item in ("i6", "i7")]
        assert server.client.post("/events", json={"events": events}).status_code == 202
        after = server.client.get(f"/recommendations/{shopper}", params={"n": 3}).json()
    finally:
        server.client.close()
        server.stop()
    assert after["source"] == "session" and after["model"] == "session_knn_model"
    toys = [r["item_id"] for r in after["items"] if r["reason"] == "session"]
    assert toys[:2] == ["i10", "i8"] and {"i6", "i7"}.isdisjoint(r["item_id"] for r in after["items"])

    restarted = Server(tmp_path)  # a new process: only the live event log remembers the visit
    try:
        again = restarted.client.get(f"/recommendations/{shopper}", params={"n": 3}).json()
    finally:
        restarted.client.close()
        restarted.stop()
    assert again["items"] == after["items"] and again["source"] == "session"
    assert HomeLayout(tmp_path).live_events.exists()
