"""The embedded broker: a `redis-server` child process on loopback, its data in a folder of the home.

It needs no installation beyond the Debian package and no configuration, the way DuckDB needs no
server: `make serve` and the tests start one when no ``RECS_BROKER_URL`` is set. It listens on
127.0.0.1 only, on a free port, keeps no RDB snapshots and writes an append-only file fsync'ed on every
write (``appendfsync always``), so an event whose publish returned survives a kill of the broker and
of the machine's processes.

One folder, one server: the server inherits an exclusive lock on ``<folder>/broker.lock``, and
``<folder>/broker.json`` says where it listens. A second process that wants the broker (the Dagster
asset landing events while `make serve` runs) finds it there and connects instead of starting
another one on the same files.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from recs_assets.streaming.broker import BrokerStatus, BrokerUnavailable
from recs_assets.streaming.redis_streams import RedisStreamsBroker

EXECUTABLE = "redis-server"
STATE_FILE = "broker.json"
LOCK_FILE = "broker.lock"
AOF_DIR = "appendonly"
START_TIMEOUT_S = 10.0


class BrokerNotInstalled(BrokerUnavailable):
    """redis-server is not on PATH."""


def redis_server_path() -> str | None:
    """Where redis-server is, or None when it is not installed."""
    return shutil.which(EXECUTABLE)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def has_data(folder: Path) -> bool:
    """Whether an embedded broker has ever written events in `folder`."""
    return (Path(folder) / AOF_DIR).is_dir()


def running_url(folder: Path) -> str | None:
    """The URL of the embedded broker serving `folder`, if one is running and answers."""
    try:
        state = json.loads((Path(folder) / STATE_FILE).read_text())
        url, pid = state["url"], int(state["pid"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None
    if not _pid_alive(pid):
        return None
    probe = RedisStreamsBroker(url, connect_timeout=0.5, timeout=1.0)
    try:
        return url if probe.ping() else None
    finally:
        probe.close()


class EmbeddedRedis:
    """Start and stop one redis-server on 127.0.0.1 whose append-only file lives in `folder`."""

    def __init__(self, folder: Path, *, port: int | None = None, executable: str | None = None) -> None:
        self.folder = Path(folder)
        self.port = port
        self.executable = executable or redis_server_path()
        self.process: subprocess.Popen | None = None
        self._lock_fd: int | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the embedded broker has not been started")
        return f"redis://127.0.0.1:{self.port}/0"

    def _command(self, port: int) -> list[str]:
        return [
            self.executable, "--port", str(port), "--bind", "127.0.0.1", "--protected-mode", "yes",
            "--dir", str(self.folder), "--save", "", "--appendonly", "yes", "--appendfsync", "always",
            "--appenddirname", AOF_DIR, "--daemonize", "no", "--logfile", str(self.folder / "redis.log"),
            "--loglevel", "warning", "--databases", "1",
        ]  # fmt: skip

    def _lock(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RuntimeError(
                f"another embedded broker already serves {self.folder} (see {self.folder / STATE_FILE}); "
                "connect to it instead of starting a second one on the same files"
            ) from None
        self._lock_fd = fd

    def start(self) -> str:
        """Start the server and wait until it answers; its URL."""
        if self.executable is None:
            raise BrokerNotInstalled(
                "redis-server is not installed: `apt-get install -y redis-server`, or set RECS_BROKER_URL "
                "to a running broker"
            )
        if self.process is not None:
            return self.url
        self._lock()
        try:
            last_error = ""
            for _ in range(3):  # a free port can be taken between choosing it and binding it
                port = self.port or _free_port()
                # The server inherits the lock: the folder stays locked while it runs, even if this
                # process dies first.
                process = subprocess.Popen(
                    self._command(port), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE, pass_fds=(self._lock_fd,), start_new_session=True,
                )  # fmt: skip
                error = self._wait_ready(process, port)
                if error is None:
                    self.process, self.port = process, port
                    self._write_state()
                    return self.url
                last_error = error
                if self.port is not None:
                    break
            raise RuntimeError(f"the embedded broker in {self.folder} did not start: {last_error}")
        except BaseException:
            self._unlock()
            raise

    def _wait_ready(self, process: subprocess.Popen, port: int) -> str | None:
        probe = RedisStreamsBroker(f"redis://127.0.0.1:{port}/0", connect_timeout=0.2, timeout=1.0)
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
                    log = self.folder / "redis.log"
                    tail = log.read_text(errors="replace")[-600:] if log.exists() else ""
                    return f"redis-server exited with code {process.returncode}: {(stderr or tail).strip()}"
                if probe.ping():
                    return None
                time.sleep(0.02)
        finally:
            probe.close()
        process.kill()
        process.wait()
        return f"redis-server did not answer on port {port} within {START_TIMEOUT_S:g} s"

    def _write_state(self) -> None:
        state = {"url": self.url, "pid": self.process.pid, "port": self.port}
        tmp = self.folder / f".{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.folder / STATE_FILE)

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the server down cleanly (SIGTERM: it fsyncs the append-only file and exits)."""
        if self.process is None:
            return
        try:
            (self.folder / STATE_FILE).unlink(missing_ok=True)
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            if self.process.stderr:
                self.process.stderr.close()
        finally:
            self.process = None
            self._unlock()

    def kill(self) -> None:
        """SIGKILL, as a crash would: nothing is flushed beyond what each write already fsync'ed."""
        if self.process is None:
            return
        self.process.kill()
        self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()
        self.process = None
        (self.folder / STATE_FILE).unlink(missing_ok=True)
        self._unlock()

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


@contextmanager
def embedded_broker(folder: Path) -> Iterator[str]:
    """The URL of the embedded broker for `folder`: the running one, or one started for the block."""
    url = running_url(folder)
    if url is not None:
        yield url
        return
    server = EmbeddedRedis(folder)
    try:
        server.start()
    except RuntimeError:
        # Another process started it between our look and our start: use that one.
        time.sleep(0.2)
        url = running_url(folder)
        if url is None:
            raise
        yield url
        return
    try:
        yield server.url
    finally:
        server.stop()


@contextmanager
def live_broker(broker_url: str | None, folder: Path) -> Iterator[RedisStreamsBroker | None]:
    """The broker live events are read from: the configured one, else the home's embedded one if it
    holds any events (started for the block when not running), else None (no live events exist)."""
    if broker_url:
        broker = RedisStreamsBroker(broker_url)
        try:
            yield broker
        finally:
            broker.close()
        return
    if running_url(folder) is None and not has_data(folder):
        yield None
        return
    with embedded_broker(folder) as url:
        broker = RedisStreamsBroker(url)
        try:
            yield broker
        finally:
            broker.close()


def stream_status(broker_url: str | None, folder: Path) -> BrokerStatus | None:
    """The consumer group's status on the configured broker, else on the home's running embedded one;
    None when neither is there (nothing can have arrived). Never starts a broker.
    BrokerUnavailable when a configured broker does not answer."""
    url = broker_url or running_url(folder)
    if url is None:
        return None
    broker = RedisStreamsBroker(url)
    try:
        return broker.status()
    finally:
        broker.close()
