"""Off-policy estimates: what a new policy's click rate would be, read from another policy's logs.

Each logged row is one impression: the reward it earned (a click), the logging policy's probability
of having shown that item there (`propensity`), the target policy's probability of showing the same
item there (`target_prob`), and a reward model's predictions (`q_logged` for the logged item,
`q_target` = the model's expected reward under the target policy in that context). Then

    IPS   = mean(w * r)                      with w = target_prob / propensity
    SNIPS = sum(w * r) / sum(w)
    DM    = mean(q_target)
    DR    = mean(q_target + w * (r - q_logged))

each with a 95% interval from the per-row contributions (SNIPS by the delta method). IPS and DR are
unbiased when the propensities are right (DR also when the reward model is wrong); DM is only as good
as its reward model; SNIPS trades a little bias for much less variance.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from scipy import stats

ESTIMATORS = ("IPS", "SNIPS", "DM", "DR")


def _check(name: str, values: np.ndarray, n: int) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (n,):
        raise ValueError(f"{name} must have one value per logged row ({n}); got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return values


def estimate(reward, propensity, target_prob, q_logged, q_target, alpha: float = 0.05) -> pl.DataFrame:
    """IPS, SNIPS, DM and DR estimates of the target policy's mean reward, with intervals and the largest weight."""
    reward = np.asarray(reward, dtype=np.float64)
    n = len(reward)
    if n < 2:
        raise ValueError(f"off-policy estimates need at least 2 logged rows; got {n}")
    reward = _check("reward", reward, n)
    propensity = _check("propensity", propensity, n)
    if (propensity <= 0).any() or (propensity > 1).any():
        raise ValueError("propensity must be in (0, 1] for every logged row: a zero means the row could not have been logged")
    target_prob = _check("target_prob", target_prob, n)
    if (target_prob < 0).any() or (target_prob > 1).any():
        raise ValueError("target_prob must be a probability in [0, 1]")
    q_logged, q_target = _check("q_logged", q_logged, n), _check("q_target", q_target, n)
    w = target_prob / propensity
    z = stats.norm.ppf(1 - alpha / 2)
    rows = []
    for name, contributions in (("IPS", w * reward), ("DM", q_target), ("DR", q_target + w * (reward - q_logged))):
        mean, se = contributions.mean(), contributions.std(ddof=1) / math.sqrt(n)
        rows.append((name, mean, se))
    total_w = w.sum()
    snips = float((w * reward).sum() / total_w) if total_w > 0 else float("nan")
    # Delta method for a ratio of means.
    snips_se = float(np.sqrt(((w * (reward - snips)) ** 2).sum()) / total_w) if total_w > 0 else float("nan")
    rows.insert(1, ("SNIPS", snips, snips_se))
    return pl.DataFrame(
        [{"estimator": name, "estimate": float(m), "se": float(s), "ci_low": float(m - z * s), "ci_high": float(m + z * s),
          "max_weight": float(w.max()), "effective_sample_size": float(total_w**2 / (w**2).sum()) if total_w > 0 else 0.0}
         for name, m, s in rows]
    )


def with_truth(estimates: pl.DataFrame, truth: float, truth_low: float | None = None, truth_high: float | None = None) -> pl.DataFrame:
    """The estimates beside the true value, with each one's relative error |estimate - truth| / truth."""
    return estimates.with_columns(
        truth=pl.lit(truth), truth_low=pl.lit(truth_low, dtype=pl.Float64), truth_high=pl.lit(truth_high, dtype=pl.Float64),
        relative_error=((pl.col("estimate") - truth).abs() / truth) if truth else pl.lit(None, dtype=pl.Float64),
        covers_truth=(pl.col("ci_low") <= truth) & (truth <= pl.col("ci_high")),
    )


def smoothed_rates(clicks: np.ndarray, shown: np.ndarray, prior_rate: float, strength: float = 20.0) -> np.ndarray:
    """Click rates shrunk towards a prior rate (a reward model that does not chase 1-in-30 flukes)."""
    return (np.asarray(clicks, dtype=np.float64) + strength * prior_rate) / (np.asarray(shown, dtype=np.float64) + strength)


def logged_impressions(events: pl.DataFrame) -> pl.DataFrame:
    """Impressions that carry a position and a propensity, each with its click (a view of the same item in the same session)."""
    impressions = events.filter(
        (pl.col("event_type") == "impression") & pl.col("propensity").is_not_null() & pl.col("position").is_not_null()
    )
    clicks = (events.filter(pl.col("event_type") == "view").select("session_id", "item_id").unique()
              .with_columns(click=pl.lit(1.0)))
    return (impressions.join(clicks, on=["session_id", "item_id"], how="left")
            .with_columns(pl.col("click").fill_null(0.0))
            .select("event_id", "event_at", "user_id", "session_id", "item_id", "position", "propensity", "variant",
                    "surface", "click"))


def binomial_interval(successes: float, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson interval for a click rate (sound even with a few dozen clicks)."""
    if n == 0:
        return float("nan"), float("nan")
    z = stats.norm.ppf(1 - alpha / 2)
    p = successes / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return centre - half, centre + half


def open_bandit_check(events: pl.DataFrame, logging: str = "random", target: str = "bts") -> pl.DataFrame:
    """Estimate the target policy's click rate from the logging policy's logs and compare with its own observed rate.

    The Open Bandit Dataset's standard real-data check: `variant` names the policy that logged each
    impression. The target (Bernoulli Thompson sampling ignores the user) is represented by how often
    it put each item in each slot over the week; the reward model is each (item, slot)'s click rate in
    the logging data, shrunk towards the slot's overall rate.
    """
    logged = logged_impressions(events)
    variants = set(logged["variant"].drop_nulls().unique().to_list())
    missing = {logging, target} - variants
    if missing:
        raise ValueError(f"the logs hold no impressions of policy {sorted(missing)}; found {sorted(variants)}")
    source, own = logged.filter(pl.col("variant") == logging), logged.filter(pl.col("variant") == target)
    items = sorted(set(logged["item_id"].to_list()))
    item_index = {item: i for i, item in enumerate(items)}
    positions = sorted(set(logged["position"].to_list()))
    position_index = {p: j for j, p in enumerate(positions)}

    def cells(frame: pl.DataFrame, weights: np.ndarray | None = None) -> np.ndarray:
        out = np.zeros((len(positions), len(items)))
        rows = np.array([position_index[p] for p in frame["position"].to_list()], dtype=np.int64)
        cols = np.array([item_index[i] for i in frame["item_id"].to_list()], dtype=np.int64)
        np.add.at(out, (rows, cols), 1.0 if weights is None else weights)
        return out

    counts = cells(own)
    target_dist = counts / counts.sum(axis=1, keepdims=True)
    shown, clicks = cells(source), cells(source, source["click"].to_numpy())
    prior = clicks.sum(axis=1, keepdims=True) / shown.sum(axis=1, keepdims=True)
    q = smoothed_rates(clicks, shown, prior)
    row_pos = np.array([position_index[p] for p in source["position"].to_list()], dtype=np.int64)
    row_item = np.array([item_index[i] for i in source["item_id"].to_list()], dtype=np.int64)
    table = estimate(
        reward=source["click"].to_numpy(), propensity=source["propensity"].to_numpy(),
        target_prob=target_dist[row_pos, row_item], q_logged=q[row_pos, row_item],
        q_target=(target_dist * q).sum(axis=1)[row_pos],
    )
    truth = float(own["click"].mean())
    low, high = binomial_interval(float(own["click"].sum()), own.height)
    return with_truth(table, truth, low, high).with_columns(
        logged_rows=pl.lit(source.height), target_rows=pl.lit(own.height),
        logging_policy=pl.lit(logging), target_policy=pl.lit(target),
    )


def simulator_check(env, events: pl.DataFrame, target_lists: pl.DataFrame, epsilon: float = 0.3, N: int = 10,
                    after=None) -> pl.DataFrame:
    """Estimate a model's top-slot click rate from the simulated shop's own logs, and compare with the truth.

    Logged rows: home-feed impressions in the top slot (where the recorded propensity is the logging
    policy's exact probability). Target policy: with probability `epsilon` the logging policy's
    choice, otherwise an item drawn uniformly from the model's top `N` for the user, so it shares the
    logger's support. The true value comes from the shoppers' response model itself: for each logged
    context, epsilon x P(view) of the logged item + (1 - epsilon) x the mean P(view) of the top N.
    Only rows logged at or after `after` are used: the lists must not have been learnt from the very
    clicks they are judged on (a model leaves out what a user viewed, which would bias every estimate).
    """
    from recs_assets.arguments import fraction, positive_int

    fraction(epsilon, "epsilon")
    positive_int(N, "N")
    logged = logged_impressions(events).filter((pl.col("surface") == "home") & (pl.col("position") == 1))
    if after is not None:
        logged = logged.filter(pl.col("event_at") >= after)
    top = (target_lists.filter(pl.col("rank") <= N).sort("user_id", "rank")
           .group_by("user_id", maintain_order=True).agg("item_id"))
    logged = logged.join(top.rename({"item_id": "_top"}), on="user_id", how="inner")
    if logged.height < 2:
        raise ValueError("no logged top-slot home impression belongs to a user the target policy has a list for")
    user = env.user_index(logged["user_id"].to_list())
    item = env.item_index(logged["item_id"].to_list())
    at_us = logged["event_at"].dt.epoch("us").to_numpy()
    day = env.day_of_us(at_us)
    tops = logged["_top"].to_list()
    lengths = np.array([len(t) for t in tops], dtype=np.int64)
    flat_item = env.item_index([i for t in tops for i in t])
    row_of = np.repeat(np.arange(logged.height), lengths)
    in_top = np.zeros(logged.height, dtype=bool)
    np.logical_or.at(in_top, row_of, flat_item == item[row_of])

    p_logged = env.view_probability(user, item, np.ones_like(user), day)
    p_top = env.view_probability(user[row_of], flat_item, np.ones_like(row_of), day[row_of])
    mean_top = np.bincount(row_of, weights=p_top, minlength=logged.height) / lengths
    truth_rows = epsilon * p_logged + (1 - epsilon) * mean_top

    click = logged["click"].to_numpy()
    propensity = logged["propensity"].to_numpy()
    items, item_row = np.unique(np.concatenate([item, flat_item]), return_inverse=True)
    shown = np.bincount(item_row[: len(item)], minlength=len(items))
    clicks = np.bincount(item_row[: len(item)], weights=click, minlength=len(items))
    q = smoothed_rates(clicks, shown, float(click.mean()))
    q_logged = q[item_row[: len(item)]]
    q_top = np.bincount(row_of, weights=q[item_row[len(item):]], minlength=logged.height) / lengths
    table = estimate(
        reward=click, propensity=propensity,
        target_prob=np.minimum(1.0, epsilon * propensity + (1 - epsilon) * in_top / lengths),
        q_logged=q_logged, q_target=epsilon * q_logged + (1 - epsilon) * q_top,
    )
    truth = float(truth_rows.mean())
    se = float(truth_rows.std(ddof=1) / np.sqrt(len(truth_rows)))
    return with_truth(table, truth, truth - 1.96 * se, truth + 1.96 * se).with_columns(
        logged_rows=pl.lit(logged.height), target_rows=pl.lit(logged.height),
        logging_policy=pl.lit("simulator logging policy"), target_policy=pl.lit(f"model top-{N}, epsilon {epsilon}"),
    )
