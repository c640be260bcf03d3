"""The candidate generator assets: popularity_model, item_knn_model, ease_model, als_model, bpr_model.

Each fits one model on the training interactions, grades it on the held-out part of the split, and
records the run in MLflow (parameters, metrics, the model) with a new version in the model registry.
"""

import dagster as dg
import polars as pl

from recs_assets.evaluation.holdout import holdout_metrics, holdout_truth
from recs_assets.models import MODELS
from recs_assets.tracking import log_model_run
from recs_assets.training.ranking_set import fit_generator
from recs_assets.training.splits import split_from_frame
from resources.candidate_models import CandidateModels

HOLDOUT_K = 10

DESCRIPTIONS = {
    "popularity": "The baseline every other model must beat: the most popular items the user has not had yet (also per category).",
    "item_knn": "Item-to-item nearest neighbours (cosine): recommends items similar to what the user already liked.",
    "ease": "EASE, a closed-form linear item-to-item model that is strong on sparse shop data.",
    "als": "Matrix factorisation by alternating least squares (implicit ALS): learns hidden taste dimensions.",
    "bpr": "Matrix factorisation trained to rank liked items above the rest (Bayesian personalised ranking).",
}


def build_candidate_generator(name: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=f"{name}_model",
        group_name="models",
        io_manager_key="model_io_manager",
        required_resource_keys={"mlflow", "candidate_models"},
        description=DESCRIPTIONS[name],
        kinds={"python", "mlflow"},
    )
    def candidate_generator(
        context: dg.AssetExecutionContext,
        training_interactions: pl.DataFrame,
        training_item_features: pl.DataFrame,
        train_test_split: pl.DataFrame,
    ):
        models: CandidateModels = context.resources.candidate_models
        model = fit_generator(models.build(name), training_interactions, training_item_features)
        truth = holdout_truth(split_from_frame(train_test_split))
        metrics = holdout_metrics(model, truth, HOLDOUT_K)
        metrics["fit_seconds"] = model.fit_seconds
        if model.training_loss is not None:
            metrics["training_loss"] = model.training_loss
        run_id, version = log_model_run(context.resources.mlflow, f"{name}_model", model, metrics)
        return dg.Output(
            model,
            metadata={
                **{key: dg.MetadataValue.float(float(value)) for key, value in metrics.items()},
                "params": dg.MetadataValue.json(model.params()),
                "mlflow_run_id": dg.MetadataValue.text(run_id),
                "model_version": dg.MetadataValue.int(version),
                "users": dg.MetadataValue.int(model.n_users),
                "items": dg.MetadataValue.int(model.n_items),
            },
        )

    return candidate_generator


candidate_generators = [build_candidate_generator(name) for name in MODELS]
