"""How sure are we? Confidence intervals for a metric's average, and a paired test between two models.

A leaderboard number is an average over test users, and a different week (or a different sample of
shoppers) would give a different average. Both tools here resample users, because users are what
varies from one test set to the next:

- `bootstrap_ci`: the 95% confidence interval of a metric's mean by the per-user bootstrap, percentile
  method. Draw the test users with replacement (seeded), average, repeat `n_resamples` times; the
  interval is the 2.5th and 97.5th percentiles of those averages. Percentile rather than BCa: for a
  mean over the tens to thousands of users a protocol must give, the sampling distribution is close
  to normal and the percentile interval reaches its nominal coverage (tested), while BCa's extra
  jackknife correction buys little for a mean and is ill-defined on degenerate data (every user 0).
- `paired_test`: does model A beat model B on the same users? The paired bootstrap of the mean
  per-user difference. Paired, because both models are graded on the same users, and most of the
  spread between users (easy and hard shoppers) cancels in the difference. Bootstrap rather than a
  paired t-test, because per-user metrics are far from normal (mostly zeros, a few ones) and the
  interval then agrees with the metric intervals above; rather than Wilcoxon, because Wilcoxon drops
  the (many) zero differences and tests a median shift, while the leaderboard reports means.
  p-value: two-sided, from the bootstrap distribution shifted to the null (mean difference 0):
  p = (1 + #{|m*_b - d| >= |d|}) / (1 + n_resamples), where d is the observed mean difference and
  m*_b the resampled ones (Efron & Tibshirani 1993, ch. 16). When fewer than `min_differing` users
  score differently under the two models, the bootstrap cannot be trusted (it would call three lucky
  users significant), so p is 1.

Everything is vectorised (the resampled indices are drawn in blocks) and deterministic for a seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from recs_assets.arguments import fraction, non_negative_int, positive_int

__all__ = [
    "Interval",
    "PairedComparison",
    "bootstrap_ci",
    "bootstrap_table",
    "paired_test",
    "paired_test_tables",
]

DEFAULT_RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95
DEFAULT_MIN_DIFFERING = 10
# Resampled means are computed this many index rows at a time: 10k users x 100 rows is 4 MB of indices.
_BLOCK_CELLS = 1_000_000


@dataclass(frozen=True)
class Interval:
    """A metric's mean over users with its bootstrap confidence interval."""

    mean: float
    low: float
    high: float
    n_users: int
    confidence: float


@dataclass(frozen=True)
class PairedComparison:
    """Model A against model B on the same users: mean difference (A - B), its interval, and the p-value."""

    mean_a: float
    mean_b: float
    mean_diff: float
    ci_low: float
    ci_high: float
    p_value: float
    n_users: int  # users graded by both (with a value for both)
    n_differing: int  # of those, users whose value differs between the two models
    confidence: float

    def significant(self, alpha: float = 0.05) -> bool:
        """True when the difference is unlikely to be noise at level alpha (either direction)."""
        return not math.isnan(self.p_value) and self.p_value < alpha

    def a_better(self, alpha: float = 0.05) -> bool:
        """True when A beats B and the gain is significant at level alpha."""
        return self.mean_diff > 0 and self.significant(alpha)

    @property
    def relative_gain(self) -> float:
        """(A - B) / B; inf when B is 0 and A is above it, NaN when both are 0."""
        if self.mean_b == 0:
            return math.nan if self.mean_a == 0 else math.copysign(math.inf, self.mean_a)
        return self.mean_diff / self.mean_b


def bootstrap_ci(
    values: Sequence[float] | np.ndarray | pl.Series,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Interval:
    """The mean of per-user `values` with its percentile bootstrap interval (NaN and null values are left out).

    No values: every number is NaN and n_users is 0. One value, or all equal: the interval is that value.
    """
    _check(confidence, n_resamples, seed)
    x = _finite(values)
    if x.size == 0:
        return Interval(math.nan, math.nan, math.nan, 0, confidence)
    means = _resampled_means(x, n_resamples, seed)
    low, high = _percentiles(means, confidence)
    return Interval(float(x.mean()), low, high, int(x.size), confidence)


def bootstrap_table(
    per_user: pl.DataFrame,
    metrics: Sequence[str] | None = None,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> pl.DataFrame:
    """One row per metric of a per-user table (user_id + metric columns): metric, mean, ci_low, ci_high, users.

    Every metric resamples the same users (the same seed), so the intervals describe one test set.
    """
    metrics = _metric_columns(per_user, metrics)
    rows = []
    for name in metrics:
        ci = bootstrap_ci(per_user.get_column(name), confidence=confidence, n_resamples=n_resamples, seed=seed)
        rows.append({"metric": name, "mean": ci.mean, "ci_low": ci.low, "ci_high": ci.high, "users": ci.n_users})
    return pl.DataFrame(
        rows, schema={"metric": pl.String, "mean": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64, "users": pl.Int64}
    )


def paired_test(
    a: Sequence[float] | np.ndarray | pl.Series,
    b: Sequence[float] | np.ndarray | pl.Series,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    min_differing: int = DEFAULT_MIN_DIFFERING,
) -> PairedComparison:
    """Paired bootstrap of mean(a - b) over users: a[i] and b[i] are the same user's value under two models.

    Users with a NaN/null on either side are left out of both. No users left: every number is NaN.
    """
    _check(confidence, n_resamples, seed)
    positive_int(min_differing, "min_differing (users)")
    xa, xb = _as_float(a), _as_float(b)
    if xa.shape != xb.shape:
        raise ValueError(f"a and b must hold one value per user each, in the same order; got {xa.size} and {xb.size}")
    keep = np.isfinite(xa) & np.isfinite(xb)
    xa, xb = xa[keep], xb[keep]
    n = int(xa.size)
    if n == 0:
        nan = math.nan
        return PairedComparison(nan, nan, nan, nan, nan, nan, 0, 0, confidence)
    d = xa - xb
    observed = float(d.mean())
    n_differing = int(np.count_nonzero(d))
    means = _resampled_means(d, n_resamples, seed)
    low, high = _percentiles(means, confidence)
    if n_differing < min_differing:
        p = 1.0
    else:
        # Shift the resampled means to the null (mean 0) and ask how often noise alone is as extreme.
        extreme = np.count_nonzero(np.abs(means - observed) >= abs(observed))
        p = (1 + int(extreme)) / (1 + n_resamples)
    return PairedComparison(
        mean_a=float(xa.mean()),
        mean_b=float(xb.mean()),
        mean_diff=observed,
        ci_low=low,
        ci_high=high,
        p_value=float(p),
        n_users=n,
        n_differing=n_differing,
        confidence=confidence,
    )


def paired_test_tables(
    table_a: pl.DataFrame,
    table_b: pl.DataFrame,
    metric: str,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    min_differing: int = DEFAULT_MIN_DIFFERING,
) -> PairedComparison:
    """`paired_test` on two per-user tables (user_id + metric columns), matched on user_id.

    Users in only one table are left out: a paired test compares models on the same users.
    """
    for name, table in (("table_a", table_a), ("table_b", table_b)):
        missing = [c for c in ("user_id", metric) if c not in table.columns]
        if missing:
            raise ValueError(f"{name} is missing column(s) {missing}; it has {table.columns}")
    both = table_a.select("user_id", pl.col(metric).alias("_a")).join(
        table_b.select("user_id", pl.col(metric).alias("_b")), on="user_id", how="inner"
    ).sort("user_id")
    return paired_test(
        both.get_column("_a"), both.get_column("_b"),
        confidence=confidence, n_resamples=n_resamples, seed=seed, min_differing=min_differing,
    )


# --- helpers --------------------------------------------------------------------------------------


def _resampled_means(x: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """Means of n_resamples draws (with replacement) of len(x) values, drawn in blocks to bound memory."""
    n = x.size
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples, dtype=np.float64)
    block = max(1, _BLOCK_CELLS // n)
    for start in range(0, n_resamples, block):
        rows = min(block, n_resamples - start)
        idx = rng.integers(0, n, size=(rows, n), dtype=np.int64 if n > 2**31 - 1 else np.int32)
        means[start : start + rows] = x[idx].mean(axis=1)
    return means


def _percentiles(means: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def _as_float(values: Sequence[float] | np.ndarray | pl.Series) -> np.ndarray:
    if isinstance(values, pl.Series):
        return values.cast(pl.Float64).to_numpy().astype(np.float64, copy=False)  # nulls become NaN
    return np.asarray(values, dtype=np.float64).reshape(-1)


def _finite(values: Sequence[float] | np.ndarray | pl.Series) -> np.ndarray:
    x = _as_float(values)
    return x[np.isfinite(x)]


def _metric_columns(per_user: pl.DataFrame, metrics: Sequence[str] | None) -> list[str]:
    if "user_id" not in per_user.columns:
        raise ValueError(f"the per-user table needs a user_id column; it has {per_user.columns}")
    if metrics is None:
        return [c for c in per_user.columns if c != "user_id" and per_user.schema[c].is_numeric()]
    missing = [m for m in metrics if m not in per_user.columns]
    if missing:
        raise ValueError(f"metric(s) {missing} not in the per-user table; it has {per_user.columns}")
    return list(metrics)


def _check(confidence: object, n_resamples: object, seed: object) -> None:
    fraction(confidence, "confidence")
    positive_int(n_resamples, "n_resamples")
    non_negative_int(seed, "seed")
