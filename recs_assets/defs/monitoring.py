"""The monitoring checks: feature drift on `events`, prediction drift and serving health on `recommendation_snapshot`.

All three are non-blocking: they warn (or, for feature drift, error) in the UI but never stop a run.
Thresholds live in config; each description says what was measured against which threshold.
"""


import datetime as dt
import math
from pathlib import Path

import dagster as dg
import polars as pl

from recs_assets.monitoring.drift import (
    feature_columns,
    feature_drift,
    prediction_drift,
    serving_health,
    stacked_window_features,
    window_features,
)

HISTORY_PATTERN = "recommendation_snapshot-*.parquet"


class FeatureDriftConfig(dg.Config):
    """Latest `window_days` of events against the rest cut into windows of the same length."""

    window_days: int = 7
    max_share_drifted: float = 0.3  # fail (ERROR) when this share of feature columns drifted or more


class PredictionDriftConfig(dg.Config):
    """Current recommendation snapshot against the newest one in `$RECS_HOME/serving/history/`."""

    max_score_ks: float = 0.2  # two-sample KS statistic of the score distributions
    max_category_tvd: float = 0.15  # total variation distance of the recommended category mix


class ServingHealthConfig(dg.Config):
    """Latency and error budget of the API, from `$RECS_HOME/serving/request_log.jsonl`."""

    max_p99_ms: float = 50.0
    max_error_rate: float = 0.01  # share of requests with status >= 500
    lookback_hours: float | None = None  # only requests in the last N hours; None = the whole log


def _day_floor(ts: dt.datetime) -> dt.datetime:
    ts = ts if ts.tzinfo else ts.replace(tzinfo=dt.timezone.utc)
    return dt.datetime(ts.year, ts.month, ts.day, tzinfo=dt.timezone.utc)


@dg.asset_check(
    asset="events",
    additional_ins={"items": dg.AssetIn("items")},
    required_resource_keys={"home"},
    blocking=False,
    description="Per-user behaviour features of the latest window drift from the training window (Evidently).",
)
def feature_drift_check(
    context: dg.AssetCheckExecutionContext, config: FeatureDriftConfig, events: pl.DataFrame, items: pl.DataFrame
) -> dg.AssetCheckResult:
    """Fails with ERROR severity when the share of drifted feature columns reaches `max_share_drifted`."""
    if events.height == 0:
        return dg.AssetCheckResult(passed=True, description="no events yet")
    end = _day_floor(events["event_at"].max()) + dt.timedelta(days=1)  # the day after the last event day
    cut = end - dt.timedelta(days=config.window_days)
    first = _day_floor(events["event_at"].min())
    if cut - first < dt.timedelta(days=config.window_days):
        return dg.AssetCheckResult(
            passed=True,
            description=f"not enough history: {(end - first).days} day(s) of events, need {2 * config.window_days}",
        )
    reference = stacked_window_features(events, items, first, cut, config.window_days)
    current = window_features(events, items, cut, end)
    numerical, categorical = feature_columns(items)
    report_path = Path(context.resources.home.root) / "reports" / "feature_drift.html"
    result = feature_drift(reference, current, numerical + categorical, report_path, categorical=categorical)
    share = result["share_drifted"]
    passed = share < config.max_share_drifted
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            f"{share:.0%} of {len(numerical) + len(categorical)} feature columns drifted "
            f"(threshold {config.max_share_drifted:.0%}); latest {config.window_days} days from {cut:%Y-%m-%d} "
            f"vs {first:%Y-%m-%d}..{cut:%Y-%m-%d}"
            + (f"; drifted: {', '.join(result['drifted_columns'])}" if result["drifted_columns"] else "")
        ),
        metadata={
            "share_drifted": dg.MetadataValue.float(share),
            "drifted_columns": dg.MetadataValue.json(result["drifted_columns"]),
            "column_scores": dg.MetadataValue.json(result["columns"]),
            "reference_rows": dg.MetadataValue.int(reference.height),
            "current_rows": dg.MetadataValue.int(current.height),
            "report": dg.MetadataValue.path(str(report_path)),
        },
    )


def newest_snapshot(history_dir: Path) -> Path | None:
    """The newest `recommendation_snapshot-<timestamp>.parquet` in `history_dir` (by name, then mtime)."""
    files = sorted(Path(history_dir).glob(HISTORY_PATTERN), key=lambda p: (p.name, p.stat().st_mtime))
    return files[-1] if files else None


def _num(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


@dg.asset_check(
    asset="recommendation_snapshot",
    additional_ins={"items": dg.AssetIn("items")},
    required_resource_keys={"home"},
    blocking=False,
    description="Scores and category mix of the recommendations against the previous snapshot.",
)
def prediction_drift_check(
    context: dg.AssetCheckExecutionContext,
    config: PredictionDriftConfig,
    recommendation_snapshot: pl.DataFrame,
    items: pl.DataFrame,
) -> dg.AssetCheckResult:
    """WARN when the score KS statistic or the category-mix TVD exceeds its threshold."""
    previous_path = newest_snapshot(Path(context.resources.home.root) / "serving" / "history")
    if previous_path is None:
        return dg.AssetCheckResult(passed=True, description="no previous snapshot")
    result = prediction_drift(pl.read_parquet(previous_path), recommendation_snapshot, items)
    ks, tvd = result["score_ks"], result["category_tvd"]
    over = []
    if not math.isnan(ks) and ks > config.max_score_ks:
        over.append("scores")
    if not math.isnan(tvd) and tvd > config.max_category_tvd:
        over.append("category mix")
    return dg.AssetCheckResult(
        passed=not over,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            (f"drifted: {', '.join(over)}; " if over else "")
            + f"score KS {ks:.3f} (threshold {config.max_score_ks}), category TVD {tvd:.3f} "
            f"(threshold {config.max_category_tvd}), coverage {result['coverage_previous']:.1%} -> "
            f"{result['coverage_current']:.1%}; vs {previous_path.name}"
        ),
        metadata={
            "score_ks": dg.MetadataValue.float(_num(ks)) if _num(ks) is not None else dg.MetadataValue.text("n/a"),
            "category_tvd": dg.MetadataValue.float(_num(tvd)) if _num(tvd) is not None else dg.MetadataValue.text("n/a"),
            "coverage_previous": dg.MetadataValue.float(result["coverage_previous"]),
            "coverage_current": dg.MetadataValue.float(result["coverage_current"]),
            "category_mix": dg.MetadataValue.json(
                {"previous": result["category_mix_previous"], "current": result["category_mix_current"]}
            ),
            "previous_snapshot": dg.MetadataValue.path(str(previous_path)),
        },
    )


@dg.asset_check(
    asset="recommendation_snapshot",
    required_resource_keys={"home"},
    blocking=False,
    description="API latency (p99) and server error rate from the request log.",
)
def serving_health_check(context: dg.AssetCheckExecutionContext, config: ServingHealthConfig) -> dg.AssetCheckResult:
    """WARN when p99 latency or the 5xx rate exceeds its threshold; passes with "no traffic yet" on an empty log."""
    log_path = Path(context.resources.home.root) / "serving" / "request_log.jsonl"
    since = (
        dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=config.lookback_hours)
        if config.lookback_hours is not None
        else None
    )
    health = serving_health(log_path, since=since)
    if health["requests"] == 0:
        return dg.AssetCheckResult(passed=True, description="no traffic yet", metadata={"requests": 0})
    over = []
    if health["p99_ms"] > config.max_p99_ms:
        over.append("p99 latency")
    if health["error_rate"] > config.max_error_rate:
        over.append("error rate")
    return dg.AssetCheckResult(
        passed=not over,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            (f"over budget: {', '.join(over)}; " if over else "")
            + f"p99 {health['p99_ms']:.1f} ms (threshold {config.max_p99_ms} ms), "
            f"error rate {health['error_rate']:.2%} (threshold {config.max_error_rate:.2%}) "
            f"over {health['requests']} requests; p50 {health['p50_ms']:.1f} ms, p95 {health['p95_ms']:.1f} ms, "
            f"4xx {health['client_error_rate']:.2%}"
        ),
        metadata={
            **{k: dg.MetadataValue.float(health[k]) for k in ("p50_ms", "p95_ms", "p99_ms", "error_rate", "client_error_rate")},
            "requests": dg.MetadataValue.int(health["requests"]),
            "request_log": dg.MetadataValue.path(str(log_path)),
        },
    )


MONITORING_CHECKS = [feature_drift_check, prediction_drift_check, serving_health_check]
