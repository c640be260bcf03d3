"""The list a shopper gets right now: their snapshot list (or the popular fallback), re-ranked by the
live session, never with anything they already have.

With a session model in the store (the pipeline's `session_model_snapshot`), the live visit is scored
by it (learned, the path every snapshot built by the pipeline takes):

* a shopper without a snapshot list (anonymous, or new since the snapshot) who has a live visit gets
  the session model's next items for that visit (``source: "session"``, ``reason: "session"``), then
  the popular fallback;
* a shopper with a snapshot list and a live visit gets both lists merged by reciprocal-rank fusion with
  the weight fitted on the session protocol (:func:`recs_assets.evaluation.session_protocol.fuse`):
  ``source: "snapshot"``, each item's ``reason`` says which list put it there;
* without a live visit, the snapshot list or the fallback as below.

Without a session model (a snapshot from before it existed) the fixed rule below re-ranks instead.

Pure: reads a :class:`~recs_assets.serving.store.SnapshotStore` and a
:class:`~recs_assets.serving.sessions.SessionState`, touches no clock, file or network.

* Nothing the user has already interacted with (the store's ``history``) or bought in the live session
  is served, on any path: snapshot, fallback or session boost. Inactive items are never served.
* anchors = the user's last 3 distinct viewed/carted items in the live session (newest first);
  boosted = the anchors' similar items, interleaved round-robin by rank (newest anchor first), skipping
  items the user already viewed/carted/bought and items outside ``category``; at most ``max(1, n // 2)``
  of them go to the top of the list, marked ``reason: "session"``.
* the rest is the snapshot list (``source: "snapshot"``) or, for a user without one, the fallback
  (``source: "fallback"``): the popular items of their segment, then the global list. With a category
  the lookup order is (segment, category), (segment, all) filtered, (any, category), (any, all) filtered.
  Fallback responses carry ``model: "popularity_fallback"`` and ``model_version: null``.
"""

from __future__ import annotations

from recs_assets.evaluation.session_protocol import fuse
from recs_assets.serving.sessions import SessionState
from recs_assets.serving.store import Ranked, SnapshotStore

FALLBACK_MODEL = "popularity_fallback"
_NOTHING: frozenset[str] = frozenset()


def fallback_lists(store: SnapshotStore, user_id: str, category: str | None) -> list[Ranked]:
    """Popular lists to try in order (segment-aware, then global)."""
    segment = store.user_segment.get(user_id)
    keys: list[tuple[str | None, str | None]] = []
    for seg in ([segment] if segment is not None else []) + [None]:
        if category is not None:
            keys.append((seg, category))
        keys.append((seg, None))
    return [store.popular[k] for k in keys if k in store.popular]


# Items asked of the session model beyond n, so that dropping history, purchases, sold items and other
# categories still leaves n; with a category filter the list must reach further.
SESSION_DEPTH = 50
SESSION_DEPTH_CATEGORY = 500


class _Blocked:
    """Membership in any of several sets, without copying them (the inactive set can be large)."""

    __slots__ = ("sets",)

    def __init__(self, sets: tuple) -> None:
        self.sets = sets

    def __contains__(self, item: object) -> bool:
        return any(item in s for s in self.sets)


def _session_items(store: SnapshotStore, session: SessionState, n: int, category: str | None) -> list[str]:
    depth = min(store.session_model.n_items, n + (SESSION_DEPTH_CATEGORY if category is not None else SESSION_DEPTH))
    ids, _ = store.session_model.recommend_for_sequence([list(session.items)], depth)
    return [i for i in ids[0].tolist() if i is not None]


def _body(store: SnapshotStore, user_id: str, n: int, category: str | None, source: str, chosen: list[dict]) -> dict:
    for rank, rec in enumerate(chosen, start=1):
        rec["rank"] = rank
    model, version = {
        "snapshot": (store.model, store.model_version),
        "session": (store.session_model_name, None),
    }.get(source, (FALLBACK_MODEL, None))
    return {"user_id": user_id, "source": source, "model": model, "model_version": version, "category": category,
            "n": n, "items": chosen}


def _learned(store: SnapshotStore, session: SessionState, user_id: str, n: int, category: str | None) -> dict:
    """The session model's path (see the module docstring)."""
    skip = _Blocked((store.history.get(user_id, _NOTHING), session.bought, frozenset(session.items), store.inactive))
    item_category = store.item_category
    session_items = [i for i in _session_items(store, session, n, category)
                     if category is None or item_category.get(i) == category]
    base_list = store.recommendations.get(user_id)
    if base_list:
        snapshot_items = [i for i, _ in base_list if category is None or item_category.get(i) == category]
        from_session = set(session_items)
        weight = store.session_weight
        chosen = []
        for item, score in fuse(session_items, snapshot_items, weight, skip, n):
            rank_s = session_items.index(item) + 1 if item in from_session else None
            rank_b = snapshot_items.index(item) + 1 if item in snapshot_items else None
            by_session = (weight / rank_s if rank_s else 0.0) > ((1 - weight) / rank_b if rank_b else 0.0)
            chosen.append({"item_id": item, "score": score, "reason": "session" if by_session else "snapshot"})
        return _body(store, user_id, n, category, "snapshot", chosen)
    chosen, taken = [], set()
    for item in session_items:
        if len(chosen) >= n:
            break
        if item not in skip and item not in taken:
            taken.add(item)
            chosen.append({"item_id": item, "score": None, "reason": "session"})
    for rank, rec in enumerate(chosen, start=1):
        rec["score"] = 1.0 / rank  # the session model's own scores are not comparable across visits
    for lst in fallback_lists(store, user_id, category):
        for item, score in lst:
            if len(chosen) >= n:
                break
            if item in taken or item in skip:
                continue
            if category is not None and item_category.get(item) != category:
                continue
            taken.add(item)
            chosen.append({"item_id": item, "score": score, "reason": "popular"})
    return _body(store, user_id, n, category, "session" if taken and chosen[0]["reason"] == "session" else "fallback", chosen)


def recommend(store: SnapshotStore, session: SessionState, user_id: str, n: int, category: str | None) -> dict:
    """The response body of ``GET /recommendations/{user_id}``: up to `n` items, ranked 1..n."""
    if store.session_model is not None and session.items:
        return _learned(store, session, user_id, n, category)
    history = store.history.get(user_id, _NOTHING)
    base_list = store.recommendations.get(user_id)
    source = "snapshot" if base_list else "fallback"
    candidates = [base_list] if base_list else fallback_lists(store, user_id, category)

    chosen: list[dict] = []
    taken: set[str] = set()
    inactive, item_category, seen, bought = store.inactive, store.item_category, session.seen, session.bought

    # 1. session boost: similar items of the newest anchors, round-robin by rank.
    if session.anchors:
        limit = max(1, n // 2)
        lists = [store.similar.get(a, ()) for a in session.anchors]
        for depth in range(max((len(lst) for lst in lists), default=0)):
            if len(chosen) >= limit:
                break
            for anchor, lst in zip(session.anchors, lists):
                if depth >= len(lst) or len(chosen) >= limit:
                    continue
                item, score = lst[depth]
                # Inline checks, not a helper: this loop runs on every request (see benchmarks/serve.py).
                if item in taken or item in inactive or item in seen or item in bought or item in history:
                    continue
                if category is not None and item_category.get(item) != category:
                    continue
                taken.add(item)
                chosen.append({"item_id": item, "score": score, "reason": "session", "because_of": anchor})

    # 2. the snapshot list (or the fallback lists), minus history, purchases, inactive and duplicates.
    reason = "snapshot" if source == "snapshot" else "popular"
    for lst in candidates:
        for item, score in lst:
            if len(chosen) >= n:
                break
            if item in taken or item in inactive or item in bought or item in history:
                continue
            if category is not None and item_category.get(item) != category:
                continue
            taken.add(item)
            chosen.append({"item_id": item, "score": score, "reason": reason})
    for rank, rec in enumerate(chosen, start=1):
        rec["rank"] = rank
    return {
        "user_id": user_id,
        "source": source,
        "model": store.model if source == "snapshot" else FALLBACK_MODEL,
        "model_version": store.model_version if source == "snapshot" else None,
        "category": category,
        "n": n,
        "items": chosen,
    }
