"""Bandits that learn online which candidate source should fill a shopper's feed.

Each round one session arrives; the bandit picks an arm (a candidate source: popularity, item-kNN,
EASE, ...) and earns 1 if the session buys something. Thompson sampling (Beta-Bernoulli per arm)
and LinUCB (a ridge regression per arm on the user's context) learn from what they earn;
epsilon-greedy and uniform random choice are the yardsticks. Regret is measured against the best
arm for each session's user, using the response model's own purchase probabilities, so it is the
true (pseudo-)regret rather than a noisy estimate of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from recs_assets.arguments import fraction, positive_number


@dataclass(frozen=True)
class BanditProblem:
    """Everything a bandit can meet, drawn in advance: per round, each arm's reward and its true chance."""

    rewards: np.ndarray  # (rounds, arms) 0/1: what each arm would earn in this round
    expected: np.ndarray  # (rounds, arms): each arm's true success probability in this round
    contexts: np.ndarray  # (rounds, features): what LinUCB sees about the session's user
    arms: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.rewards.shape != self.expected.shape or len(self.contexts) != len(self.rewards):
            raise ValueError("rewards, expected and contexts must have one row per round and agree on the arms")
        if self.rewards.shape[1] != len(self.arms):
            raise ValueError(f"{self.rewards.shape[1]} reward columns for {len(self.arms)} arms")


class Uniform:
    name = "uniform"

    def __init__(self, n_arms: int, rng: np.random.Generator) -> None:
        self.n_arms, self.rng = n_arms, rng

    def choose(self, context: np.ndarray) -> int:
        return int(self.rng.integers(self.n_arms))

    def update(self, arm: int, context: np.ndarray, reward: float) -> None:
        pass


class EpsilonGreedy:
    name = "epsilon_greedy"

    def __init__(self, n_arms: int, rng: np.random.Generator, epsilon: float = 0.1) -> None:
        self.epsilon = fraction(epsilon, "epsilon")
        self.rng = rng
        self.pulls, self.wins = np.zeros(n_arms), np.zeros(n_arms)

    def choose(self, context: np.ndarray) -> int:
        if self.rng.random() < self.epsilon or not self.pulls.all():
            untried = np.flatnonzero(self.pulls == 0)
            return int(self.rng.choice(untried)) if len(untried) else int(self.rng.integers(len(self.pulls)))
        return int(np.argmax(self.wins / self.pulls))

    def update(self, arm: int, context: np.ndarray, reward: float) -> None:
        self.pulls[arm] += 1
        self.wins[arm] += reward


class ThompsonSampling:
    """Beta-Bernoulli Thompson sampling: play each arm with the probability that it is the best."""

    name = "thompson_sampling"

    def __init__(self, n_arms: int, rng: np.random.Generator, prior: tuple[float, float] = (1.0, 1.0)) -> None:
        self.rng = rng
        self.alpha = np.full(n_arms, positive_number(prior[0], "prior alpha"))
        self.beta = np.full(n_arms, positive_number(prior[1], "prior beta"))

    def choose(self, context: np.ndarray) -> int:
        return int(np.argmax(self.rng.beta(self.alpha, self.beta)))

    def update(self, arm: int, context: np.ndarray, reward: float) -> None:
        self.alpha[arm] += reward
        self.beta[arm] += 1.0 - reward


class LinUCB:
    """Disjoint LinUCB: a ridge regression of reward on context per arm, played by its upper confidence bound."""

    name = "linucb"

    def __init__(self, n_arms: int, n_features: int, alpha: float = 0.5) -> None:
        self.alpha = positive_number(alpha, "alpha")
        self.a_inv = np.tile(np.eye(n_features), (n_arms, 1, 1))
        self.b = np.zeros((n_arms, n_features))

    def choose(self, context: np.ndarray) -> int:
        theta = np.einsum("kij,kj->ki", self.a_inv, self.b)
        spread = np.sqrt(np.einsum("i,kij,j->k", context, self.a_inv, context))
        return int(np.argmax(theta @ context + self.alpha * spread))

    def update(self, arm: int, context: np.ndarray, reward: float) -> None:
        # Sherman-Morrison keeps each update O(d^2) instead of a fresh inverse.
        a_inv = self.a_inv[arm]
        ax = a_inv @ context
        self.a_inv[arm] = a_inv - np.outer(ax, ax) / (1.0 + context @ ax)
        self.b[arm] += reward * context


def play(bandit, problem: BanditProblem) -> tuple[np.ndarray, np.ndarray]:
    """Run one bandit through every round: (arm chosen per round, reward earned per round)."""
    rounds = len(problem.rewards)
    chosen = np.empty(rounds, dtype=np.int64)
    earned = np.empty(rounds)
    for t in range(rounds):
        context = problem.contexts[t]
        arm = bandit.choose(context)
        reward = float(problem.rewards[t, arm])
        bandit.update(arm, context, reward)
        chosen[t], earned[t] = arm, reward
    return chosen, earned


def compare_bandits(problem: BanditProblem, seed: int, epsilon: float = 0.1, linucb_alpha: float = 0.5,
                    checkpoints: int = 50) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Thompson sampling, LinUCB, epsilon-greedy and uniform on the same rounds.

    Returns the curves (policy, round, cumulative reward, cumulative regret, at `checkpoints` rounds)
    and a summary per policy (total reward, regret, share of rounds on the best arm, most played arm).
    """
    n_arms, n_features = problem.rewards.shape[1], problem.contexts.shape[1]
    bandits = [
        ThompsonSampling(n_arms, np.random.default_rng([seed, 1])),
        LinUCB(n_arms, n_features, alpha=linucb_alpha),
        EpsilonGreedy(n_arms, np.random.default_rng([seed, 2]), epsilon=epsilon),
        Uniform(n_arms, np.random.default_rng([seed, 3])),
    ]
    rounds = len(problem.rewards)
    marks = np.unique(np.linspace(1, rounds, min(checkpoints, rounds)).astype(np.int64)) - 1
    best = problem.expected.max(axis=1)
    best_arm = problem.expected.argmax(axis=1)
    curves, summary = [], []
    for bandit in bandits:
        chosen, earned = play(bandit, problem)
        regret = np.cumsum(best - problem.expected[np.arange(rounds), chosen])
        reward = np.cumsum(earned)
        curves.append(pl.DataFrame({"policy": bandit.name, "round": marks + 1, "cumulative_reward": reward[marks],
                                    "cumulative_regret": regret[marks]}))
        counts = np.bincount(chosen, minlength=n_arms)
        summary.append({"policy": bandit.name, "rounds": rounds, "total_reward": float(reward[-1]),
                        "reward_rate": float(reward[-1] / rounds), "regret": float(regret[-1]),
                        "best_arm_share": float((chosen == best_arm).mean()),
                        "most_played_arm": problem.arms[int(np.argmax(counts))]})
    return pl.concat(curves), pl.DataFrame(summary)


SEGMENTS = ("new", "casual", "regular", "power")


def user_contexts(segments: np.ndarray) -> np.ndarray:
    """What LinUCB knows about a session's user: a constant and their segment (one-hot), as the users table says."""
    segments = np.asarray(segments).astype(str)
    return np.column_stack([np.ones(len(segments))] + [(segments == s).astype(np.float64) for s in SEGMENTS])


def simulator_problem(env, policies: dict, rounds: int, seed: int, users=None) -> BanditProblem:
    """A bandit problem in the simulated shop: each round a session, each arm a policy filling its slate.

    Every arm's outcome for every session comes from one environment run per arm with the same seed
    (the shoppers' response model, common random numbers); the reward is a purchase in the session.
    """
    traffic = env.traffic(rounds, seed=seed, users=users)
    runs = [env.run(policy, traffic, seed=seed, measure_latency=False) for policy in policies.values()]
    rewards = np.column_stack([run.orders for run in runs]).astype(np.float64)
    expected = np.column_stack([run.expected_orders for run in runs])
    contexts = user_contexts(env.world.users.segment[traffic.user])
    return BanditProblem(rewards=rewards, expected=expected, contexts=contexts, arms=tuple(policies))
