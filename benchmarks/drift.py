"""Feature-drift benchmark: false alarms without a shift, detections and delay with one, on the simulator.

For every preset and seed, the simulator runs twice: without a preference shift and with one from
--shift-day on (the simulator's default strength). The pure check (`measure_feature_drift`, with the
defaults the Dagster check uses) is judged on the whole run:
- without a shift, a failed check is a false alarm (goal: at most 5% of runs);
- with a shift, a failed check is a detection (goal: at least 90%).
Detection delay: the check is evaluated as of the end of each day after the shift (events up to that
day only, as a daily run would see them); the delay is the number of shifted days it needed before it
failed. The table shows the median over the seeds it fired in.

    .venv/bin/python benchmarks/drift.py                                 # 20 seeds, games and fashion, 3,000 users
    .venv/bin/python benchmarks/drift.py --seeds 5 --users 10000 --presets fashion
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import polars as pl  # noqa: E402

from machine import describe  # noqa: E402  (benchmarks/machine.py, beside this script)
from recs_assets.monitoring.drift import measure_feature_drift  # noqa: E402
from recs_assets.sources.simulator import SimulatorConfig, simulate  # noqa: E402


def day_end(start: dt.date, day: int) -> dt.datetime:
    """The cut-off of a run at the end of day index `day` of a simulation starting on `start` (UTC)."""
    return dt.datetime.combine(start + dt.timedelta(days=day + 1), dt.time(), tzinfo=dt.UTC)


def events_up_to(events: pl.DataFrame, start: dt.date, day: int) -> pl.DataFrame:
    """Events of days 0..day (inclusive): what a run at the end of `day` sees."""
    return events.filter(pl.col("event_at") < day_end(start, day))


def one_seed(preset: str, seed: int, users: int, items: int, days: int, shift_day: int) -> dict:
    out: dict = {}
    for shifted in (False, True):
        config = SimulatorConfig(preset=preset, seed=seed, n_users=users, n_items=items, n_days=days,
                                 preference_shift_day=shift_day if shifted else None)
        sim = simulate(config)
        t0 = time.perf_counter()
        full = measure_feature_drift(sim.events, sim.items, sim.users)
        out["check_seconds"] = time.perf_counter() - t0
        out["shift" if shifted else "none"] = full
        if shifted:
            out["delay"] = None
            for day in range(shift_day, days):
                if day == days - 1:
                    fired = full.failed
                else:
                    fired = measure_feature_drift(events_up_to(sim.events, config.start_date, day), sim.items, sim.users).failed
                if fired:
                    out["delay"] = day - shift_day + 1  # shifted days seen (the shift day counts as the first)
                    break
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20, help="seeds per preset (0..seeds-1)")
    parser.add_argument("--presets", nargs="+", default=["games", "fashion"])
    parser.add_argument("--users", type=int, default=3_000)
    parser.add_argument("--items", type=int, default=None, help="default: users / 2, as make run's 10k users x 5k items")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--shift-day", type=int, default=23, help="the README's example shift day")
    parser.add_argument("--verbose", action="store_true", help="print every run's description")
    args = parser.parse_args()
    items = args.items or max(1, args.users // 2)
    print(f"# machine: {describe()}")
    print(f"# scale: {args.users} users, {items} items, {args.days} days; shift from day {args.shift_day}; seeds 0..{args.seeds - 1}")
    started = time.perf_counter()
    rows = []
    by_preset: dict[str, list[dict]] = {}
    for preset in args.presets:
        results = by_preset.setdefault(preset, [])
        for seed in range(args.seeds):
            r = one_seed(preset, seed, args.users, items, args.days, args.shift_day)
            results.append(r)
            if args.verbose:
                for key in ("none", "shift"):
                    print(f"  {preset} seed {seed} {key}: {r[key].status}: {r[key].description}", flush=True)
        for key, label in (("none", "no"), ("shift", "yes")):
            judged = [r[key] for r in results if not r[key].skipped]
            alarms = sum(res.failed for res in judged)
            shares = [res.values["share_drifted"] for res in judged]
            delays = [r["delay"] for r in results if r.get("delay") is not None] if key == "shift" else []
            rows.append({
                "preset": preset, "shift": label, "runs": len(judged), "alarms": alarms,
                "rate": alarms / len(judged) if judged else float("nan"),
                "share_drifted": f"{statistics.median(shares):.0%} (max {max(shares):.0%})" if shares else "-",
                "delay": (f"{statistics.median(delays):g} d ({len(delays)}/{len(results)} fired)" if delays else
                          ("never" if key == "shift" else "-")),
                "check_s": statistics.median(r["check_seconds"] for r in results),
            })
    print()
    header = f"{'preset':8} {'shift':5} {'runs':>4} {'alarms':>6} {'rate':>6}  {'share drifted: median (max)':28} {'detection delay (median)':26} {'check s':>7}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(f"{row['preset']:8} {row['shift']:5} {row['runs']:>4} {row['alarms']:>6} {row['rate']:>6.0%}  "
              f"{row['share_drifted']:28} {row['delay']:26} {row['check_s']:>7.1f}")
    print("\nPer column (share_* grouped): threshold, largest score without a shift, smallest and median with one")
    print(f"{'preset':8} {'column':20} {'method':14} {'threshold':>9} {'max no-shift':>12} {'min shift':>9} {'median shift':>12}")
    for preset, results in by_preset.items():
        for column in sorted({c for r in results for key in ("none", "shift") for c in _scores(r[key])}):
            none = [v for r in results for c, v in _scores(r["none"]).items() if c == column]
            shift = [v for r in results for c, v in _scores(r["shift"]).items() if c == column]
            method, threshold = next(m for r in results for key in ("none", "shift")
                                     for c, m in _methods(r[key]).items() if c == column)
            print(f"{preset:8} {column:20} {method:14} {threshold:>9.3g} {max(none, default=float('nan')):>12.3f} "
                  f"{min(shift, default=float('nan')):>9.3f} {statistics.median(shift) if shift else float('nan'):>12.3f}")
    print(f"\n# total {time.perf_counter() - started:.0f} s")


def _group(column: str) -> str:
    return "share_*" if column.startswith("share_") else column


def _scores(result) -> dict[str, float]:
    """Largest score per (grouped) column of one result."""
    out: dict[str, float] = {}
    for column, s in result.details.get("column_scores", {}).items():
        out[_group(column)] = max(out.get(_group(column), float("-inf")), s["score"])
    return out


def _methods(result) -> dict[str, tuple[str, float]]:
    return {_group(c): (s["method"], s["threshold"]) for c, s in result.details.get("column_scores", {}).items()}


if __name__ == "__main__":
    main()
