"""The whole asset graph, its checks and resources, in one place (`dagster dev` and `make run` load this)."""

from __future__ import annotations

import warnings
from datetime import timedelta

import dagster as dg

from dagster_mlflow import end_mlflow_on_run_finished, mlflow_tracking

from recs_assets.defs.automation import (
    LIVE_INGEST_JOB,
    RETRAIN_JOB,
    build_live_events_sensor,
    daily_ingestion_schedule,
    retrain_on_drift,
    with_automation,
)
from recs_assets.defs.evaluation import (
    champion_beats_baseline,
    champion_model,
    champion_refit,
    evaluation_users,
    holdout_recommendations,
    model_leaderboard,
    model_metrics,
    session_metrics,
)
from recs_assets.defs.experiments import EXPERIMENT_ASSETS
from recs_assets.defs.features import feature_tables, online_feature_store
from recs_assets.defs.ingest import build_raw_events, items, items_match_schema, users, users_match_schema
from recs_assets.defs.models import build_candidate_generators, ranker_model
from recs_assets.defs.reports import stakeholder_report
from recs_assets.defs.monitoring import DRIFT_EVENTS_READER, MONITORING_CHECKS, build_serving_freshness_check
from recs_assets.defs.search import SEARCH_ASSETS, SEARCH_CHECKS
from recs_assets.defs.serving import (
    popular_items_snapshot,
    recommendation_snapshot,
    recommendation_snapshot_is_servable,
    session_model_snapshot,
    similar_items_snapshot,
    user_history_snapshot,
)
from recs_assets.defs.staging import (
    EVENT_IDS_READER,
    LAKE_SCANNER,
    events_invalid_share_within_limit,
    events_match_schema,
    events_reconcile_with_raw,
    stage_events,
)
from recs_assets.defs.training import ranking_training_set, train_test_split, training_features
from recs_assets.defs.streaming import build_live_events
from recs_assets.layout import HomeLayout
from recs_assets.monitoring.window_features import window_event_columns
from recs_assets.settings import Settings
from recs_assets.tracking import EXPERIMENT, tracking_uri
from resources.candidate_models import CandidateModels
from resources.feature_engine import FeatureEngine
from resources.home_folder import HomeFolder
from resources.interaction_weights import InteractionWeights
from resources.lake_io_manager import LakeIOManager
from resources.model_io_manager import ModelIOManager
from resources.marketplace_source import MarketplaceSource

EVERYTHING_JOB = "materialize_everything"
INGEST_JOB = "ingest_and_validate"

# Single-run backfills (one step for a range of days) are marked beta; we rely on them knowingly.
warnings.filterwarnings("ignore", category=dg.BetaWarning)


def build_source(settings: Settings) -> MarketplaceSource:
    return MarketplaceSource(
        kind=settings.source,
        data_dir=str(settings.data_dir) if settings.data_dir else None,
        preset=settings.sim_preset,
        seed=settings.sim_seed,
        n_users=settings.sim_users,
        n_items=settings.sim_items,
        n_days=settings.sim_days,
        start_date=settings.sim_start_date.isoformat(),
        preference_shift_day=settings.sim_shift_day,
        csv_delimiter=settings.csv_delimiter,
    )


def daily_partitions(source: MarketplaceSource) -> dg.DailyPartitionsDefinition | None:
    """One partition per UTC day the source covers; None for sources without time or a fixed range."""
    days = source.event_date_range()
    if days is None:
        return None
    first, last = days
    # end_date is exclusive: the last partition is the day before it.
    return dg.DailyPartitionsDefinition(
        start_date=first.isoformat(), end_date=(last + timedelta(days=1)).isoformat()
    )


def build_definitions(settings: Settings) -> dg.Definitions:
    source = build_source(settings)
    partitions = daily_partitions(source)
    # New raw data in, validated warehouse out: what the daily ingestion schedule runs.
    ingest_job = dg.define_asset_job(
        INGEST_JOB, selection=dg.AssetSelection.groups("ingest", "staging"), partitions_def=partitions
    )
    return dg.Definitions(
        assets=with_automation([
            build_raw_events(partitions),
            build_live_events(settings.broker_url),
            items,
            users,
            stage_events,
            *feature_tables,
            online_feature_store,
            train_test_split,
            training_features,
            ranking_training_set,
            *build_candidate_generators(settings.engine),
            ranker_model,
            evaluation_users,
            holdout_recommendations,
            model_metrics,
            model_leaderboard,
            champion_model,
            champion_refit,
            recommendation_snapshot,
            similar_items_snapshot,
            popular_items_snapshot,
            user_history_snapshot,
            session_metrics,
            session_model_snapshot,
            *EXPERIMENT_ASSETS,
            stakeholder_report,
            *SEARCH_ASSETS,
        ]),
        asset_checks=[
            items_match_schema,
            users_match_schema,
            events_match_schema,
            events_reconcile_with_raw,
            events_invalid_share_within_limit,
            champion_beats_baseline,
            recommendation_snapshot_is_servable,
            *MONITORING_CHECKS,
            build_serving_freshness_check(settings.broker_url),
            *SEARCH_CHECKS,
        ],
        # The hook closes the run's MLflow parent run, so the next run in the same process starts cleanly.
        jobs=[
            dg.define_asset_job(
                EVERYTHING_JOB, selection=dg.AssetSelection.all(), hooks={end_mlflow_on_run_finished}
            ),
            ingest_job,
            # What the live-events sensor runs: land what arrived and re-stage events with it.
            dg.define_asset_job(
                LIVE_INGEST_JOB, selection=dg.AssetSelection.assets("live_events", "events", "events_quarantine")
            ),
            dg.define_asset_job(
                RETRAIN_JOB,
                selection=dg.AssetSelection.groups("training", "models", "evaluation", "serving"),
                hooks={end_mlflow_on_run_finished},
            ),
        ],
        sensors=[retrain_on_drift, build_live_events_sensor(settings.broker_url, HomeLayout(settings.home).broker)],
        schedules=[daily_ingestion_schedule(ingest_job, partitioned=partitions is not None)],
        resources={
            "source": source,
            "home": HomeFolder(path=str(settings.home)),
            "io_manager": LakeIOManager(home=str(settings.home)),
            EVENT_IDS_READER: LakeIOManager(home=str(settings.home), columns=["event_id"]),
            LAKE_SCANNER: LakeIOManager(home=str(settings.home), lazy=True),
            DRIFT_EVENTS_READER: LakeIOManager(home=str(settings.home), columns=window_event_columns()),
            "model_io_manager": ModelIOManager(home=str(settings.home)),
            "candidate_models": CandidateModels(engine=settings.engine),
            "interaction_weights": InteractionWeights(),
            # RECS_ENGINE: where the feature SQL runs (DuckDB here, or Spark local / on a cluster).
            "feature_engine": FeatureEngine(engine=settings.engine),
            # One MLflow run per Dagster run; each model asset logs a nested run under it.
            "mlflow": mlflow_tracking.configured(
                {"experiment_name": EXPERIMENT, "mlflow_tracking_uri": tracking_uri(settings.home)}
            ),
        },
    )


defs = build_definitions(Settings.from_env())
