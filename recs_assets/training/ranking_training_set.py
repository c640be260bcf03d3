"""`ranking_training_set`: the re-ranker's lessons, built only from the training part of the split."""

import dagster as dg
import polars as pl

from recs_assets.metadata import preview
from recs_assets.training.ranking_set import build_ranking_set
from recs_assets.training.splits import split_from_frame
from resources.candidate_models import CandidateModels
from resources.interaction_weights import InteractionWeights


class RankingSetConfig(dg.Config):
    """How the lessons are made: the label windows and how many users per window."""

    label_days: float = 7.0
    label_fraction: float = 0.25
    n_windows: int = 2
    max_users: int = 5_000
    seed: int = 42


@dg.asset(group_name="training", required_resource_keys={"candidate_models", "interaction_weights"}, kinds={"parquet", "duckdb"})
def ranking_training_set(
    context: dg.AssetExecutionContext,
    config: RankingSetConfig,
    train_test_split: pl.DataFrame,
    events: pl.DataFrame,
    items: pl.DataFrame,
    users: pl.DataFrame,
) -> dg.Output[pl.DataFrame]:
    """Candidate items proposed by every generator, with user and item features, labelled by what the user did next.

    Generators are fitted on the training part up to an inner cut-off; labels come from the window
    after it, so the ranker learns to predict the future from the past, as it must in production.
    """
    models: CandidateModels = context.resources.candidate_models
    weights: InteractionWeights = context.resources.interaction_weights
    frame, described = build_ranking_set(
        split_from_frame(train_test_split),
        events,
        items,
        users,
        models.build_all,
        weights=weights.params(),
        label_days=config.label_days,
        label_fraction=config.label_fraction,
        n_windows=config.n_windows,
        n_candidates=models.n_candidates,
        max_users=config.max_users,
        seed=config.seed,
    )
    return dg.Output(
        frame,
        metadata={
            "rows": dg.MetadataValue.int(frame.height),
            "positive_pairs": dg.MetadataValue.int(described["positive_pairs"]),
            "windows": dg.MetadataValue.json(described["windows"]),
            "preview": preview(frame.select("user_id", "item_id", "label", "n_generators")),
        },
    )
