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
    """Refuse bodies larger than max_bytes with 413, whether or not the client declared a length.

    A declared ``Content-Length`` over the limit is refused before any byte is read. Otherwise (a
    chunked body, or a length the client lied about) the body is counted as it streams in and held
    until complete; the first byte past the limit ends it with 413, so memory never holds more than
    max_bytes per request. The app then reads the held body as if it came from the socket.
    """

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, scope, receive, send, size: str) -> None:
        resp = JSONResponse({"detail": f"request body too large: {size} > limit {self.max_bytes} bytes"}, status_code=413)
        await resp(scope, receive, send)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await self._refuse(scope, receive, send, f"{int(length)} bytes")
        if length is None and b"transfer-encoding" not in headers:
            return await self.app(scope, receive, send)  # no body (a GET)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: let the app see it
                return await self.app(scope, _replay([], message, receive), send)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return await self._refuse(scope, receive, send, f"more than {self.max_bytes} bytes (stopped reading)")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        return await self.app(scope, _replay([body], None, receive), send)


def _replay(messages: list[dict], last: dict | None, receive):
    """A `receive` that hands out `messages` (then `last`), then defers to the real one (disconnects)."""
    queue = list(messages) + ([last] if last is not None else [])

    async def replay():
        if queue:
            return queue.pop(0)
        return await receive()

    return replay
