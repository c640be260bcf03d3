"""The online recommendation API, against a real uvicorn server (`python -m recs_assets.serving`) on loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import polars as pl
import pytest

from recs_assets.layout import HomeLayout
from recs_assets.serving.request_log import read_request_log

CHECKOUT = Path(__file__).resolve().parents[2]

V1 = ["i1", "i9", "i2", "i3", "i6", "i7"]  # i9 is inactive: never served
V2 = ["i6", "i7", "i8", "i10"]


def _atomic_write(df: pl.DataFrame, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    df.write_parquet(tmp)
    os.replace(tmp, path)


def _recs(lists: dict[str, list[str]], version: int) -> pl.DataFrame:
    rows = [
        {"user_id": u, "item_id": it, "rank": r, "score": 1.0 / r, "model": "ranker_model", "model_version": version}
        for u, items in lists.items()
        for r, it in enumerate(items, start=1)
    ]
    return pl.DataFrame(rows)


def write_lake(home: Path) -> Path:
    lake = HomeLayout(home).lake
    lake.mkdir(parents=True)
    items = pl.DataFrame(
        {
            "item_id": [f"i{k}" for k in range(1, 11)],
            "category": ["books"] * 5 + ["toys"] * 5,
            "is_active": [k != 9 for k in range(1, 11)],
        }
    )
    _atomic_write(items, lake / "items.parquet")
    users = pl.DataFrame({"user_id": ["u1", "u2", "u3", "u4", "u5"], "segment": ["A", "B", "A", "A", "B"]})
    _atomic_write(users, lake / "users.parquet")
    # u5's list still holds i4, which u5 has interacted with since: the API must drop it.
    lists = {"u1": V1, "u2": ["i5", "i4", "i1", "i2"], "u5": ["i4", "i6", "i7", "i8", "i1"]}
    _atomic_write(_recs(lists, 1), lake / "recommendation_snapshot.parquet")
    history = [("u4", "i2"), ("u4", "i7"), ("u5", "i4"), ("u5", "i10")]
    _atomic_write(
        pl.DataFrame({"user_id": [u for u, _ in history], "item_id": [i for _, i in history]}),
        lake / "user_history_snapshot.parquet",
    )
    sim = [("i8", "i10"), ("i8", "i9"), ("i8", "i7"), ("i4", "i5"), ("i1", "i2")]
    _atomic_write(
        pl.DataFrame(
            {
                "item_id": [a for a, _ in sim],
                "similar_item_id": [b for _, b in sim],
                "rank": [1, 2, 3, 1, 1],
                "score": [0.9, 0.8, 0.7, 0.9, 0.9],
            }
        ),
        lake / "similar_items_snapshot.parquet",
    )
    pop = [
        ("A", None, ["i2", "i3", "i7"]),
        ("A", "toys", ["i7", "i9", "i8"]),
        (None, None, ["i5", "i4", "i1"]),
        (None, "toys", ["i10"]),
    ]
    _atomic_write(
        pl.DataFrame(
            [
                {"segment": s, "category": c, "item_id": it, "rank": r, "score": 1.0 / r}
                for s, c, items in pop
                for r, it in enumerate(items, start=1)
            ],
            schema={"segment": pl.Utf8, "category": pl.Utf8, "item_id": pl.Utf8, "rank": pl.Int64, "score": pl.Float64},
        ),
        lake / "popular_items_snapshot.parquet",
    )
    return lake


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "RECS_HOME": str(home),
            "RECS_API_PORT": str(self.port),
            "RECS_API_RELOAD_INTERVAL": "0.2",
            "RECS_API_LOG_FLUSH_INTERVAL": "0.2",
        }
        self.log = open(home / "server.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "recs_assets.serving"], cwd=CHECKOUT, env=env, stdout=self.log, stderr=self.log
        )
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {(home / 'server.log').read_text()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("server did not become healthy")
            time.sleep(0.1)
        self.client = httpx.Client(base_url=self.url, timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("api_home")
    write_lake(home)
    srv = Server(home)
    try:
        yield srv
    finally:
        srv.client.close()
        srv.stop()


def ids(body: dict) -> list[str]:
    return [r["item_id"] for r in body["items"]]


def test_health_version_and_docs(server: Server) -> None:
    h = server.client.get("/health").json()
    assert h["status"] == "ok" and h["snapshot_loaded"] is True
    assert h["counts"]["users_with_recommendations"] == 3 and h["counts"]["inactive_items"] == 1
    assert h["counts"]["users_with_history"] == 2
    v = server.client.get("/version").json()
    assert v["model"] == "ranker_model" and v["model_version"] == 1 and v["loaded_at"]
    assert server.client.get("/docs").status_code == 200
    assert "/recommendations/{user_id}" in server.client.get("/openapi.json").json()["paths"]


def test_recommendations_snapshot_skips_inactive(server: Server) -> None:
    body = server.client.get("/recommendations/u1", params={"n": 3}).json()
    assert body["source"] == "snapshot" and body["model"] == "ranker_model" and body["model_version"] == 1
    assert ids(body) == ["i1", "i2", "i3"]
    assert [r["rank"] for r in body["items"]] == [1, 2, 3]
    assert ids(server.client.get("/recommendations/u1").json()) == ["i1", "i2", "i3", "i6", "i7"]


def test_category_filter(server: Server) -> None:
    assert ids(server.client.get("/recommendations/u1", params={"category": "toys"}).json()) == ["i6", "i7"]
    assert ids(server.client.get("/recommendations/u1", params={"category": "nope"}).json()) == []


def test_fallback_unknown_and_segment(server: Server) -> None:
    body = server.client.get("/recommendations/stranger", params={"n": 5}).json()
    assert body["source"] == "fallback" and body["model_version"] is None
    assert ids(body) == ["i5", "i4", "i1"]  # global list
    seg = server.client.get("/recommendations/u3", params={"n": 4}).json()
    assert seg["source"] == "fallback"
    assert ids(seg) == ["i2", "i3", "i7", "i5"]  # segment A first, then topped up from the global list
    toys = server.client.get("/recommendations/u3", params={"category": "toys"}).json()
    assert ids(toys) == ["i7", "i8", "i10"]  # i9 inactive; only toys


def test_no_path_serves_what_the_user_already_has(server: Server) -> None:
    # snapshot path: u5's stale i4 is history
    snap = server.client.get("/recommendations/u5", params={"n": 3}).json()
    assert snap["source"] == "snapshot" and ids(snap) == ["i6", "i7", "i8"]
    # fallback path: u4 (segment A, no list) already has i2 and i7 from the segment list
    fb = server.client.get("/recommendations/u4", params={"n": 4}).json()
    assert fb["source"] == "fallback" and ids(fb) == ["i3", "i5", "i4", "i1"]
    # session path: i8's best neighbour i10 is in u5's history, so the boost is i7 (i9 is inactive)
    r = server.client.post("/events", json={"events": [{"user_id": "u5", "item_id": "i8", "event_type": "view"}]})
    assert r.status_code == 202
    live = server.client.get("/recommendations/u5", params={"n": 3}).json()
    assert ids(live) == ["i7", "i6", "i8"]
    assert [x["reason"] for x in live["items"]] == ["session", "snapshot", "snapshot"]


def test_similar(server: Server) -> None:
    body = server.client.get("/similar/i8", params={"n": 5}).json()
    assert ids(body) == ["i10", "i7"]  # i9 inactive
    assert ids(server.client.get("/similar/i8", params={"n": 1}).json()) == ["i10"]
    assert server.client.get("/similar/i3").json()["items"] == []  # known item without neighbours
    r = server.client.get("/similar/nope")
    assert r.status_code == 404 and "unknown item_id" in r.json()["detail"]


def test_events_rerank_and_durable(server: Server) -> None:
    assert ids(server.client.get("/recommendations/u2", params={"n": 4}).json()) == ["i5", "i4", "i1", "i2"]
    events = [
        {"user_id": "u2", "session_id": "s1", "item_id": "i8", "event_type": "view"},
        {"user_id": "u2", "session_id": "s1", "item_id": "i5", "event_type": "purchase", "event_at": "2026-01-02T03:04:05Z"},
    ]
    r = server.client.post("/events", json={"events": events})
    assert r.status_code == 202 and r.json()["accepted"] == 2
    body = server.client.get("/recommendations/u2", params={"n": 4}).json()
    assert body["source"] == "snapshot"
    assert ids(body) == ["i10", "i7", "i4", "i1"]  # 2 = n/2 similar items of i8 boosted, bought i5 dropped
    assert [r["reason"] for r in body["items"]] == ["session", "session", "snapshot", "snapshot"]
    # the events are on disk, one JSON line each
    files = list(HomeLayout(server.home).live_events.glob("events-*.jsonl"))
    assert len(files) == 1
    lines = [json.loads(x) for x in files[0].read_text().splitlines()]
    assert [(x["user_id"], x["item_id"], x["event_type"]) for x in lines[-2:]] == [
        ("u2", "i8", "view"),
        ("u2", "i5", "purchase"),
    ]
    assert lines[-1]["event_at"].startswith("2026-01-02T03:04:05")


@pytest.mark.parametrize(
    "method,path,kwargs,status,needle",
    [
        ("get", "/recommendations/u1", {"params": {"n": 0}}, 422, "greater than or equal to 1"),
        ("get", "/recommendations/u1", {"params": {"n": 101}}, 422, "less than or equal to 100"),
        ("get", "/recommendations/u1", {"params": {"n": "ten"}}, 422, "valid integer"),
        ("get", "/similar/i8", {"params": {"n": 1000}}, 422, "less than or equal to 100"),
        ("post", "/events", {"content": b"{not json", "headers": {"content-type": "application/json"}}, 422, "JSON"),
        ("post", "/events", {"json": {"events": []}}, 422, "at least 1"),
        ("post", "/events", {"json": {"nope": 1}}, 422, "Field required"),
        (
            "post",
            "/events",
            {"json": {"events": [{"user_id": "u", "item_id": "i1", "event_type": "like"}]}},
            422,
            "'view', 'add_to_cart' or 'purchase'",
        ),
        (
            "post",
            "/events",
            {"json": {"events": [{"user_id": "u", "item_id": "i1", "event_type": "view"}] * 1001}},
            422,
            "at most 1000",
        ),
        ("post", "/events", {"content": b"x" * 3_000_000, "headers": {"content-type": "application/json"}}, 413, "too large"),
    ],
)
def test_bad_requests(server: Server, method: str, path: str, kwargs: dict, status: int, needle: str) -> None:
    r = getattr(server.client, method)(path, **kwargs)
    assert r.status_code == status
    assert needle in json.dumps(r.json()["detail"])


def test_bad_events_not_written(server: Server) -> None:
    server.client.post("/events", json={"events": [{"user_id": "zz", "item_id": "i1", "event_type": "like"}]})
    for f in HomeLayout(server.home).live_events.glob("*.jsonl"):
        assert '"zz"' not in f.read_text()


def test_request_log(server: Server) -> None:
    # This test makes every request it asserts on, and waits for exactly those lines: the log is flushed
    # by a background thread, so the first line to appear says nothing about the others.
    assert server.client.get("/recommendations/u1", params={"n": 2}).status_code == 200
    assert server.client.get("/recommendations/u1", params={"n": 0}).status_code == 422
    assert server.client.get("/similar/not-an-item").status_code == 404
    wanted = {("/recommendations/u1", 200), ("/recommendations/u1", 422), ("/similar/not-an-item", 404)}
    path = HomeLayout(server.home).request_log
    deadline = time.monotonic() + 10
    while True:
        read = read_request_log(path)
        if wanted <= {(r.path, r.status) for r in read.records}:
            break
        assert time.monotonic() < deadline, f"request log never showed {wanted}: {read.records[-5:]}"
        time.sleep(0.05)
    assert read.malformed == 0
    ok = [r for r in read.records if (r.path, r.status) == ("/recommendations/u1", 200)]
    assert ok[-1].model_version == 1 and ok[-1].source == "snapshot" and ok[-1].latency_ms >= 0 and ok[-1].at is not None
    missing = [r for r in read.records if r.path == "/similar/not-an-item"][-1]
    assert missing.method == "GET" and missing.source is None


def test_snapshot_swap_under_load(tmp_path: Path) -> None:
    lake = write_lake(tmp_path)
    srv = Server(tmp_path)
    errors: list[str] = []
    versions: list[int] = []
    lock = threading.Lock()

    def hammer() -> None:
        # at least 200 requests each, then on until this thread has been served the new version
        seen_v2, count, deadline = False, 0, time.monotonic() + 20
        with httpx.Client(base_url=srv.url, timeout=10) as c:
            while (count < 200 or not seen_v2) and time.monotonic() < deadline:
                count += 1
                try:
                    r = c.get("/recommendations/u1", params={"n": 5})
                    body = r.json()
                    expected = {1: ["i1", "i2", "i3", "i6", "i7"], 2: ["i6", "i7", "i8", "i10"]}.get(body.get("model_version"))
                    if r.status_code != 200 or ids(body) != expected:
                        with lock:
                            errors.append(f"{r.status_code} {body}")
                    seen_v2 = seen_v2 or body.get("model_version") == 2
                    with lock:
                        versions.append(body.get("model_version"))
                except Exception as exc:  # any transport error is a failure too
                    with lock:
                        errors.append(repr(exc))

    try:
        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for t in threads:
            t.start()
        while True:  # swap once the load is running
            with lock:
                if len(versions) >= 100:
                    break
            time.sleep(0.01)
        _atomic_write(_recs({"u1": V2}, 2), lake / "recommendation_snapshot.parquet")
        for t in threads:
            t.join(timeout=60)
        assert errors == []
        assert len(versions) >= 800 and versions.count(1) >= 100 and versions.count(2) >= 4
        deadline = time.monotonic() + 10
        while srv.client.get("/version").json()["model_version"] != 2:
            assert time.monotonic() < deadline, "new snapshot never loaded"
            time.sleep(0.1)
        body = srv.client.get("/recommendations/u1", params={"n": 5}).json()
        assert body["model_version"] == 2 and ids(body) == ["i6", "i7", "i8", "i10"]
        # a malformed snapshot does not take the service down: the previous store keeps serving
        bad = lake / "similar_items_snapshot.tmp"
        bad.write_bytes(b"not parquet")
        os.replace(bad, lake / "similar_items_snapshot.parquet")
        deadline = time.monotonic() + 10
        while (health := srv.client.get("/health").json())["last_reload_error"] is None:
            assert time.monotonic() < deadline, "bad snapshot never noticed"
            time.sleep(0.1)
        assert health["status"] == "degraded" and health["snapshot_loaded"] is True
        assert ids(srv.client.get("/similar/i8").json()) == ["i10", "i7"]
        assert srv.client.get("/recommendations/u1", params={"n": 5}).json()["model_version"] == 2
        print(f"versions served during swap: v1={versions.count(1)} v2={versions.count(2)}")
    finally:
        srv.client.close()
        srv.stop()
    # shutdown flushed the request log: every request is there
    rows = read_request_log(HomeLayout(tmp_path).request_log).records
    assert sum(r.path == "/recommendations/u1" for r in rows) >= len(versions) + 1
