"""`ranker_model`: the LightGBM LambdaRank re-ranker, graded against its best single input."""

import dagster as dg
import polars as pl

from recs_assets.evaluation.pipeline_eval import grade_ranker
from recs_assets.models import MODELS
from recs_assets.models.ranker import LightGBMRanker
from recs_assets.tracking import log_ranker_run
from recs_assets.training.splits import split_from_frame

HOLDOUT_K = 10


class RankerConfig(dg.Config):
    """LightGBM's settings (None = the ranker's tuned default)."""

    n_estimators: int | None = None
    learning_rate: float | None = None
    num_leaves: int | None = None
    min_child_samples: int | None = None
    seed: int | None = None


@dg.asset(
    group_name="models",
    io_manager_key="model_io_manager",
    required_resource_keys={"mlflow", "candidate_models", "interaction_weights"},
    ins={f"{name}_model": dg.AssetIn(f"{name}_model") for name in MODELS},
    kinds={"lightgbm", "mlflow"},
)
def ranker_model(
    context: dg.AssetExecutionContext,
    config: RankerConfig,
    ranking_training_set: pl.DataFrame,
    train_test_split: pl.DataFrame,
    events: pl.DataFrame,
    items: pl.DataFrame,
    users: pl.DataFrame,
    **generators,
):
    """Re-orders the generators' combined proposals using what we know of the user and the item (LightGBM LambdaRank).

    Graded on the same held-out data as the generators; the metadata shows whether it beats the best of them.
    """
    n_candidates = context.resources.candidate_models.n_candidates
    settings = {k: v for k, v in config.model_dump().items() if v is not None}
    ranker = LightGBMRanker(**settings).fit(ranking_training_set)
    named = {key.removesuffix("_model"): model for key, model in generators.items()}
    metrics, inputs = grade_ranker(
        ranker, named, split_from_frame(train_test_split), events, items, users,
        context.resources.interaction_weights.params(), k=HOLDOUT_K, n_candidates=n_candidates,
    )
    input_ndcg = {name: m["ndcg@10"] for name, m in inputs.items()}
    best_name = max(input_ndcg, key=input_ndcg.get)
    metrics.update({"fit_seconds": ranker.fit_seconds, "best_input_ndcg@10": input_ndcg[best_name]})
    metrics["lift_over_best_input"] = metrics["ndcg@10"] - input_ndcg[best_name]
    run_id, version = log_ranker_run(
        context.resources.mlflow, "ranker_model", ranker, metrics, {"n_candidates": n_candidates, "best_input": best_name}
    )
    return dg.Output(
        ranker,
        metadata={
            **{key: dg.MetadataValue.float(float(value)) for key, value in metrics.items()},
            "best_input": dg.MetadataValue.text(best_name),
            "inputs_ndcg@10": dg.MetadataValue.json(input_ndcg),
            "feature_importance": dg.MetadataValue.json(dict(list(ranker.importance().items())[:15])),
            "mlflow_run_id": dg.MetadataValue.text(run_id),
            "model_version": dg.MetadataValue.int(version),
        },
    )
