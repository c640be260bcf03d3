"""Two pure-ASGI middlewares of the API: one logs every request, one refuses oversized bodies early.

Pure ASGI (not Starlette's BaseHTTPMiddleware) because they sit on every request's hot path.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from fastapi.responses import JSONResponse

from recs_assets.serving.request_log import RequestLog, RequestRecord

# Route handlers put what they served here (see `mark_served`), the log middleware reads it back.
SCOPE_KEY = "recs_log"


def mark_served(scope: dict, model_version: int | None, source: str | None = None) -> None:
    """Tell the request log which model version (and list source) answered this request."""
    info = scope.get(SCOPE_KEY)
    if info is not None:
        info["model_version"] = model_version
        info["source"] = source


class RequestLogMiddleware:
    """Latency, path, status and served model_version of every HTTP request, into the request log."""

    def __init__(self, app, request_log: RequestLog) -> None:
        self.app = app
        self.request_log = request_log

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        info: dict[str, Any] = {"status": 500, "model_version": None, "source": None}
        scope[SCOPE_KEY] = info

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                info["status"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.request_log.append(
                RequestRecord(
                    ts=datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                    method=scope.get("method"),
                    path=scope.get("path"),
                    status=info["status"],
                    latency_ms=round((time.perf_counter() - start) * 1000, 3),
                    model_version=info["model_version"],
                    source=info["source"],
                )
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
