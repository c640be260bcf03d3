"""The re-ranking rule in process: snapshot, fallback and session paths, each never serving the user's history."""

from __future__ import annotations

from dataclasses import replace

from recs_assets.serving.rerank import fallback_lists, recommend
from recs_assets.serving.sessions import SessionState
from recs_assets.serving.store import SnapshotStore

NO_SESSION = SessionState([], set(), set())


def ids(body: dict) -> list[str]:
    return [r["item_id"] for r in body["items"]]


def test_snapshot_path_skips_inactive_and_numbers_ranks(store: SnapshotStore) -> None:
    body = recommend(store, NO_SESSION, "u1", 3, None)
    assert ids(body) == ["i1", "i2", "i3"] and [r["rank"] for r in body["items"]] == [1, 2, 3]
    assert (body["source"], body["model"], body["model_version"]) == ("snapshot", "ranker_model", 3)
    assert {r["reason"] for r in body["items"]} == {"snapshot"}


def test_snapshot_path_excludes_history_and_purchases(store: SnapshotStore) -> None:
    with_history = replace(store, history={"u1": frozenset({"i2", "i6"})})
    session = SessionState([], set(), {"i1"})
    assert ids(recommend(with_history, session, "u1", 10, None)) == ["i3", "i7"]


def test_fallback_path_excludes_history(store: SnapshotStore) -> None:
    assert ids(recommend(store, NO_SESSION, "u3", 4, None)) == ["i2", "i3", "i7", "i5"]
    with_history = replace(store, history={"u3": frozenset({"i2", "i5"})})
    body = recommend(with_history, NO_SESSION, "u3", 4, None)
    assert ids(body) == ["i3", "i7", "i4", "i1"]
    assert (body["source"], body["model"], body["model_version"]) == ("fallback", "popularity_fallback", None)
    assert {r["reason"] for r in body["items"]} == {"popular"}


def test_fallback_lookup_order_with_a_category(store: SnapshotStore) -> None:
    assert fallback_lists(store, "u3", "toys") == [
        store.popular[("A", "toys")], store.popular[("A", None)], store.popular[(None, "toys")], store.popular[(None, None)]
    ]
    assert fallback_lists(store, "stranger", None) == [store.popular[(None, None)]]
    assert ids(recommend(store, NO_SESSION, "u3", 10, "toys")) == ["i7", "i8", "i10"]


def test_session_path_boosts_neighbours_but_not_history(store: SnapshotStore) -> None:
    session = SessionState(["i8"], {"i8"}, {"i5"})
    body = recommend(store, session, "u2", 4, None)
    assert ids(body) == ["i10", "i7", "i4", "i1"]  # n // 2 = 2 boosted; bought i5 dropped; i9 inactive
    assert [r["reason"] for r in body["items"]] == ["session", "session", "snapshot", "snapshot"]
    assert body["items"][0]["because_of"] == "i8"
    with_history = replace(store, history={"u2": frozenset({"i10"})})
    assert ids(recommend(with_history, session, "u2", 4, None)) == ["i7", "i4", "i1", "i2"]


def test_session_boost_interleaves_anchors_newest_first_and_skips_seen(store: SnapshotStore) -> None:
    busy = replace(store, similar={"a": (("x1", 1.0), ("x2", 0.5)), "b": (("y1", 1.0), ("x1", 0.9))},
                   item_category={}, recommendations={"u": (("z", 1.0),)})
    body = recommend(busy, SessionState(["b", "a"], {"a", "b", "y1"}, set()), "u", 8, None)
    # depth 1: b->y1 (seen, skipped), a->x1; depth 2: b->x1 (taken), a->x2; then the snapshot list
    assert ids(body) == ["x1", "x2", "z"]
    assert [r.get("because_of") for r in body["items"]] == ["a", "a", None]


def test_n_of_one_still_gets_one_session_item(store: SnapshotStore) -> None:
    body = recommend(store, SessionState(["i8"], {"i8"}, set()), "u2", 1, None)
    assert ids(body) == ["i10"] and body["items"][0]["reason"] == "session"


def test_an_empty_store_serves_an_empty_fallback() -> None:
    body = recommend(SnapshotStore(), NO_SESSION, "anyone", 5, None)
    assert body["source"] == "fallback" and body["items"] == []


# --- the learned path: a session model in the store -------------------------------------------------

import polars as pl  # noqa: E402

from recs_assets.models.session_knn import SessionKNNRecommender  # noqa: E402


def session_model() -> SessionKNNRecommender:
    """Toys follow toys (i6 -> i7 -> i8 -> i10), books follow books (i1 -> i2 -> i3 -> i4)."""
    toys, books = ["i6", "i7", "i8", "i10"], ["i1", "i2", "i3", "i4"]
    visits = pl.DataFrame({"session_id": [f"v{k}" for k in range(6)], "user_id": [f"anonymous:v{k}" for k in range(6)],
                           "item_ids": [toys, books] * 3})
    interactions = visits.select("user_id", pl.col("item_ids").alias("item_id")).explode("item_id").with_columns(strength=pl.lit(1.0))
    return SessionKNNRecommender(k=10).fit(interactions, sequences=visits)


def visit(*items: str, bought: set[str] | None = None) -> SessionState:
    return SessionState([], set(items), bought or set(), tuple(items))


def test_a_shopper_without_a_list_gets_the_session_models_next_items_then_popular(store: SnapshotStore) -> None:
    learned = replace(store, session_model=session_model(), session_model_name="session_knn_model")
    body = recommend(learned, visit("i6", "i7"), "stranger", 4, None)
    assert body["source"] == "session" and body["model"] == "session_knn_model"
    # i9 is inactive; i8 and i10 tie (the model's order: equally popular, then by id), then its zero-evidence
    # items in popularity order; the popular list fills what the model cannot
    assert ids(body) == ["i10", "i8", "i1", "i2"]
    assert [r["reason"] for r in body["items"]] == ["session"] * 4
    toys = recommend(learned, visit("i6", "i7"), "stranger", 4, "toys")
    assert ids(toys) == ["i10", "i8"] and toys["source"] == "session"
    assert [r["reason"] for r in recommend(learned, visit("i6", "i7"), "stranger", 8, None)["items"]][-1] == "popular"


def test_a_known_shopper_gets_the_two_lists_fused_by_the_fitted_weight(store: SnapshotStore) -> None:
    model = session_model()
    # u2's snapshot list is books (i5, i4, i1, i2); the visit is toys.
    mostly_snapshot = replace(store, session_model=model, session_model_name="session_knn_model", session_weight=0.2)
    body = recommend(mostly_snapshot, visit("i6", "i7"), "u2", 4, None)
    assert body["source"] == "snapshot" and ids(body)[:2] == ["i5", "i4"]
    mostly_session = replace(mostly_snapshot, session_weight=0.8)
    body = recommend(mostly_session, visit("i6", "i7"), "u2", 4, None)
    assert ids(body)[0] == "i10" and body["items"][0]["reason"] == "session"
    assert "i7" not in ids(body) and "i9" not in ids(body)
    # purchases and history are never served on the learned path either
    with_history = replace(mostly_session, history={"u2": frozenset({"i10"})})
    assert not {"i10", "i5"} & set(ids(recommend(with_history, visit("i6", "i7", bought={"i5"}), "u2", 6, None)))


def test_without_a_visit_the_learned_store_serves_the_snapshot_as_before(store: SnapshotStore) -> None:
    learned = replace(store, session_model=session_model(), session_model_name="session_knn_model")
    assert recommend(learned, NO_SESSION, "u1", 3, None) == recommend(store, NO_SESSION, "u1", 3, None)
