"""The `models` group: the candidate generators and the LightGBM re-ranker, each fitted once and tracked in MLflow.

Each asset fits its model on the training features, records the run in MLflow (parameters, fit time,
the model) with a new version in the model registry, and hands the model on. Grading happens once,
for every model alike, in the `evaluation` group.
"""

import dagster as dg
import polars as pl

from recs_assets.models import MODELS
from recs_assets.models.registry import candidate_generators as generator_classes
from recs_assets.models.ranker import LightGBMRanker
from recs_assets.tracking import EVALUATED, RUN_TAG, STAGE_TAG, log_model_run, log_ranker_run
from recs_assets.training.ranking_set import fit_generator
from resources.candidate_models import CandidateModels

DESCRIPTIONS = {
    "popularity": "The baseline every other model must beat: the most popular items the user has not had yet (also per category).",
    "item_knn": "Item-to-item nearest neighbours (cosine): recommends items similar to what the user already liked.",
    "ease": "EASE, a closed-form linear item-to-item model that is strong on sparse shop data.",
    "als": "Matrix factorisation by alternating least squares (implicit ALS): learns hidden taste dimensions.",
    "spark_als": "Matrix factorisation by alternating least squares on Spark MLlib: learns hidden taste dimensions where the data lives.",
    "bpr": "Matrix factorisation trained to rank liked items above the rest (Bayesian personalised ranking).",
    "session_knn": "Session-based nearest neighbours (V-SKNN): what shoppers whose visit looked like this one went on to look at; needs no account.",
    "gru4rec": "GRU4Rec, a recurrent network (PyTorch) that reads a visit in order and predicts the next item; needs no account.",
    "content": "Matches listings to shoppers by what they are (category, brand, price band, condition, title words): reaches brand-new listings nobody has seen yet.",
    "two_tower": "Two-tower retrieval (PyTorch): a shopper vector from their history and an item vector from id and attributes, searched with a nearest-neighbour index.",
}
GENERATOR_ASSETS = {name: f"{name}_model" for name in MODELS}
RANKER_ASSET = "ranker_model"


def graded_version_tags(context: dg.AssetExecutionContext) -> dict[str, str]:
    """Registry tags of a version fitted for grading: the gate promotes this run's version, never another's."""
    return {RUN_TAG: context.run.run_id, STAGE_TAG: EVALUATED}


def _fit_metadata(model, run_id: str, version: int) -> dict:
    metadata = {
        "fit_seconds": dg.MetadataValue.float(float(model.fit_seconds or 0.0)),
        "params": dg.MetadataValue.json(model.params()),
        "mlflow_run_id": dg.MetadataValue.text(run_id),
        "model_version": dg.MetadataValue.int(version),
    }
    notes = getattr(model, "fit_notes", None)
    if notes:
        metadata["fit_notes"] = dg.MetadataValue.json(notes)
    return metadata


def build_candidate_generator(name: str, engine: str = "duckdb") -> dg.AssetsDefinition:
    """The asset fitting generator `name` with the class the registry chooses for this feature engine."""
    cls = generator_classes(engine)[name]
    @dg.asset(
        name=GENERATOR_ASSETS[name],
        group_name="models",
        io_manager_key="model_io_manager",
        required_resource_keys={"mlflow", "candidate_models"},
        description=DESCRIPTIONS[cls.name],
        kinds={"python", "mlflow", *(("spark",) if cls.name.startswith("spark") else ())},
        tags={"recs/implementation": cls.name},
        # Session models also learn from the visits in order.
        ins={"training_session_sequences": dg.AssetIn()} if getattr(cls, "uses_sequences", False) else {},
    )
    def candidate_generator(
        context: dg.AssetExecutionContext, training_interactions: pl.DataFrame, training_item_features: pl.DataFrame,
        **sequences: pl.DataFrame,
    ):
        models: CandidateModels = context.resources.candidate_models
        model = fit_generator(models.build(name), training_interactions, training_item_features,
                              sequences=sequences.get("training_session_sequences"))
        metrics = {"fit_seconds": model.fit_seconds}
        if model.training_loss is not None:
            metrics["training_loss"] = model.training_loss
        run_id, version = log_model_run(context.resources.mlflow, GENERATOR_ASSETS[name], model, metrics,
                                        version_tags=graded_version_tags(context))
        return dg.Output(
            model,
            metadata={
                **_fit_metadata(model, run_id, version),
                "users": dg.MetadataValue.int(model.n_users),
                "items": dg.MetadataValue.int(model.n_items),
            },
        )

    return candidate_generator


def build_candidate_generators(engine: str = "duckdb") -> list[dg.AssetsDefinition]:
    """One asset per generator, implemented as the feature engine asks (the resource `candidate_models`
    must be given the same engine, so the ranker's lessons and the refits fit the same classes)."""
    return [build_candidate_generator(name, engine) for name in MODELS]




class RankerConfig(dg.Config):
    """LightGBM's settings (None = the ranker's tuned default)."""

    n_estimators: int | None = None
    learning_rate: float | None = None
    num_leaves: int | None = None
    min_child_samples: int | None = None
    seed: int | None = None
    # The gate: this share of lesson lists is held out, and the ranker keeps its best generator's order
    # when it cannot beat it there (gate False: always its own order; 0: no held-out lists, no gate).
    validation_fraction: float | None = None
    gate: bool | None = None
    early_stopping_rounds: int | None = None


def gate_outcome(ranker: LightGBMRanker) -> str:
    """One line on what the ranker's gate decided, for the UI and the MLflow version."""
    v = ranker.validation
    if not v or v.get("best_generator") is None:
        return "no gate: no held-out lesson lists"
    figures = f"ranker {v['ranker_ndcg@10']:.4f} vs {v['best_generator']} {v['best_generator_ndcg@10']:.4f} nDCG@10 on held-out lesson lists"
    if ranker.fallback is not None:
        return f"fell back to {ranker.fallback}'s order: {figures}"
    return f"keeps its own order: {figures}"


@dg.asset(
    group_name="models",
    io_manager_key="model_io_manager",
    required_resource_keys={"mlflow", "candidate_models"},
    kinds={"lightgbm", "mlflow"},
)
def ranker_model(context: dg.AssetExecutionContext, config: RankerConfig, ranking_training_set: pl.DataFrame):
    """Re-orders the generators' combined proposals using what we know of the user and the item (LightGBM LambdaRank).

    Learns from `ranking_training_set`; graded with every other model in `model_metrics`, where the
    leaderboard shows whether it beats the best of its inputs.
    """
    settings = {k: v for k, v in config.model_dump().items() if v is not None}
    if ranking_training_set.height == 0 or int(ranking_training_set["label"].sum()) == 0:
        # Too little behaviour for a lesson with a positive: the generators serve on their own.
        why = "not trained: no lesson has a positive candidate (too little behaviour before the cut-off)"
        return dg.Output(None, metadata={"trained": dg.MetadataValue.bool(False), "note": dg.MetadataValue.text(why)})
    ranker = LightGBMRanker(**settings).fit(ranking_training_set)
    gate = gate_outcome(ranker)
    run_id, version = log_ranker_run(
        context.resources.mlflow, RANKER_ASSET, ranker,
        {"fit_seconds": ranker.fit_seconds, **{f"gate_{k}": v for k, v in ranker.validation.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}},
        {"n_candidates": context.resources.candidate_models.n_candidates},
        version_tags={**graded_version_tags(context), "gate": gate},
    )
    return dg.Output(
        ranker,
        metadata={
            **_fit_metadata(ranker, run_id, version),
            "trained": dg.MetadataValue.bool(True),
            "gate": dg.MetadataValue.text(gate),
            "feature_importance": dg.MetadataValue.json(dict(list(ranker.importance().items())[:15])),
        },
    )
