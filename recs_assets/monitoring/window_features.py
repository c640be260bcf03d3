"""Per-user behaviour in equal-length time windows, computed by the feature store's own SQL.

Drift is judged by comparing how users behave in the latest window with how they behaved in earlier
windows of the same length. The features are not defined here: each window's events (those in
[start, end)) go through `sql/user_features.sql` and `sql/user_category_affinity.sql` with
cutoff = end, exactly as the feature store computes them for training and serving. This module only
picks the windows, turns the store's counts into per-user rates (so a busy week and a quiet week are
judged on behaviour, not volume) and says which features a dataset cannot have (no prices, no
categories, no views...), and why.

Features compared (all per user, per window):
- frequency            interactions per active day (SQL `frequency`)
- active_day_share     share of the window's days the user was active (SQL n_active_days / window days)
- avg_session_events   events per visit; avg_session_seconds: visit length (SQL; visits are user-days
                       when the source has no session ids)
- cart_rate            add_to_carts per view; purchase_rate: purchases per view (SQL counts; NULL without views)
- price_level          mean price of what the user looked at or bought (SQL)
- top_category         the favourite category (categorical) and top_category_share its share (SQL)
- share_<category>     the user's interest share per category (SQL `user_category_affinity`); chosen per
                       comparison by `category_share_columns`, a bounded number of them.
- taste_overlap        how much of the user's category interest is where it was in the window before
                       (sum over categories of the smaller of the two shares, 0..1; only users active in
                       both windows). It is the one feature that follows each user over time: a shop whose
                       stock turns over shifts everyone's category shares a little, but users keep their
                       tastes, so their overlap stays where it was; when tastes change it drops.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from recs_assets.arguments import positive_int
from recs_assets.contract import EVENTS_SCHEMA, ITEMS_SCHEMA, USERS_SCHEMA, conform
from recs_assets.features import DEFAULT_INTERACTION_PARAMS
from recs_assets.features.sql_runner import columns_named, run_sql

NUMERICAL_FEATURES: tuple[str, ...] = (
    "frequency",
    "active_day_share",
    "avg_session_events",
    "avg_session_seconds",
    "cart_rate",
    "purchase_rate",
    "price_level",
    "top_category_share",
)
CATEGORICAL_FEATURES: tuple[str, ...] = ("top_category",)
# Computed across two consecutive windows (see `taste_overlap`), not from one window's SQL.
TASTE_OVERLAP = "taste_overlap"
CATEGORY_SHARE_PREFIX = "share_"
# Bounded so that a fine-grained taxonomy (hundreds of leaf categories) costs no more than a coarse
# one: Evidently's cost is per column, and a column per category made the check take tens of seconds.
MAX_CATEGORY_COLUMNS = 10
OTHER_CATEGORY = "(other)"

# What user_features.sql measures but drift leaves out, and why (shown in the check's metadata).
NOT_COMPARED: dict[str, str] = {
    "n_events, n_sessions, n_interactions, n_views, n_add_to_carts, n_purchases, monetary": (
        "raw volumes: they move with traffic; the per-user rates above are compared instead"
    ),
    "recency_days": "where in the window the user was last seen, not how they behave",
    "signup_age_days": "grows with the calendar, so it drifts by construction",
    "segment, country": "who the user is, not how they behave",
}


@dataclass(frozen=True)
class Window:
    """A time window [start, end) in UTC."""

    start: dt.datetime
    end: dt.datetime

    @property
    def days(self) -> float:
        return (self.end - self.start).total_seconds() / 86_400

    @property
    def label(self) -> str:
        """`2026-09-24..2026-09-30`: first and last day inside the window."""
        last = self.end - dt.timedelta(microseconds=1)
        return f"{self.start:%Y-%m-%d}..{last:%Y-%m-%d}"


@dataclass(frozen=True)
class WindowPlan:
    """The latest window and the earlier windows of the same length it is compared with.

    `skip_reason` is set (and `current` is None) when the events cannot be cut into two windows.
    """

    current: Window | None
    reference: tuple[Window, ...]
    skip_reason: str | None = None
    undated_events: int = 0
    # The window before the first reference window, when the history has it: only to measure the first
    # reference window's `taste_overlap`, never compared itself.
    before_reference: Window | None = None

    @property
    def reference_label(self) -> str:
        if not self.reference:
            return ""
        return Window(self.reference[0].start, self.reference[-1].end).label


@dataclass(frozen=True)
class WindowFeatures:
    """Per-user features of one or more windows.

    users: one row per (window_start, user_id) with NUMERICAL_FEATURES and CATEGORICAL_FEATURES;
    affinity: one row per (window_start, user_id, category) with the interest `strength` (SQL).
    """

    users: pl.DataFrame
    affinity: pl.DataFrame
    windows: tuple[Window, ...]


def _day_floor(ts: dt.datetime) -> dt.datetime:
    ts = ts if ts.tzinfo else ts.replace(tzinfo=dt.UTC)
    ts = ts.astimezone(dt.UTC)
    return dt.datetime(ts.year, ts.month, ts.day, tzinfo=dt.UTC)


def plan_windows(event_at: pl.Series, window_days: int, max_reference_windows: int | None = None) -> WindowPlan:
    """Whole UTC days: the current window ends the day after the last event day; reference windows go back.

    Every window has `window_days` days, so per-user features are comparable (a user seen in a shorter
    window looks busier per day and more single-minded). A leftover shorter than a window at the start
    is left out. `max_reference_windows` keeps only the most recent ones (None = all); the window before
    the first of them is `before_reference` when the history reaches back that far.
    """
    window_days = positive_int(window_days, "window_days")
    if max_reference_windows is not None:
        max_reference_windows = positive_int(max_reference_windows, "max_reference_windows")
    dated = event_at.drop_nulls()
    undated = event_at.len() - dated.len()
    if dated.len() == 0:
        reason = "no events yet" if event_at.len() == 0 else "events have no timestamps, so there are no time windows to compare"
        return WindowPlan(None, (), reason, undated)
    first, end = _day_floor(dated.min()), _day_floor(dated.max()) + dt.timedelta(days=1)
    step = dt.timedelta(days=window_days)
    current = Window(end - step, end)
    reference: list[Window] = []
    hi = current.start
    while hi - step >= first and (max_reference_windows is None or len(reference) < max_reference_windows):
        reference.append(Window(hi - step, hi))
        hi -= step
    if not reference:
        days = (end - first).days
        return WindowPlan(
            None, (), f"not enough history: {days} day(s) of events, need {2 * window_days} for two {window_days}-day windows", undated
        )
    before = Window(hi - step, hi) if hi - step >= first else None
    return WindowPlan(current, tuple(reversed(reference)), None, undated, before)


def _window_users(window_events: pl.DataFrame, users: pl.DataFrame | None) -> pl.DataFrame:
    """Everyone active in the window, anonymous shoppers included (they are not in `users`)."""
    active = window_events.select("user_id").unique()
    if users is None or users.height == 0:
        return conform(active, USERS_SCHEMA)
    known = conform(users, USERS_SCHEMA).unique("user_id", keep="first")
    return conform(active.join(known, on="user_id", how="left"), USERS_SCHEMA)


# The feature-store SQL the window features run (user_window_features), and the event columns read here in Python.
USER_FEATURES_SQL, AFFINITY_SQL = "user_features", "user_category_affinity"
WINDOW_FEATURE_SQL = (USER_FEATURES_SQL, AFFINITY_SQL)
_EVENT_COLUMNS_READ_HERE = ("user_id", "event_at", "event_type", "price")


def window_event_columns() -> list[str]:
    """The event columns the window features (and so the feature drift check) read: the only ones it needs loaded.

    The others (ids, queries, surfaces, positions, propensities, variants) would only take memory: at
    10M events the whole table beside the check's windows was the staging group's peak. Found in the SQL
    itself, so a column a query starts using is loaded with it.
    """
    named = {c for name in WINDOW_FEATURE_SQL for c in columns_named(name, list(EVENTS_SCHEMA))}
    return [c for c in EVENTS_SCHEMA if c in named or c in _EVENT_COLUMNS_READ_HERE]


def user_window_features(
    events: pl.DataFrame,
    items: pl.DataFrame,
    window: Window,
    users: pl.DataFrame | None = None,
    interaction_params: Mapping[str, float | None] | None = None,
) -> WindowFeatures:
    """Features of every user active in `window`, from the feature store's SQL run on that window's events."""
    events = conform(events, EVENTS_SCHEMA)
    items = conform(items, ITEMS_SCHEMA)
    params = {**DEFAULT_INTERACTION_PARAMS, **(interaction_params or {}), "cutoff": window.end}
    inside = events.filter((pl.col("event_at") >= window.start) & (pl.col("event_at") < window.end))
    tables = {"events": inside, "items": items}
    store = run_sql(USER_FEATURES_SQL, {**tables, "users": _window_users(inside, users)}, params)
    per_view = pl.when(pl.col("n_views") > 0)
    features = store.select(
        "user_id",
        pl.col("frequency").cast(pl.Float64),
        (pl.col("n_active_days") / window.days).alias("active_day_share"),
        pl.col("avg_session_events").cast(pl.Float64),
        pl.col("avg_session_seconds").cast(pl.Float64),
        per_view.then(pl.col("n_add_to_carts") / pl.col("n_views")).alias("cart_rate"),
        per_view.then(pl.col("n_purchases") / pl.col("n_views")).alias("purchase_rate"),
        pl.col("price_level").cast(pl.Float64),
        pl.col("top_category_share").cast(pl.Float64),
        pl.col("top_category").cast(pl.String),
    )
    affinity = run_sql(AFFINITY_SQL, tables, params).select("user_id", "category", "strength")
    stamp = pl.lit(window.start, dtype=pl.Datetime("us", "UTC")).alias("window_start")
    return WindowFeatures(
        users=features.select(stamp, pl.all()).sort("user_id"),
        affinity=affinity.select(stamp, pl.all()),
        windows=(window,),
    )


def stacked_window_features(
    events: pl.DataFrame,
    items: pl.DataFrame,
    windows: Sequence[Window],
    users: pl.DataFrame | None = None,
    interaction_params: Mapping[str, float | None] | None = None,
) -> WindowFeatures:
    """`user_window_features` of several windows, one below the other (`window_start` tells them apart)."""
    if not windows:
        raise ValueError("stacked_window_features needs at least one window")
    parts = [user_window_features(events, items, w, users, interaction_params) for w in windows]
    return WindowFeatures(
        users=pl.concat([p.users for p in parts]),
        affinity=pl.concat([p.affinity for p in parts]),
        windows=tuple(windows),
    )


def unavailable_features(events: pl.DataFrame, items: pl.DataFrame) -> dict[str, str]:
    """Features this dataset cannot have, each with the reason (e.g. MovieLens has no prices)."""
    events = conform(events, EVENTS_SCHEMA)
    items = conform(items, ITEMS_SCHEMA)
    types = set(events["event_type"].drop_nulls().unique().to_list())
    reasons: dict[str, str] = {}
    if events["price"].null_count() == events.height and items["price"].null_count() == items.height:
        reasons["price_level"] = "no prices: neither the events nor the items carry one"
    if items["category"].null_count() == items.height:
        for name in ("top_category", "top_category_share", TASTE_OVERLAP):
            reasons[name] = "the items have no categories"
    if "view" not in types:
        for name in ("cart_rate", "purchase_rate"):
            reasons[name] = "no view events, and cart and purchase rates are per view"
    else:
        if "add_to_cart" not in types:
            reasons["cart_rate"] = "no add_to_cart events"
        if "purchase" not in types:
            reasons["purchase_rate"] = "no purchase events"
    return reasons


def taste_overlap(affinity: pl.DataFrame, windows: Sequence[Window]) -> pl.DataFrame:
    """window_start, user_id, taste_overlap: the share of a user's category interest that is where it was in the window before.

    For each window but the first of `windows` (consecutive, in time order) and each user with category
    interest in both it and the window before: the sum over categories of min(share now, share before),
    1 = the same mix, 0 = nothing in common. Users new to the window, or back after a gap, have none.
    """
    starts = [w.start for w in windows]
    shares = affinity.filter(pl.col("category").is_not_null() & (pl.col("strength") > 0)).with_columns(
        (pl.col("strength") / pl.col("strength").sum().over("window_start", "user_id")).alias("share")
    )
    out = pl.DataFrame(schema={"window_start": pl.Datetime("us", "UTC"), "user_id": pl.String, TASTE_OVERLAP: pl.Float64})
    parts = [out]
    for before, now in zip(starts, starts[1:]):
        a = shares.filter(pl.col("window_start") == now).select("user_id", "category", "share")
        b = shares.filter(pl.col("window_start") == before).select("user_id", "category", pl.col("share").alias("before"))
        in_both = a.select("user_id").unique().join(b.select("user_id").unique(), on="user_id")
        overlap = (
            a.join(b, on=["user_id", "category"], how="inner")
            .group_by("user_id")
            .agg(pl.min_horizontal("share", "before").sum().alias(TASTE_OVERLAP))
        )
        parts.append(
            in_both.join(overlap, on="user_id", how="left").select(
                pl.lit(now, dtype=pl.Datetime("us", "UTC")).alias("window_start"),
                "user_id",
                pl.col(TASTE_OVERLAP).fill_null(0.0).cast(pl.Float64),
            )
        )
    return pl.concat(parts)


def _slug(category: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", category).strip("_").lower() or "blank"


@dataclass(frozen=True)
class CategoryShares:
    """Per-user category shares for one comparison: the wide columns, and what was left out and why."""

    reference: pl.DataFrame  # window_start, user_id, share_<category>...
    current: pl.DataFrame
    columns: dict[str, str]  # column -> category
    left_out: dict[str, str]  # category (or a group of them) -> reason


def category_share_columns(
    reference: WindowFeatures, current: WindowFeatures, max_categories: int = MAX_CATEGORY_COLUMNS
) -> CategoryShares:
    """Interest share per category, only over categories seen in both sides, at most `max_categories` columns.

    A category that only exists on one side (new stock, or stock that sold out) is left out and the
    shares are taken over the shared categories, so stock turning over does not look like users
    changing their minds. The `max_categories` with the most interest (reference and current together)
    get a column; the rest still count in each user's total.
    """
    max_categories = positive_int(max_categories, "max_categories")
    ref_cats = set(reference.affinity["category"].drop_nulls().unique().to_list())
    cur_cats = set(current.affinity["category"].drop_nulls().unique().to_list())
    shared = ref_cats & cur_cats
    left_out: dict[str, str] = {}
    only_ref, only_cur = sorted(ref_cats - shared), sorted(cur_cats - shared)
    if only_ref:
        left_out[", ".join(only_ref[:10]) + (" ..." if len(only_ref) > 10 else "")] = (
            f"{len(only_ref)} categor{'y' if len(only_ref) == 1 else 'ies'} with interest in the reference only"
        )
    if only_cur:
        left_out[", ".join(only_cur[:10]) + (" ..." if len(only_cur) > 10 else "")] = (
            f"{len(only_cur)} categor{'y' if len(only_cur) == 1 else 'ies'} with interest in the current window only"
        )
    both = pl.concat([reference.affinity, current.affinity]).filter(pl.col("category").is_in(sorted(shared)))
    ranked = both.group_by("category").agg(pl.col("strength").sum()).sort(["strength", "category"], descending=[True, False])
    chosen = ranked["category"].head(max_categories).to_list()
    if ranked.height > max_categories:
        left_out[f"{ranked.height - max_categories} smaller shared categories"] = (
            f"only the {max_categories} with the most interest get a column (they still count in each user's total)"
        )
    columns: dict[str, str] = {}
    for category in chosen:
        name, n = CATEGORY_SHARE_PREFIX + _slug(category), 2
        while name in columns:
            name, n = f"{CATEGORY_SHARE_PREFIX}{_slug(category)}_{n}", n + 1
        columns[name] = category
    return CategoryShares(
        reference=_wide_shares(reference, shared, columns),
        current=_wide_shares(current, shared, columns),
        columns=columns,
        left_out=left_out,
    )


def _wide_shares(side: WindowFeatures, shared: set[str], columns: dict[str, str]) -> pl.DataFrame:
    keys = side.users.select("window_start", "user_id")
    if not columns:
        return keys
    affinity = side.affinity.filter(pl.col("category").is_in(sorted(shared)))
    strength = pl.col("strength")
    wide = affinity.group_by("window_start", "user_id").agg(
        (strength.filter(pl.col("category") == category).sum() / strength.sum()).alias(name)
        for name, category in columns.items()
    )
    # A user with no interest in any shared category has no shares (null), not shares of zero.
    return keys.join(wide, on=["window_start", "user_id"], how="left")


def top_category_over(users: pl.DataFrame, categories: Sequence[str]) -> pl.DataFrame:
    """`top_category` with categories outside `categories` (one side only, or beyond the columns) as "(other)"."""
    keep = sorted(set(categories))
    return users.with_columns(
        pl.when(pl.col("top_category").is_null())
        .then(None)
        .when(pl.col("top_category").is_in(keep))
        .then(pl.col("top_category"))
        .otherwise(pl.lit(OTHER_CATEGORY))
        .alias("top_category")
    )
