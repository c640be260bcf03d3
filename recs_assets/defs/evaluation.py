"""The `evaluation` group: every model's held-out lists built once, graded alike, ranked, and the gate to serving.

    holdout_recommendations -> model_metrics -> model_leaderboard -> champion_model (+ champion_beats_baseline)
"""

import dagster as dg
import polars as pl

from recs_assets.contract import METRIC_K
from recs_assets.defs.common import preview
from recs_assets.defs.models import GENERATOR_ASSETS, RANKER_ASSET
from recs_assets.evaluation.grading import grade_models
from recs_assets.evaluation.leaderboard import decide_champion, leaderboard
from recs_assets.evaluation.pipeline import holdout_lists, lists_by_model
from recs_assets.profiling import markdown_table
from recs_assets.tracking import current_champion, log_metrics_to_run, move_champion_alias
from recs_assets.training.splits import holdout_truth, split_from_frame

MODEL_ASSETS = [*GENERATOR_ASSETS.values(), RANKER_ASSET]
PRIMARY_METRIC = f"ndcg@{METRIC_K}"


class HoldoutConfig(dg.Config):
    """How long each graded list is (the metric cut-off k)."""

    k: int = METRIC_K


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
    users = holdout_truth(split)["user_id"].unique().sort().to_list()
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
    truth = holdout_truth(split)
    table = grade_models(
        lists_by_model(holdout_recommendations, config.k), truth, training_interactions, training_item_features, config.k
    ).with_columns(
        pl.lit(split.protocol).alias("protocol"),
        pl.lit(split.cutoff.isoformat() if split.cutoff else None, dtype=pl.String).alias("cutoff"),
    )
    overall = table.filter(pl.col("segment") == "all").drop("segment", "protocol", "cutoff")
    home = context.resources.home.root
    for model, run_id in _mlflow_run_ids(context).items():
        row = overall.filter(pl.col("model") == model)
        if row.height:
            log_metrics_to_run(home, run_id, {k: v for k, v in row.row(0, named=True).items() if k != "model"})
    return dg.Output(
        table,
        metadata={
            "rows": dg.MetadataValue.int(table.height),
            "protocol": dg.MetadataValue.text(split.protocol),
            "test_users": dg.MetadataValue.int(truth["user_id"].n_unique()),
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
    """A challenger must beat the champion by this relative margin on the primary metric."""

    primary_metric: str = PRIMARY_METRIC
    margin: float = 0.02


@dg.asset(group_name="evaluation", required_resource_keys={"home", "mlflow"}, kinds={"mlflow"})
def champion_model(context: dg.AssetExecutionContext, config: ChampionConfig, model_leaderboard: pl.DataFrame) -> dg.Output[pl.DataFrame]:
    """The model that serves: a challenger replaces the champion only if it wins by the configured margin.

    The MLflow registry alias `champion` moves with it, and the reason is recorded on the model version.
    """
    home = context.resources.home.root
    scores = dict(model_leaderboard.select("model", config.primary_metric).iter_rows())
    names = [f"{m}_model" for m in scores]
    holder = current_champion(home, names)
    decision = decide_champion(scores, holder.removesuffix("_model") if holder else None, margin=config.margin)
    version = move_champion_alias(home, f"{decision.champion}_model", names, decision.reason)
    context.resources.mlflow.set_tags(
        {"champion": f"{decision.champion}_model v{version}", "champion_reason": decision.reason}
    )
    table = pl.DataFrame(
        {
            "champion": [decision.champion],
            "registered_model": [f"{decision.champion}_model"],
            "version": [version],
            "promoted": [decision.promoted],
            "primary_metric": [config.primary_metric],
            "score": [scores[decision.champion]],
            "baseline_score": [scores.get("popularity")],
            "reason": [decision.reason],
        }
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
    """The serving model must beat the popularity baseline: anything worse never reaches serving."""
    row = champion_model.row(0, named=True)
    baseline = row["baseline_score"]
    passed = baseline is None or row["champion"] == "popularity" or row["score"] > baseline
    return dg.AssetCheckResult(
        passed=passed,
        description=f"{row['champion']} {row['primary_metric']} {row['score']:.4f} vs popularity {baseline if baseline is None else round(baseline, 4)}",
    )
