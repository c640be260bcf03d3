"""Is what users are served fresh? The served model's age, and how far the live-events consumer lags behind.

A refit that stopped running keeps serving yesterday's tastes with every check green; a consumer that
stopped landing live events starves the next refit. Both are silent unless watched.
"""

from __future__ import annotations

import datetime as dt

from recs_assets.arguments import non_negative_int, positive_number
from recs_assets.monitoring.result import MonitorResult

# Daily refits: a model older than two days means at least one refit did not happen.
MAX_MODEL_AGE_HOURS = 48.0
# Events the consumer has not landed yet; the sensor lands about 7k events/s (benchmarks/streaming.py),
# so 10k waiting means it is not running, not that it is busy.
MAX_CONSUMER_LAG = 10_000


def measure_freshness(
    refitted_at: dt.datetime | None,
    now: dt.datetime,
    *,
    trained_through: dt.datetime | None = None,
    consumer_lag: int | None = None,
    consumer_pending: int | None = None,
    max_model_age_hours: float = MAX_MODEL_AGE_HOURS,
    max_consumer_lag: int = MAX_CONSUMER_LAG,
) -> MonitorResult:
    """Failed when the served model was refitted more than `max_model_age_hours` ago, or when more than
    `max_consumer_lag` live events wait for the consumer (not yet delivered plus delivered but not acknowledged).

    `refitted_at`: when the served model was fitted (None: nothing has been served yet, skipped).
    `trained_through`: the newest event it learned from, reported but not judged (a public dataset's
    newest event may be years old and still be all there is). `consumer_lag`/`consumer_pending`: None
    when there is no broker (no live events), then only the model's age is judged.
    """
    max_model_age_hours = positive_number(max_model_age_hours, "max_model_age_hours")
    max_consumer_lag = non_negative_int(max_consumer_lag, "max_consumer_lag")
    if refitted_at is None:
        return MonitorResult.skip("no served model yet: nothing to be stale")
    if refitted_at.tzinfo is None or now.tzinfo is None:
        raise ValueError("refitted_at and now must be timezone-aware (UTC)")
    age_hours = (now - refitted_at).total_seconds() / 3600
    waiting = None if consumer_lag is None else int(consumer_lag) + int(consumer_pending or 0)
    over = []
    if age_hours > max_model_age_hours:
        over.append(f"the served model is {age_hours:.1f} h old (limit {max_model_age_hours:g} h)")
    if waiting is not None and waiting > max_consumer_lag:
        over.append(f"{waiting:,} live events wait for the consumer (limit {max_consumer_lag:,})")
    measured = [f"served model refitted {age_hours:.1f} h ago (limit {max_model_age_hours:g} h)"]
    measured.append("no live-events broker" if waiting is None else f"{waiting:,} live events waiting (limit {max_consumer_lag:,})")
    if trained_through is not None:
        measured.append(f"newest event learned from: {trained_through.isoformat(timespec='minutes')}")
    values = {
        "model_age_hours": age_hours,
        "max_model_age_hours": max_model_age_hours,
        "consumer_waiting": waiting,
        "max_consumer_lag": max_consumer_lag,
    }
    if over:
        return MonitorResult("failed", "stale: " + "; ".join(over), values)
    return MonitorResult("passed", "; ".join(measured), values)
