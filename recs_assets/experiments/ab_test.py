"""A/B tests on simulated traffic: salted-hash randomisation, business metrics, clustered intervals, a decision.

Users, not sessions, are randomised (a salted SHA-256 of the user id), so a user always sees the
same arm and every interval is clustered by user: each metric is a ratio of per-user sums, and its
variance comes from the delta method over users. Before any effect is read, a sample-ratio-mismatch
check asks whether the arms got the users the design promised; guardrails (catalogue coverage, the
policy's latency) can veto a launch; a power calculation says what effect the test could have seen.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import stats

from recs_assets.arguments import fraction, positive_int
from recs_assets.experiments.environment import Policy, SessionResults, SimulatorEnvironment, Traffic

# name -> (numerator, denominator) of per-user sums; "users" counts each user once (GMV per user).
METRICS: dict[str, tuple[str, str]] = {
    "ctr": ("views", "impressions"),
    "conversion": ("orders", "sessions"),
    "revenue_per_session": ("revenue", "sessions"),
    "gmv_per_user": ("revenue", "users"),
    "items_per_order": ("items", "orders"),
}
METRIC_LABELS = {
    "ctr": "click-through rate (views per item shown)",
    "conversion": "conversion (sessions with a purchase)",
    "revenue_per_session": "revenue per session",
    "gmv_per_user": "GMV per user",
    "items_per_order": "items per order",
}
SHIP, DONT_SHIP, INCONCLUSIVE = "ship", "don't ship", "inconclusive"
SRM_ALPHA = 0.001  # the usual threshold: a mismatch this unlikely means the split itself is broken


def bucket(user_ids: Sequence[str], salt: str) -> np.ndarray:
    """Each user's position in [0, 1) from a salted SHA-256 of their id: stable, and independent across salts."""
    return np.fromiter(
        (int.from_bytes(hashlib.sha256(f"{salt}:{u}".encode()).digest()[:8], "big") / 2.0**64 for u in user_ids),
        dtype=np.float64, count=len(user_ids),
    )


def assign(user_ids: Sequence[str], salt: str, shares: Sequence[float]) -> np.ndarray:
    """Each user's arm index, by salted hash, with the given traffic shares (they must sum to 1)."""
    shares = np.asarray(shares, dtype=np.float64)
    if len(shares) < 2 or (shares <= 0).any() or not math.isclose(shares.sum(), 1.0, abs_tol=1e-9):
        raise ValueError(f"shares must be two or more positive numbers summing to 1; got {shares.tolist()}")
    edges = np.cumsum(shares)[:-1]
    return np.searchsorted(edges, bucket(user_ids, salt), side="right")


@dataclass(frozen=True)
class UserSums:
    """One arm's outcomes summed per user: the clusters every interval is computed over."""

    sums: dict[str, np.ndarray]  # sessions, users, impressions, views, orders, items, revenue

    @property
    def n_users(self) -> int:
        return len(self.sums["users"])

    @property
    def n_sessions(self) -> int:
        return int(self.sums["sessions"].sum())

    @classmethod
    def of(cls, results: SessionResults) -> UserSums:
        _, user = np.unique(results.user_ids.astype(str), return_inverse=True)
        n = int(user.max()) + 1 if len(user) else 0
        columns = {"impressions": results.impressions, "views": results.views, "orders": results.orders,
                   "items": results.items, "revenue": results.revenue}
        sums = {name: np.bincount(user, weights=values.astype(np.float64), minlength=n) for name, values in columns.items()}
        sums["sessions"] = np.bincount(user, minlength=n).astype(np.float64)
        sums["users"] = np.ones(n)
        return cls(sums)


def ratio_estimate(numerator: np.ndarray, denominator: np.ndarray) -> tuple[float, float]:
    """A ratio of per-user sums and its standard error by the delta method (clustered by user)."""
    n = len(numerator)
    if n < 2 or denominator.sum() <= 0:
        return float("nan"), float("nan")
    mean_y, mean_x = numerator.mean(), denominator.mean()
    ratio = mean_y / mean_x
    covariance = np.cov(numerator, denominator, ddof=1)
    variance = (covariance[0, 0] - 2 * ratio * covariance[0, 1] + ratio**2 * covariance[1, 1]) / (n * mean_x**2)
    return float(ratio), float(math.sqrt(max(variance, 0.0)))


def metric_value(sums: UserSums, metric: str) -> tuple[float, float]:
    numerator, denominator = METRICS[metric]
    return ratio_estimate(sums.sums[numerator], sums.sums[denominator])


def compare(control: UserSums, treatment: UserSums, alpha: float = 0.05) -> pl.DataFrame:
    """Every metric in both arms, the difference, the relative lift, their intervals and a two-sided p-value."""
    z = stats.norm.ppf(1 - alpha / 2)
    rows = []
    for metric in METRICS:
        c, c_se = metric_value(control, metric)
        t, t_se = metric_value(treatment, metric)
        diff, diff_se = t - c, math.hypot(c_se, t_se)
        lift = t / c - 1 if c else float("nan")
        # Delta method on the ratio of two independent estimates.
        lift_se = abs(t / c) * math.hypot(t_se / t if t else 0.0, c_se / c) if c else float("nan")
        p = float(2 * stats.norm.sf(abs(diff) / diff_se)) if diff_se > 0 else float("nan")
        rows.append({"metric": metric, "control_value": c, "treatment_value": t, "difference": diff,
                     "difference_low": diff - z * diff_se, "difference_high": diff + z * diff_se,
                     "lift": lift, "lift_low": lift - z * lift_se, "lift_high": lift + z * lift_se,
                     "p_value": p, "control_se": c_se, "treatment_se": t_se})
    return pl.DataFrame(rows)


def srm_check(observed: Sequence[int], shares: Sequence[float]) -> tuple[float, float, bool]:
    """Chi-square test of the users per arm against the designed shares: (statistic, p-value, mismatch?)."""
    observed = np.asarray(observed, dtype=np.float64)
    expected = np.asarray(shares, dtype=np.float64) * observed.sum()
    statistic = float(((observed - expected) ** 2 / expected).sum())
    p = float(stats.chi2.sf(statistic, df=len(observed) - 1))
    return statistic, p, p < SRM_ALPHA


def minimum_detectable_effect(control_se: float, control_value: float, alpha: float = 0.05, power: float = 0.8,
                              treatment_se: float | None = None) -> float:
    """The smallest relative lift this test detects with the given power (two-sided, level alpha)."""
    se = math.hypot(control_se, control_se if treatment_se is None else treatment_se)
    return float((stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * se / control_value) if control_value else float("nan")


def power_for(lift: float, control_se: float, control_value: float, alpha: float = 0.05,
              treatment_se: float | None = None) -> float:
    """The chance this test detects a true relative lift of `lift` (two-sided, level alpha)."""
    se = math.hypot(control_se, control_se if treatment_se is None else treatment_se)
    if se <= 0:
        return float("nan")
    shift = abs(lift) * control_value / se
    z = stats.norm.ppf(1 - alpha / 2)
    return float(stats.norm.sf(z - shift) + stats.norm.cdf(-z - shift))


@dataclass(frozen=True)
class Guardrails:
    """Limits a challenger must respect whatever its revenue: coverage must not collapse, answers must stay fast."""

    min_coverage_ratio: float = 0.5  # treatment's catalogue coverage at least this share of control's
    max_latency_ms: float = 50.0  # p95 of a single-user policy call

    def __post_init__(self) -> None:
        fraction(self.min_coverage_ratio, "min_coverage_ratio")
        if not self.max_latency_ms > 0:
            raise ValueError(f"max_latency_ms must be positive; got {self.max_latency_ms}")


@dataclass(frozen=True)
class Decision:
    verdict: str  # SHIP, DONT_SHIP or INCONCLUSIVE
    reason: str


def decide(effects: pl.DataFrame, primary: str, srm_mismatch: bool, guardrail_failures: list[str],
           mde: float, alpha: float = 0.05) -> Decision:
    """Ship only when the split is sound, no guardrail fails and the primary metric's interval lies above zero."""
    row = effects.filter(pl.col("metric") == primary).row(0, named=True)
    lift = f"{primary.replace('_', ' ')} {row['lift']:+.1%} (95% CI {row['lift_low']:+.1%} to {row['lift_high']:+.1%})"
    if srm_mismatch:
        return Decision(INCONCLUSIVE, f"sample ratio mismatch: the arms did not get the users the design promised, so no effect can be trusted ({lift})")
    if guardrail_failures:
        return Decision(DONT_SHIP, f"guardrail failed: {'; '.join(guardrail_failures)} ({lift})")
    if row["difference_low"] > 0:
        return Decision(SHIP, f"{lift}: better, and the interval excludes no change (p={row['p_value']:.3g})")
    if row["difference_high"] < 0:
        return Decision(DONT_SHIP, f"{lift}: worse than control (p={row['p_value']:.3g})")
    return Decision(INCONCLUSIVE, f"{lift}: the interval includes no change; this test could only detect lifts of about {mde:.1%} or more")


@dataclass(frozen=True)
class ABResult:
    """One control-versus-treatment comparison: effects, split check, guardrails, power and the decision."""

    control: str
    treatment: str
    effects: pl.DataFrame
    users: tuple[int, int]
    sessions: tuple[int, int]
    srm_p: float
    srm_mismatch: bool
    coverage: tuple[float, float]
    latency_p95_ms: tuple[float, float]
    guardrail_failures: list[str]
    mde: float  # relative, primary metric, 80% power
    power_at_target: float  # power for the configured target lift on the primary metric
    primary: str
    decision: Decision

    def row(self) -> dict:
        primary = self.effects.filter(pl.col("metric") == self.primary).row(0, named=True)
        return {"control": self.control, "treatment": self.treatment, "decision": self.decision.verdict,
                "reason": self.decision.reason, "primary_metric": self.primary,
                "control_value": primary["control_value"], "treatment_value": primary["treatment_value"], "lift": primary["lift"],
                "lift_low": primary["lift_low"], "lift_high": primary["lift_high"], "p_value": primary["p_value"],
                "users_control": self.users[0], "users_treatment": self.users[1],
                "sessions_control": self.sessions[0], "sessions_treatment": self.sessions[1],
                "srm_p": self.srm_p, "srm_mismatch": self.srm_mismatch,
                "coverage_control": self.coverage[0], "coverage_treatment": self.coverage[1],
                "latency_p95_ms_control": self.latency_p95_ms[0], "latency_p95_ms_treatment": self.latency_p95_ms[1],
                "mde": self.mde, "power_at_target": self.power_at_target}


def analyse(control: SessionResults, treatment: SessionResults, *, names: tuple[str, str], shares: tuple[float, float],
            n_available: int, primary: str = "revenue_per_session", alpha: float = 0.05, target_lift: float = 0.03,
            guardrails: Guardrails = Guardrails()) -> ABResult:
    """Analyse one two-arm test from its per-session results."""
    if primary not in METRICS:
        raise ValueError(f"primary metric must be one of {', '.join(METRICS)}; got {primary!r}")
    c, t = UserSums.of(control), UserSums.of(treatment)
    effects = compare(c, t, alpha)
    total = shares[0] + shares[1]
    _, srm_p, mismatch = srm_check([c.n_users, t.n_users], [shares[0] / total, shares[1] / total])
    coverage = (len(control.items_shown) / max(n_available, 1), len(treatment.items_shown) / max(n_available, 1))
    latency = tuple(float(np.percentile(r.latency_ms, 95)) if len(r.latency_ms) else 0.0 for r in (control, treatment))
    failures = []
    if coverage[1] < guardrails.min_coverage_ratio * coverage[0]:
        failures.append(f"catalogue coverage {coverage[1]:.1%} is below {guardrails.min_coverage_ratio:.0%} of control's {coverage[0]:.1%}")
    if latency[1] > guardrails.max_latency_ms:
        failures.append(f"p95 latency {latency[1]:.1f} ms exceeds {guardrails.max_latency_ms:.0f} ms")
    row = effects.filter(pl.col("metric") == primary).row(0, named=True)
    mde = minimum_detectable_effect(row["control_se"], row["control_value"], alpha, treatment_se=row["treatment_se"])
    power = power_for(target_lift, row["control_se"], row["control_value"], alpha, treatment_se=row["treatment_se"])
    return ABResult(control=names[0], treatment=names[1], effects=effects, users=(c.n_users, t.n_users),
                    sessions=(c.n_sessions, t.n_sessions), srm_p=srm_p, srm_mismatch=mismatch, coverage=coverage,
                    latency_p95_ms=latency, guardrail_failures=failures, mde=mde, power_at_target=power,
                    primary=primary, decision=decide(effects, primary, mismatch, failures, mde, alpha))


@dataclass(frozen=True)
class ExperimentConfig:
    """How big the test is, how users are split and analysed."""

    # 150k: enough for 80% power at a +3% conversion lift when each user brings about one session
    # (a shop with fewer users is limited by its users, not its sessions: see the reported MDE).
    sessions_per_arm: int = 150_000
    seed: int = 42
    salt: str = "experiment-1"
    primary: str = "revenue_per_session"
    alpha: float = 0.05
    target_lift: float = 0.03

    def __post_init__(self) -> None:
        positive_int(self.sessions_per_arm, "sessions_per_arm")
        fraction(self.alpha, "alpha")
        if self.primary not in METRICS:
            raise ValueError(f"primary must be one of {', '.join(METRICS)}; got {self.primary!r}")


def run_experiment(env: SimulatorEnvironment, policies: Mapping[str, Policy], config: ExperimentConfig,
                   users: Sequence[str] | None = None) -> tuple[dict[str, SessionResults], Traffic, np.ndarray]:
    """Randomise users between the policies (equal shares, salted hash) and serve each arm's sessions.

    Returns each arm's results, the traffic, and each session's arm index.
    """
    names = list(policies)
    traffic = env.traffic(config.sessions_per_arm * len(names), seed=config.seed, users=users)
    unique, inverse = np.unique(traffic.user_ids.astype(str), return_inverse=True)
    arm = assign(unique.tolist(), config.salt, [1 / len(names)] * len(names))[inverse]
    results = {name: env.run(policies[name], traffic.take(arm == i), seed=config.seed) for i, name in enumerate(names)}
    return results, traffic, arm


def plant_conversion_lift(results: SessionResults, lift: float, seed: int) -> SessionResults:
    """A copy of the results where just enough non-buying sessions buy one more typical item to raise conversion by `lift`.

    For power checks: the true effect is then known exactly (in expectation, conversion x (1 + lift)).
    """
    rng = np.random.default_rng(seed)
    rate = results.orders.mean()
    flip = (results.orders == 0) & (rng.random(len(results.orders)) < lift * rate / (1 - rate))
    buying = results.orders > 0
    typical = float(results.revenue[buying].sum() / results.items[buying].sum()) if buying.any() else 0.0
    return SessionResults(
        user_ids=results.user_ids, impressions=results.impressions, views=results.views + flip,
        carts=results.carts + flip, orders=results.orders + flip, items=results.items + flip,
        revenue=results.revenue + flip * typical, expected_orders=results.expected_orders,
        items_shown=results.items_shown, latency_ms=results.latency_ms,
    )
