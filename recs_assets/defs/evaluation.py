"""The `evaluation` group: every model's held-out lists built once, graded alike, ranked, and the gate to serving.

    holdout_recommendations -> model_metrics -> model_leaderboard -> champion_model (+ champion_beats_baseline)
"""

import dagster as dg
import polars as pl

from recs_assets.contract import METRIC_K
from recs_assets.defs.common import preview
from recs_assets.defs.models import GENERATOR_ASSETS, RANKER_ASSET
from recs_assets.evaluation.grading import grade_holdout
from recs_assets.evaluation.leaderboard import baseline_verdict, decide_champion_from_board, leaderboard
from recs_assets.evaluation.pipeline import holdout_lists, lists_by_model
from recs_assets.profiling import markdown_table
from recs_assets.tracking import current_champion, log_metrics_to_run, move_champion_alias
from recs_assets.training.splits import NO_PROTOCOL, split_from_frame

MODEL_ASSETS = [*GENERATOR_ASSETS.values(), RANKER_ASSET]
PRIMARY_METRIC = f"ndcg@{METRIC_K}"


class HoldoutConfig(dg.Config):
    """How long each graded list is (the metric cut-off k), and the seeded bootstrap behind every interval."""

    k: int = METRIC_K
    bootstrap_seed: int = 42


@dg.asset(
    group_name="evaluation",
    required_resource_keys={"candidate_models"},
    ins={name: dg.AssetIn(name) for name in MODEL_ASSETS},
    kinds={"parquet", "duckdb"},
)
def holdout_recommendations(
    context: dg.AssetExecutionContext,
    config: HoldoutConfig,
    train_test_split: pl.DataFrame,
    training_user_features: pl.DataFrame,
    training_item_features: pl.DataFrame,
    training_user_category_affinity: pl.DataFrame,
    **models,
) -> dg.Output[pl.DataFrame]:
    """What each model would have shown every test user: each generator's proposals and the re-ranker's top k over them.

    Built once per run; every grade (overall, by segment, the re-ranker's lift over its inputs) reads these rows.
    """
    split = split_from_frame(train_test_split)
    users = split.truth["user_id"].unique().sort().to_list()
    known = {
        "user_features": training_user_features,
        "item_features": training_item_features,
        "user_category_affinity": training_user_category_affinity,
    }
    generators = {name: models[asset] for name, asset in GENERATOR_ASSETS.items()}
    lists = holdout_lists(
        generators, models[RANKER_ASSET], users, known,
        n_candidates=context.resources.candidate_models.n_candidates, N=config.k,
    )
    return dg.Output(
        lists,
        metadata={
            "rows": dg.MetadataValue.int(lists.height),
            "test_users": dg.MetadataValue.int(len(users)),
            "models": dg.MetadataValue.json(lists["model"].unique(maintain_order=True).to_list()),
            "preview": preview(lists.filter(pl.col("model") == "ranker")),
        },
    )


def _mlflow_run_ids(context: dg.AssetExecutionContext) -> dict[str, str]:
    """Each model asset's MLflow run, read from its latest materialisation (this run's, in a full run)."""
    run_ids = {}
    for asset in MODEL_ASSETS:
        event = context.instance.get_latest_materialization_event(dg.AssetKey(asset))
        metadata = event.asset_materialization.metadata if event and event.asset_materialization else {}
        if "mlflow_run_id" in metadata:
            run_ids[asset.removesuffix("_model")] = metadata["mlflow_run_id"].value
    return run_ids


@dg.asset(group_name="evaluation", required_resource_keys={"home"}, kinds={"parquet", "duckdb", "mlflow"})
def model_metrics(
    context: dg.AssetExecutionContext,
    config: HoldoutConfig,
    holdout_recommendations: pl.DataFrame,
    train_test_split: pl.DataFrame,
    training_interactions: pl.DataFrame,
    training_item_features: pl.DataFrame,
) -> dg.Output[pl.DataFrame]:
    """Every model graded alike on the held-out data: accuracy at k, catalogue coverage, novelty, diversity, popularity bias.

    One row per model and user segment ("all", then cold to heavy users by training history, and new
    items); the ranker is graded on its full pipeline (the generators propose, the ranker orders).
    The "all" figures are also logged on each model's own MLflow run.
    """
    split = split_from_frame(train_test_split)
    if split.protocol == NO_PROTOCOL or holdout_recommendations.height == 0:
        # Too little data to hold anything out: models are trained and served, but nobody is graded.
        empty = pl.DataFrame(schema={"model": pl.String, "segment": pl.String, "users": pl.Int64, "protocol": pl.String,
                                     "protocol_reason": pl.String, "cutoff": pl.String})
        return dg.Output(empty, metadata={"rows": dg.MetadataValue.int(0), "protocol": dg.MetadataValue.text(split.protocol),
                                          "note": dg.MetadataValue.text(split.reason or "no held-out data")})
    home = context.resources.home.root
    lists = lists_by_model(holdout_recommendations, config.k)
    holder = current_champion(home, [f"{m}_model" for m in lists])
    table = grade_holdout(
        lists, split, training_interactions, training_item_features, config.k,
        champion=holder.removesuffix("_model") if holder else None, seed=config.bootstrap_seed,
    )
    truth = split.truth
    overall = table.filter(pl.col("segment") == "all").drop("segment", "protocol", "protocol_reason", "cutoff")
    for model, run_id in _mlflow_run_ids(context).items():
        row = overall.filter(pl.col("model") == model)
        if row.height:
            log_metrics_to_run(home, run_id, {k: v for k, v in row.row(0, named=True).items() if isinstance(v, (int, float))})
    segments = table.filter(pl.col("model") == next(iter(lists))).select("segment", "users")
    return dg.Output(
        table,
        metadata={
            "rows": dg.MetadataValue.int(table.height),
            "protocol": dg.MetadataValue.text(split.protocol),
            "protocol_reason": dg.MetadataValue.text(split.reason or ""),
            "test_users": dg.MetadataValue.int(truth["user_id"].n_unique()),
            "users_per_segment": dg.MetadataValue.json(dict(segments.iter_rows())),
            "overall": dg.MetadataValue.md(markdown_table(overall.with_columns(pl.selectors.float().round(4)), rows=20)),
        },
    )


class LeaderboardConfig(dg.Config):
    primary_metric: str = PRIMARY_METRIC


def _bar_chart(board: pl.DataFrame, metric: str) -> str:
    """A bar chart in Markdown (it renders anywhere the metadata is shown)."""
    top = max(board[metric].max() or 0.0, 1e-12)
    lines = [f"{metric}, best first", "```"]
    for name, value in board.select("model", metric).iter_rows():
        lines.append(f"{name:<11} {'█' * round(40 * value / top):<40} {value:.4f}")
    lines.append("```")
    return "\n".join(lines)


@dg.asset(group_name="evaluation", required_resource_keys={"mlflow"}, kinds={"parquet", "duckdb", "mlflow"})
def model_leaderboard(
    context: dg.AssetExecutionContext, config: LeaderboardConfig, model_metrics: pl.DataFrame
) -> dg.Output[pl.DataFrame]:
    """The models ranked by the primary metric (NDCG@10 by default), with the split protocol written beside the numbers.

    Also logged to this run's MLflow run as `model_leaderboard.json`, beside the models' own runs.
    """
    if model_metrics.height == 0:
        return dg.Output(model_metrics.drop("segment"), metadata={"rows": dg.MetadataValue.int(0),
                         "note": dg.MetadataValue.text("no leaderboard: too little held-out data to grade models")})
    board = leaderboard(model_metrics.filter(pl.col("segment") == "all").drop("segment"), config.primary_metric)
    context.resources.mlflow.log_table(board.to_pandas(), "model_leaderboard.json")
    protocol = board["protocol"][0]
    cutoff = board["cutoff"][0]
    return dg.Output(
        board,
        metadata={
            "rows": dg.MetadataValue.int(board.height),
            "primary_metric": dg.MetadataValue.text(config.primary_metric),
            "protocol": dg.MetadataValue.text(f"{protocol} split" + (f", test from {cutoff}" if cutoff else "")),
            "leader": dg.MetadataValue.text(board["model"][0]),
            "chart": dg.MetadataValue.md(_bar_chart(board, config.primary_metric)),
            "table": dg.MetadataValue.md(markdown_table(board.with_columns(pl.selectors.float().round(4)), rows=20)),
        },
    )


class ChampionConfig(dg.Config):
    """A challenger must beat the champion by this relative margin on the primary metric, and the gain must be
    significant in a paired test over users at level `alpha`."""

    primary_metric: str = PRIMARY_METRIC
    margin: float = 0.02
    alpha: float = 0.05


@dg.asset(group_name="evaluation", required_resource_keys={"home", "mlflow"}, kinds={"mlflow"})
def champion_model(context: dg.AssetExecutionContext, config: ChampionConfig, model_leaderboard: pl.DataFrame) -> dg.Output[pl.DataFrame]:
    """The model that serves: a challenger replaces the champion only if it wins by the configured margin.

    The MLflow registry alias `champion` moves with it, and the reason is recorded on the model version.
    """
    home = context.resources.home.root
    if model_leaderboard.height == 0:
        # No leaderboard (too little data to grade): popularity serves, and says why.
        decision_reason = "no leaderboard (too little held-out data to grade models): the popularity baseline serves"
        version = move_champion_alias(home, "popularity_model", ["popularity_model"], decision_reason)
        table = pl.DataFrame({"champion": ["popularity"], "registered_model": ["popularity_model"], "version": [version],
                              "promoted": [False], "primary_metric": [config.primary_metric], "score": [None],
                              "baseline_score": [None], "p_vs_baseline": [None], "alpha": [config.alpha],
                              "graded": [False], "reason": [decision_reason]},
                             schema_overrides={"score": pl.Float64, "baseline_score": pl.Float64, "p_vs_baseline": pl.Float64})
        return dg.Output(table, metadata={"champion": dg.MetadataValue.text(f"popularity_model v{version}"),
                                          "promoted": dg.MetadataValue.bool(False), "reason": dg.MetadataValue.text(decision_reason)})
    scores = dict(model_leaderboard.select("model", config.primary_metric).iter_rows())
    names = [f"{m}_model" for m in scores]
    holder = current_champion(home, names)
    decision = decide_champion_from_board(
        model_leaderboard, config.primary_metric, holder.removesuffix("_model") if holder else None,
        margin=config.margin, alpha=config.alpha,
    )
    version = move_champion_alias(home, f"{decision.champion}_model", names, decision.reason)
    context.resources.mlflow.set_tags(
        {"champion": f"{decision.champion}_model v{version}", "champion_reason": decision.reason}
    )
    p_vs_baseline = dict(model_leaderboard.select("model", "p_vs_popularity").iter_rows())
    table = pl.DataFrame(
        {
            "champion": [decision.champion],
            "registered_model": [f"{decision.champion}_model"],
            "version": [version],
            "promoted": [decision.promoted],
            "primary_metric": [config.primary_metric],
            "score": [scores[decision.champion]],
            "baseline_score": [scores.get("popularity")],
            "p_vs_baseline": [p_vs_baseline.get(decision.champion)],
            "alpha": [config.alpha],
            "graded": [True],
            "reason": [decision.reason],
        },
        schema_overrides={"p_vs_baseline": pl.Float64, "baseline_score": pl.Float64},
    )
    return dg.Output(
        table,
        metadata={
            "champion": dg.MetadataValue.text(f"{decision.champion}_model v{version}"),
            "promoted": dg.MetadataValue.bool(decision.promoted),
            "reason": dg.MetadataValue.text(decision.reason),
            config.primary_metric: dg.MetadataValue.float(float(scores[decision.champion])),
        },
    )


@dg.asset_check(asset=champion_model, blocking=True)
def champion_beats_baseline(champion_model: pl.DataFrame) -> dg.AssetCheckResult:
    """The serving model must beat the popularity baseline significantly: anything worse never reaches serving.

    When no model beats popularity, popularity itself serves and the check says so; 0.0 against 0.0 never
    passes. With too little data to grade, there is nothing to compare and the check is skipped.
    """
    row = champion_model.row(0, named=True)
    if not row.get("graded", True):
        return dg.AssetCheckResult(passed=True, description=f"skipped: {row['reason']}", metadata={"skipped": row["reason"]})
    passed, description = baseline_verdict(
        row["champion"], row["score"], row["baseline_score"],
        p_value=row.get("p_vs_baseline"), metric=row["primary_metric"], alpha=row.get("alpha", 0.05),
    )
    return dg.AssetCheckResult(passed=passed, description=description)
