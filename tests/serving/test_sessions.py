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
