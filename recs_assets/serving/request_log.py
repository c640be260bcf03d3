"""The API's request log: one JSON line per HTTP request (time, method, path, status, latency, model
version served, list source). The API writes it, rotating it by size; monitoring reads it back, the
rotated files included, with :func:`read_request_log`.

:class:`RequestRecord` is the one definition of a line, used by both sides. The writer buffers lines in
memory and a background thread appends them every ``flush_interval`` seconds (and on shutdown), so a
request never waits for the disk.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

log = logging.getLogger("recs_assets.serving")


def _parse_time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One served HTTP request."""

    ts: str | None  # ISO-8601 UTC time the response finished, milliseconds
    method: str | None
    path: str | None
    status: int
    latency_ms: float
    model_version: int | None = None
    source: str | None = None  # "snapshot" / "fallback" for recommendation requests, else None

    @property
    def at(self) -> dt.datetime | None:
        """`ts` as an aware datetime (naive times are UTC); None when missing or unreadable."""
        return _parse_time(self.ts)

    def to_json(self) -> str:
        """One compact JSON line, without the newline."""
        return json.dumps(
            {
                "ts": self.ts,
                "method": self.method,
                "path": self.path,
                "status": self.status,
                "latency_ms": self.latency_ms,
                "model_version": self.model_version,
                "source": self.source,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, line: str) -> RequestRecord:
        """Parse one line; ValueError naming what is wrong when it is not a request record.

        `status` and `latency_ms` are required; the time may be spelled `ts` (as the API writes it) or
        `time` (older writers).
        """
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"request log line is not JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise ValueError(f"request log line is not a JSON object: {line[:80]!r}")
        for key in ("status", "latency_ms"):
            if key not in raw:
                raise ValueError(f"request log line has no {key!r}: {line[:80]!r}")
        try:
            status, latency = int(raw["status"]), float(raw["latency_ms"])
        except (TypeError, ValueError):
            raise ValueError(
                f"request log line has a non-numeric status or latency_ms: {raw['status']!r}, {raw['latency_ms']!r}"
            ) from None
        version = raw.get("model_version")
        return cls(
            ts=raw.get("ts", raw.get("time")),
            method=raw.get("method"),
            path=raw.get("path"),
            status=status,
            latency_ms=latency,
            model_version=int(version) if isinstance(version, (int, float)) and not isinstance(version, bool) else None,
            source=raw.get("source"),
        )


class RequestLogRead(NamedTuple):
    """What :func:`read_request_log` found: the records (in file order) and how many lines were unreadable."""

    records: list[RequestRecord]
    malformed: int


def iter_request_log(path: Path) -> Iterator[RequestRecord | None]:
    """Each non-blank line of the log as a record, or None for a line that is not one."""
    path = Path(path)
    if not path.exists():
        return
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                yield RequestRecord.from_json(line)
            except ValueError:
                yield None


def rotated_path(path: Path, index: int) -> Path:
    """The `index`-th rotated file of the log (1 = the most recently rotated): ``request_log.jsonl.1``."""
    path = Path(path)
    return path.with_name(f"{path.name}.{index}")


def request_log_files(path: Path) -> list[Path]:
    """The log's files that exist, oldest first: the rotated ones (highest number first), then the live one."""
    path = Path(path)
    rotated = []
    for candidate in path.parent.glob(path.name + ".*") if path.parent.is_dir() else ():
        suffix = candidate.name[len(path.name) + 1 :]
        if suffix.isdigit():
            rotated.append((int(suffix), candidate))
    return [p for _, p in sorted(rotated, reverse=True)] + ([path] if path.exists() else [])


def read_request_log(path: Path, since: dt.datetime | None = None) -> RequestLogRead:
    """The request log's records at or after `since` (all when None), the rotated files included, oldest
    first; a missing log reads as empty.

    With `since`, records without a readable time are left out (they cannot be placed in time) but are
    not counted as malformed.
    """
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=dt.timezone.utc)
    records: list[RequestRecord] = []
    malformed = 0
    for record in (r for file in request_log_files(path) for r in iter_request_log(file)):
        if record is None:
            malformed += 1
            continue
        if since is not None:
            at = record.at
            if at is None or at < since:
                continue
        records.append(record)
    return RequestLogRead(records, malformed)


# 160 B a request: 50 MB holds about 300k requests, and 5 rotated files keep the last ~1.8M (~1 h at
# 500 requests/s) in at most 300 MB of disk.
MAX_LOG_BYTES = 50_000_000
LOG_BACKUPS = 5


class RequestLog:
    """Buffered JSON-lines writer, flushed by a background thread and on shutdown.

    Rotated by size: when a flush would take the file past `max_bytes`, it becomes ``<name>.1`` (the
    older ones shift up, ``<name>.<backups>`` is dropped) and a new file starts. A flush's lines never
    straddle two files, and :func:`read_request_log` reads them all back in order.
    """

    def __init__(self, path: Path, flush_interval: float, max_bytes: int = MAX_LOG_BYTES, backups: int = LOG_BACKUPS) -> None:
        if max_bytes < 1 or backups < 1:
            raise ValueError(f"max_bytes and backups must be at least 1; got {max_bytes} and {backups}")
        self.path = Path(path)
        self.flush_interval = flush_interval
        self.max_bytes = max_bytes
        self.backups = backups
        self._buffer: list[RequestRecord] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def append(self, record: RequestRecord) -> None:
        with self._lock:
            self._buffer.append(record)

    def flush(self) -> None:
        with self._lock:
            batch, self._buffer = self._buffer, []
        if not batch:
            return
        data = "".join(r.to_json() + "\n" for r in batch).encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            size = 0
        if size and size + len(data) > self.max_bytes:
            self._rotate()
        with open(self.path, "ab") as fh:
            fh.write(data)

    def _rotate(self) -> None:
        rotated_path(self.path, self.backups).unlink(missing_ok=True)
        for index in range(self.backups - 1, 0, -1):
            older = rotated_path(self.path, index)
            if older.exists():
                older.rename(rotated_path(self.path, index + 1))
        self.path.rename(rotated_path(self.path, 1))

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
