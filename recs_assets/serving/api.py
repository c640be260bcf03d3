"""The online recommendation API: a FastAPI app serving precomputed snapshots from memory.

Routes: ``GET /health``, ``GET /version``, ``GET /recommendations/{user_id}`` (snapshot list or popular
fallback, re-ranked by the live session; see :mod:`recs_assets.serving.rerank`), ``GET /similar/{item_id}``,
``POST /events`` (live views/carts/purchases, stored durably first; see :mod:`recs_assets.serving.events`).
Snapshots are held by :mod:`recs_assets.serving.store`, sessions by :mod:`recs_assets.serving.sessions`,
and every request is logged by :mod:`recs_assets.serving.request_log`.

Configured by :class:`recs_assets.settings.Settings` (home folder, reload and log-flush intervals); every
path comes from :class:`recs_assets.layout.HomeLayout`.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI, HTTPException, Query, Request

from recs_assets.layout import HomeLayout
from recs_assets.serving.events import EventBatch, EventsWriter
from recs_assets.serving.middleware import BodySizeLimitMiddleware, RequestLogMiddleware, mark_served
from recs_assets.serving.request_log import RequestLog
from recs_assets.serving.rerank import recommend
from recs_assets.serving.sessions import Sessions
from recs_assets.serving.store import StoreHolder
from recs_assets.settings import Settings

MAX_N = 100
MAX_BODY_BYTES = 2_000_000


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API over the settings' home folder (default: `Settings.from_env()`)."""
    settings = Settings.from_env() if settings is None else settings
    layout = HomeLayout(settings.home)

    holder = StoreHolder(layout.lake, settings.api_reload_interval)
    sessions = Sessions()
    request_log = RequestLog(layout.request_log, settings.api_log_flush_interval)
    events_writer = EventsWriter(layout.live_events)

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

    @app.get("/health")
    async def health(request: Request) -> dict:
        store = holder.store
        mark_served(request.scope, store.model_version)
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
        mark_served(request.scope, store.model_version)
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
        body = recommend(store, sessions.get(user_id), user_id, n, category)
        mark_served(request.scope, body["model_version"], body["source"])
        return body

    @app.get("/similar/{item_id}")
    async def similar(
        request: Request,
        item_id: str,
        n: int = Query(10, ge=1, le=MAX_N, description="number of items (1..100)"),
    ) -> dict:
        store = holder.store
        mark_served(request.scope, store.model_version)
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
        mark_served(request.scope, holder.store.model_version)
        path = await anyio.to_thread.run_sync(events_writer.write, batch.events)  # durable first
        for e in batch.events:
            sessions.add(e.user_id, e.item_id, e.event_type)
        return {"accepted": len(batch.events), "file": path.name}

    app.add_middleware(BodySizeLimitMiddleware, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(RequestLogMiddleware, request_log=request_log)
    return app
