"""When things run without a person: a daily ingestion schedule, features and snapshots that follow
new data, and a weekly retraining. All appear in the UI (Automation) and are switched on there."""

from pathlib import Path

import dagster as dg

from recs_assets.streaming.broker import BrokerStatus, BrokerUnavailable
from recs_assets.streaming.embedded import stream_status

# Follow upstream changes as soon as they land (new events -> features, leaderboard, snapshots).
FOLLOW_NEW_DATA = dg.AutomationCondition.eager()
# Retrain weekly (Monday 03:00 UTC) once all upstream data is up to date, rather than on every change.
WEEKLY_RETRAINING = dg.AutomationCondition.on_cron("0 3 * * 1")
AUTOMATION_BY_GROUP = {
    "features": FOLLOW_NEW_DATA,
    "training": WEEKLY_RETRAINING,
    "models": WEEKLY_RETRAINING,
    "evaluation": FOLLOW_NEW_DATA,
    "serving": FOLLOW_NEW_DATA,
}


def with_automation(assets: list) -> list:
    """Attach each group's automation condition to its assets (ingest and staging run on the schedule)."""

    def attach(spec: dg.AssetSpec) -> dg.AssetSpec:
        condition = AUTOMATION_BY_GROUP.get(spec.group_name or "")
        return spec.replace_attributes(automation_condition=condition) if condition else spec

    return list(dg.map_asset_specs(attach, assets))


def daily_ingestion_schedule(job, partitioned: bool) -> dg.ScheduleDefinition:
    """Every day at 01:00 UTC: ingest and validate yesterday's events (one daily partition where the
    source is partitioned by day, the whole batch otherwise)."""
    if partitioned:
        return dg.build_schedule_from_partitioned_job(job, hour_of_day=1, name="daily_ingestion")
    return dg.ScheduleDefinition(name="daily_ingestion", job=job, cron_schedule="0 1 * * *")


RETRAIN_JOB = "retrain_models"
# The check whose failure means users' behaviour has moved away from what the models learnt.
DRIFT_CHECK = dg.AssetCheckKey(dg.AssetKey("events"), "feature_drift_check")


def retraining_request(status: str | None, record_id: int | None, cursor: str | None) -> tuple[bool, str]:
    """Decide whether a drift check result calls for retraining: only a failed result, and only once per result."""
    if status is None:
        return False, "the drift check has not run yet"
    if status != "FAILED":
        return False, f"latest drift check {status.lower()}"
    if cursor == str(record_id):
        return False, "retraining already requested for this drift result"
    return True, f"drift check failed (evaluation {record_id}): retraining"


@dg.sensor(name="retrain_on_drift", job_name=RETRAIN_JOB, minimum_interval_seconds=300)
def retrain_on_drift(context: dg.SensorEvaluationContext):
    """When the feature drift check fails, retrain the models and rebuild evaluation and snapshots (once per failure)."""
    records = context.instance.event_log_storage.get_latest_asset_check_execution_by_key([DRIFT_CHECK])
    record = records.get(DRIFT_CHECK)
    status = record.status.value if record is not None else None
    go, why = retraining_request(status, record.id if record else None, context.cursor)
    if not go:
        return dg.SkipReason(why)
    context.update_cursor(str(record.id))
    return dg.RunRequest(run_key=f"drift-{record.id}", tags={"recs/trigger": "feature_drift"})


LIVE_INGEST_JOB = "ingest_live_events"


def live_ingestion_request(status: BrokerStatus | None, cursor: str | None) -> tuple[bool, str]:
    """Decide whether live events wait to be landed: some are undelivered or unacknowledged, and no run
    has been requested yet for the stream as it stands."""
    if status is None:
        return False, "no broker is running: no live events can have arrived"
    waiting = status.lag + status.pending
    if waiting == 0:
        return False, f"every live event has landed ({status.length:,} in the stream)"
    if cursor == status.last_id:
        return False, f"landing already requested for the stream up to {status.last_id}"
    return True, f"{waiting:,} live event(s) waiting (lag {status.lag}, unacknowledged {status.pending}): landing them"


def build_live_events_sensor(broker_url: str | None, broker_folder: Path) -> dg.SensorDefinition:
    """The sensor that lands live events as they arrive (checked every minute)."""

    @dg.sensor(name="live_events_sensor", job_name=LIVE_INGEST_JOB, minimum_interval_seconds=60)
    def live_events_sensor(context: dg.SensorEvaluationContext):
        """When shoppers' live events wait in the broker, land them and re-stage `events` (features and snapshots follow)."""
        try:
            status = stream_status(broker_url, broker_folder)
        except BrokerUnavailable as error:
            return dg.SkipReason(str(error))
        go, why = live_ingestion_request(status, context.cursor)
        if not go:
            return dg.SkipReason(why)
        context.update_cursor(status.last_id)
        return dg.RunRequest(run_key=f"live-{status.last_id}", tags={"recs/trigger": "live_events"})

    return live_events_sensor
