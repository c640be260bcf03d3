"""The monitoring checks: feature drift on `events`, prediction drift and serving health on `recommendation_snapshot`.

All three are non-blocking. Each calls one pure function (recs_assets.monitoring) and translates its
MonitorResult: passed / failed become an AssetCheckResult; skipped (nothing to compare) yields no
result, which Dagster shows as SKIPPED once the run finishes, with the reason in the run log.
"""

import datetime as dt
from pathlib import Path

import dagster as dg
import polars as pl

from recs_assets.layout import HomeLayout
from recs_assets.monitoring.drift import (
    MAX_CATEGORY_TVD,
    MAX_NEW_CATEGORY_SHARE,
    MAX_SHARE_DRIFTED,
    MIN_USERS_PER_SIDE,
    PREDICTION_REFERENCE_NOTE,
    REFERENCE_WINDOWS,
    measure_feature_drift,
    measure_prediction_drift,
)
from recs_assets.monitoring.freshness import MAX_CONSUMER_LAG, MAX_MODEL_AGE_HOURS, measure_freshness
from recs_assets.monitoring.health import HEALTH_BUDGET_NOTE, MAX_ERROR_RATE, MAX_P99_MS, serving_health_from_log
from recs_assets.monitoring.result import MonitorResult
from resources.home_folder import HomeFolder
from resources.interaction_weights import InteractionWeights

HISTORY_PATTERN = "recommendation_snapshot-*.parquet"


class FeatureDriftConfig(dg.Config):
    """Latest `window_days` of events against the `reference_windows` windows of the same length before it.

    Defaults calibrated on the simulator (benchmarks/drift.py): the week before as reference, so a
    growing or draining shop's trend does not add up; per-column thresholds in
    recs_assets.monitoring.drift.DISTANCE_THRESHOLDS; one drifted column fails the check.
    """

    window_days: int = 7
    reference_windows: int = REFERENCE_WINDOWS
    max_share_drifted: float = MAX_SHARE_DRIFTED  # fail (ERROR) when this share of compared columns drifted or more
    min_users: int = MIN_USERS_PER_SIDE  # fewer active users on a side: skipped


class PredictionDriftConfig(dg.Config):
    """Current recommendation snapshot against the newest one in `$RECS_HOME/serving/history/` (the
    previous run's). Defaults calibrated on the simulator (benchmarks/prediction_drift.py), kept in
    recs_assets.monitoring.drift."""

    max_new_category_share: float = MAX_NEW_CATEGORY_SHARE  # of the items new in users' lists
    max_category_tvd: float = MAX_CATEGORY_TVD
    min_users: int = MIN_USERS_PER_SIDE  # fewer users in both snapshots: the per-user share is not judged


class ServingHealthConfig(dg.Config):
    """Latency and error budget of the API, from `$RECS_HOME/serving/request_log.jsonl` (budget from
    benchmarks/serve.py, kept in recs_assets.monitoring.health)."""

    max_p99_ms: float = MAX_P99_MS
    max_error_rate: float = MAX_ERROR_RATE
    lookback_hours: float | None = None


def _metadata(result: MonitorResult) -> dict[str, dg.MetadataValue]:
    """Numbers as floats/ints, None (not measured) as text, details as JSON, the report as a path."""
    meta: dict[str, dg.MetadataValue] = {}
    for key, value in result.values.items():
        if value is None:
            meta[key] = dg.MetadataValue.text("not measured")
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            meta[key] = dg.MetadataValue.text(str(value))
        elif isinstance(value, int):
            meta[key] = dg.MetadataValue.int(value)
        else:
            meta[key] = dg.MetadataValue.float(float(value))
    for key, value in result.details.items():
        meta[key] = dg.MetadataValue.json(value) if isinstance(value, (dict, list)) else dg.MetadataValue.text(str(value))
    if result.report_path:
        meta["report"] = dg.MetadataValue.path(result.report_path)
    return meta


def _emit(context, result: MonitorResult, severity: dg.AssetCheckSeverity):
    """Yield the check's result, or nothing (SKIPPED in the UI) with the reason logged."""
    if result.skipped:
        context.log.warning(f"skipped: {result.description}")
        return
    yield dg.AssetCheckResult(
        passed=result.passed, severity=severity, description=result.description, metadata=_metadata(result)
    )


FEATURE_DRIFT_DESCRIPTION = (
    "Did users' behaviour change this week? Per-user features of the latest 7 days against the 7 days "
    "before (Evidently). Per user, not raw volumes, so traffic growth or churn is not drift; the main "
    "signal is each returning user's taste overlap with their previous week (how much of their category "
    "interest stayed put), which stock turning over barely moves and a change of tastes drops. Volumes, "
    "prices and category shares, which move with stock and traffic, are watched with a high bar. "
    "Thresholds chosen on the simulator (benchmarks/drift.py: ~0-5% false alarms without a shift, "
    "detection of the default preference shift); one drifted column fails the check."
)


# Only the event columns the window features read (`window_event_columns`): the lake IO manager limited to
# them, under this resource key in definitions. Input metadata cannot name columns here: `events` is the
# check's own asset.
DRIFT_EVENTS_READER = "drift_events_reader"


@dg.multi_asset_check(
    specs=[dg.AssetCheckSpec("feature_drift_check", asset="events", additional_deps=["items", "users"], blocking=False,
                             description=FEATURE_DRIFT_DESCRIPTION)],
    ins={"events": dg.AssetIn("events", input_manager_key=DRIFT_EVENTS_READER), "items": dg.AssetIn("items"),
         "users": dg.AssetIn("users")},
    can_subset=True,
)
def feature_drift_check(context, config: FeatureDriftConfig, home: HomeFolder, interaction_weights: InteractionWeights,
                        events: pl.DataFrame, items: pl.DataFrame, users: pl.DataFrame):
    result = measure_feature_drift(
        events, items, users,
        window_days=config.window_days,
        max_reference_windows=config.reference_windows,
        max_share_drifted=config.max_share_drifted,
        min_users=config.min_users,
        report_path=HomeLayout(home.root).reports / "feature_drift.html",
        interaction_params=interaction_weights.params(),
    )
    yield from _emit(context, result, dg.AssetCheckSeverity.ERROR)


PREDICTION_DRIFT_DESCRIPTION = (
    "Are we suddenly recommending other kinds of items? Today's recommendations against the previous "
    "run's, user by user: of the items new in a user's list, the share from categories that user was not "
    f"shown before. Stock selling out replaces an item with one of the same kind; a change of tastes "
    f"brings new kinds. Fails above {MAX_NEW_CATEGORY_SHARE:.0%} of the new items, or when the overall "
    f"category mix moves by more than {MAX_CATEGORY_TVD:g} (total variation). Reference: "
    f"{PREDICTION_REFERENCE_NOTE}. Thresholds chosen on the simulator (benchmarks/prediction_drift.py: "
    "daily refits over 20 seeds per preset, above the largest value seen without a shift; the default "
    "preference shift detected on its first day). Score shifts are reported, not judged (a refitted "
    "model's scores are on a new scale). Skipped, with the reason, without a previous snapshot or categories."
)

SERVING_HEALTH_DESCRIPTION = (
    "Is the API answering fast and without errors? p99 latency and server-error rate from the API's request "
    f"log. {HEALTH_BUDGET_NOTE} Skipped, with the reason, when there is no traffic (or only health probes)."
)


def newest_snapshot(history_dir: Path) -> Path | None:
    """The newest `recommendation_snapshot-<timestamp>.parquet` in `history_dir` (by name, then mtime)."""
    files = sorted(Path(history_dir).glob(HISTORY_PATTERN), key=lambda p: (p.name, p.stat().st_mtime))
    return files[-1] if files else None


@dg.multi_asset_check(
    specs=[dg.AssetCheckSpec("prediction_drift_check", asset="recommendation_snapshot", additional_deps=["items"], blocking=False,
                             description=PREDICTION_DRIFT_DESCRIPTION)],
    ins={"recommendation_snapshot": dg.AssetIn("recommendation_snapshot"), "items": dg.AssetIn("items")},
    can_subset=True,
)
def prediction_drift_check(context, config: PredictionDriftConfig, home: HomeFolder, recommendation_snapshot: pl.DataFrame, items: pl.DataFrame):
    previous_path = newest_snapshot(HomeLayout(home.root).snapshot_history)
    result = measure_prediction_drift(
        pl.read_parquet(previous_path) if previous_path else None,
        recommendation_snapshot,
        items,
        max_new_category_share=config.max_new_category_share,
        max_category_tvd=config.max_category_tvd,
        min_users=config.min_users,
        previous_label=previous_path.name if previous_path else "the previous snapshot",
    )
    yield from _emit(context, result, dg.AssetCheckSeverity.WARN)


@dg.multi_asset_check(
    specs=[dg.AssetCheckSpec("serving_health_check", asset="recommendation_snapshot", blocking=False,
                             description=SERVING_HEALTH_DESCRIPTION)],
    can_subset=True,
)
def serving_health_check(context, config: ServingHealthConfig, home: HomeFolder):
    since = (
        dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=config.lookback_hours)
        if config.lookback_hours is not None
        else None
    )
    result = serving_health_from_log(
        HomeLayout(home.root).request_log, since,
        max_p99_ms=config.max_p99_ms, max_error_rate=config.max_error_rate,
    )
    yield from _emit(context, result, dg.AssetCheckSeverity.WARN)


class FreshnessConfig(dg.Config):
    """How stale the served model may be, and how many live events may wait for the consumer."""

    max_model_age_hours: float = MAX_MODEL_AGE_HOURS
    max_consumer_lag: int = MAX_CONSUMER_LAG


def build_serving_freshness_check(broker_url: str | None) -> dg.AssetChecksDefinition:
    """The freshness check, reading the consumer's lag on the broker at `broker_url` (None: the home's embedded one)."""

    @dg.multi_asset_check(
        specs=[dg.AssetCheckSpec(
            "serving_freshness_check", asset="served_model", blocking=False,
            description=(f"Is what users get fresh? Fails when the served model was refitted more than "
                         f"{MAX_MODEL_AGE_HOURS:g} h ago (a daily refit was missed) or when more than "
                         f"{MAX_CONSUMER_LAG:,} live events wait for the consumer."),
        )],
        ins={"served_model": dg.AssetIn("served_model")},
        can_subset=True,
    )
    def serving_freshness_check(context, config: FreshnessConfig, home: HomeFolder, served_model: pl.DataFrame):
        from recs_assets.streaming.broker import BrokerUnavailable
        from recs_assets.streaming.embedded import stream_status

        row = served_model.row(0, named=True) if served_model.height else {}
        try:
            status = stream_status(broker_url, HomeLayout(home.root).broker)
        except BrokerUnavailable as error:
            context.log.warning(f"live-events broker unreachable, consumer lag not measured: {error}")
            status = None
        result = measure_freshness(
            row.get("refitted_at"), dt.datetime.now(dt.timezone.utc), trained_through=row.get("trained_through"),
            consumer_lag=None if status is None else status.lag,
            consumer_pending=None if status is None else status.pending,
            max_model_age_hours=config.max_model_age_hours, max_consumer_lag=config.max_consumer_lag,
        )
        yield from _emit(context, result, dg.AssetCheckSeverity.WARN)

    return serving_freshness_check


MONITORING_CHECKS = [feature_drift_check, prediction_drift_check, serving_health_check]
