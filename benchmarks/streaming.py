"""Live-events benchmark: events/s through API -> broker -> warehouse landing, and how long an event takes
from its POST to being queryable.

Everything on 127.0.0.1, in a temp dir removed at the end:

1. an embedded broker (redis-server, append-only file fsync'ed on every write, as `make serve` runs it),
   a lake holding only a 5,000-item catalogue (so the API checks every event's item), and the API
   (`python -m recs_assets.serving`) with RECS_BROKER_URL pointing at the broker;
2. a lander in its own process, the warehouse consumer as the Dagster asset runs it but in a loop:
   `land_batch` (read up to 1,000 entries, blocking 20 ms for new ones; write Parquet, fsync, rename;
   acknowledge), noting when each event's file was in place;
3. a load generator (this process) posting batches of `--batch` events open loop at each target rate:
   a POST is scheduled at a fixed time and latency counts from that time, so a server that falls
   behind shows it. Each event carries its own event_id, so landing is matched to the POST.

Latency "landed" = POST scheduled -> its events' Parquet file renamed into the landing folder, which
DuckDB can query at once (`read_parquet('live_landing/*.parquet')`). Being in `events` also takes the
staging run the sensor starts (it checks every 60 s; the run takes what `make run`'s staging takes):
timed separately below on the landed events plus a small simulated batch, with the project's own code.

Then the maximum: POSTs of `--batch` and of 100 events from 4 concurrent clients (closed loop) for
`--seconds`, and a lander draining a backlog of 50,000 events.

    .venv/bin/python benchmarks/streaming.py                 # 20 s per rate
    .venv/bin/python benchmarks/streaming.py --seconds 5     # quick run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import numpy as np
import polars as pl

CHECKOUT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(CHECKOUT))
sys.path.insert(0, str(CHECKOUT / "benchmarks"))

from machine import describe  # noqa: E402

from recs_assets.streaming.embedded import EmbeddedRedis  # noqa: E402
from recs_assets.streaming.landing import land_available, land_batch, live_raw_events  # noqa: E402
from recs_assets.streaming.redis_streams import RedisStreamsBroker  # noqa: E402

N_ITEMS = 5_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lander(url: str, landing: str, out: str, stop_file: str) -> None:
    """The warehouse consumer in a loop; one JSON line per landed batch: when, and which event ids."""
    broker = RedisStreamsBroker(url)
    with open(out, "w") as fh:
        while not os.path.exists(stop_file):
            batch = land_batch(broker, Path(landing), count=1_000, block_ms=20)
            if batch.path is not None:
                fh.write(json.dumps({"t": time.time(), "ids": list(batch.event_ids)}) + "\n")
                fh.flush()


def start_api(home: Path, port: int, url: str) -> subprocess.Popen:
    env = {**os.environ, "RECS_HOME": str(home), "RECS_API_PORT": str(port), "RECS_BROKER_URL": url,
           "RECS_API_LOG_LEVEL": "warning", "OPENBLAS_NUM_THREADS": "1"}  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "recs_assets.serving"], env=env, cwd=CHECKOUT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"API exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if json.loads(r.read())["counts"]["items"] == N_ITEMS:
                    return proc
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the API did not load its catalogue")


def events_batch(tag: str, k: int, size: int, at: str) -> dict:
    return {"events": [
        {"event_id": f"{tag}-{k:07d}-{j:03d}", "user_id": f"u{(k * size + j) % 3000:06d}",
         "item_id": f"i{(k * 7 + j * 13) % N_ITEMS:06d}", "event_type": "view", "event_at": at}
        for j in range(size)
    ]}  # fmt: skip


async def open_loop(port: int, rate: float, batch: int, seconds: float, tag: str) -> tuple[dict[str, float], list[float], int]:
    """POST `rate` events/s in batches; (event_id -> scheduled send time, POST latencies ms, errors)."""
    posts = int(rate * seconds / batch)
    interval = batch / rate
    sent: dict[str, float] = {}
    latencies: list[float] = []
    errors = 0
    at = (datetime.now(timezone.utc) - timedelta(seconds=1)).isoformat()
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30) as client:
        wall0, mono0 = time.time(), time.perf_counter()

        async def one(k: int) -> None:
            nonlocal errors
            due = mono0 + k * interval
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            body = events_batch(tag, k, batch, at)
            try:
                r = await client.post("/events", json=body)
                ok = r.status_code == 202
            except httpx.HTTPError:
                ok = False
            latencies.append((time.perf_counter() - due) * 1000)
            if not ok:
                errors += 1
                return
            for e in body["events"]:
                sent[e["event_id"]] = wall0 + k * interval

        await asyncio.gather(*(one(k) for k in range(posts)))
    return sent, latencies, errors


async def closed_loop(port: int, batch: int, seconds: float, clients: int) -> tuple[int, float]:
    accepted = 0
    at = (datetime.now(timezone.utc) - timedelta(seconds=1)).isoformat()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        start = time.perf_counter()

        async def worker(w: int) -> None:
            nonlocal accepted
            k = 0
            while time.perf_counter() - start < seconds:
                r = await client.post("/events", json=events_batch(f"max{batch}w{w}", k, batch, at))
                accepted += batch if r.status_code == 202 else 0
                k += 1

        await asyncio.gather(*(worker(w) for w in range(clients)))
        return accepted, time.perf_counter() - start


def landed_times(path: Path) -> dict[str, float]:
    times: dict[str, float] = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        for event_id in row["ids"]:
            times.setdefault(event_id, row["t"])  # a redelivered copy does not make an event later
    return times


def pct(values, q) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds per target rate")
    parser.add_argument("--rates", type=float, nargs="+", default=[100.0, 1000.0], help="target events/s")
    parser.add_argument("--batch", type=int, default=10, help="events per POST in the open-loop runs")
    args = parser.parse_args()

    rows, notes = [], []
    with tempfile.TemporaryDirectory(prefix="bench_streaming_") as tmp:
        home = Path(tmp) / "home"
        lake = home / "lake"
        lake.mkdir(parents=True)
        pl.DataFrame({"item_id": [f"i{k:06d}" for k in range(N_ITEMS)], "category": ["c"] * N_ITEMS,
                      "is_active": [True] * N_ITEMS}).write_parquet(lake / "items.parquet")  # fmt: skip
        server = EmbeddedRedis(Path(tmp) / "broker")
        url = server.start()
        port = free_port()
        api = start_api(home, port, url)
        landing = home / "live_landing"
        try:
            for rate in args.rates:
                out, stop = Path(tmp) / f"landed-{rate:g}.jsonl", Path(tmp) / f"stop-{rate:g}"
                proc = mp.get_context("spawn").Process(target=lander, args=(url, str(landing), str(out), str(stop)))
                proc.start()
                time.sleep(1.0)  # let the lander import and connect
                sent, post_ms, errors = asyncio.run(open_loop(port, rate, args.batch, args.seconds, f"r{rate:g}"))
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    if out.exists() and sent.keys() <= landed_times(out).keys():
                        break
                    time.sleep(0.2)
                stop.touch()
                proc.join(timeout=10)
                landed = landed_times(out)
                lat = [(landed[e] - t) * 1000 for e, t in sent.items() if e in landed]
                rows.append(
                    f"| {rate:g} ev/s ({rate / args.batch:g} POST/s x {args.batch}) | {len(sent):,} | {len(sent) - len(lat)} "
                    f"| {errors} | {pct(post_ms, 50):.1f} / {pct(post_ms, 99):.1f} | {pct(lat, 50):.1f} / {pct(lat, 99):.1f} |"
                )
                print(rows[-1], flush=True)

            for size in sorted({args.batch, 100}):
                accepted, took = asyncio.run(closed_loop(port, size, args.seconds, 4))
                notes.append(
                    f"API -> broker, max with POSTs of {size}: {accepted / took:,.0f} events/s accepted "
                    f"({accepted / size / took:,.0f} POST/s, 4 concurrent clients, {took:.0f} s)"
                )
                print(notes[-1], flush=True)
            drain = RedisStreamsBroker(url)
            land_available(drain, landing)  # what the closed loop left
            backlog = 50_000
            at = (datetime.now(timezone.utc) - timedelta(seconds=1)).isoformat()
            for k in range(backlog // 1000):
                drain.publish(events_batch("backlog", k, 1000, at)["events"])
            start = time.perf_counter()
            report = land_available(drain, landing, count=5_000)
            took = time.perf_counter() - start
            notes.append(f"broker -> warehouse landing, backlog of {backlog:,}: {report.events / took:,.0f} events/s ({len(report.files)} files of 5,000)")
            print(notes[-1], flush=True)

            # The staging step the sensor's run adds, on every landed event plus a small simulated batch.
            from recs_assets.contract import EARLIEST_LIVE_EVENT_AT
            from recs_assets.sources.simulator import SimulatorConfig, simulate
            from recs_assets.streaming.landing import with_live_events
            from recs_assets.validation.quarantine import split_events
            from recs_assets.validation.schemas import events_schema

            sim = simulate(SimulatorConfig(n_users=300, n_items=200, n_days=7))
            raw = sim.events.with_columns(pl.lit("simulator").alias("_source"), pl.int_range(1, sim.events.height + 1).alias("_line"),
                                          pl.lit(None, dtype=pl.String).alias("_parse_error"), pl.lit(None, dtype=pl.String).alias("_raw_line"))  # fmt: skip
            start = time.perf_counter()
            live = live_raw_events(landing)
            both = with_live_events(raw, live)
            items = pl.concat([sim.items["item_id"], pl.Series([f"i{k:06d}" for k in range(N_ITEMS)])])
            users = pl.concat([sim.users["user_id"], pl.Series([f"u{k:06d}" for k in range(3000)])])
            split = split_events(both, events_schema(item_ids=items, user_ids=users, earliest_event_at=EARLIEST_LIVE_EVENT_AT))
            took = time.perf_counter() - start
            notes.append(
                f"staging (read {live.height:,} landed + {raw.height:,} simulated, check, dedup): {took:.2f} s; "
                f"{split.duplicates:,} duplicates dropped, {split.quarantine.height:,} quarantined"
            )
            print(notes[-1], flush=True)
        finally:
            api.terminate()
            api.wait(timeout=10)
            server.stop()

    print()
    print(f"Machine: {describe()}")
    print(f"Broker: redis-server {subprocess.run(['redis-server', '--version'], capture_output=True, text=True).stdout.split()[2]}, "
          "append-only file fsync'ed on every write (appendfsync always)")  # fmt: skip
    print()
    print("| target | events | not landed | failed POSTs | POST p50 / p99 ms | POST -> landed p50 / p99 ms |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(row)
    print()
    for note in notes:
        print(f"- {note}")


if __name__ == "__main__":
    main()
