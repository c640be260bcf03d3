"""Drift: are users behaving differently lately, and are we recommending differently than last time?

- `measure_feature_drift`: per-user behaviour in the latest window against earlier windows of the same
  length (features from the feature store's SQL, see `window_features`), compared column by column with
  Evidently's `DataDriftPreset`; fails when the share of drifted columns reaches the threshold. The same
  threshold is handed to Evidently, so the HTML report and the check always agree.
- `measure_prediction_drift`: two recommendation snapshots, user by user (`list_changes`: the share of
  items new in users' lists that are of a kind the user was not shown before) and overall (category mix
  TVD); score KS, coverage and list turnover reported. Thresholds and the reference (the previous run's
  snapshot) calibrated by benchmarks/prediction_drift.py on daily replays (`replay.snapshot_at`).

Both return a `MonitorResult`: passed, failed, or skipped with the reason when there is nothing to
compare (no timestamps, too little history, no previous snapshot). A column without data, or with one
constant value, is left out with its reason rather than crashing Evidently. Evidently is imported lazily
(it takes seconds), so importing this module stays cheap. Pure: no Dagster.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import polars as pl

from recs_assets.arguments import number_in, whole_number
from recs_assets.contract import EVENTS_SCHEMA, ITEMS_SCHEMA, conform
from recs_assets.monitoring.result import MonitorResult
from recs_assets.monitoring import window_features as windows
from recs_assets.monitoring.window_features import (
    CATEGORICAL_FEATURES,
    MAX_CATEGORY_COLUMNS,
    NOT_COMPARED,
    NUMERICAL_FEATURES,
    TASTE_OVERLAP,
    WindowFeatures,
    category_share_columns,
    plan_windows,
    taste_overlap,
    top_category_over,
    unavailable_features,
)

# Fewer users than this in a window and a drift verdict is noise, so the comparison is skipped.
MIN_USERS_PER_SIDE = 30
# Evidently switches from p-value tests to distances above 1,000 reference rows, whatever the size of
# the current side. A stacked reference is large while a week of a small shop is not, and a distance
# measured on 50 users is mostly sampling noise, so the switch is made on the smaller side instead.
LARGE_SAMPLE_ROWS = 1000
# The week before: measured on the simulator, a longer reference adds up a growing or draining shop's
# trend (the 10k-user fashion shop sells its stock down, purchases/day fall 4x over 30 days) into
# "drift" of volumes and category shares, while the adjacent week sees one week of it.
REFERENCE_WINDOWS = 1
# Per-column drift thresholds for the distance tests (normed Wasserstein, Jensen-Shannon), chosen by
# benchmarks/drift.py: 1.4x to 10x the largest value seen without a shift over 20 seeds, both presets,
# 3k and 10k users (tightest: fashion cart_rate, 0.11 at 10k users as the stock drains). Columns that
# move with stock and traffic (volumes, prices, category shares) get a high bar; the per-user taste
# overlap, which the default preference shift moves by 0.35-0.7 and nothing else by more than 0.09,
# carries the detection.
DISTANCE_THRESHOLDS: dict[str, float] = {
    "taste_overlap": 0.2,
    "top_category": 0.2,
    "top_category_share": 0.15,
    "cart_rate": 0.15,
    "purchase_rate": 0.15,
    "active_day_share": 0.15,
    "frequency": 0.4,
    "avg_session_events": 0.4,
    "avg_session_seconds": 0.4,
    "price_level": 0.4,
}
CATEGORY_SHARE_THRESHOLD = 0.5  # share_<category>: stock turning over moves these by up to 0.3
DEFAULT_DISTANCE_THRESHOLD = 0.2
# Small samples get p-value tests; the check fails on one drifted column, so each test's p-value bar
# is 0.05 split over the columns (Bonferroni), keeping the chance of a false alarm at about 5%.
FAMILY_P_VALUE = 0.05
# One drifted column (of at most 20: 9 behaviour columns, top_category and 10 category shares) fails.
MAX_SHARE_DRIFTED = 0.05


# Evidently's "chisquare" tests the current counts against the reference's proportions as if those were
# exact; the reference is a sample too, so it cried drift at p = 0.0001 on two weeks of one unchanged
# 800-user shop (the contingency test: p = 0.13). This two-sample version is registered with Evidently.
TWO_SAMPLE_CHISQUARE = "chisquare_two_sample"


def _two_sample_chisquare(reference, current, feature_type, threshold):
    """Chi-square test of independence of (side x category) counts: both sides are samples."""
    from scipy.stats import chi2_contingency

    ref_counts, cur_counts = reference.value_counts(), current.value_counts()
    keys = sorted(set(ref_counts.index) | set(cur_counts.index), key=str)
    table = np.array([[ref_counts.get(k, 0) for k in keys], [cur_counts.get(k, 0) for k in keys]], dtype=float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 1.0, False
    p_value = float(chi2_contingency(table, correction=False)[1])
    return p_value, p_value < threshold


def _register_evidently_tests() -> None:
    from evidently.legacy.calculations.stattests.registry import StatTest, _registered_stat_tests, register_stattest
    from evidently.legacy.core import ColumnType

    if TWO_SAMPLE_CHISQUARE not in _registered_stat_tests:
        test = StatTest(name=TWO_SAMPLE_CHISQUARE, display_name="chi-square (two-sample)",
                        allowed_feature_types=[ColumnType.Categorical], default_threshold=0.05)
        register_stattest(test, _two_sample_chisquare)


def column_thresholds(methods: Mapping[str, str], overrides: Mapping[str, float] | None = None) -> dict[str, float]:
    """The drift threshold of each column for its test: calibrated distances, or a Bonferroni p-value bar."""
    overrides = dict(overrides or {})
    out = {}
    for column, method in methods.items():
        if column in overrides:
            out[column] = float(overrides[column])
        elif _is_p_value(method):
            out[column] = FAMILY_P_VALUE / max(len(methods), 1)
        elif column.startswith(windows.CATEGORY_SHARE_PREFIX):
            out[column] = CATEGORY_SHARE_THRESHOLD
        else:
            out[column] = DISTANCE_THRESHOLDS.get(column, DEFAULT_DISTANCE_THRESHOLD)
    return out


def drift_methods(
    reference: pl.DataFrame, current: pl.DataFrame, numerical: Sequence[str], categorical: Sequence[str]
) -> dict[str, str]:
    """Evidently test per column: its own defaults, chosen by the smaller side's size.

    Up to LARGE_SAMPLE_ROWS rows on the smaller side: K-S for numbers, a two-sample chi-square (Z with
    two values) for categories (drift: p below the `column_thresholds` bar); above: normed Wasserstein
    for numbers (Jensen-Shannon with at most 5 distinct values) and Jensen-Shannon for categories
    (drift: distance at or above the column's calibrated threshold). Evidently
    registers chi-square and Z for categories only, so a few-valued number gets K-S in small samples.
    """
    small = min(reference.height, current.height) <= LARGE_SAMPLE_ROWS
    methods = {}
    for column in categorical:
        n_values = pl.concat([reference[column].drop_nulls(), current[column].drop_nulls()]).n_unique()
        methods[column] = (TWO_SAMPLE_CHISQUARE if n_values > 2 else "z") if small else "jensenshannon"
    for column in numerical:
        n_values = pl.concat([reference[column].drop_nulls(), current[column].drop_nulls()]).n_unique()
        methods[column] = "ks" if small else ("jensenshannon" if n_values <= 5 else "wasserstein")
    return methods


# ---------------------------------------------------------------------------------------------
# Feature drift
# ---------------------------------------------------------------------------------------------
def usable_columns(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    columns: Sequence[str],
    unavailable: Mapping[str, str] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """(columns Evidently can compare, {column: why it was left out}).

    Left out: what the dataset cannot have (`unavailable`, e.g. no prices), a column with no value on
    one side, and a column with one constant value on both sides (nothing can drift).
    """
    unavailable = dict(unavailable or {})
    missing = [c for c in columns if c not in reference.columns or c not in current.columns]
    if missing:
        raise ValueError(f"columns missing from the reference or the current frame: {missing}")
    keep: list[str] = []
    dropped: dict[str, str] = {}
    for column in columns:
        ref, cur = reference[column], current[column]
        if column in unavailable:
            dropped[column] = unavailable[column]
        elif ref.null_count() == ref.len():
            dropped[column] = "no data in the reference windows"
        elif cur.null_count() == cur.len():
            dropped[column] = "no data in the current window"
        else:
            values = pl.concat([ref.drop_nulls(), cur.drop_nulls()]).unique()
            if values.len() == 1:
                dropped[column] = f"one constant value ({values[0]}) in both windows"
            else:
                keep.append(column)
    return keep, dropped


def compare_feature_frames(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    numerical: Sequence[str],
    categorical: Sequence[str] = (),
    *,
    max_share_drifted: float,
    report_path: Path | None = None,
    unavailable: Mapping[str, str] | None = None,
    report_notes: Sequence[str] = (),
    what: str = "",
    thresholds: Mapping[str, float] | None = None,
) -> MonitorResult:
    """Evidently `DataDriftPreset` over the usable columns of two frames; failed when share drifted >= threshold.

    Per-column tests are Evidently's, chosen by `drift_methods` (p-value tests for small samples,
    distances for large ones). `max_share_drifted` is also Evidently's `drift_share`, so its report and this
    result use one rule. Each column's threshold is `column_thresholds` (calibrated distances, Bonferroni
    p-values), `thresholds` overriding it per column. The HTML report (with `report_notes` on top: windows, threshold, left-out
    columns) is written atomically to `report_path` when given. `what` names the comparison in the
    description (e.g. the windows' dates).
    """
    max_share_drifted = number_in(max_share_drifted, "max_share_drifted", 0.0, 1.0, open_low=True)
    columns = [*numerical, *categorical]
    if not columns:
        raise ValueError("compare_feature_frames needs at least one column")
    keep, dropped = usable_columns(reference, current, columns, unavailable)
    details = {"dropped_columns": dropped, "reference_rows": reference.height, "current_rows": current.height}
    if reference.height == 0 or current.height == 0:
        return MonitorResult.skip(f"no rows to compare (reference {reference.height}, current {current.height})", **details)
    if not keep:
        return MonitorResult.skip("no feature column has data on both sides: " + _reasons(dropped), **details)

    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    _register_evidently_tests()
    cat = [c for c in keep if c in categorical]
    definition = DataDefinition(numerical_columns=[c for c in keep if c not in cat], categorical_columns=cat)
    ref = Dataset.from_pandas(_to_pandas(reference, keep, cat), data_definition=definition)
    cur = Dataset.from_pandas(_to_pandas(current, keep, cat), data_definition=definition)
    methods = drift_methods(reference, current, [c for c in keep if c not in cat], cat)
    per_column = column_thresholds(methods, thresholds)
    preset = DataDriftPreset(columns=keep, drift_share=max_share_drifted, per_column_method=methods,
                             per_column_threshold=per_column)
    snapshot = Report([preset]).run(current_data=cur, reference_data=ref)
    scores: dict[str, dict] = {}
    share = None
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["type"].endswith(":ValueDrift"):
            method, threshold, score = config["method"], float(config["threshold"]), float(metric["value"])
            drifted = score < threshold if _is_p_value(method) else score >= threshold
            scores[config["column"]] = {"method": method, "score": score, "threshold": threshold, "drifted": bool(drifted)}
        elif config["type"].endswith(":DriftedColumnsCount"):
            share = float(metric["value"]["share"])
    drifted_columns = [c for c in keep if scores.get(c, {}).get("drifted")]
    if share is None:
        share = len(drifted_columns) / len(keep)
    failed = share >= max_share_drifted
    description = (
        f"{share:.0%} of {len(keep)} feature columns drifted (threshold {max_share_drifted:.0%})"
        + (f"; {what}" if what else "")
        + (f"; drifted: {', '.join(drifted_columns)}" if drifted_columns else "")
        + (f"; left out: {', '.join(dropped)}" if dropped else "")
    )
    written = None
    if report_path is not None:
        notes = [
            *report_notes,
            f"The check fails when {max_share_drifted:.0%} or more of the compared columns drift "
            f"(Evidently drift share {max_share_drifted}); this time {share:.0%} of {len(keep)} drifted.",
            *(f"Left out: {column}: {reason}." for column, reason in dropped.items()),
        ]
        written = _save_report(snapshot, Path(report_path), "Feature drift", notes)
    return MonitorResult(
        status="failed" if failed else "passed",
        description=description,
        values={
            "share_drifted": share,
            "max_share_drifted": max_share_drifted,
            "columns_compared": len(keep),
            "columns_drifted": len(drifted_columns),
            "reference_rows": reference.height,
            "current_rows": current.height,
        },
        details={**details, "drifted_columns": drifted_columns, "column_scores": scores},
        report_path=written,
    )


def _select_windows(every: WindowFeatures, chosen, overlap: pl.DataFrame) -> WindowFeatures:
    """The rows of `chosen` windows, with each user's `taste_overlap` (null where not measured)."""
    starts = [w.start for w in chosen]
    keys = ["window_start", "user_id"]
    users = every.users.filter(pl.col("window_start").is_in(starts)).join(overlap, on=keys, how="left")
    return WindowFeatures(users=users, affinity=every.affinity.filter(pl.col("window_start").is_in(starts)), windows=tuple(chosen))


def measure_feature_drift(
    events: pl.DataFrame,
    items: pl.DataFrame,
    users: pl.DataFrame | None = None,
    *,
    window_days: int = 7,
    max_share_drifted: float = MAX_SHARE_DRIFTED,
    report_path: Path | None = None,
    interaction_params: Mapping[str, float | None] | None = None,
    max_categories: int = MAX_CATEGORY_COLUMNS,
    max_reference_windows: int | None = REFERENCE_WINDOWS,
    min_users: int = MIN_USERS_PER_SIDE,
    thresholds: Mapping[str, float] | None = None,
) -> MonitorResult:
    """Per-user behaviour in the latest `window_days` against the earlier windows of that length.

    Skipped (with the reason) when the events have no timestamps, the history is shorter than two
    windows, or a side has fewer than `min_users` active users. Features the dataset cannot have (no
    prices, no categories, no views) and columns without variation are left out, each with its reason in
    `details["dropped_columns"]`. The reference is the `max_reference_windows` windows before the
    current one (None = all history). `interaction_params` are the feature store's weights ($w_view, ...).

    Calibrated on the simulator (benchmarks/drift.py, 20 seeds x both presets, with and without the
    preference shift): the week before as reference (a longer one adds up a growing or draining shop's
    trend), per-user rates rather than volumes, each returning user's `taste_overlap` with their
    previous week as the main signal, high bars for what stock and traffic move (volumes, prices,
    category shares), and one drifted column failing the check. `thresholds` overrides a column's.
    """
    events, items = conform(events, EVENTS_SCHEMA), conform(items, ITEMS_SCHEMA)
    plan = plan_windows(events["event_at"], window_days, max_reference_windows)
    if plan.skip_reason:
        return MonitorResult.skip(plan.skip_reason, undated_events=plan.undated_events)
    before = (plan.before_reference,) if plan.before_reference else ()
    every = windows.stacked_window_features(events, items, [*before, *plan.reference, plan.current], users, interaction_params)
    overlap = taste_overlap(every.affinity, every.windows)
    reference = _select_windows(every, plan.reference, overlap)
    current = _select_windows(every, (plan.current,), overlap)
    window_labels = {"current": plan.current.label, "reference": [w.label for w in plan.reference], "window_days": window_days}
    n_ref, n_cur = reference.users.height, current.users.height
    if n_cur < min_users or n_ref < min_users:
        return MonitorResult.skip(
            f"too few active users to compare: {n_cur} in the current window {plan.current.label}, "
            f"{n_ref} user-windows in the reference {plan.reference_label} (need {min_users} on each side)",
            windows=window_labels,
        )
    shares = category_share_columns(reference, current, max_categories)
    keys = ["window_start", "user_id"]
    ref_frame = top_category_over(reference.users, list(shares.columns.values())).join(shares.reference, on=keys, how="left")
    cur_frame = top_category_over(current.users, list(shares.columns.values())).join(shares.current, on=keys, how="left")
    unavailable = unavailable_features(events, items)
    what = f"current {plan.current.label} vs reference {plan.reference_label} ({len(plan.reference)} window(s) of {window_days} days)"
    notes = [
        f"Current window: {plan.current.label} ({n_cur} active users). Reference: {len(plan.reference)} "
        f"window(s) of {window_days} days, {plan.reference_label} ({n_ref} user-windows).",
        "Features are per user and per window, from sql/user_features.sql and sql/user_category_affinity.sql "
        "run on each window's events (cut-off = the window's end).",
        *(f"Category shares leave out {group}: {reason}." for group, reason in shares.left_out.items()),
        *(f"Not compared: {names}: {reason}." for names, reason in NOT_COMPARED.items()),
    ]
    if plan.undated_events:
        notes.append(f"{plan.undated_events} event(s) without a timestamp are in no window.")
    result = compare_feature_frames(
        ref_frame,
        cur_frame,
        [*NUMERICAL_FEATURES, TASTE_OVERLAP, *shares.columns],
        CATEGORICAL_FEATURES,
        max_share_drifted=max_share_drifted,
        report_path=report_path,
        unavailable=unavailable,
        report_notes=notes,
        what=what,
        thresholds=thresholds,
    )
    details = {
        **result.details,
        "windows": window_labels,
        "category_columns": shares.columns,
        "categories_left_out": shares.left_out,
        "not_compared": NOT_COMPARED,
        "undated_events": plan.undated_events,
    }
    return MonitorResult(result.status, result.description, result.values, details, result.report_path)


# Tests whose score is a p-value (drift when below the threshold); the others are distances (drift at or above).
P_VALUE_METHODS = frozenset({"ks", "chisquare", "z", TWO_SAMPLE_CHISQUARE})


def _is_p_value(method: str) -> bool:
    return method in P_VALUE_METHODS or "p_value" in method.replace("-", "_").lower()


def _reasons(dropped: Mapping[str, str]) -> str:
    return "; ".join(f"{column} ({reason})" for column, reason in dropped.items())


def _to_pandas(frame: pl.DataFrame, columns: Sequence[str], categorical: Sequence[str]):
    df = frame.select(columns).to_pandas()
    for column in categorical:
        # Evidently counts categories; a missing favourite is its own category, not a NaN it may choke on.
        df[column] = df[column].astype(object).where(df[column].notna(), "(none)")
    return df


def _save_report(snapshot, path: Path, title: str, notes: Sequence[str]) -> str:
    """Evidently's HTML with a header naming the windows and the threshold; written to a temp file, then renamed."""
    banner = (
        '<div style="font-family:sans-serif;padding:12px 16px;margin:8px;border:1px solid #ccc;border-radius:6px">'
        f"<h2 style=\"margin:0 0 8px\">{html.escape(title)}</h2><ul>"
        + "".join(f"<li>{html.escape(note)}</li>" for note in notes)
        + "</ul></div>"
    )
    page = snapshot.get_html_str(as_iframe=False)
    at = page.find("<body")
    at = page.find(">", at) + 1 if at >= 0 else 0
    page = page[:at] + banner + page[at:]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return str(path)


# ---------------------------------------------------------------------------------------------
# Prediction drift
# ---------------------------------------------------------------------------------------------
# Calibrated by benchmarks/prediction_drift.py (EASE refitted daily on the simulator, 3,000 users, 20
# seeds per preset, with and without the default preference shift from day 23 of 30).
#
# Reference: the snapshot the previous daily run served. PREDICTION_REFERENCE_NOTE says why.
PREDICTION_REFERENCE = "previous"
PREDICTION_REFERENCE_NOTE = (
    "the snapshot the previous run served (daily runs: yesterday's). Measured against the one a week "
    "earlier, it detected the same shifts later (2-3 days instead of the shift day itself) and with less "
    "margin: a week of stock turnover moves lists as much as a change of tastes does after a day"
)
# The judged statistic: of the items that entered a user's list since the reference, the share in a
# category that user's reference list did not have (pooled over the users in both snapshots). Stock
# turning over replaces a sold item with one of the same kind; a change of tastes brings in new kinds.
MAX_NEW_CATEGORY_SHARE = 0.30
# The recommended category mix (total variation distance). Stock running down in one category moves
# it as much as a change of tastes, so its bar is high: it catches a gross change (everyone gets one
# category), not a gradual one.
MAX_CATEGORY_TVD = 0.10
# Score KS is reported, not judged: it moved as much without a shift as with one, and a refitted model
# (or another one) puts its scores on a new scale.


def _category_mix(snapshot: pl.DataFrame, categories: pl.DataFrame) -> dict[str, float]:
    joined = snapshot.select("item_id").join(categories, on="item_id", how="left")
    counts = joined.with_columns(pl.col("category").fill_null("(unknown)")).group_by("category").len()
    total = counts["len"].sum()
    return {r["category"]: r["len"] / total for r in counts.iter_rows(named=True)} if total else {}


def _models(snapshot: pl.DataFrame) -> list[str]:
    if "model" not in snapshot.columns:
        return []
    return sorted(snapshot["model"].drop_nulls().unique().to_list())


def list_changes(previous: pl.DataFrame, current: pl.DataFrame, categories: pl.DataFrame) -> dict[str, float | int]:
    """How each user's list moved between two snapshots, over the users in both.

    - users_compared: users with a list in both;
    - items_entered: (user, item) pairs in the current list and not in the previous one;
    - new_category_share: of those, the share whose category was not in that user's previous list
      (NaN when nothing entered: nothing moved);
    - list_turnover: 1 - mean Jaccard of each user's two item sets (reported: stock turnover moves it).
    Items without a category count as one category, "(unknown)".
    """
    pairs = ["user_id", "item_id"]

    def listed(snapshot: pl.DataFrame) -> pl.DataFrame:
        return (
            snapshot.select(pl.col("user_id").cast(pl.String), pl.col("item_id").cast(pl.String))
            .unique()
            .join(categories, on="item_id", how="left")
            .with_columns(pl.col("category").fill_null("(unknown)"))
        )

    before, after = listed(previous), listed(current)
    both = before.select("user_id").unique().join(after.select("user_id").unique(), on="user_id")
    before, after = before.join(both, on="user_id"), after.join(both, on="user_id")
    entered = after.join(before, on=pairs, how="anti")
    had = before.select("user_id", "category").unique()
    new_kind = entered.join(had, on=["user_id", "category"], how="anti").height
    kept = after.join(before, on=pairs).group_by("user_id").len("kept")
    sizes = before.group_by("user_id").len("a").join(after.group_by("user_id").len("b"), on="user_id")
    jaccard = sizes.join(kept, on="user_id", how="left").fill_null(0).select(
        (pl.col("kept") / (pl.col("a") + pl.col("b") - pl.col("kept"))).mean()
    ).item()
    return {
        "users_compared": both.height,
        "items_entered": entered.height,
        "new_category_share": new_kind / entered.height if entered.height else math.nan,
        "list_turnover": 1.0 - float(jaccard) if both.height else math.nan,
    }


def measure_prediction_drift(
    previous: pl.DataFrame | None,
    current: pl.DataFrame,
    items: pl.DataFrame,
    *,
    max_new_category_share: float = MAX_NEW_CATEGORY_SHARE,
    max_category_tvd: float = MAX_CATEGORY_TVD,
    min_users: int = MIN_USERS_PER_SIDE,
    previous_label: str = "the previous snapshot",
) -> MonitorResult:
    """Two recommendation snapshots (user_id, item_id, rank, score[, model]): are we recommending differently?

    Judged (failed when above the threshold; defaults calibrated by benchmarks/prediction_drift.py):
    - new_category_share (`list_changes`): of the items new in a user's list, the share in categories
      that user was not recommended before; needs `min_users` users in both snapshots;
    - category_tvd: total variation distance (0..1) of the recommended category mix.
    Reported: score KS (when both come from one model: scores of different models are not on one
    scale), catalogue coverage of both, list turnover. Both statistics need item categories.

    Skipped with the reason when there is no previous snapshot, a snapshot is empty, or the items have
    no categories (nothing judged can be measured).
    """
    max_new_category_share = number_in(max_new_category_share, "max_new_category_share", 0.0, 1.0)
    max_category_tvd = number_in(max_category_tvd, "max_category_tvd", 0.0, 1.0)
    min_users = whole_number(min_users, "min_users", minimum=1)
    if previous is None:
        return MonitorResult.skip("no previous snapshot to compare with")
    if previous.height == 0 or current.height == 0:
        return MonitorResult.skip(f"nothing to compare: {previous_label} has {previous.height} rows, the current one {current.height}")
    from scipy.stats import ks_2samp

    not_measured: dict[str, str] = {}
    ks_stat = ks_p = math.nan
    models_prev, models_cur = _models(previous), _models(current)
    prev_scores = previous["score"].drop_nulls().cast(pl.Float64).to_numpy() if "score" in previous.columns else np.array([])
    cur_scores = current["score"].drop_nulls().cast(pl.Float64).to_numpy() if "score" in current.columns else np.array([])
    if models_prev and models_cur and models_prev != models_cur:
        not_measured["score_ks"] = (
            f"the model changed ({', '.join(models_prev)} -> {', '.join(models_cur)}): scores of different models are not on one scale"
        )
    elif not len(prev_scores) or not len(cur_scores):
        not_measured["score_ks"] = "a snapshot has no scores"
    else:
        ks = ks_2samp(prev_scores, cur_scores)
        ks_stat, ks_p = float(ks.statistic), float(ks.pvalue)
    n_catalogue = max(items.height, 1)
    cov_prev, cov_cur = previous["item_id"].n_unique() / n_catalogue, current["item_id"].n_unique() / n_catalogue
    values = {
        "new_category_share": math.nan,
        "max_new_category_share": max_new_category_share,
        "category_tvd": math.nan,
        "max_category_tvd": max_category_tvd,
        "users_compared": 0,
        "items_entered": 0,
        "list_turnover": math.nan,
        "score_ks": ks_stat,
        "score_ks_pvalue": ks_p,
        "score_mean_previous": float(np.mean(prev_scores)) if len(prev_scores) else math.nan,
        "score_mean_current": float(np.mean(cur_scores)) if len(cur_scores) else math.nan,
        "coverage_previous": cov_prev,
        "coverage_current": cov_cur,
        "rows_previous": previous.height,
        "rows_current": current.height,
    }
    details: dict = {"not_measured": not_measured, "previous": previous_label, "reference_rule": PREDICTION_REFERENCE_NOTE}
    if "category" not in items.columns or items["category"].null_count() == items.height:
        reason = "the items have no categories"
        not_measured.update(new_category_share=reason, category_tvd=reason)
        scores = f"score KS {ks_stat:.3f}, reported only" if not math.isnan(ks_stat) else "score KS: " + not_measured["score_ks"]
        return MonitorResult("skipped", f"nothing comparable: {reason} (both judged statistics need them); {scores}", values, details)
    categories = items.select(pl.col("item_id").cast(pl.String), pl.col("category").cast(pl.String)).unique("item_id")
    mix_prev, mix_cur = _category_mix(previous, categories), _category_mix(current, categories)
    tvd = 0.5 * sum(abs(mix_prev.get(c, 0.0) - mix_cur.get(c, 0.0)) for c in set(mix_prev) | set(mix_cur))
    changes = list_changes(previous, current, categories)
    values.update(category_tvd=float(tvd), **changes)
    details.update(category_mix_previous=dict(sorted(mix_prev.items())), category_mix_current=dict(sorted(mix_cur.items())))
    measured, over = [], []
    share = changes["new_category_share"]
    if changes["users_compared"] < min_users:
        not_measured["new_category_share"] = f"{changes['users_compared']} user(s) in both snapshots (need {min_users})"
    elif math.isnan(share):
        measured.append("no list changed (new-category share 0)")
    else:
        measured.append(f"new-category share {share:.1%} of {changes['items_entered']:,} new items "
                        f"(threshold {max_new_category_share:.0%})")
        if share > max_new_category_share:
            over.append("users' lists moved to new categories")
    measured.append(f"category TVD {tvd:.3f} (threshold {max_category_tvd:g})")
    if tvd > max_category_tvd:
        over.append("category mix")
    reported = f"list turnover {changes['list_turnover']:.0%}, " if not math.isnan(changes["list_turnover"]) else ""
    if not math.isnan(ks_stat):
        reported += f"score KS {ks_stat:.3f}, "
    description = (
        (f"drifted: {', '.join(over)}; " if over else "")
        + "; ".join(measured)
        + f"; reported: {reported}coverage {cov_prev:.1%} -> {cov_cur:.1%}; vs {previous_label}"
        + (f"; not measured: {_reasons(not_measured)}" if not_measured else "")
    )
    return MonitorResult("failed" if over else "passed", description, values, details)
