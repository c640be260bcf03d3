"""One pipeline run at a time per home folder: a second `make run` on the same home is refused, not interleaved.

Two runs writing one home would promote each other's models and overwrite each other's snapshots. The
lock is an OS file lock (flock) on `<home>/run.lock`: the kernel drops it when the holder exits, however
it exits (even `kill -9`), so a killed run never leaves a stale lock behind.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
from pathlib import Path

from recs_assets.layout import HomeLayout


class HomeBusy(RuntimeError):
    """Another run holds this home's lock."""


class HomeLock:
    """Exclusive, non-blocking lock on a home folder, as a context manager."""

    def __init__(self, home: Path | str) -> None:
        self.path = HomeLayout(Path(home)).run_lock
        self._fd: int | None = None

    def acquire(self) -> HomeLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise HomeBusy(
                f"another run is using the home folder {self.path.parent} ({holder}); wait for it to finish, "
                f"or point RECS_HOME at another folder"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> HomeLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        holder = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        return "holder unknown"
    if not holder:
        return "holder unknown"
    return f"pid {holder.get('pid')}, started {holder.get('started_at')}"


def process_is_alive(pid: int) -> bool:
    """True when a process with this id exists on this machine (signal 0 probes without touching it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    return True
