"""The snapshots the API serves, held in memory: loaded from the lake, swapped whole when the files change.

The pipeline replaces each snapshot file atomically (temp + rename). :func:`load_store` reads them all
into an immutable :class:`SnapshotStore` of ready lists, so requests never touch disk. A
:class:`StoreHolder` polls the files' ``os.stat`` every ``reload_interval`` seconds; when any changed it
builds a complete new store and swaps one reference (an atomic attribute assignment), so a request sees
either the old or the new store, never a half-built one. If a rebuild fails (e.g. a malformed file) the
old store keeps serving and the error is kept for /health.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl

log = logging.getLogger("recs_assets.serving")

# One Parquet file per snapshot asset, named after the asset.
SNAPSHOT_FILES = {
    "recommendations": "recommendation_snapshot.parquet",
    "similar": "similar_items_snapshot.parquet",
    "popular": "popular_items_snapshot.parquet",
    "history": "user_history_snapshot.parquet",
    "users": "users.parquet",
    "items": "items.parquet",
    # The session model the API scores live visits with (see defs/serving.py session_model_snapshot):
    # its description (model, blend weight) and its weights, in the model's own npz format.
    "session": "session_model_snapshot.parquet",
    "session_model": "session_model_snapshot.npz",
}

Ranked = tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class SnapshotStore:
    """Everything a request needs, immutable once built."""

    recommendations: dict[str, Ranked] = field(default_factory=dict)
    similar: dict[str, Ranked] = field(default_factory=dict)
    popular: dict[tuple[str | None, str | None], Ranked] = field(default_factory=dict)
    # What each user has already interacted with: never served to them again, on any path.
    history: dict[str, frozenset[str]] = field(default_factory=dict)
    user_segment: dict[str, str | None] = field(default_factory=dict)
    item_category: dict[str, str | None] = field(default_factory=dict)
    inactive: frozenset[str] = frozenset()
    # The session model (a `SequenceRecommender`, read-only) and the weight of its list against a known
    # shopper's precomputed one (session_protocol.fuse); None: no session model, the neighbours rule.
    session_model: Any = None
    session_model_name: str | None = None
    session_weight: float = 1.0
    model: str | None = None
    model_version: int | None = None
    # The graded version the served one was refitted from (the refit's `refit_of`).
    evaluated_version: int | None = None
    loaded: bool = False
    loaded_at: str | None = None
    # What the store could not load (missing, empty or unreadable files) and what it serves instead.
    problems: tuple[str, ...] = ()
    signature: tuple = ()

    @property
    def counts(self) -> dict[str, int]:
        return {
            "users_with_recommendations": len(self.recommendations),
            "items_with_similar": len(self.similar),
            "popular_lists": len(self.popular),
            "users_with_history": len(self.history),
            "users": len(self.user_segment),
            "items": len(self.item_category),
            "inactive_items": len(self.inactive),
            "session_model_items": 0 if self.session_model is None else self.session_model.n_items,
        }


def snapshot_signature(lake: Path) -> tuple:
    """Cheap change detector: (name, inode, size, mtime_ns) per file; None for a missing file."""
    sig = []
    for name in SNAPSHOT_FILES.values():
        try:
            st = os.stat(lake / name)
            sig.append((name, st.st_ino, st.st_size, st.st_mtime_ns))
        except FileNotFoundError:
            sig.append((name, None))
    return tuple(sig)


# Without these the API serves less than it should: /health says degraded, naming what is missing.
REQUIRED_PARTS = ("recommendations", "popular", "similar", "history")


def _read(path: Path) -> pl.DataFrame | None:
    return pl.read_parquet(path) if path.exists() else None


def _read_part(lake: Path, part: str, problems: list[str]) -> pl.DataFrame | None:
    """One snapshot file, or None with the reason in `problems`: one broken file never takes the others down."""
    path = lake / SNAPSHOT_FILES[part]
    if not path.exists():
        if part in REQUIRED_PARTS:
            problems.append(f"{part}: {path.name} is missing")
        return None
    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # truncated or not Parquet at all: this part is served from the fallbacks
        problems.append(f"{part}: {path.name} is unreadable ({type(exc).__name__}: {str(exc)[:200]})")
        return None
    if frame.height == 0 and part in REQUIRED_PARTS:
        problems.append(f"{part}: {path.name} is empty")
    return frame


def _fallback_popular(history: pl.DataFrame | None, recs: pl.DataFrame | None, inactive: frozenset[str],
                      n: int = 100) -> dict[tuple[str | None, str | None], Ranked]:
    """The overall popular list rebuilt from what is left when the popular snapshot is unusable.

    Counts of users per item in the history snapshot (what people interacted with), else how often the
    recommendation snapshot shows each item; sellable items only. Empty only when both are unusable.
    """
    for frame in (history, recs):
        if frame is None or frame.height == 0 or "item_id" not in frame.columns:
            continue
        counts = (
            frame.select(pl.col("item_id").cast(pl.Utf8))
            .filter(~pl.col("item_id").is_in(list(inactive)))
            .group_by("item_id").len()
            .sort(["len", "item_id"], descending=[True, False])
            .head(n)
        )
        if counts.height:
            top = float(counts["len"][0])
            return {(None, None): tuple((i, c / top) for i, c in counts.iter_rows())}
    return {}


def _grouped(df: pl.DataFrame, keys: list[str], item_col: str) -> dict[Any, Ranked]:
    """{key: ((item, score), ...)} ordered by rank."""
    df = df.sort([*keys, "rank"])
    cols = [df[k].to_list() for k in keys]
    items = df[item_col].cast(pl.Utf8).to_list()
    scores = df["score"].cast(pl.Float64).to_list()
    out: dict[Any, list[tuple[str, float]]] = {}
    for i, (item, score) in enumerate(zip(items, scores)):
        key = cols[0][i] if len(keys) == 1 else tuple(c[i] for c in cols)
        out.setdefault(key, []).append((item, score))
    return {k: tuple(v) for k, v in out.items()}


def _history(df: pl.DataFrame) -> dict[str, frozenset[str]]:
    grouped = (
        df.select(pl.col("user_id").cast(pl.Utf8), pl.col("item_id").cast(pl.Utf8))
        .drop_nulls()
        .group_by("user_id")
        .agg("item_id")
    )
    # One str object per distinct item instead of one per row: halves the memory of a large history.
    pool: dict[str, str] = {}
    canonical = pool.setdefault
    return {
        u: frozenset([canonical(i, i) for i in items])
        for u, items in zip(grouped["user_id"].to_list(), grouped["item_id"].to_list())
    }


def load_store(lake: Path) -> SnapshotStore:
    """Build a complete store from the lake (raises on a malformed file; the caller keeps the old store)."""
    signature = snapshot_signature(lake)
    problems: list[str] = []
    recs = _read_part(lake, "recommendations", problems)
    similar = _read_part(lake, "similar", problems)
    popular = _read_part(lake, "popular", problems)
    history = _read_part(lake, "history", problems)
    users = _read_part(lake, "users", problems)
    items = _read_part(lake, "items", problems)

    model = model_version = evaluated_version = None
    rec_map: dict[str, Ranked] = {}
    if recs is not None:
        recs = recs.with_columns(pl.col("user_id").cast(pl.Utf8))
        rec_map = _grouped(recs, ["user_id"], "item_id")
        if recs.height:
            # One snapshot = one model; if several, the most common (model, version) is reported.
            keys = ["model", "model_version", *(["evaluated_version"] if "evaluated_version" in recs.columns else [])]
            top = recs.group_by(keys).len().sort("len", descending=True).row(0)
            model, model_version = str(top[0]), int(top[1])
            evaluated_version = int(top[2]) if len(keys) == 3 and top[2] is not None else None
    sim_map: dict[str, Ranked] = {}
    if similar is not None:
        similar = similar.with_columns(pl.col("item_id").cast(pl.Utf8)).filter(
            pl.col("similar_item_id").cast(pl.Utf8) != pl.col("item_id")
        )
        sim_map = _grouped(similar, ["item_id"], "similar_item_id")
    pop_map: dict[tuple[str | None, str | None], Ranked] = {}
    if popular is not None:
        popular = popular.with_columns(pl.col("segment").cast(pl.Utf8), pl.col("category").cast(pl.Utf8))
        pop_map = _grouped(popular, ["segment", "category"], "item_id")
    user_segment: dict[str, str | None] = {}
    if users is not None:
        seg = users["segment"].cast(pl.Utf8).to_list() if "segment" in users.columns else [None] * users.height
        user_segment = dict(zip(users["user_id"].cast(pl.Utf8).to_list(), seg))
    item_category: dict[str, str | None] = {}
    inactive: frozenset[str] = frozenset()
    if items is not None:
        ids = items["item_id"].cast(pl.Utf8).to_list()
        cats = items["category"].cast(pl.Utf8).to_list() if "category" in items.columns else [None] * len(ids)
        item_category = dict(zip(ids, cats))
        if "is_active" in items.columns:
            inactive = frozenset(items.filter(~pl.col("is_active").fill_null(True))["item_id"].cast(pl.Utf8).to_list())
    if not pop_map.get((None, None)):
        pop_map = {**pop_map, **_fallback_popular(history, recs, inactive)}
        if pop_map.get((None, None)):
            problems.append("popular: served from the history snapshot's counts instead")
        else:
            problems.append("popular: no fallback list at all (history and recommendations unusable too)")
    try:
        session_model, session_name, session_weight = _session_model(lake)
    except Exception as exc:  # the session path falls back to the neighbours rule
        problems.append(f"session: unusable ({type(exc).__name__}: {str(exc)[:200]})")
        session_model, session_name, session_weight = None, None, 1.0
    return SnapshotStore(
        problems=tuple(problems),
        session_model=session_model,
        session_model_name=session_name,
        session_weight=session_weight,
        recommendations=rec_map,
        similar=sim_map,
        popular=pop_map,
        history=_history(history) if history is not None else {},
        user_segment=user_segment,
        item_category=item_category,
        inactive=inactive,
        model=model,
        model_version=model_version,
        evaluated_version=evaluated_version,
        loaded=recs is not None,
        loaded_at=datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        signature=signature,
    )


def _session_model(lake: Path) -> tuple[Any, str | None, float]:
    """The session model and its blend weight, when both files are there (else no session model)."""
    described = _read(lake / SNAPSHOT_FILES["session"])
    weights = lake / SNAPSHOT_FILES["session_model"]
    if described is None or described.height == 0 or not weights.exists():
        return None, None, 1.0
    from recs_assets.models.base import Recommender  # loads only registered model kinds, never pickle

    row = described.row(0, named=True)
    return Recommender.load(weights), str(row["model"]), float(row["blend_weight"])


class StoreHolder:
    """Holds the current store; a background thread rebuilds and swaps it when the files change."""

    def __init__(self, lake: Path, reload_interval: float) -> None:
        self.lake = Path(lake)
        self.reload_interval = reload_interval
        self.store = SnapshotStore()
        self.last_error: str | None = None
        self.reloads = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> bool:
        """Rebuild if any file changed; returns True when a new store was swapped in."""
        if snapshot_signature(self.lake) == self.store.signature and self.store.signature:
            return False
        try:
            new = load_store(self.lake)
        except Exception as exc:  # a half-written or malformed file: keep serving the old store
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("snapshot reload failed, keeping the previous store: %s", self.last_error)
            return False
        if self.store.loaded and set(new.problems) - set(self.store.problems):
            # A newer file is broken where the serving store is not: keep what serves.
            self.last_error = "; ".join(new.problems)
            log.warning("snapshot reload incomplete, keeping the previous store: %s", self.last_error)
            return False
        if new.problems:
            log.warning("serving an incomplete snapshot: %s", "; ".join(new.problems))
        self.store = new  # the single atomic swap
        self.last_error = None
        self.reloads += 1
        return True

    def start(self) -> None:
        self.refresh()
        self._thread = threading.Thread(target=self._run, name="snapshot-watcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.reload_interval):
            self.refresh()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
