"""Growth: how three operations' time scales with their input, timed here so that no test times itself.

- reading a CSV where every other line opens a quote it never closes (`sources.files.load_raw_events`
  with staging and the reconcile): time per line must stay flat as the file grows; a reader that
  re-scans from each broken quote would grow quadratically;
- the bootstrap interval and the paired test (`evaluation.uncertainty`, 1,000 resamples) over more and
  more users, as the leaderboard computes them for every model and metric;
- a call to a broker that is down (`RedisStreamsBroker.publish` against a loopback port nothing
  listens on): it must fail within about the connect timeout, not hang the API's request.

Median of --repeats runs each, machine noted.

    .venv/bin/python benchmarks/growth.py
    .venv/bin/python benchmarks/growth.py --repeats 9
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from machine import describe  # noqa: E402  (benchmarks/machine.py, beside this script)
from recs_assets.evaluation.uncertainty import bootstrap_ci, paired_test  # noqa: E402
from recs_assets.sources import files  # noqa: E402
from recs_assets.validation.quarantine import split_events  # noqa: E402
from recs_assets.validation.reconciliation import reconcile_with_source  # noqa: E402
from recs_assets.validation.schemas import events_schema  # noqa: E402

HEADER = "event_id,event_at,user_id,session_id,item_id,event_type"


def median_seconds(run, repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def broken_quotes(lines: int, repeats: int) -> dict:
    """Stage a file of `lines` rows, every other one with an unclosed quote in its user id."""
    rows = [
        ('e%d,2024-05-01T10:00:00Z,"u%d,s1,i1,view' if n % 2 else "e%d,2024-05-01T10:00:00Z,u%d,s1,i1,view") % (n, n)
        for n in range(lines)
    ]
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "events.csv").write_text("\n".join([HEADER, *rows]))
        outcome = {}

        def run() -> None:
            raw = files.load_raw_events(Path(folder))
            split = split_events(raw, events_schema())
            passed, _, _ = reconcile_with_source(raw, split.clean, split.quarantine, files.source_record_count(Path(folder)))
            outcome.update(clean=split.clean.height, quarantined=split.quarantine.height, reconciled=passed)

        seconds = median_seconds(run, repeats)
    return {"lines": lines, "seconds": seconds, **outcome}


def resamples(users: int, repeats: int) -> dict:
    rng = np.random.default_rng(3)
    a = (rng.random(users) < 0.3) * rng.random(users)
    b = (rng.random(users) < 0.3) * rng.random(users)

    def run() -> None:
        bootstrap_ci(a, n_resamples=1000)
        paired_test(a, b, n_resamples=1000)

    return {"users": users, "seconds": median_seconds(run, repeats)}


def broker_down(repeats: int) -> dict:
    from recs_assets.streaming.broker import BrokerUnavailable
    from recs_assets.streaming.redis_streams import RedisStreamsBroker

    with socket.socket() as probe:  # a free loopback port, closed again: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    broker = RedisStreamsBroker(f"redis://127.0.0.1:{port}/0")

    def run() -> None:
        try:
            broker.publish([{"event_id": "e1"}])
        except BrokerUnavailable:
            return
        raise AssertionError("publish to a broker that is down did not raise BrokerUnavailable")

    return {"seconds": median_seconds(run, repeats)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(describe())
    print(f"median of {args.repeats} runs each\n")

    print("| CSV lines (half with an unclosed quote) | seconds | microseconds per line | clean | quarantined | reconciled |")
    print("|---|---|---|---|---|---|")
    for lines in (5_000, 10_000, 20_000, 40_000, 80_000):
        r = broken_quotes(lines, args.repeats)
        print(f"| {lines:,} | {r['seconds']:.3f} | {r['seconds'] / lines * 1e6:.1f} | {r['clean']:,} | {r['quarantined']:,} | {r['reconciled']} |")

    print("\n| users | bootstrap CI + paired test, 1,000 resamples (s) |")
    print("|---|---|")
    for users in (1_000, 10_000, 100_000):
        r = resamples(users, args.repeats)
        print(f"| {users:,} | {r['seconds']:.3f} |")

    r = broker_down(args.repeats)
    print(f"\n| broker down: publish fails with BrokerUnavailable after (s) |\n|---|\n| {r['seconds']:.3f} |")


if __name__ == "__main__":
    main()
