"""Bandits: Thompson sampling and LinUCB learn, uniform does not; regret is measured against the truth."""

from __future__ import annotations

import numpy as np

from recs_assets.experiments.bandits import BanditProblem, compare_bandits, simulator_problem


def fixed_problem(rounds: int = 5_000, seed: int = 0, contexts: np.ndarray | None = None) -> BanditProblem:
    rng = np.random.default_rng(seed)
    means = np.array([0.05, 0.10, 0.30])
    expected = np.tile(means, (rounds, 1))
    return BanditProblem(rewards=(rng.random((rounds, 3)) < expected).astype(float), expected=expected,
                         contexts=np.ones((rounds, 1)) if contexts is None else contexts, arms=("a", "b", "c"))


def test_thompson_sampling_beats_uniform_on_a_fixed_bandit():
    _, summary = compare_bandits(fixed_problem(), seed=1)
    by = {r["policy"]: r for r in summary.iter_rows(named=True)}
    assert by["thompson_sampling"]["regret"] < 0.2 * by["uniform"]["regret"]
    assert by["thompson_sampling"]["most_played_arm"] == "c"
    assert by["uniform"]["regret"] > 0.9 * 5_000 * (0.30 - np.mean([0.05, 0.10, 0.30]))


def test_linucb_uses_the_context_when_the_best_arm_depends_on_it():
    rounds, rng = 6_000, np.random.default_rng(3)
    group = rng.integers(0, 2, rounds)
    contexts = np.column_stack([group == 0, group == 1]).astype(float)
    expected = np.where(group[:, None] == 0, [0.4, 0.1], [0.1, 0.4])
    problem = BanditProblem(rewards=(rng.random((rounds, 2)) < expected).astype(float), expected=expected,
                            contexts=contexts, arms=("x", "y"))
    _, summary = compare_bandits(problem, seed=2)
    by = {r["policy"]: r for r in summary.iter_rows(named=True)}
    assert by["linucb"]["best_arm_share"] > 0.9
    assert by["linucb"]["regret"] < by["thompson_sampling"]["regret"]  # TS ignores context: stuck near half


def test_bandits_are_deterministic_per_seed():
    a, _ = compare_bandits(fixed_problem(1_000), seed=4)
    b, _ = compare_bandits(fixed_problem(1_000), seed=4)
    assert a.equals(b)


def test_simulator_problem_rewards_come_from_the_environment(env):
    problem = simulator_problem(env, {"oracle": env.oracle_policy(), "random": env.random_policy(0)}, rounds=2_000, seed=0)
    assert problem.rewards.shape == (2_000, 2)
    assert problem.expected[:, 0].mean() > 2 * problem.expected[:, 1].mean()
    assert problem.rewards[:, 0].mean() > problem.rewards[:, 1].mean()
