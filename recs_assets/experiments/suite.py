"""The experiments the asset graph runs, each as one call: A/B tests of the champion, bandits over the models, OPE checks.

Each function takes plain tables (the models' held-out lists, the leaderboard, the events) and the
simulated shop, and returns plain tables plus PNG charts, so the Dagster assets stay thin.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from recs_assets.experiments import ab_test, agreement, bandits, off_policy, plots
from recs_assets.experiments.environment import SimulatorEnvironment, lists_policy

BASELINE = "popularity"


@dataclass(frozen=True)
class ABSuite:
    """The champion-versus-challenger test, each against the baseline, and the offline-versus-online order."""

    comparisons: pl.DataFrame  # one row per (control, treatment) test: decision, lift, CI, SRM, guardrails, power
    effects: pl.DataFrame  # every metric of every comparison
    online: pl.DataFrame  # every model on common traffic: offline and online score and rank
    kendall_tau: float
    kendall_p: float
    discordant: list[tuple[str, str]]
    plot: bytes = field(repr=False)


def challenger_of(leaderboard: pl.DataFrame, champion: str, baseline: str = BASELINE) -> str:
    """The best model on the offline leaderboard that is neither the champion nor the baseline (else the runner-up)."""
    order = leaderboard["model"].to_list()
    for model in order:
        if model not in (champion, baseline):
            return model
    others = [m for m in order if m != champion]
    if not others:
        raise ValueError("the leaderboard has a single model: there is no challenger to test")
    return others[0]


def ab_suite(env: SimulatorEnvironment, lists: Mapping[str, pl.DataFrame], offline: Mapping[str, float], champion: str,
             challenger: str, config: ab_test.ExperimentConfig, agreement_sessions: int = 30_000,
             guardrails: ab_test.Guardrails = ab_test.Guardrails(), baseline: str = BASELINE) -> ABSuite:
    """Randomise the shop's users between baseline, champion and challenger; analyse each pair; order every model online.

    `lists` holds each model's ranked lists (user_id, item_id, rank) for the users under test.
    """
    for name in {champion, challenger, baseline}:
        if name not in lists:
            raise ValueError(f"no lists for model {name!r}; have {', '.join(lists)}")
    arms = list(dict.fromkeys([baseline, champion, challenger]))
    users = sorted(set().union(*(set(lists[a]["user_id"].to_list()) for a in arms)))
    policies = {name: lists_policy(lists[name]) for name in arms}
    results, _, _ = ab_test.run_experiment(env, policies, config, users=users)
    pairs = [(champion, challenger), (baseline, champion), (baseline, challenger)]
    pairs = [p for p in dict.fromkeys(pairs) if p[0] != p[1]]
    analysed = [ab_test.analyse(results[c], results[t], names=(c, t), shares=(0.5, 0.5), n_available=env.n_available,
                                primary=config.primary, alpha=config.alpha, target_lift=config.target_lift,
                                guardrails=guardrails) for c, t in pairs]
    comparisons = pl.DataFrame([a.row() for a in analysed])
    effects = pl.concat([a.effects.with_columns(control=pl.lit(a.control), treatment=pl.lit(a.treatment)) for a in analysed])

    # Every model on the same sessions and random numbers: the online order without assignment noise.
    traffic = env.traffic(agreement_sessions, seed=config.seed + 1, users=users)
    online = {}
    for name in lists:
        run = env.run(lists_policy(lists[name]), traffic, seed=config.seed + 1, measure_latency=False)
        online[name] = ab_test.metric_value(ab_test.UserSums.of(run), config.primary)[0]
    tau, p, discordant = agreement.order_agreement(offline, online)
    return ABSuite(comparisons=comparisons, effects=effects, online=agreement.agreement_table(offline, online),
                   kendall_tau=tau, kendall_p=p, discordant=discordant,
                   plot=plots.effect_plot(comparisons, ab_test.METRIC_LABELS[config.primary]))


@dataclass(frozen=True)
class BanditSuite:
    curves: pl.DataFrame
    summary: pl.DataFrame
    plot: bytes = field(repr=False)


def bandit_suite(env: SimulatorEnvironment, lists: Mapping[str, pl.DataFrame], rounds: int, seed: int,
                 epsilon: float = 0.1, linucb_alpha: float = 0.5) -> BanditSuite:
    """Which model's list should fill each session? Thompson sampling, LinUCB, epsilon-greedy and uniform, learning online."""
    users = sorted(set().union(*(set(frame["user_id"].to_list()) for frame in lists.values())))
    problem = bandits.simulator_problem(env, {name: lists_policy(frame) for name, frame in lists.items()}, rounds, seed, users=users)
    curves, summary = bandits.compare_bandits(problem, seed, epsilon=epsilon, linucb_alpha=linucb_alpha)
    best_fixed = problem.expected.mean(axis=0)
    summary = summary.with_columns(best_fixed_arm=pl.lit(problem.arms[int(np.argmax(best_fixed))]),
                                   best_fixed_rate=pl.lit(float(best_fixed.max())))
    return BanditSuite(curves=curves, summary=summary, plot=plots.regret_plot(curves))


@dataclass(frozen=True)
class OPESuite:
    table: pl.DataFrame
    plot: bytes = field(repr=False)


def simulator_ope(env: SimulatorEnvironment, events: pl.DataFrame, target_lists: pl.DataFrame, target: str,
                  epsilon: float, N: int, after=None) -> OPESuite:
    table = off_policy.simulator_check(env, events, target_lists, epsilon=epsilon, N=N, after=after)
    table = table.with_columns(target_policy=pl.lit(f"{target} top-{N}, epsilon {epsilon}"))
    return OPESuite(table=table, plot=plots.ope_plot(table, f"Top-slot click rate of {target}: estimates vs truth"))


def open_bandit_ope(events: pl.DataFrame, logging: str = "random", target: str = "bts") -> OPESuite:
    table = off_policy.open_bandit_check(events, logging=logging, target=target)
    return OPESuite(table=table, plot=plots.ope_plot(table, f"Click rate of {target} estimated from {logging} logs"))
