"""The online recommendation API: a FastAPI app serving precomputed snapshots from memory.

Routes: ``GET /health``, ``GET /version``, ``GET /recommendations/{user_id}`` (snapshot list or popular
fallback, re-ranked by the live session; see :mod:`recs_assets.serving.rerank`), ``GET /similar/{item_id}``, ``GET /search`` (see :mod:`recs_assets.serving.search`),
``POST /events`` (live views/carts/purchases, stored durably first; see :mod:`recs_assets.serving.events`).
Snapshots are held by :mod:`recs_assets.serving.store`, sessions by :mod:`recs_assets.serving.sessions`,
and every request is logged by :mod:`recs_assets.serving.request_log`.

Configured by :class:`recs_assets.settings.Settings` (home folder, reload and log-flush intervals); every
path comes from :class:`recs_assets.layout.HomeLayout`.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from importlib import resources
from datetime import datetime, timezone

import anyio
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from recs_assets.contract import ANONYMOUS_USER_PREFIX
from recs_assets.layout import HomeLayout
from recs_assets.serving.events import EVENTS_RESPONSES, EventBatch, EventSink, LiveEventsUnavailable, unknown_item_errors
from recs_assets.serving.middleware import BodySizeLimitMiddleware, RequestLogMiddleware, mark_served
from recs_assets.serving.request_log import RequestLog
from recs_assets.serving.rerank import recommend
from recs_assets.serving.search import EmptyQuery, SearchHolder, search_response
from recs_assets.serving.sessions import REPLAY_WINDOW, Sessions, file_log_records, rebuild_sessions
from recs_assets.serving.store import StoreHolder
from recs_assets.settings import Settings
from recs_assets.streaming.broker import Broker, BrokerUnavailable, live_event_records
from recs_assets.streaming.redis_streams import RedisStreamsBroker

MAX_N = 100
MAX_BODY_BYTES = 2_000_000


SWAGGER_ASSETS = resources.files("fastapi_swagger") / "resources"  # Swagger UI 5's dist files, pinned on PyPI


def _offline_docs(app: FastAPI) -> None:
    """/docs with Swagger UI's script and style served by the API itself, so it renders without the internet.

    Under /docs/ so that the request log counts them with /docs, a probe, not as serving traffic.
    """
    app.mount("/docs/assets", StaticFiles(directory=str(SWAGGER_ASSETS)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + app.openapi_url, title=f"{app.title} - docs",
            swagger_js_url=f"{root}/docs/assets/swagger-ui-bundle.js", swagger_css_url=f"{root}/docs/assets/swagger-ui.css",
            swagger_favicon_url=f"{root}/docs/assets/favicon-32x32.png",
        )


def create_app(settings: Settings | None = None, broker: Broker | None = None) -> FastAPI:
    """The API over the settings' home folder (default: `Settings.from_env()`); live events go to `broker`,
    else to the one at `settings.broker_url`, else to the JSON-lines log in the home."""
    settings = Settings.from_env() if settings is None else settings
    layout = HomeLayout(settings.home)

    holder = StoreHolder(layout.lake, settings.api_reload_interval)
    search = SearchHolder(layout, settings.api_reload_interval)
    sessions = Sessions()
    request_log = RequestLog(layout.request_log, settings.api_log_flush_interval)
    if broker is None and settings.broker_url:
        broker = RedisStreamsBroker(settings.broker_url)
    event_sink = EventSink(broker, layout.live_events)

    def replay_sessions() -> int:
        """Sessions survive a restart: the accepted events of the last REPLAY_WINDOW, replayed."""
        since = datetime.now(timezone.utc) - REPLAY_WINDOW
        log = event_sink.broker
        records = live_event_records(log, since) if log is not None else file_log_records(layout.live_events, since)
        try:
            return rebuild_sessions(sessions, records, since)
        except BrokerUnavailable:  # serve without the old visits rather than not at all
            return 0

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.replayed_events = await anyio.to_thread.run_sync(replay_sessions)
        await anyio.to_thread.run_sync(holder.start)
        await anyio.to_thread.run_sync(search.start)
        request_log.start()
        try:
            yield
        finally:
            holder.stop()
            search.stop()
            request_log.stop()

    app = FastAPI(
        title="recs-assets recommendation API",
        description="Serves precomputed recommendation snapshots from memory, with live session re-ranking.",
        version="1.0",
        lifespan=lifespan,
        docs_url=None,  # served below from local files: FastAPI's default page loads Swagger UI from a CDN
    )
    _offline_docs(app)
    app.state.holder = holder
    app.state.search = search
    app.state.sessions = sessions
    app.state.request_log = request_log
    app.state.event_sink = event_sink  # .broker: where sessions are replayed from (None: the file log)

    @app.get("/health")
    async def health(request: Request) -> dict:
        store = holder.store
        mark_served(request.scope, store.model_version)
        healthy = store.loaded and holder.last_error is None and not store.problems and bool(store.recommendations)
        return {
            "status": "ok" if healthy else "degraded",
            "snapshot_loaded": store.loaded,
            "problems": list(store.problems) or ([] if store.recommendations else ["recommendations: no user has a list"]),
            "loaded_at": store.loaded_at,
            "reloads": holder.reloads,
            "last_reload_error": holder.last_error,
            "live_session_users": len(sessions),
            "counts": store.counts,
            # Whether GET /search reads shoppers' features from the online feature store yet.
            "online_features": search.shoppers is not None,
        }

    @app.get("/version")
    async def version(request: Request) -> dict:
        store = holder.store
        mark_served(request.scope, store.model_version)
        return {
            "model": store.model,
            "model_version": store.model_version,
            "evaluated_version": store.evaluated_version,
            "snapshot_loaded": store.loaded,
            "loaded_at": store.loaded_at,
        }

    @app.get("/recommendations/", include_in_schema=False)
    async def recommendations_without_a_user() -> None:
        # Without this, an empty id gets Starlette's bare 404, which says nothing of what is wrong.
        raise HTTPException(
            status_code=422,
            detail=f"user_id is empty: ask for a shopper by id, and for an anonymous visit by "
            f"{ANONYMOUS_USER_PREFIX}<session_id> (the id its posted events are kept under)",
        )

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

    @app.get("/similar/{item_id}", responses={404: {"description": "the item is not in the catalogue"}})
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

    @app.post("/events", status_code=202, responses=EVENTS_RESPONSES)
    async def post_events(request: Request, batch: EventBatch) -> dict:
        """Record shoppers' views, carts and purchases: stored durably (broker or file log) before they re-rank."""
        store = holder.store
        mark_served(request.scope, store.model_version)
        unknown = unknown_item_errors(batch.events, store.item_category)
        if unknown:
            raise RequestValidationError(unknown)
        try:
            body = await anyio.to_thread.run_sync(event_sink.store, batch.events)  # durable first
        except LiveEventsUnavailable as error:
            raise HTTPException(status_code=503, detail=str(error)) from None
        for e in batch.events:
            sessions.add(e.user_id, e.item_id, e.event_type, e.session_id)
        return body

    @app.get(
        "/search",
        responses={
            422: {"description": "q is missing, empty or holds no letter or digit; or n / user_id is out of range"},
            503: {"description": "no search catalogue has been built yet (materialise the search assets)"},
        },
    )
    async def search_items(
        request: Request,
        q: str = Query(..., max_length=200, description="what the shopper typed (at least one letter or digit)"),
        user_id: str | None = Query(None, min_length=1, max_length=200, description="personalise for this shopper"),
        n: int = Query(10, ge=1, le=MAX_N, description="number of items (1..100)"),
    ) -> dict:
        """Items for sale matching the query, ranked for the shopper (non-personalised for an unknown one)."""
        snapshot = search.snapshot
        try:
            body = search_response(snapshot, holder.store.inactive, q, user_id, n, shoppers=search.shoppers)
        except EmptyQuery as error:
            mark_served(request.scope, snapshot.model_version)
            raise HTTPException(status_code=422, detail=str(error)) from None
        except LookupError as error:
            raise HTTPException(status_code=503, detail=str(error)) from None
        mark_served(request.scope, body["model_version"], f"search:{body['ranking']}")
        return body

    app.add_middleware(BodySizeLimitMiddleware, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(RequestLogMiddleware, request_log=request_log)
    return app
