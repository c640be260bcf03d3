"""Serving benchmark: snapshot load time, snapshot build time, and the API's latency/throughput under load.

What it does (everything on 127.0.0.1, in a temp dir that is removed at the end):

1. builds a synthetic lake (default 100k users x 10 recommendations, 20k items x 10 similar items,
   popular lists per segment x category) and times ``load_store`` on it (the snapshot load);
2. optionally (in a child process with a time limit) times building a recommendation snapshot for 100k
   simulated users with the project's own code: simulate -> user_item_interactions SQL -> ALS fit ->
   ``recommendation_snapshot``; skipped with a note if it exceeds ``--build-timeout``;
3. starts the API (``python -m recs_assets.serving``) and a bare FastAPI app returning a fixed list (same
   ``uvicorn.run`` settings) as subprocesses on free ports, and drives each from a SEPARATE load-generator
   process at increasing target rates (open loop: requests are scheduled at fixed intervals; latency is
   measured from the scheduled send time, so a server that falls behind shows it in the percentiles)
   and at "max" (closed loop, as fast as the connections go). If ``wrk`` is installed, one extra
   "max (wrk)" row per scenario uses it (a C client leaves more of the 2 cores to the server).

Scenarios: ``snapshot`` (GET /recommendations for users with a snapshot list), ``fallback`` (unknown
users), ``live`` (GET for users with a snapshot list who got POST /events first: their list fused with
the session model's, the learned path), ``anon`` (GET for anonymous shoppers who posted events: the
session model's next items for their visit; the lake holds a session model, ``--session-model``,
fitted on synthetic visits that stay within a category), ``search``
(GET /search: BM25 retrieval + the LightGBM search ranker over 100 candidates, half the requests for
known shoppers, half anonymous, category and brand queries; each known shopper's price level, activity
and category shares read from the online feature store per request, one Feast read, unless
``--no-feature-store``), ``bare``.

    .venv/bin/python benchmarks/serve.py                  # 30 s per rate
    .venv/bin/python benchmarks/serve.py --seconds 5      # quick run
    .venv/bin/python benchmarks/serve.py --seconds 5 --no-build --rates 500 max

Caveat: the load generator and the server share the machine's cores; on a 2-core box the Python
generator takes most of one core, so "max" is a lower bound on what the server could do alone.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
PY = sys.executable


# ------------------------------------------------------------------------------------------ machine
def machine() -> str:
    from machine import describe  # benchmarks/machine.py, beside this script

    return describe()


# --------------------------------------------------------------------------------------------- search
def build_search_files(home: Path, n_users: int, n_items: int, feature_store: bool = True) -> list[str]:
    """The search assets' files for the synthetic lake (catalogue, shopper signals, a trained ranker); returns paths.

    With `feature_store`, the searching shoppers' user features and category shares are also published to
    the home's feature store (history + SQLite online store), so GET /search reads them online per request.
    """
    import numpy as np
    import polars as pl

    from recs_assets.layout import HomeLayout
    from recs_assets.models.storage import save_model_folder
    from recs_assets.search.features import SearchFeaturizer, search_catalogue, user_signals
    from recs_assets.search.ranker import build_lessons, fit_search_ranker
    from recs_assets.search.sessions import IMPRESSION_SCHEMA

    layout = HomeLayout(home)
    rng = np.random.default_rng(1)
    items = pl.read_parquet(layout.lake / "items.parquet")
    features = items.select("item_id").with_columns(
        pl.Series("n_users", rng.poisson(20, items.height).astype(float)), pl.lit(1.0).alias("n_purchases"),
        pl.lit(0.05).alias("view_to_purchase_rate"), pl.lit(10.0).alias("listing_age_days"), pl.lit(True).alias("is_available"))
    catalogue = search_catalogue(items, features)
    recs = pl.read_parquet(layout.lake / "recommendation_snapshot.parquet")
    interactions = recs.select("user_id", "item_id", pl.lit(1.0).alias("strength"))
    by_category = (interactions.join(items.select("item_id", "category"), on="item_id").group_by("user_id", "category").len("n")
                   .with_columns((pl.col("n") / pl.col("n").sum().over("user_id")).alias("share"),
                                 pl.col("n").rank("ordinal", descending=True).over("user_id").alias("category_rank")))
    user_features = interactions.group_by("user_id").len("n_events").with_columns(pl.lit(50.0).alias("price_level"))
    signals = user_signals(interactions, items, user_features, by_category)
    catalogue.write_parquet(layout.lake / "search_catalogue.parquet")
    signals.write_parquet(layout.lake / "search_user_signals.parquet")
    featurizer = SearchFeaturizer(catalogue, signals)
    users = user_features["user_id"].to_list()
    rows = []
    for s in range(300):
        query = f"cat{s % 12}"
        shown, _, _ = featurizer.index.retrieve(query, 12)
        for position, row in enumerate(shown, start=1):
            rows.append({"search_id": f"s{s}", "user_id": users[s], "session_id": f"s{s}", "query": query,
                         "searched_at": dt.datetime(2026, 9, 1, tzinfo=dt.timezone.utc), "item_id": featurizer.index.item_ids[row],
                         "position": position, "propensity": 0.1, "label": int(rng.random() < 0.15) * int(rng.integers(1, 4))})
    ranker = fit_search_ranker(build_lessons(pl.DataFrame(rows, schema=IMPRESSION_SCHEMA), featurizer))
    save_model_folder(ranker, layout.model_dir("search_ranker_model"))
    queries = [f"cat{k}" for k in range(12)] + [f"brand{k}" for k in range(50)]
    paths = [f"/search?q={queries[k % len(queries)]}&n=10" + (f"&user_id={users[(k * 7919) % len(users)]}" if k % 2 else "")
             for k in range(5000)]
    if feature_store:
        publish_shopper_features(layout, sorted({users[(k * 7919) % len(users)] for k in range(1, 5000, 2)}),
                                 user_features, by_category)
    return paths


def publish_shopper_features(layout, searching: list[str], user_features, by_category) -> None:
    """The searching shoppers' features in the feature store, as the pipeline's online_feature_store asset
    publishes them (the columns the search path does not read are null)."""
    import polars as pl

    from recs_assets.feature_store import FEATURE_VIEWS, publish

    def full(name: str, frame: pl.DataFrame) -> pl.DataFrame:
        schema = FEATURE_VIEWS[name].schema
        return frame.with_columns(pl.lit(None, dtype=t).alias(c) for c, t in schema.items() if c not in frame.columns).select(
            [pl.col(c).cast(t) for c, t in schema.items()])

    wanted = pl.Series("user_id", searching).implode()
    publish(layout, {
        "user_features": full("user_features", user_features.filter(pl.col("user_id").is_in(wanted))),
        "user_category_affinity": full("user_category_affinity", by_category.filter(pl.col("user_id").is_in(wanted))
                                       .select("user_id", "category", pl.col("n").alias("n_interactions"), "share", "category_rank")),
    }, dt.datetime(2026, 9, 30, tzinfo=dt.timezone.utc))


# --------------------------------------------------------------------------------------------- lake
def build_lake(lake: Path, n_users: int, n_items: int, n_recs: int, n_similar: int) -> dict:
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(0)
    lake.mkdir(parents=True, exist_ok=True)
    users = [f"u{k:06d}" for k in range(n_users)]
    items = [f"g{k:06d}" for k in range(n_items)]
    categories = [f"cat{k}" for k in range(12)]
    segments = ["new", "casual", "regular", "loyal"]

    def write(df: pl.DataFrame, name: str) -> None:
        tmp = lake / (name + ".tmp")
        df.write_parquet(tmp)
        os.replace(tmp, lake / name)

    item_cat = rng.integers(0, len(categories), n_items)
    write(
        pl.DataFrame(
            {
                "item_id": items,
                "title": [f"Item {k}" for k in range(n_items)],
                "category": [categories[c] for c in item_cat],
                "brand": [f"brand{k % 50}" for k in range(n_items)],
                "price": rng.uniform(1, 100, n_items).round(2),
                "condition": ["new"] * n_items,
                "listed_at": pl.Series([None] * n_items, dtype=pl.Datetime("us", "UTC")),
                "is_active": rng.random(n_items) > 0.02,
            }
        ),
        "items.parquet",
    )
    write(
        pl.DataFrame(
            {
                "user_id": users,
                "signup_at": pl.Series([None] * n_users, dtype=pl.Datetime("us", "UTC")),
                "country": ["DE"] * n_users,
                "segment": [segments[k % len(segments)] for k in range(n_users)],
            }
        ),
        "users.parquet",
    )
    rec_items = rng.integers(0, n_items, (n_users, n_recs))
    write(
        pl.DataFrame(
            {
                "user_id": np.repeat(np.array(users, dtype=object), n_recs),
                "item_id": np.array(items, dtype=object)[rec_items.ravel()],
                "rank": np.tile(np.arange(1, n_recs + 1, dtype=np.int32), n_users),
                "score": np.tile(1.0 / np.arange(1, n_recs + 1), n_users),
                "model": ["ranker_model"] * (n_users * n_recs),
                "model_version": np.ones(n_users * n_recs, dtype=np.int64),
            }
        ),
        "recommendation_snapshot.parquet",
    )
    sim = (np.arange(n_items)[:, None] + rng.integers(1, n_items, (n_items, n_similar))) % n_items
    write(
        pl.DataFrame(
            {
                "item_id": np.repeat(np.array(items, dtype=object), n_similar),
                "similar_item_id": np.array(items, dtype=object)[sim.ravel()],
                "rank": np.tile(np.arange(1, n_similar + 1, dtype=np.int32), n_items),
                "score": np.tile(1.0 / np.arange(1, n_similar + 1), n_items),
            }
        ),
        "similar_items_snapshot.parquet",
    )
    rows = []
    for seg in [None, *segments]:
        for cat in [None, *categories]:
            pool = [i for i in range(n_items) if cat is None or categories[item_cat[i]] == cat]
            for r, i in enumerate(rng.choice(pool, min(100, len(pool)), replace=False), start=1):
                rows.append((seg, cat, items[i], r, 1.0 / r))
    write(
        pl.DataFrame(
            rows,
            schema={"segment": pl.Utf8, "category": pl.Utf8, "item_id": pl.Utf8, "rank": pl.Int64, "score": pl.Float64},
            orient="row",
        ),
        "popular_items_snapshot.parquet",
    )
    return {"users": users, "items": items}


def build_session_model(lake: Path, kind: str, n_visits: int = 40_000) -> str:
    """Fit the session model the API scores live visits with, on synthetic visits of 2-6 items within one
    category, and write it beside the snapshots (session_model_snapshot.npz + .parquet)."""
    import numpy as np
    import polars as pl

    from recs_assets.models import MODELS as CLASSES
    from recs_assets.serving.store import SNAPSHOT_FILES

    items = pl.read_parquet(lake / "items.parquet").select("item_id", "category")
    by_category = {c: g["item_id"].to_list() for (c,), g in items.group_by("category")}
    names = sorted(by_category)
    rng = np.random.default_rng(1)
    visits = []
    for v in range(n_visits):
        pool = by_category[names[rng.integers(len(names))]]
        # A heavy-tailed pick within the category, so some items are far more popular than others.
        picks = np.minimum(rng.zipf(1.3, rng.integers(2, 7)) - 1, len(pool) - 1)
        visits.append([pool[i] for i in picks])
    sessions = pl.DataFrame({"session_id": [f"v{k}" for k in range(n_visits)], "user_id": [f"anonymous:v{k}" for k in range(n_visits)],
                             "started_at": list(range(n_visits)), "item_ids": visits})
    interactions = (sessions.select("user_id", pl.col("item_ids").alias("item_id")).explode("item_id").unique()
                    .with_columns(strength=pl.lit(1.0)))
    model = CLASSES[kind]().fit(interactions, item_categories=items.drop_nulls(), sequences=sessions)
    model.save(lake / SNAPSHOT_FILES["session_model"])
    pl.DataFrame({"model": [f"{kind}_model"], "blend_weight": [0.5]}).write_parquet(lake / SNAPSHOT_FILES["session"])
    return f"{kind} on {n_visits:,} synthetic visits ({interactions.height:,} pairs, {model.n_items:,} items), fit {model.fit_seconds:.1f} s"


# ---------------------------------------------------------------------------- snapshot build (child)
def build_snapshot_child(n_users: int, n_items: int, n_days: int) -> dict:
    import polars as pl

    from recs_assets.contract import INTERACTION_TYPES
    from recs_assets.features import DEFAULT_INTERACTION_PARAMS
    from recs_assets.features.sql_runner import run_sql
    from recs_assets.models import ALSRecommender
    from recs_assets.serving.snapshots import recommendation_snapshot
    from recs_assets.sources.simulator import SimulatorConfig, simulate

    out: dict = {}
    t = time.perf_counter()
    sim = simulate(SimulatorConfig(n_users=n_users, n_items=n_items, n_days=n_days))
    out["simulate_s"] = time.perf_counter() - t
    out["events"] = sim.events.height
    t = time.perf_counter()
    interactions = run_sql("user_item_interactions", {"events": sim.events}, {"cutoff": None, **DEFAULT_INTERACTION_PARAMS})
    out["interactions_s"] = time.perf_counter() - t
    out["pairs"] = interactions.height
    available = sim.items.filter(pl.col("is_active").fill_null(True))["item_id"]
    t = time.perf_counter()
    model = ALSRecommender().fit(interactions, available_item_ids=available.to_list())
    out["fit_s"] = time.perf_counter() - t
    exclude = (
        sim.events.filter(pl.col("event_type").is_in(INTERACTION_TYPES) & pl.col("item_id").is_not_null())
        .select("user_id", "item_id")
        .unique()
    )
    user_ids = sim.users["user_id"].to_list()
    t = time.perf_counter()
    snap = recommendation_snapshot("als", {"als": model}, None, user_ids, {}, exclude, available, N=10, n_candidates=100)
    out["snapshot_s"] = time.perf_counter() - t
    out["snapshot_users"] = snap["user_id"].n_unique()
    out["snapshot_rows"] = snap.height
    return out


# ------------------------------------------------------------------------------------- bare server
def bare_server(port: int) -> None:
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()
    fixed = [{"item_id": f"g{k:06d}", "score": 1.0 / k, "reason": "snapshot", "rank": k} for k in range(1, 11)]

    @app.get("/recommendations/{user_id}")
    async def recs(user_id: str) -> dict:
        return {"user_id": user_id, "source": "bare", "items": fixed}

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "snapshot_loaded": True}

    # Same call as recs_assets/serving/__main__.py.
    uvicorn.run(app, host="127.0.0.1", port=port, log_level=os.environ.get("RECS_API_LOG_LEVEL", "warning"))


# ---------------------------------------------------------------------------------- load generator
async def _one_request(reader, writer, req: bytes) -> int:
    writer.write(req)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def _loadgen(port: int, paths: list[str], rate: float, seconds: float, connections: int) -> dict:
    reqs = [f"GET {p} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode() for p in paths]
    latencies: list[float] = []
    service: list[float] = []
    errors = {"n": 0, "first": None}
    counter = {"i": 0}
    now = time.perf_counter  # uvloop's loop.time() has only millisecond resolution
    start = now() + 0.05
    end = start + seconds
    interval = 1.0 / rate if rate > 0 else 0.0
    last_done = {"t": start}

    async def worker() -> None:
        reader = writer = None
        while True:
            i = counter["i"]
            counter["i"] += 1
            due = start + i * interval if rate > 0 else now()
            if due >= end:
                break
            delay = due - now()
            if delay > 0:
                await asyncio.sleep(delay)
            sent = now()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                status = await asyncio.wait_for(_one_request(reader, writer, reqs[i % len(reqs)]), 10)
                if status != 200:
                    raise RuntimeError(f"HTTP {status}")
            except Exception as exc:  # noqa: BLE001 - count and reconnect
                errors["n"] += 1
                errors["first"] = errors["first"] or f"{type(exc).__name__}: {exc}"
                if writer is not None:
                    writer.close()
                reader = writer = None
                continue
            done = now()
            last_done["t"] = max(last_done["t"], done)
            latencies.append(done - (due if rate > 0 else sent))
            service.append(done - sent)
        if writer is not None:
            writer.close()

    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(connections))), seconds + 30)
    elapsed = max(last_done["t"], end) - start if rate > 0 else last_done["t"] - start
    return {"ok": len(latencies), "errors": errors["n"], "first_error": errors["first"], "elapsed": elapsed,
            "latencies": latencies, "service": service}


def _pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000


def loadgen_child(cfg: dict) -> dict:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    r = asyncio.run(_loadgen(cfg["port"], cfg["paths"], cfg["rate"], cfg["seconds"], cfg["connections"]))
    lat = r.pop("latencies")
    svc = r.pop("service")
    r.update(
        throughput=r["ok"] / r["elapsed"] if r["elapsed"] > 0 else 0.0,
        p50=_pct(lat, 0.50), p95=_pct(lat, 0.95), p99=_pct(lat, 0.99), svc_p99=_pct(svc, 0.99),
    )
    return r


def run_loadgen(port: int, paths: list[str], rate: float, seconds: float, connections: int) -> dict:
    cfg = json.dumps({"port": port, "paths": paths, "rate": rate, "seconds": seconds, "connections": connections})
    proc = subprocess.run([PY, __file__, "--_loadgen", "-"], input=cfg, capture_output=True, text=True, timeout=seconds + 90)
    if proc.returncode != 0:
        return {"ok": 0, "errors": -1, "first_error": proc.stderr.strip()[-300:], "throughput": 0.0,
                "p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "svc_p99": float("nan")}
    return json.loads(proc.stdout.strip().splitlines()[-1])


WRK_LUA = r"""
local paths = {}
local f = io.open(os.getenv("WRK_PATHS"), "r")
for line in f:lines() do paths[#paths + 1] = line end
f:close()
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end
done = function(summary, latency, requests)
  local errs = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout
  io.write(string.format("WRKJSON {\"requests\": %d, \"duration_us\": %d, \"errors\": %d, \"p50\": %f, \"p95\": %f, \"p99\": %f}\n",
    summary.requests, summary.duration, errs, latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
"""


def run_wrk(port: int, paths: list[str], seconds: float, connections: int, tmp: Path) -> dict | None:
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    (tmp / "wrk.lua").write_text(WRK_LUA)
    (tmp / "wrk_paths.txt").write_text("\n".join(paths) + "\n")
    proc = subprocess.run(
        [wrk, "-t1", f"-c{connections}", f"-d{max(1, int(seconds))}s", "-s", str(tmp / "wrk.lua"), f"http://127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=seconds + 60, env={**os.environ, "WRK_PATHS": str(tmp / "wrk_paths.txt")},
    )
    for line in proc.stdout.splitlines():
        if line.startswith("WRKJSON "):
            d = json.loads(line[8:])
            ok = d["requests"] - d["errors"]
            return {"ok": ok, "errors": d["errors"], "first_error": None, "throughput": ok / (d["duration_us"] / 1e6),
                    "p50": d["p50"], "p95": d["p95"], "p99": d["p99"], "svc_p99": d["p99"]}
    return {"ok": 0, "errors": -1, "first_error": (proc.stderr or proc.stdout)[-300:], "throughput": 0.0,
            "p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "svc_p99": float("nan")}


# ------------------------------------------------------------------------------------------ servers
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(port: int, path: str, body: dict | None = None, timeout: float = 10) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data,
                                 headers={"content-type": "application/json"} if data else {})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def start_server(cmd: list[str], env: dict, port: int, timeout: float = 180) -> tuple[subprocess.Popen, float]:
    """Start a server subprocess; return it and the seconds until /health says the snapshot is loaded."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=CHECKOUT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = t + timeout
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if http_json(port, "/health", timeout=2).get("snapshot_loaded"):
                return proc, time.perf_counter() - t
        except OSError:
            pass
        time.sleep(0.05)
    stop_server(proc)
    raise RuntimeError("server did not become ready")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------------------------- main
def fmt_row(scenario: str, target: str, r: dict) -> str:
    return (f"{scenario:<9} {target:>10} {r['throughput']:>10.0f} {r['p50']:>8.2f} {r['p95']:>8.2f} {r['p99']:>8.2f} "
            f"{r['svc_p99']:>9.2f} {r['ok']:>8} {r['errors']:>6}")


def main() -> None:
    from recs_assets.layout import HomeLayout
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="duration of each rate step (default 30)")
    parser.add_argument("--rates", nargs="+", default=["250", "500", "1000", "2000", "4000", "max"])
    parser.add_argument("--scenarios", nargs="+", default=["snapshot", "fallback", "live", "anon", "search", "bare"],
                        choices=["snapshot", "fallback", "live", "anon", "search", "bare"])
    parser.add_argument("--session-model", default="gru4rec", choices=["gru4rec", "session_knn"],
                        help="the session model in the lake (the live and anon paths)")
    parser.add_argument("--connections", type=int, default=64, help="load-generator connections (open loop)")
    parser.add_argument("--max-connections", type=int, default=32, help="connections for the 'max' steps")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--live-users", type=int, default=2_000, help="users that POST events before the live step")
    parser.add_argument("--load-runs", type=int, default=3, help="runs of the in-process snapshot load (median)")
    parser.add_argument("--no-build", action="store_true", help="skip the snapshot-build timing")
    parser.add_argument("--build-timeout", type=float, default=180.0)
    parser.add_argument("--build-days", type=int, default=7)
    parser.add_argument("--no-feature-store", action="store_true",
                        help="no feature store in the home: GET /search uses only the snapshot's shopper signals")
    parser.add_argument("--_loadgen", help=argparse.SUPPRESS)
    parser.add_argument("--_bare", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--_build", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._loadgen:
        print(json.dumps(loadgen_child(json.loads(sys.stdin.read() if args._loadgen == "-" else args._loadgen))))
        return
    if args._bare:
        bare_server(args._bare)
        return
    if args._build:
        print(json.dumps(build_snapshot_child(*args._build)))
        return

    sys.path.insert(0, str(CHECKOUT))
    print(f"machine: {machine()}")
    print(f"settings: {args.seconds:g} s per step, open-loop connections {args.connections}, max-step connections "
          f"{args.max_connections}; one run per step (no medians: time budget)")
    tmp = Path(tempfile.mkdtemp(prefix="recs-serve-bench-"))
    procs: list[subprocess.Popen] = []
    try:
        home = tmp / "home"
        t = time.perf_counter()
        ids = build_lake(HomeLayout(home).lake, args.users, args.items, 10, 10)
        print(f"\nsynthetic lake: {args.users:,} users x 10 recs, {args.items:,} items x 10 similar, "
              f"5 segments x 13 categories x 100 popular; written in {time.perf_counter() - t:.2f} s")

        print(f"session model: {build_session_model(HomeLayout(home).lake, args.session_model)}")

        t = time.perf_counter()
        search_paths = build_search_files(home, args.users, args.items, feature_store=not args.no_feature_store)
        print(f"search files (catalogue, shopper signals, ranker"
              f"{'' if args.no_feature_store else '; the searching shoppers in the feature store'}) written in "
              f"{time.perf_counter() - t:.2f} s")

        from recs_assets.serving.store import load_store

        times = []
        for _ in range(max(1, args.load_runs)):
            t = time.perf_counter()
            store = load_store(HomeLayout(home).lake)
            times.append(time.perf_counter() - t)
        print(f"snapshot load (load_store, in process): median {statistics.median(times):.2f} s of {len(times)} runs "
              f"({', '.join(f'{x:.2f}' for x in times)}); counts {store.counts}")
        del store

        if not args.no_build:
            print(f"\nsnapshot build: simulate {args.users:,} users x {args.items:,} items x {args.build_days} days -> "
                  f"interactions SQL -> ALS fit -> recommendation_snapshot (limit {args.build_timeout:.0f} s) ...", flush=True)
            try:
                t = time.perf_counter()
                proc = subprocess.run([PY, __file__, "--_build", str(args.users), str(args.items), str(args.build_days)],
                                      capture_output=True, text=True, timeout=args.build_timeout, cwd=CHECKOUT)
                if proc.returncode != 0:
                    print(f"  build FAILED: {proc.stderr.strip()[-800:]}")
                else:
                    b = json.loads(proc.stdout.strip().splitlines()[-1])
                    print(f"  simulate {b['simulate_s']:.1f} s ({b['events']:,} events), interactions {b['interactions_s']:.1f} s "
                          f"({b['pairs']:,} pairs), ALS fit {b['fit_s']:.1f} s, recommendation_snapshot {b['snapshot_s']:.1f} s "
                          f"({b['snapshot_users']:,} users, {b['snapshot_rows']:,} rows); total with imports "
                          f"{time.perf_counter() - t:.1f} s")
            except subprocess.TimeoutExpired:
                print(f"  SKIPPED: did not finish within {args.build_timeout:.0f} s")

        port = free_port()
        env = {**os.environ, "RECS_HOME": str(home), "RECS_API_PORT": str(port), "PYTHONPATH": str(CHECKOUT)}
        t0_api = time.perf_counter()
        api, ready_s = start_server([PY, "-m", "recs_assets.serving"], env, port)
        procs.append(api)
        print(f"\nAPI server (python -m recs_assets.serving, pid {api.pid}) ready with the snapshot loaded in {ready_s:.2f} s "
              f"(process start + imports + load)")
        bare_port = free_port()
        bare, bare_s = start_server([PY, __file__, "--_bare", str(bare_port)], env, bare_port)
        procs.append(bare)
        print(f"bare FastAPI server (pid {bare.pid}) ready in {bare_s:.2f} s")

        users = ids["users"]
        step = max(1, len(users) // 5000)
        snapshot_paths = [f"/recommendations/{u}" for u in users[::step][:5000]]
        fallback_paths = [f"/recommendations/nobody{k:05d}" for k in range(5000)]
        live_users = users[1::step][: args.live_users]
        live_paths = [f"/recommendations/{u}" for u in live_users]
        anon_users = [f"anonymous:a{k:05d}" for k in range(args.live_users)]
        anon_paths = [f"/recommendations/{u}" for u in anon_users]

        if not args.no_feature_store:
            # The API opens the online store on its watcher thread (Feast's import takes seconds): wait for it,
            # so every measured search reads the shopper's features online.
            deadline = time.perf_counter() + 120
            while not http_json(port, "/health").get("online_features"):
                if time.perf_counter() > deadline:
                    raise SystemExit("the API did not open the online feature store within 120 s")
                time.sleep(0.5)
            print(f"online features in the search path: yes (store opened {time.perf_counter() - t0_api:.1f} s after start)")
        else:
            print("online features in the search path: no (--no-feature-store)")

        # sanity: one request of each kind
        assert http_json(port, snapshot_paths[0])["source"] == "snapshot"
        assert http_json(port, fallback_paths[0])["source"] == "fallback"
        assert http_json(port, search_paths[1])["ranking"] == "personalised"

        import random

        rnd = random.Random(1)
        items = ids["items"]
        t = time.perf_counter()
        batch: list[dict] = []
        posts = 0
        for u in [*live_users, *anon_users]:
            for kind in ("view", "view", "add_to_cart"):
                # An anonymous shopper is anonymous:<session_id>, the warehouse's rule the API enforces.
                visit = u.removeprefix("anonymous:") if u.startswith("anonymous:") else f"s-{u}"
                batch.append({"user_id": u, "session_id": visit, "item_id": rnd.choice(items), "event_type": kind})
            if len(batch) >= 300:
                http_json(port, "/events", {"events": batch})
                posts += 1
                batch = []
        if batch:
            http_json(port, "/events", {"events": batch})
            posts += 1
        post_s = time.perf_counter() - t
        sample = http_json(port, live_paths[0])
        n_session = sum(1 for it in sample["items"] if it["reason"] == "session")
        anon_sample = http_json(port, anon_paths[0])
        assert anon_sample["source"] == "session", anon_sample["source"]
        print(f"live events: {(len(live_users) + len(anon_users)) * 3:,} events for {len(live_users):,} known and "
              f"{len(anon_users):,} anonymous shoppers in {posts} POSTs, "
              f"{post_s:.2f} s ({post_s / posts * 1000:.1f} ms per POST incl. fsync); sample response has "
              f"{n_session} items from the session model; an anonymous one is served by {anon_sample['model']}")

        scenarios = {"snapshot": (port, snapshot_paths), "fallback": (port, fallback_paths),
                     "live": (port, live_paths), "anon": (port, anon_paths), "search": (port, search_paths),
                     "bare": (bare_port, snapshot_paths)}
        print("\nlatency in ms from the scheduled send time (open loop; 'max' = closed loop from the actual send); "
              "svc_p99 = p99 from the actual send")
        header = (f"{'scenario':<9} {'target/s':>10} {'achieved/s':>10} {'p50':>8} {'p95':>8} {'p99':>8} "
                  f"{'svc_p99':>9} {'ok':>8} {'errors':>6}")
        print(header)
        print("-" * len(header))
        results: dict[tuple[str, str], dict] = {}
        first_errors = []
        for name in args.scenarios:
            p, paths = scenarios[name]
            for rate in args.rates:
                if rate == "max":
                    r = run_loadgen(p, paths, 0, args.seconds, args.max_connections)
                else:
                    r = run_loadgen(p, paths, float(rate), args.seconds, args.connections)
                results[(name, rate)] = r
                print(fmt_row(name, rate, r), flush=True)
                if r.get("first_error"):
                    first_errors.append(f"{name}@{rate}: {r['first_error']}")
            if "max" in args.rates:
                w = run_wrk(p, paths, args.seconds, args.max_connections, tmp)
                if w is not None:
                    results[(name, "max(wrk)")] = w
                    print(fmt_row(name, "max(wrk)", w), flush=True)
                    if w.get("first_error"):
                        first_errors.append(f"{name}@max(wrk): {w['first_error']}")
        for e in first_errors:
            print(f"  first error {e}")

        print("\nsummary")
        health = http_json(port, "/health")
        print(f"  API /health after the run: status {health['status']}, live_session_users {health['live_session_users']}")
        for kind in ("max", "max(wrk)"):
            if ("bare", kind) in results:
                bare_max = results[("bare", kind)]["throughput"]
                for name in ("snapshot", "fallback", "live"):
                    if (name, kind) in results and bare_max > 0:
                        ours = results[(name, kind)]["throughput"]
                        ratio = bare_max / ours if ours else float("inf")
                        verdict = "within 2x: yes" if ratio <= 2 else "within 2x: NO"
                        print(f"  {kind:<8} {name:<8} {ours:7.0f}/s vs bare {bare_max:7.0f}/s -> bare is {ratio:.2f}x ({verdict})")
        for name in ("anon",):  # snapshot, live and bare are summarised below
            if (name, "500") in results:
                r = results[(name, "500")]
                print(f"  p99 at 500 req/s, {name:<6}: {r['p99']:.2f} ms -> {'< 5 ms: yes' if r['p99'] < 5 and r['errors'] == 0 else 'NO'}")
        if ("search", "200") in results:
            r = results[("search", "200")]
            print(f"  p99 at 200 req/s, search  : {r['p99']:.2f} ms -> {'< 10 ms: yes' if r['p99'] < 10 and r['errors'] == 0 else 'NO'}")
        if any(r == "500" for r in args.rates):
            for name in ("snapshot", "fallback", "live", "search", "bare"):
                if (name, "500") in results:
                    r = results[(name, "500")]
                    print(f"  p99 at 500 req/s, {name:<8}: {r['p99']:.2f} ms -> "
                          f"{'< 10 ms: yes' if r['p99'] < 10 and r['errors'] == 0 else 'NO'}")
        # "sustainable": achieved >= 95% of target with no errors and p99 < 100 ms
        for name in args.scenarios:
            ok = [int(rate) for rate in args.rates if rate != "max" and (name, rate) in results
                  and results[(name, rate)]["throughput"] >= 0.95 * int(rate)
                  and results[(name, rate)]["errors"] == 0 and results[(name, rate)]["p99"] < 100]
            print(f"  highest sustained target rate ({name}; >=95% achieved, 0 errors, p99 < 100 ms): "
                  f"{max(ok) if ok else 'none'}")
    finally:
        for proc in procs:
            stop_server(proc)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
