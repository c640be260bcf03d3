"""The `serving` group: what the API serves (recommendation_snapshot, similar_items_snapshot,
popular_items_snapshot, user_history_snapshot, session_model_snapshot)."""

import shutil
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl

from recs_assets.contract import LIST_N
from recs_assets.defs.common import preview
from recs_assets.defs.evaluation import REFIT_ASSETS, REFIT_RANKER_ASSET, SESSION_MODELS, serving_session_model
from recs_assets.evaluation.leaderboard import similarity_source
from recs_assets.defs.models import GENERATOR_ASSETS
from recs_assets.feature_store import AS_OF, tables_as_of
from recs_assets.evaluation.session_protocol import NoSessions, fit_blend_weight, held_out_sessions
from recs_assets.serving.store import SNAPSHOT_FILES
from recs_assets.training.splits import split_from_frame
from recs_assets.layout import HomeLayout
from recs_assets.profiling import markdown_table
from recs_assets.serving.snapshots import (
    ACTIVE_USER_COLUMNS,
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
    # Of the events, only who was active when: the whole table (2 GiB at 10M events) for three of its columns.
    ins={**{name: dg.AssetIn(name) for name in [*REFIT_ASSETS.values(), REFIT_RANKER_ASSET]},
         "events": dg.AssetIn("events", metadata={"columns": list(ACTIVE_USER_COLUMNS)})},
    kinds={"parquet", "duckdb"},
)
def recommendation_snapshot(
    context: dg.AssetExecutionContext,
    config: SnapshotConfig,
    served_model: pl.DataFrame,
    events: pl.DataFrame,
    items: pl.DataFrame,
    users: pl.DataFrame,
    user_history_snapshot: pl.DataFrame,
    popular_items_snapshot: pl.DataFrame,
    online_feature_store: pl.DataFrame,
    user_item_interactions: pl.DataFrame,
    **models,
) -> dg.Output[pl.DataFrame]:
    """Top-N recommendations for every active user from the champion refitted on all data, nothing they already have, nothing sold.

    Versioned by the served MLflow version (columns `model`, `model_version`) and the graded version it
    was refitted from (`evaluated_version`).
    """
    keep_previous(context.resources.home.root, "recommendation_snapshot")
    champion = served_model.row(0, named=True)
    generators = {name: models[asset] for name, asset in REFIT_ASSETS.items()}
    # Today's features from the feature store, read with the point-in-time join at the moment they were
    # published (the newest event): the tables the models were trained on, as they stand now.
    as_of = online_feature_store[AS_OF].max()
    known = {"interactions": user_item_interactions, **tables_as_of(HomeLayout(context.resources.home.root), as_of)}
    user_ids = active_users(events, config.active_days)
    snapshot = build_recommendations(
        champion["champion"], generators, models[REFIT_RANKER_ASSET], user_ids, known, user_history_snapshot,
        _available(items), N=config.n, n_candidates=context.resources.candidate_models.n_candidates,
        fallback=popular_items_snapshot, users=users,
    ).with_columns(
        pl.lit(champion["registered_model"]).alias("model"), pl.lit(champion["version"], dtype=pl.Int64).alias("model_version"),
        pl.lit(champion["evaluated_version"], dtype=pl.Int64).alias("evaluated_version"),
    )
    return dg.Output(
        snapshot,
        metadata={
            "rows": dg.MetadataValue.int(snapshot.height),
            "users": dg.MetadataValue.int(snapshot["user_id"].n_unique()),
            "model": dg.MetadataValue.text(
                f"{champion['registered_model']} v{champion['version']} (refit of graded v{champion['evaluated_version']})"
            ),
            "rows_by_source": dg.MetadataValue.json(dict(snapshot.group_by("source").len().iter_rows())),
            "features_as_of": dg.MetadataValue.text(as_of.isoformat()),
            "preview": preview(snapshot, rows=10, items=items),
        },
    )


@dg.asset_check(
    asset=recommendation_snapshot,
    blocking=True,
    additional_ins={"events": dg.AssetIn("events", metadata={"columns": [*ACTIVE_USER_COLUMNS, "item_id"]}),
                    "items": dg.AssetIn("items"), "user_history_snapshot": dg.AssetIn("user_history_snapshot")},
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


@dg.asset(group_name="serving", ins={name: dg.AssetIn(name) for name in REFIT_ASSETS.values()}, kinds={"parquet", "duckdb"})
def similar_items_snapshot(
    config: SnapshotConfig, model_leaderboard: pl.DataFrame, items: pl.DataFrame, **models
) -> dg.Output[pl.DataFrame]:
    """"More like this" for every item: the N most similar items that can be sold, from the best similarity model (refitted on all data)."""
    chosen = similarity_source(model_leaderboard["model"].to_list() if model_leaderboard.height else [])
    model = models[REFIT_ASSETS[chosen]]
    known_items = [i for i in items["item_id"].to_list() if model.is_known_item([i])[0]]
    snapshot = build_similar(model, known_items, _available(items), N=config.n)
    return dg.Output(
        snapshot,
        metadata={
            "rows": dg.MetadataValue.int(snapshot.height),
            "items": dg.MetadataValue.int(snapshot["item_id"].n_unique()),
            "model": dg.MetadataValue.text(f"{chosen}_model"),
            "preview": preview(snapshot, rows=10, items=items),
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
            # The overall list (no segment, no category filter), each item with its own title and category.
            "preview": preview(snapshot.filter(pl.col("segment").is_null() & pl.col("category").is_null()).drop("segment", "category"), rows=10, items=items),
        },
    )


# The session models: the generators that predict from a visit (models/sequences.py).


@dg.asset(
    group_name="serving",
    required_resource_keys={"home"},
    ins={
        **{GENERATOR_ASSETS[name]: dg.AssetIn(GENERATOR_ASSETS[name]) for name in SESSION_MODELS},
        **{REFIT_ASSETS[name]: dg.AssetIn(REFIT_ASSETS[name]) for name in SESSION_MODELS},
    },
    kinds={"parquet", "numpy"},
)
def session_model_snapshot(
    context: dg.AssetExecutionContext,
    config: SnapshotConfig,
    session_metrics: pl.DataFrame,
    champion_model: pl.DataFrame,
    holdout_recommendations: pl.DataFrame,
    train_test_split: pl.DataFrame,
    **models,
) -> dg.Output[pl.DataFrame]:
    """The model that personalises a visit as it happens: the best session model, and how much its list weighs for known shoppers.

    The API scores each live visit with it: shoppers without a precomputed list get its next items;
    for the others its list is merged with theirs, with the weight that gave the best MRR@20 on known
    shoppers' held-out visits (the graded model, on visits it never saw). It serves refitted on all
    data, written beside the other snapshots as `session_model_snapshot.npz`.
    """
    chosen, reason = serving_session_model(session_metrics)
    champion = champion_model.row(0, named=True)["champion"]
    served_list = holdout_recommendations.filter((pl.col("model") == champion) & (pl.col("rank") <= config.n))
    weight, curve, fitted = 0.5, {}, False
    try:
        cases = held_out_sessions(split_from_frame(train_test_split))
        weight, curve = fit_blend_weight(models[GENERATOR_ASSETS[chosen]], cases.filter(pl.col("segment") == "known"),
                                         served_list.select("user_id", "item_id", "rank"))
        fitted = bool(curve)
    except NoSessions as error:
        reason += f"; blend weight not fitted ({error}): an even mix"
    if fitted is False and "not fitted" not in reason:
        weight = 0.5
        reason += "; blend weight not fitted (no held-out visit of a shopper with a precomputed list): an even mix"
    model = models[REFIT_ASSETS[chosen]]
    model.save(HomeLayout(context.resources.home.root).lake / SNAPSHOT_FILES["session_model"])
    table = pl.DataFrame({"model": [f"{chosen}_model"], "blend_weight": [float(weight)], "blend_fitted": [fitted],
                          "reason": [reason], "items": [model.n_items]})
    return dg.Output(
        table,
        metadata={
            "rows": dg.MetadataValue.int(table.height),
            "model": dg.MetadataValue.text(f"{chosen}_model"),
            "blend_weight": dg.MetadataValue.float(float(weight)),
            "reason": dg.MetadataValue.text(reason),
            "mrr_by_weight": dg.MetadataValue.json({str(k): round(v, 5) for k, v in curve.items()}),
        },
    )
