"""Prediction-drift benchmark: false alarms without a shift, detections and delay with one, on the simulator.

What a daily schedule would do, replayed: for every preset and seed the simulator runs twice (without a
preference shift and with one from --shift-day on, the simulator's default strength). At the end of each
day from the shift day on, a model is refitted on everything known then and the day's recommendation
snapshot is built as the serving asset builds it (`recs_assets.monitoring.replay.snapshot_at`: the
feature store at that cut-off, `fit_generator`, EASE by default, `recommendation_snapshot` with nothing
the user already has, only what is for sale then, topped up from the popular fallback). The pure check (`measure_prediction_drift`, with the defaults the Dagster
check uses) compares it with the reference the schedule would keep: the previous day's snapshot
(`--reference previous`, the check's rule) or the one a week earlier (`--reference week`, measured for
the choice). Judged over the days from the shift day to the last:
- without a shift, a run with a failed check on any of those days is a false alarm (goal: at most 5%);
- with a shift, a run whose check fails on one of them is a detection (goal: at least 90%); the delay is
  the number of shifted days seen when it first failed (the shift day's own snapshot counts as 1).
The second table gives, per statistic, the threshold, the largest value seen without a shift and, with
one, the smallest per-run peak and the median: how the thresholds were chosen.

    .venv/bin/python benchmarks/prediction_drift.py                      # 20 seeds, games and fashion, 3,000 users
    .venv/bin/python benchmarks/prediction_drift.py --quick              # 3 seeds per preset
    .venv/bin/python benchmarks/prediction_drift.py --reference week --seeds 10
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import polars as pl  # noqa: E402

from drift import day_end  # noqa: E402  (benchmarks/drift.py, beside this script)
from machine import describe  # noqa: E402
from recs_assets.models.registry import MODELS  # noqa: E402
from recs_assets.monitoring.drift import (  # noqa: E402
    MAX_CATEGORY_TVD,
    MAX_NEW_CATEGORY_SHARE,
    measure_prediction_drift,
)
from recs_assets.monitoring.replay import snapshot_at  # noqa: E402
from recs_assets.sources.simulator import SimulatorConfig, simulate  # noqa: E402

LAGS = {"previous": 1, "week": 7}
STATISTICS = {"new_category_share": MAX_NEW_CATEGORY_SHARE, "category_tvd": MAX_CATEGORY_TVD, "score_ks": None}


def one_seed(preset: str, seed: int, users: int, items: int, days: int, shift_day: int, lag: int, model: str) -> dict:
    """Per run ("none", "shift"): the check's result on each day from the shift day on."""
    out: dict = {"snapshot_seconds": [], "check_seconds": []}
    snapshots: dict[tuple[bool, int], pl.DataFrame] = {}
    base_events = None
    for shifted in (False, True):
        config = SimulatorConfig(preset=preset, seed=seed, n_users=users, n_items=items, n_days=days,
                                 preference_shift_day=shift_day if shifted else None)
        sim = simulate(config)
        # Before the shift day a shifted world is meant to match the steady one; reuse its snapshots when it does.
        cut = day_end(config.start_date, shift_day - 1)
        same_past = shifted and base_events is not None and base_events.filter(pl.col("event_at") < cut).equals(
            sim.events.filter(pl.col("event_at") < cut))
        base_events = sim.events
        for day in range(shift_day - lag, days):
            if same_past and day < shift_day:
                snapshots[(True, day)] = snapshots[(False, day)]
                continue
            t0 = time.perf_counter()
            snapshots[(shifted, day)] = snapshot_at(sim.events, sim.items, sim.users, day_end(config.start_date, day), model=model)
            out["snapshot_seconds"].append(time.perf_counter() - t0)
        results = {}
        for day in range(shift_day, days):
            t0 = time.perf_counter()
            results[day] = measure_prediction_drift(snapshots[(shifted, day - lag)], snapshots[(shifted, day)], sim.items,
                                                    previous_label=f"day {day - lag}'s snapshot")
            out["check_seconds"].append(time.perf_counter() - t0)
        out["shift" if shifted else "none"] = results
        out["same_past"] = bool(same_past)
    fired = [day for day, r in out["shift"].items() if r.failed]
    out["delay"] = min(fired) - shift_day + 1 if fired else None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20, help="seeds per preset (0..seeds-1)")
    parser.add_argument("--quick", action="store_true", help="3 seeds per preset (about a tenth of the time)")
    parser.add_argument("--presets", nargs="+", default=["games", "fashion"])
    parser.add_argument("--users", type=int, default=3_000)
    parser.add_argument("--items", type=int, default=None, help="default: users / 2, as make run's 10k users x 5k items")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--shift-day", type=int, default=23, help="the README's example shift day")
    parser.add_argument("--reference", choices=sorted(LAGS), default="previous",
                        help="compare with the previous day's snapshot (the check's rule) or the one a week earlier")
    parser.add_argument("--model", choices=sorted(MODELS), default="ease", help="the generator refitted every day")
    parser.add_argument("--verbose", action="store_true", help="print every day's description")
    args = parser.parse_args()
    seeds = 3 if args.quick else args.seeds
    items = args.items or max(1, args.users // 2)
    lag = LAGS[args.reference]
    print(f"# machine: {describe()}")
    print(f"# scale: {args.users} users, {items} items, {args.days} days; shift from day {args.shift_day}; seeds 0..{seeds - 1}; "
          f"model {args.model} refitted daily; reference: the snapshot {lag} day(s) earlier")
    started = time.perf_counter()
    rows, by_preset = [], {}
    for preset in args.presets:
        results = by_preset.setdefault(preset, [])
        for seed in range(seeds):
            r = one_seed(preset, seed, args.users, items, args.days, args.shift_day, lag, args.model)
            results.append(r)
            print(f"  {preset} seed {seed}: steady {sum(x.failed for x in r['none'].values())} failed day(s), "
                  f"shifted delay {r['delay']}", file=sys.stderr, flush=True)
            if args.verbose:
                for key in ("none", "shift"):
                    for day, res in r[key].items():
                        print(f"  {preset} seed {seed} {key} day {day}: {res.status}: {res.description}", flush=True)
        for key, label in (("none", "no"), ("shift", "yes")):
            judged = [[res for res in r[key].values() if not res.skipped] for r in results]
            alarms = sum(any(res.failed for res in days) for days in judged)
            n_days = sum(len(days) for days in judged)
            delays = [r["delay"] for r in results if r["delay"] is not None] if key == "shift" else []
            rows.append({
                "preset": preset, "shift": label, "runs": len(results), "alarms": alarms,
                "rate": alarms / len(results) if results else float("nan"),
                "daily": sum(res.failed for days in judged for res in days) / n_days if n_days else float("nan"),
                "delay": (f"{statistics.median(delays):g} d ({len(delays)}/{len(results)} fired)" if delays else
                          ("never" if key == "shift" else "-")),
                "snapshot_s": statistics.median(s for r in results for s in r["snapshot_seconds"]),
                "check_s": statistics.median(s for r in results for s in r["check_seconds"]),
            })
    print("\nA run is one simulated month; it alarms when the check fails on any day from the shift day on.")
    header = (f"{'preset':8} {'shift':5} {'runs':>4} {'alarms':>6} {'rate':>6} {'failed days':>11}  "
              f"{'detection delay (median)':26} {'snapshot s':>10} {'check s':>7}")
    print(header)
    print("-" * len(header))
    for row in rows:
        print(f"{row['preset']:8} {row['shift']:5} {row['runs']:>4} {row['alarms']:>6} {row['rate']:>6.0%} {row['daily']:>11.0%}  "
              f"{row['delay']:26} {row['snapshot_s']:>10.1f} {row['check_s']:>7.2f}")
    print("\nPer statistic: threshold, largest daily value without a shift; with one, the smallest per-run peak and the median day")
    print(f"{'preset':8} {'statistic':20} {'threshold':>9} {'max no-shift':>12} {'min peak shift':>14} {'median shift':>12}")
    for preset, results in by_preset.items():
        for name, threshold in STATISTICS.items():
            none = [v for r in results for v in _values(r["none"], name)]
            peaks = [max(vs) for r in results if (vs := _values(r["shift"], name))]
            shift = [v for r in results for v in _values(r["shift"], name)]
            print(f"{preset:8} {name:20} {threshold if threshold is not None else 'reported':>9} "
                  f"{max(none, default=float('nan')):>12.3f} {min(peaks, default=float('nan')):>14.3f} "
                  f"{statistics.median(shift) if shift else float('nan'):>12.3f}")
    reused = sum(r["same_past"] for results in by_preset.values() for r in results)
    print(f"\n# shifted runs matching the steady one before the shift day (snapshots reused): {reused} of "
          f"{sum(len(v) for v in by_preset.values())}")
    print(f"# total {time.perf_counter() - started:.0f} s")


def _values(results: dict, name: str) -> list[float]:
    return [res.values[name] for res in results.values() if res.values.get(name) is not None]


if __name__ == "__main__":
    main()
