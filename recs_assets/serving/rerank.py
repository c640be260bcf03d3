"""The list a shopper gets right now: their snapshot list (or the popular fallback), re-ranked by the
live session, never with anything they already have.

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


def recommend(store: SnapshotStore, session: SessionState, user_id: str, n: int, category: str | None) -> dict:
    """The response body of ``GET /recommendations/{user_id}``: up to `n` items, ranked 1..n."""
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
