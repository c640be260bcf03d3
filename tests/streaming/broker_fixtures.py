"""A real redis-server on loopback for the live-events tests, started and stopped per test.

Imported by the tests that need it (`from tests.streaming.broker_fixtures import broker_server`), so
tests in other folders share it without a conftest of their own.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from recs_assets.streaming.embedded import EmbeddedRedis, redis_server_path

needs_redis = pytest.mark.skipif(
    redis_server_path() is None,
    reason="redis-server is not installed (apt-get install -y redis-server; .ci/run installs it)",
)


@pytest.fixture
def broker_server(tmp_path: Path):
    """An embedded broker whose append-only file lives in the test's own folder."""
    if redis_server_path() is None:
        pytest.skip("redis-server is not installed (apt-get install -y redis-server; .ci/run installs it)")
    server = EmbeddedRedis(tmp_path / "broker")
    server.start()
    try:
        yield server
    finally:
        server.stop()
