"""The `serving` group: what the API serves (recommendation_snapshot, similar_items_snapshot,
popular_items_snapshot, user_history_snapshot)."""

import shutil
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl

from recs_assets.contract import LIST_N
from recs_assets.defs.models import GENERATOR_ASSETS, RANKER_ASSET
from recs_assets.layout import HomeLayout
from recs_assets.profiling import markdown_table
from recs_assets.serving.snapshots import (
    active_users,
    popular_items_snapshot as build_popular,
    recommendation_snapshot as build_recommendations,
    similar_items_snapshot as build_similar,
    snapshot_defects,
    snapshot_problems,
    user_history_snapshot as build_history,
)


class SnapshotConfig(dg.Config):
    """List length N; who gets a list (`active_days`: an interaction in the last days; None = every user
    with history); the window popularity is counted over (`popular_days`)."""

    n: int = LIST_N
    active_days: float | None = None
    popular_days: float | None = 30.0


def _available(items: pl.DataFrame) -> pl.Series:
    return items.filter(pl.col("is_active").fill_null(True))["item_id"]


def keep_previous(home: Path, name: str) -> Path | None:
    """Copy the snapshot about to be replaced into the snapshot history, for prediction drift checks."""
    layout = HomeLayout(home)
    current = layout.lake / f"{name}.parquet"
    if not current.exists():
        return None
    layout.snapshot_history.mkdir(parents=True, exist_ok=True)
    stamp = datetime.fromtimestamp(current.stat().st_mtime, UTC).strftime("%Y%m%dT%H%M%S%f")
    kept = layout.snapshot_history / f"{name}-{stamp}.parquet"
    shutil.copyfile(current, kept)
    return kept


@dg.asset(group_name="serving", kinds={"parquet", "duckdb"})
def user_history_snapshot(events: pl.DataFrame) -> dg.Output[pl.DataFrame]:
    """Everything each user has interacted with: no path of the API ever serves it to them again."""
    snapshot = build_history(events)
    return dg.Output(
        snapshot,
        metadata={"rows": dg.MetadataValue.int(snapshot.height), "users": dg.MetadataValue.int(snapshot["user_id"].n_unique())},
    )


@dg.asset(
    group_name="serving",
    required_resource_keys={"candidate_models", "home"},
    ins={name: dg.AssetIn(name) for name in [*GENERATOR_ASSETS.values(), RANKER_ASSET]},
    kinds={"parquet", "duckdb"},
)
def recommendation_snapshot(
    context: dg.AssetExecutionContext,
    config: SnapshotConfig,
    champion_model: pl.DataFrame,
    events: pl.DataFrame,
    items: pl.DataFrame,
    users: pl.DataFrame,
    user_history_snapshot: pl.DataFrame,
    popular_items_snapshot: pl.DataFrame,
    user_features: pl.DataFrame,
    item_features: pl.DataFrame,
    user_category_affinity: pl.DataFrame,
    user_item_interactions: pl.DataFrame,
    **models,
) -> dg.Output[pl.DataFrame]:
    """Top-N recommendations for every active user from the champion, nothing they already have, nothing sold.

    Versioned by the champion's MLflow model version (columns `model`, `model_version`).
    """
    keep_previous(context.resources.home.root, "recommendation_snapshot")
    champion = champion_model.row(0, named=True)
    generators = {name: models[asset] for name, asset in GENERATOR_ASSETS.items()}
    # Today's features from the feature store: the same SQL the models were trained on, at no cut-off.
    known = {
        "interactions": user_item_interactions,
        "user_features": user_features,
        "item_features": item_features,
        "user_category_affinity": user_category_affinity,
    }
    user_ids = active_users(events, config.active_days)
    snapshot = build_recommendations(
        champion["champion"], generators, models[RANKER_ASSET], user_ids, known, user_history_snapshot,
        _available(items), N=config.n, n_candidates=context.resources.candidate_models.n_candidates,
        fallback=popular_items_snapshot, users=users,
    ).with_columns(
        pl.lit(champion["registered_model"]).alias("model"), pl.lit(champion["version"], dtype=pl.Int64).alias("model_version")
    )
    return dg.Output(
        snapshot,
        metadata={
            "rows": dg.MetadataValue.int(snapshot.height),
            "users": dg.MetadataValue.int(snapshot["user_id"].n_unique()),
            "model": dg.MetadataValue.text(f"{champion['registered_model']} v{champion['version']}"),
            "rows_by_source": dg.MetadataValue.json(dict(snapshot.group_by("source").len().iter_rows())),
            "preview": dg.MetadataValue.md(markdown_table(snapshot, rows=10)),
        },
    )


@dg.asset_check(
    asset=recommendation_snapshot,
    blocking=True,
    additional_ins={"events": dg.AssetIn("events"), "items": dg.AssetIn("items"), "user_history_snapshot": dg.AssetIn("user_history_snapshot")},
)
def recommendation_snapshot_is_servable(
    config: SnapshotConfig, recommendation_snapshot: pl.DataFrame, events: pl.DataFrame, items: pl.DataFrame,
    user_history_snapshot: pl.DataFrame,
) -> dg.AssetCheckResult:
    """No list repeats an item, nothing bought, already had or unsellable is shown, every user has a list.

    A list shorter than N is reported with its reason (the user has had nearly the whole catalogue),
    not failed: that is the truth about the catalogue, not a defect.
    """
    bought = events.filter(pl.col("event_type") == "purchase").select("user_id", "item_id").unique()
    problems = snapshot_problems(
        recommendation_snapshot, active_users(events, config.active_days), bought, _available(items), config.n,
        history=user_history_snapshot,
    )
    failing = snapshot_defects(problems)
    shown = ("users_short_of_n", "short_list_reasons", "rows_from_fallback")
    return dg.AssetCheckResult(
        passed=not failing,
        description=("; ".join(f"{k}: {v}" for k, v in failing.items()) or "servable")
        + "; " + "; ".join(f"{k}: {problems[k]}" for k in shown if k in problems)
        + f"; catalogue coverage {problems['coverage']:.1%}",
        metadata={k: dg.MetadataValue.json(v) if isinstance(v, (list, dict)) else v for k, v in problems.items()},
    )


@dg.asset(group_name="serving", ins={name: dg.AssetIn(name) for name in GENERATOR_ASSETS.values()}, kinds={"parquet", "duckdb"})
def similar_items_snapshot(
    config: SnapshotConfig, model_leaderboard: pl.DataFrame, items: pl.DataFrame, **models
) -> dg.Output[pl.DataFrame]:
    """"More like this" for every item: the N most similar items that can be sold, from the best similarity model."""
    ranked = [m for m in model_leaderboard["model"].to_list() if m not in ("ranker", "popularity")]
    chosen = ranked[0] if ranked else "popularity"
    model = models[f"{chosen}_model"]
    known_items = [i for i in items["item_id"].to_list() if model.is_known_item([i])[0]]
    snapshot = build_similar(model, known_items, _available(items), N=config.n)
    return dg.Output(
        snapshot,
        metadata={
            "rows": dg.MetadataValue.int(snapshot.height),
            "items": dg.MetadataValue.int(snapshot["item_id"].n_unique()),
            "model": dg.MetadataValue.text(f"{chosen}_model"),
            "preview": dg.MetadataValue.md(markdown_table(snapshot, rows=10)),
        },
    )


@dg.asset(group_name="serving", kinds={"parquet", "duckdb"})
def popular_items_snapshot(
    config: SnapshotConfig, events: pl.DataFrame, items: pl.DataFrame, users: pl.DataFrame
) -> dg.Output[pl.DataFrame]:
    """The cold-start fallback: most popular sellable items overall, per category, per user segment, and both."""
    snapshot = build_popular(events, items, users, N=config.n, days=config.popular_days)
    return dg.Output(
        snapshot,
        metadata={
            "rows": dg.MetadataValue.int(snapshot.height),
            "categories": dg.MetadataValue.int(snapshot["category"].n_unique()),
            "segments": dg.MetadataValue.int(snapshot["segment"].n_unique()),
            "preview": dg.MetadataValue.md(markdown_table(snapshot.filter(pl.col("segment").is_null() & pl.col("category").is_null()), rows=10)),
        },
    )
