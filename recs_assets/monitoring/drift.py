"""Drift and health measurements for monitoring. Pure: no Dagster; Evidently is imported lazily (it is slow).

- `window_features`: per-user behaviour in a time window (rates, category mix, price level), comparable
  between windows of different lengths because counts are per day of window.
- `feature_drift`: Evidently `DataDriftPreset` on two feature frames.
- `prediction_drift`: two recommendation snapshots compared (score KS, category mix TVD, coverage).
- `serving_health`: latency percentiles and error rates from the API's request log.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from pathlib import Path

import numpy as np
import polars as pl

# Event types counted as the user's interest in an item (for the category mix).
INTEREST_TYPES = ("view", "add_to_cart", "purchase", "rating", "play")


def _category_column(category: str) -> str:
    return "cat_share_" + re.sub(r"[^0-9a-zA-Z]+", "_", category).strip("_").lower()


def _as_utc(value: dt.datetime | dt.date) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time(), tzinfo=dt.timezone.utc)
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def feature_columns(items: pl.DataFrame) -> tuple[list[str], list[str]]:
    """(numerical, categorical) columns produced by `window_features` for this catalogue."""
    cats = sorted(c for c in items["category"].drop_nulls().unique().to_list())
    numerical = ["events_per_day", "views_per_day", "purchases_per_day", "purchase_rate", "mean_price_viewed",
                 "top_category_share", *(_category_column(c) for c in cats)]
    return numerical, ["top_category"]


def window_features(
    events: pl.DataFrame, items: pl.DataFrame, start: dt.datetime | dt.date, end: dt.datetime | dt.date
) -> pl.DataFrame:
    """One row per user active in [start, end): activity per day of window, category mix, price level.

    Columns: user_id, events_per_day, views_per_day, purchases_per_day, purchase_rate (purchases / views),
    mean_price_viewed, top_category (the category of most of the user's interest events),
    top_category_share, and `cat_share_<category>` for every catalogue category (shares sum to 1).
    Rates rather than counts, so a 14-day window and a 7-day window are comparable.
    """
    start, end = _as_utc(start), _as_utc(end)
    days = max((end - start).total_seconds() / 86_400, 1e-9)
    window = events.filter((pl.col("event_at") >= start) & (pl.col("event_at") < end))
    cats = sorted(items["category"].drop_nulls().unique().to_list())
    numerical, _ = feature_columns(items)
    activity = window.group_by("user_id").agg(
        (pl.len() / days).alias("events_per_day"),
        ((pl.col("event_type") == "view").sum() / days).alias("views_per_day"),
        ((pl.col("event_type") == "purchase").sum() / days).alias("purchases_per_day"),
        pl.col("price").filter(pl.col("event_type") == "view").mean().alias("mean_price_viewed"),
    ).with_columns(
        pl.when(pl.col("views_per_day") > 0)
        .then(pl.col("purchases_per_day") / pl.col("views_per_day"))
        .otherwise(0.0)
        .alias("purchase_rate")
    )
    interest = (
        window.filter(pl.col("event_type").is_in(INTEREST_TYPES) & pl.col("item_id").is_not_null())
        .join(items.select("item_id", "category"), on="item_id", how="inner")
        .group_by("user_id", "category")
        .agg(pl.len().alias("n"))
        .with_columns((pl.col("n") / pl.col("n").sum().over("user_id")).alias("share"))
    )
    top = (
        interest.sort(["user_id", "share", "category"], descending=[False, True, False])
        .group_by("user_id", maintain_order=True)
        .first()
        .select("user_id", pl.col("category").alias("top_category"), pl.col("share").alias("top_category_share"))
    )
    if interest.height:
        shares = interest.pivot(on="category", index="user_id", values="share")
    else:
        shares = pl.DataFrame({"user_id": []}, schema={"user_id": pl.String})
    for c in cats:
        if c not in shares.columns:
            shares = shares.with_columns(pl.lit(None, dtype=pl.Float64).alias(c))
    shares = shares.select("user_id", *(pl.col(c).cast(pl.Float64).fill_null(0.0).alias(_category_column(c)) for c in cats))
    out = activity.join(top, on="user_id", how="left").join(shares, on="user_id", how="left")
    return out.select(
        "user_id", *(pl.col(c).cast(pl.Float64) for c in numerical if c not in ("top_category_share",) and not c.startswith("cat_share_")),
        "top_category", pl.col("top_category_share").cast(pl.Float64),
        *(pl.col(_category_column(c)).fill_null(0.0) for c in cats),
    ).sort("user_id")


def _is_p_value(method: str) -> bool:
    return "p_value" in method.replace("-", "_").lower()


def feature_drift(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    columns: list[str],
    report_path: Path | None = None,
    drift_share: float = 0.5,
    categorical: list[str] | None = None,
) -> dict:
    """Evidently `DataDriftPreset` over `columns` of two frames.

    Per-column tests are Evidently's defaults (KS / chi-square or Z for <= 1000 rows, normed Wasserstein /
    Jensen-Shannon above). Column types: `categorical` if given, else string/boolean columns are
    categorical and the rest numerical. `dataset_drift` is share_drifted >= `drift_share`.
    Returns {"drifted_columns", "share_drifted", "dataset_drift", "report", "columns": {col: {method,
    score, threshold, drifted}}}; the HTML report is written to `report_path` when given.
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    if not columns:
        raise ValueError("feature_drift needs at least one column")
    missing = [c for c in columns if c not in reference.columns or c not in current.columns]
    if missing:
        raise ValueError(f"columns missing from reference or current: {missing}")
    if reference.height == 0 or current.height == 0:
        raise ValueError(f"feature_drift needs rows on both sides; got reference {reference.height}, current {current.height}")
    if categorical is None:
        categorical = [c for c in columns if reference.schema[c] in (pl.String, pl.Boolean, pl.Categorical)]
    numerical = [c for c in columns if c not in categorical]
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=[c for c in columns if c in categorical])
    ref = Dataset.from_pandas(reference.select(columns).to_pandas(), data_definition=definition)
    cur = Dataset.from_pandas(current.select(columns).to_pandas(), data_definition=definition)
    snapshot = Report([DataDriftPreset(columns=columns, drift_share=drift_share)]).run(current_data=cur, reference_data=ref)
    per_column: dict[str, dict] = {}
    share = None
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["type"].endswith(":ValueDrift"):
            method, threshold, score = config["method"], float(config["threshold"]), float(metric["value"])
            drifted = score < threshold if _is_p_value(method) else score >= threshold
            per_column[config["column"]] = {"method": method, "score": score, "threshold": threshold, "drifted": bool(drifted)}
        elif config["type"].endswith(":DriftedColumnsCount"):
            share = float(metric["value"]["share"])
    drifted_columns = [c for c in columns if per_column.get(c, {}).get("drifted")]
    if share is None:
        share = len(drifted_columns) / len(columns)
    report = None
    if report_path is not None:
        report_path = Path(report_path)
        report_path.parent.mkdir(parents=True, exist_ok=True)
        snapshot.save_html(str(report_path))
        report = str(report_path)
    return {
        "drifted_columns": drifted_columns,
        "share_drifted": share,
        "dataset_drift": bool(share >= drift_share),
        "report": report,
        "columns": per_column,
    }


def _category_mix(snapshot: pl.DataFrame, items: pl.DataFrame) -> dict[str, float]:
    joined = snapshot.select("item_id").join(items.select("item_id", "category"), on="item_id", how="left")
    counts = joined.with_columns(pl.col("category").fill_null("<unknown>")).group_by("category").len()
    total = counts["len"].sum()
    return {r["category"]: r["len"] / total for r in counts.iter_rows(named=True)} if total else {}


def prediction_drift(previous: pl.DataFrame, current: pl.DataFrame, items: pl.DataFrame) -> dict:
    """Two recommendation snapshots (user_id, item_id, rank, score) compared.

    - score_ks / score_ks_pvalue: two-sample KS on the score distributions (scipy.stats.ks_2samp);
    - category_tvd: total variation distance (0..1) between the category mix of recommended items;
    - coverage_previous / coverage_current: distinct recommended items / catalogue size (`items` rows),
      coverage_change: relative change (current - previous) / previous (NaN when previous is 0).
    Empty snapshots give NaN KS and TVD.
    """
    from scipy.stats import ks_2samp

    prev_scores = previous["score"].drop_nulls().cast(pl.Float64).to_numpy()
    cur_scores = current["score"].drop_nulls().cast(pl.Float64).to_numpy()
    if len(prev_scores) and len(cur_scores):
        ks = ks_2samp(prev_scores, cur_scores)
        ks_stat, ks_p = float(ks.statistic), float(ks.pvalue)
    else:
        ks_stat = ks_p = math.nan
    mix_prev, mix_cur = _category_mix(previous, items), _category_mix(current, items)
    if mix_prev and mix_cur:
        tvd = 0.5 * sum(abs(mix_prev.get(c, 0.0) - mix_cur.get(c, 0.0)) for c in set(mix_prev) | set(mix_cur))
    else:
        tvd = math.nan
    n_catalogue = max(items.height, 1)
    cov_prev = previous["item_id"].n_unique() / n_catalogue
    cov_cur = current["item_id"].n_unique() / n_catalogue
    return {
        "score_ks": ks_stat,
        "score_ks_pvalue": ks_p,
        "score_mean_previous": float(np.mean(prev_scores)) if len(prev_scores) else math.nan,
        "score_mean_current": float(np.mean(cur_scores)) if len(cur_scores) else math.nan,
        "category_tvd": float(tvd),
        "category_mix_previous": dict(sorted(mix_prev.items())),
        "category_mix_current": dict(sorted(mix_cur.items())),
        "coverage_previous": cov_prev,
        "coverage_current": cov_cur,
        "coverage_change": (cov_cur - cov_prev) / cov_prev if cov_prev else math.nan,
        "rows_previous": previous.height,
        "rows_current": current.height,
    }


def _parse_time(value) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def serving_health(request_log_path: Path, since: dt.datetime | None = None) -> dict:
    """Latency and error rates from the API's JSON-lines request log.

    Each line: time (or `ts`, as the API writes it), method, path, status, latency_ms, model_version,
    source. Only requests at or after `since` count when it is given (lines without a parseable time are
    then skipped). Percentiles are numpy's linear interpolation, in ms. Error rate: status >= 500;
    client error rate: 400 <= status < 500. Malformed lines are counted in `malformed_lines` and skipped.
    A missing or empty log gives requests 0, NaN latencies and NaN rates.
    """
    path = Path(request_log_path)
    since = _as_utc(since) if since is not None else None
    latencies: list[float] = []
    statuses: list[int] = []
    malformed = 0
    if path.exists():
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    status = int(record["status"])
                    latency = float(record["latency_ms"])
                except (ValueError, KeyError, TypeError):
                    malformed += 1
                    continue
                if since is not None:
                    at = _parse_time(record.get("time", record.get("ts")))
                    if at is None or at < since:
                        continue
                latencies.append(latency)
                statuses.append(status)
    n = len(statuses)
    lat = np.asarray(latencies, dtype=np.float64)
    st = np.asarray(statuses, dtype=np.int64)
    pct = (lambda q: float(np.percentile(lat, q))) if n else (lambda q: math.nan)
    return {
        "requests": n,
        "p50_ms": pct(50),
        "p95_ms": pct(95),
        "p99_ms": pct(99),
        "errors": int((st >= 500).sum()),
        "error_rate": float((st >= 500).mean()) if n else math.nan,
        "client_errors": int(((st >= 400) & (st < 500)).sum()),
        "client_error_rate": float(((st >= 400) & (st < 500)).mean()) if n else math.nan,
        "malformed_lines": malformed,
    }


def stacked_window_features(
    events: pl.DataFrame,
    items: pl.DataFrame,
    start: dt.datetime | dt.date,
    end: dt.datetime | dt.date,
    window_days: float,
) -> pl.DataFrame:
    """`window_features` of consecutive `window_days` windows ending at `end` (going back to `start`), stacked.

    The reference for a drift comparison against one latest window: per-user features depend on window
    length (a user seen in a short window looks busier per day and more single-minded), so the training
    period is cut into windows as long as the current one. A leftover shorter than a window at the start is
    dropped. Column `window_start` says which window a row came from.
    """
    start, end = _as_utc(start), _as_utc(end)
    step = dt.timedelta(days=window_days)
    frames = []
    hi = end
    while hi - step >= start:
        frames.append(window_features(events, items, hi - step, hi).with_columns(pl.lit(hi - step).alias("window_start")))
        hi -= step
    if not frames:
        return window_features(events, items, start, end).with_columns(pl.lit(start).alias("window_start"))
    return pl.concat(frames[::-1])
