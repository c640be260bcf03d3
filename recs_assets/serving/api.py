"""Online recommendation API: a FastAPI app serving precomputed snapshots from memory.

The pipeline writes Parquet snapshots into ``$RECS_HOME/lake/`` (replaced atomically: temp + rename).
This service loads them all into an immutable in-memory :class:`SnapshotStore` (plain dicts of ready
lists), so requests never touch disk. A background thread polls the files' ``os.stat`` every
``reload_interval`` seconds; when any changed it builds a complete new store and swaps one reference
(an atomic attribute assignment), so a request sees either the old or the new store, never a half-built one.
If a rebuild fails (e.g. a malformed file) the old store keeps serving and the error shows in /health.

Live session re-ranking rule (``GET /recommendations/{user_id}`` after ``POST /events``):

* anchors = the user's last 3 distinct viewed/carted items in this process's session memory (newest first);
* boosted = the anchors' similar items, interleaved round-robin by rank (newest anchor first), skipping
  items the user already viewed/carted/bought, inactive items and items outside ``category``;
  at most ``max(1, n // 2)`` of them go to the top of the list, marked ``reason: "session"``;
* the rest is the snapshot list (or the fallback), without duplicates, purchased and inactive items.

Purchased items (posted as ``purchase`` events) are never recommended to that user again while the
process runs. Session memory is bounded: the last 50 events per user, at most 100,000 users (LRU).

Fallback (``source: "fallback"``): a user without a snapshot list gets the popular items of their
segment (from ``users.parquet``) or, for an unknown user, the global list (segment null). With a category
the lookup order is (segment, category), (segment, all) filtered, (any, category), (any, all) filtered.
Fallback responses carry ``model: "popularity_fallback"`` and ``model_version: null``.

Every request's latency, path, status and served model_version go to a buffered request log
(``$RECS_HOME/serving/request_log.jsonl``), flushed by a background thread every ``log_flush_interval``
seconds and on shutdown. Posted events are appended durably (flush + fsync per batch) to
``$RECS_HOME/live_events/events-YYYY-MM-DD.jsonl`` (UTC date of receipt) before they affect sessions.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import anyio
import polars as pl
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

log = logging.getLogger("recs_assets.serving")

MAX_N = 100
MAX_EVENTS_PER_BATCH = 1000
MAX_BODY_BYTES = 2_000_000
SESSION_EVENTS_PER_USER = 50
PURCHASES_PER_USER = 200
MAX_SESSION_USERS = 100_000
SESSION_ANCHORS = 3

SNAPSHOT_FILES = {
    "recommendations": "recommendation_snapshot.parquet",
    "similar": "similar_items_snapshot.parquet",
    "popular": "popular_items_snapshot.parquet",
    "users": "users.parquet",
    "items": "items.parquet",
}

Ranked = tuple[tuple[str, float], ...]


# --------------------------------------------------------------------------------------------- store
@dataclass(frozen=True)
class SnapshotStore:
    """Everything a request needs, immutable once built."""

    recommendations: dict[str, Ranked] = field(default_factory=dict)
    similar: dict[str, Ranked] = field(default_factory=dict)
    popular: dict[tuple[str | None, str | None], Ranked] = field(default_factory=dict)
    user_segment: dict[str, str | None] = field(default_factory=dict)
    item_category: dict[str, str | None] = field(default_factory=dict)
    inactive: frozenset[str] = frozenset()
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
            "users": len(self.user_segment),
            "items": len(self.item_category),
            "inactive_items": len(self.inactive),
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


def load_store(lake: Path) -> SnapshotStore:
    """Build a complete store from the lake (raises on a malformed file; the caller keeps the old store)."""
    signature = snapshot_signature(lake)
    recs = _read(lake / SNAPSHOT_FILES["recommendations"])
    similar = _read(lake / SNAPSHOT_FILES["similar"])
    popular = _read(lake / SNAPSHOT_FILES["popular"])
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
    return SnapshotStore(
        recommendations=rec_map,
        similar=sim_map,
        popular=pop_map,
        user_segment=user_segment,
        item_category=item_category,
        inactive=inactive,
        model=model,
        model_version=model_version,
        loaded=recs is not None,
        loaded_at=datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        signature=signature,
    )


class StoreHolder:
    """Holds the current store; a background thread rebuilds and swaps it when the files change."""

    def __init__(self, lake: Path, reload_interval: float) -> None:
        self.lake = lake
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


# ---------------------------------------------------------------------------------------- sessions
class Sessions:
    """Bounded per-user live state: recent view/cart events and purchased items."""

    def __init__(self, max_users: int = MAX_SESSION_USERS) -> None:
        self.max_users = max_users
        self._users: OrderedDict[str, tuple[deque, deque]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, user_id: str, item_id: str, event_type: str) -> None:
        with self._lock:
            state = self._users.get(user_id)
            if state is None:
                state = (deque(maxlen=SESSION_EVENTS_PER_USER), deque(maxlen=PURCHASES_PER_USER))
                self._users[user_id] = state
                if len(self._users) > self.max_users:
                    self._users.popitem(last=False)
            else:
                self._users.move_to_end(user_id)
            recent, bought = state
            recent.append((item_id, event_type))
            if event_type == "purchase":
                bought.append(item_id)

    def get(self, user_id: str) -> tuple[list[str], set[str], set[str]]:
        """(anchors newest first, seen items, purchased items)."""
        with self._lock:
            state = self._users.get(user_id)
            if state is None:
                return [], set(), set()
            recent, bought = list(state[0]), set(state[1])
        anchors: list[str] = []
        for item, kind in reversed(recent):
            if kind in ("view", "add_to_cart") and item not in anchors and item not in bought:
                anchors.append(item)
                if len(anchors) == SESSION_ANCHORS:
                    break
        seen = {item for item, _ in recent}
        return anchors, seen, bought

    def __len__(self) -> int:
        return len(self._users)


# -------------------------------------------------------------------------------------- request log
class RequestLog:
    """Buffered JSON-lines log, flushed by a background thread and on shutdown."""

    def __init__(self, path: Path, flush_interval: float) -> None:
        self.path = path
        self.flush_interval = flush_interval
        self._buffer: list[dict] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def append(self, record: dict) -> None:
        with self._lock:
            self._buffer.append(record)

    def flush(self) -> None:
        with self._lock:
            batch, self._buffer = self._buffer, []
        if not batch:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in batch))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="request-log", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval):
            try:
                self.flush()
            except Exception:  # never let logging kill the service
                log.exception("request log flush failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()


class RequestLogMiddleware:
    """Pure ASGI middleware: latency, path, status and served model_version of every HTTP request."""

    def __init__(self, app, request_log: RequestLog) -> None:
        self.app = app
        self.request_log = request_log

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        info: dict[str, Any] = {"status": 500, "model_version": None}
        scope["recs_log"] = info

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                info["status"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.request_log.append(
                {
                    "ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "status": info["status"],
                    "latency_ms": round((time.perf_counter() - start) * 1000, 3),
                    "model_version": info["model_version"],
                    "source": info.get("source"),
                }
            )


class BodySizeLimitMiddleware:
    """Reject bodies larger than max_bytes with 413 before they are parsed."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            length = dict(scope.get("headers") or []).get(b"content-length")
            if length is not None and length.isdigit() and int(length) > self.max_bytes:
                resp = JSONResponse(
                    {"detail": f"request body too large: {int(length)} bytes > limit {self.max_bytes}"},
                    status_code=413,
                )
                return await resp(scope, receive, send)
        return await self.app(scope, receive, send)


# ----------------------------------------------------------------------------------------- schemas
class Event(BaseModel):
    user_id: str = Field(min_length=1, max_length=200)
    session_id: str | None = Field(default=None, max_length=200)
    item_id: str = Field(min_length=1, max_length=200)
    event_type: Literal["view", "add_to_cart", "purchase"]
    event_at: datetime | None = None


class EventBatch(BaseModel):
    events: list[Event] = Field(min_length=1, max_length=MAX_EVENTS_PER_BATCH)


class EventsWriter:
    """Durable append of live events: one JSON line per event, flush + fsync per batch."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()

    def write(self, events: Iterable[Event]) -> Path:
        now = datetime.now(timezone.utc)
        received = now.isoformat(timespec="milliseconds")
        lines = []
        for e in events:
            at = e.event_at or now
            if at.tzinfo is None:
                at = at.replace(tzinfo=timezone.utc)
            rec = {
                "user_id": e.user_id,
                "session_id": e.session_id,
                "item_id": e.item_id,
                "event_type": e.event_type,
                "event_at": at.isoformat(),
                "received_at": received,
            }
            lines.append(json.dumps(rec, separators=(",", ":")) + "\n")
        path = self.directory / f"events-{now:%Y-%m-%d}.jsonl"
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as fh:
                fh.write("".join(lines))
                fh.flush()
                os.fsync(fh.fileno())
        return path


# --------------------------------------------------------------------------------------- ranking
def _keep(item: str, store: SnapshotStore, category: str | None, exclude: set[str]) -> bool:
    if item in exclude or item in store.inactive:
        return False
    return category is None or store.item_category.get(item) == category


def fallback_lists(store: SnapshotStore, user_id: str, category: str | None) -> list[Ranked]:
    """Popular lists to try in order (segment-aware, then global)."""
    segment = store.user_segment.get(user_id)
    keys: list[tuple[str | None, str | None]] = []
    for seg in ([segment] if segment is not None else []) + [None]:
        if category is not None:
            keys.append((seg, category))
        keys.append((seg, None))
    return [store.popular[k] for k in keys if k in store.popular]


def recommend(store: SnapshotStore, sessions: Sessions, user_id: str, n: int, category: str | None) -> dict:
    anchors, seen, bought = sessions.get(user_id)
    base_list = store.recommendations.get(user_id)
    source = "snapshot" if base_list else "fallback"
    candidates = [base_list] if base_list else fallback_lists(store, user_id, category)

    chosen: list[dict] = []
    taken: set[str] = set()

    # 1. session boost: similar items of the newest anchors, round-robin by rank.
    if anchors:
        limit = max(1, n // 2)
        lists = [store.similar.get(a, ()) for a in anchors]
        exclude = seen | bought
        for depth in range(max((len(l) for l in lists), default=0)):
            if len(chosen) >= limit:
                break
            for anchor, lst in zip(anchors, lists):
                if depth < len(lst) and len(chosen) < limit:
                    item, score = lst[depth]
                    if item not in taken and _keep(item, store, category, exclude):
                        taken.add(item)
                        chosen.append({"item_id": item, "score": score, "reason": "session", "because_of": anchor})

    # 2. the snapshot list (or the fallback lists), minus purchased / inactive / duplicates.
    reason = "snapshot" if source == "snapshot" else "popular"
    for lst in candidates:
        for item, score in lst:
            if len(chosen) >= n:
                break
            if item not in taken and _keep(item, store, category, bought):
                taken.add(item)
                chosen.append({"item_id": item, "score": score, "reason": reason})
    for rank, rec in enumerate(chosen, start=1):
        rec["rank"] = rank
    return {
        "user_id": user_id,
        "source": source,
        "model": store.model if source == "snapshot" else "popularity_fallback",
        "model_version": store.model_version if source == "snapshot" else None,
        "category": category,
        "n": n,
        "items": chosen,
    }


# -------------------------------------------------------------------------------------------- app
def create_app(
    home: str | Path | None = None,
    reload_interval: float | None = None,
    log_flush_interval: float | None = None,
) -> FastAPI:
    """The API over ``home`` (default: RECS_HOME, else the project's default home)."""
    if home is None:
        env_home = os.environ.get("RECS_HOME", "").strip()
        if env_home:
            home = env_home
        else:
            from recs_assets.settings import default_home

            home = default_home()
    home = Path(home).resolve()
    if reload_interval is None:
        reload_interval = float(os.environ.get("RECS_API_RELOAD_INTERVAL", "2"))
    if log_flush_interval is None:
        log_flush_interval = float(os.environ.get("RECS_API_LOG_FLUSH_INTERVAL", "1"))

    holder = StoreHolder(home / "lake", reload_interval)
    sessions = Sessions()
    request_log = RequestLog(home / "serving" / "request_log.jsonl", log_flush_interval)
    events_writer = EventsWriter(home / "live_events")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await anyio.to_thread.run_sync(holder.start)
        request_log.start()
        try:
            yield
        finally:
            holder.stop()
            request_log.stop()

    app = FastAPI(
        title="recs-assets recommendation API",
        description="Serves precomputed recommendation snapshots from memory, with live session re-ranking.",
        version="1.0",
        lifespan=lifespan,
    )
    app.state.holder = holder
    app.state.sessions = sessions
    app.state.request_log = request_log

    def _mark(request: Request, model_version: int | None, source: str | None = None) -> None:
        info = request.scope.get("recs_log")
        if info is not None:
            info["model_version"] = model_version
            info["source"] = source

    @app.get("/health")
    async def health(request: Request) -> dict:
        store = holder.store
        _mark(request, store.model_version)
        return {
            "status": "ok" if store.loaded and holder.last_error is None else "degraded",
            "snapshot_loaded": store.loaded,
            "loaded_at": store.loaded_at,
            "reloads": holder.reloads,
            "last_reload_error": holder.last_error,
            "live_session_users": len(sessions),
            "counts": store.counts,
        }

    @app.get("/version")
    async def version(request: Request) -> dict:
        store = holder.store
        _mark(request, store.model_version)
        return {
            "model": store.model,
            "model_version": store.model_version,
            "snapshot_loaded": store.loaded,
            "loaded_at": store.loaded_at,
        }

    @app.get("/recommendations/{user_id}")
    async def recommendations(
        request: Request,
        user_id: str,
        n: int = Query(10, ge=1, le=MAX_N, description="number of items (1..100)"),
        category: str | None = Query(None, min_length=1, max_length=200, description="only this category"),
    ) -> dict:
        store = holder.store  # one read of the reference: the whole request uses one consistent store
        body = recommend(store, sessions, user_id, n, category)
        _mark(request, body["model_version"], body["source"])
        return body

    @app.get("/similar/{item_id}")
    async def similar(
        request: Request,
        item_id: str,
        n: int = Query(10, ge=1, le=MAX_N, description="number of items (1..100)"),
    ) -> dict:
        store = holder.store
        _mark(request, store.model_version)
        if item_id not in store.similar and item_id not in store.item_category:
            raise HTTPException(status_code=404, detail=f"unknown item_id {item_id!r}")
        items = [
            {"item_id": it, "score": sc}
            for it, sc in store.similar.get(item_id, ())
            if it not in store.inactive
        ][:n]
        for rank, rec in enumerate(items, start=1):
            rec["rank"] = rank
        return {"item_id": item_id, "n": n, "items": items}

    @app.post("/events", status_code=202)
    async def post_events(request: Request, batch: EventBatch) -> dict:
        _mark(request, holder.store.model_version)
        path = await anyio.to_thread.run_sync(events_writer.write, batch.events)  # durable first
        for e in batch.events:
            sessions.add(e.user_id, e.item_id, e.event_type)
        return {"accepted": len(batch.events), "file": path.name}

    app.add_middleware(BodySizeLimitMiddleware, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(RequestLogMiddleware, request_log=request_log)
    return app
