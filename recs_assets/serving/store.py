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
    loaded: bool = False
    loaded_at: str | None = None
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


def _read(path: Path) -> pl.DataFrame | None:
    return pl.read_parquet(path) if path.exists() else None


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
    recs = _read(lake / SNAPSHOT_FILES["recommendations"])
    similar = _read(lake / SNAPSHOT_FILES["similar"])
    popular = _read(lake / SNAPSHOT_FILES["popular"])
    history = _read(lake / SNAPSHOT_FILES["history"])
    users = _read(lake / SNAPSHOT_FILES["users"])
    items = _read(lake / SNAPSHOT_FILES["items"])

    model = model_version = None
    rec_map: dict[str, Ranked] = {}
    if recs is not None:
        recs = recs.with_columns(pl.col("user_id").cast(pl.Utf8))
        rec_map = _grouped(recs, ["user_id"], "item_id")
        if recs.height:
            # One snapshot = one model; if several, the most common (model, version) is reported.
            top = recs.group_by(["model", "model_version"]).len().sort("len", descending=True).row(0)
            model, model_version = str(top[0]), int(top[1])
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
    session_model, session_name, session_weight = _session_model(lake)
    return SnapshotStore(
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
