"""Experimentation benchmark: is the A/B analysis calibrated and powered, do bandits learn, how close are off-policy estimates?

On a simulated games shop (history of --days days; models fitted on all but the last 7), it prints:
- the A/A false-positive rate over --tests A/A tests (one policy in both arms, users re-randomised by
  a fresh salt each time; goal 3% to 7% at alpha 0.05) on conversion and revenue per session;
- the power to detect a planted +3% conversion lift at the default size (100k sessions per arm),
  in the shop of --users users and in a shop of --large-users users (a world without history,
  served by a non-personalised bestseller list);
- regret of Thompson sampling and LinUCB against epsilon-greedy (and uniform), median over seeds;
- off-policy relative errors in the simulator (target: each model's top-10, epsilon 0.3) and on the
  Open Bandit Dataset (bts estimated from random; the authors report DM 0.218, IPW 1.159, DR 0.993);
- the time for one A/B test of 100k sessions per arm (median of --repeats).

    .venv/bin/python benchmarks/experiments.py
    .venv/bin/python benchmarks/experiments.py --users 3000 --tests 100
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from machine import describe  # noqa: E402  (benchmarks/machine.py, beside this script)
from recs_assets.experiments import ab_test as ab  # noqa: E402
from recs_assets.experiments.bandits import compare_bandits, simulator_problem  # noqa: E402
from recs_assets.experiments.environment import SessionResults, SimulatorEnvironment, lists_policy  # noqa: E402
from recs_assets.experiments.off_policy import open_bandit_check, simulator_check  # noqa: E402
from recs_assets.models.ease import EASERecommender  # noqa: E402
from recs_assets.models.item_knn import ItemKNNRecommender  # noqa: E402
from recs_assets.models.lists import recommend_frame  # noqa: E402
from recs_assets.models.popularity import PopularityRecommender  # noqa: E402
from recs_assets.sources import open_bandit  # noqa: E402
from recs_assets.sources.simulator import SimulatorConfig, simulate  # noqa: E402
from recs_assets.sources.simulator.day import ShopState  # noqa: E402
from recs_assets.sources.simulator.world import build_world  # noqa: E402

DEFAULT_SIZE = ab.ExperimentConfig().sessions_per_arm
OBD = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "open-bandit-dataset"
PUBLISHED = {"DM": 0.218, "IPS": 1.159, "DR": 0.993}


def user_sums(results: SessionResults, inverse: np.ndarray, n_users: int, mask: np.ndarray) -> ab.UserSums:
    """Per-user sums of the sessions whose user is in `mask` (a boolean per user), without re-hashing ids."""
    keep = mask[inverse]
    users = inverse[keep]
    columns = {"impressions": results.impressions, "views": results.views, "orders": results.orders,
               "items": results.items, "revenue": results.revenue}
    sums = {k: np.bincount(users, weights=v[keep].astype(float), minlength=n_users)[mask] for k, v in columns.items()}
    sums["sessions"] = np.bincount(users, minlength=n_users).astype(float)[mask]
    sums["users"] = np.ones(int(mask.sum()))
    return ab.UserSums(sums)


def calibration(results: SessionResults, tests: int, lift: float) -> dict:
    """A/A false positives and planted-lift detections over `tests` re-randomisations of the same sessions."""
    unique, inverse = np.unique(results.user_ids.astype(str), return_inverse=True)
    n_users = len(unique)
    false_pos = {"conversion": 0, "revenue_per_session": 0}
    detected = 0
    for test in range(tests):
        arm = ab.assign(unique.tolist(), f"aa-{test}", [0.5, 0.5]).astype(bool)
        a, b = user_sums(results, inverse, n_users, ~arm), user_sums(results, inverse, n_users, arm)
        effects = dict((r["metric"], r["p_value"]) for r in ab.compare(a, b).iter_rows(named=True))
        for metric in false_pos:
            false_pos[metric] += effects[metric] < 0.05
        planted = ab.plant_conversion_lift(results, lift, seed=test)
        treated = user_sums(planted, inverse, n_users, arm)
        p = dict((r["metric"], r["p_value"]) for r in ab.compare(a, treated).iter_rows(named=True))["conversion"]
        detected += p < 0.05
    return {"users": n_users, "sessions": len(results.user_ids), "fpr_conversion": false_pos["conversion"] / tests,
            "fpr_revenue": false_pos["revenue_per_session"] / tests, "power": detected / tests,
            "conversion": float(results.orders.mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--large-users", type=int, default=200_000)
    parser.add_argument("--tests", type=int, default=200)
    parser.add_argument("--bandit-seeds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--obd", type=Path, default=OBD, help="the Open Bandit Dataset folder")
    args = parser.parse_args()
    print(f"Machine: {describe()}")
    print(f"Shop: games, {args.users:,} users, {args.items:,} items, {args.days} days; default A/B size {DEFAULT_SIZE:,} sessions per arm\n")

    start = time.perf_counter()
    market = simulate(SimulatorConfig(preset="games", seed=42, n_users=args.users, n_items=args.items, n_days=args.days))
    env = SimulatorEnvironment.from_market(market, slots=10)
    cut = dt.datetime.combine(market.config.start_date + dt.timedelta(days=args.days - 7), dt.time(), tzinfo=dt.timezone.utc)
    interactions = (market.events.filter(pl.col("event_type").is_in(["view", "add_to_cart", "purchase"]) & (pl.col("event_at") < cut))
                    .group_by("user_id", "item_id").agg(strength=pl.len().cast(pl.Float64)))
    users = market.users["user_id"].to_list()
    lists = {cls.name: recommend_frame(cls().fit(interactions), users, 10)
             for cls in (PopularityRecommender, ItemKNNRecommender, EASERecommender)}
    print(f"(setup: simulated and fitted 3 models in {time.perf_counter() - start:.0f} s)\n")

    # 1-2. Calibration and power.
    rows = []
    shop_results = env.run(lists_policy(lists["popularity"]), env.traffic(2 * DEFAULT_SIZE, seed=1), seed=1, measure_latency=False)
    rows.append({"population": f"this shop ({args.users:,} users), popularity lists", **calibration(shop_results, args.tests, 0.03)})
    large_world = build_world(SimulatorConfig(preset="games", seed=7, n_users=args.large_users, n_items=args.items, n_days=args.days))
    large = SimulatorEnvironment(large_world, ShopState.opening(args.items), [f"u{i:07d}" for i in range(args.large_users)],
                                 [f"g{i:06d}" for i in range(args.items)], slots=10)
    bestsellers = large.item_ids[np.argsort(-large_world.items.popularity)[:10]].tolist()
    large_results = large.run(lambda u: [bestsellers] * len(u), large.traffic(2 * DEFAULT_SIZE, seed=1), seed=1, measure_latency=False)
    rows.append({"population": f"{args.large_users:,} users, bestseller list", **calibration(large_results, args.tests, 0.03)})
    table = pl.DataFrame(rows)
    print(f"A/A false-positive rate ({args.tests} A/A tests, alpha 0.05, goal 3-7%) and power for a planted +3% conversion lift (goal >= 80%), {DEFAULT_SIZE:,} sessions per arm:")
    for r in table.iter_rows(named=True):
        print(f"  {r['population']:<44} users/arm ~{r['users'] // 2:>7,}  conversion {r['conversion']:.3f}  "
              f"FPR conversion {r['fpr_conversion']:.1%}  FPR revenue/session {r['fpr_revenue']:.1%}  power(+3%) {r['power']:.0%}")

    # 3. Bandits.
    policies = {name: lists_policy(frame) for name, frame in lists.items()}
    regrets: dict[str, list[float]] = {}
    for seed in range(args.bandit_seeds):
        problem = simulator_problem(env, policies, args.rounds, seed)
        _, summary = compare_bandits(problem, seed)
        for r in summary.iter_rows(named=True):
            regrets.setdefault(r["policy"], []).append(r["regret"])
    eg = statistics.median(regrets["epsilon_greedy"])
    print(f"\nBandits choosing which model fills the feed ({', '.join(policies)}), {args.rounds:,} sessions, median of {args.bandit_seeds} seeds:")
    for policy, values in regrets.items():
        print(f"  {policy:<18} regret {statistics.median(values):8.1f}  ({statistics.median(values) / eg - 1:+.0%} vs epsilon-greedy)")

    # 4. OPE.
    print("\nOff-policy relative error |estimate - truth| / truth (simulator: top-slot click rate, target = model top-10 with epsilon 0.3):")
    for name, frame in lists.items():
        t = simulator_check(env, market.events, frame, epsilon=0.3, N=10, after=cut)
        errors = "  ".join(f"{r['estimator']} {r['relative_error']:.3f}" for r in t.iter_rows(named=True))
        print(f"  simulator, target {name:<11} truth {t['truth'][0]:.4f}  {errors}  ({t['logged_rows'][0]:,} logged rows)")
    if args.obd.is_dir():
        t = open_bandit_check(open_bandit.load_raw_events(args.obd))
        errors = "  ".join(f"{r['estimator']} {r['relative_error']:.3f}" for r in t.iter_rows(named=True))
        published = "  ".join(f"{k} {v}" for k, v in PUBLISHED.items())
        print(f"  Open Bandit men, bts from random: truth {t['truth'][0]:.4f} [{t['truth_low'][0]:.4f}, {t['truth_high'][0]:.4f}]  {errors}  (published: {published})")
    else:
        print(f"  Open Bandit Dataset not found at {args.obd}")

    # 5. Time for one A/B test.
    config = ab.ExperimentConfig(sessions_per_arm=100_000)
    two = {"popularity": policies["popularity"], "ease": policies["ease"]}
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        results, _, _ = ab.run_experiment(env, two, config)
        ab.analyse(results["popularity"], results["ease"], names=("popularity", "ease"), shares=(0.5, 0.5), n_available=env.n_available)
        times.append(time.perf_counter() - start)
    print(f"\nOne A/B test, {config.sessions_per_arm:,} sessions per arm (2 arms: serve, respond, analyse): median {statistics.median(times):.2f} s over {args.repeats}")


if __name__ == "__main__":
    main()
