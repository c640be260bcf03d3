"""Features as they were at the split's cut-off: what the models may learn from, and nothing later."""

import dagster as dg
import polars as pl

from recs_assets.features.sql_runner import run_sql
from recs_assets.metadata import preview
from recs_assets.training.splits import split_from_frame
from resources.interaction_weights import InteractionWeights


@dg.asset(group_name="training", kinds={"duckdb", "sql", "parquet"})
def training_interactions(
    interaction_weights: InteractionWeights, train_test_split: pl.DataFrame
) -> dg.Output[pl.DataFrame]:
    """How strongly each user liked each item, from the training part only (sql/user_item_interactions.sql at the cut-off).

    Every candidate model learns from this table.
    """
    split = split_from_frame(train_test_split)
    table = run_sql("user_item_interactions", {"events": split.train}, {"cutoff": split.cutoff, **interaction_weights.params()})
    return dg.Output(
        table,
        metadata={
            "rows": dg.MetadataValue.int(table.height),
            "users": dg.MetadataValue.int(table["user_id"].n_unique()),
            "items": dg.MetadataValue.int(table["item_id"].n_unique()),
            "preview": preview(table),
        },
    )


@dg.asset(group_name="training", kinds={"duckdb", "sql", "parquet"})
def training_item_features(
    train_test_split: pl.DataFrame, events: pl.DataFrame, items: pl.DataFrame
) -> dg.Output[pl.DataFrame]:
    """Each item as it stood at the cut-off: demand so far, conversion rates, and whether it could be sold then.

    Counts use only events before the cut-off. Availability also reads later sales, on purpose: a
    listing sold after the cut-off was still for sale at it (that is a fact about the cut-off, not a
    hint about anyone's taste).
    """
    split = split_from_frame(train_test_split)
    table = run_sql("item_features", {"events": events, "items": items}, {"cutoff": split.cutoff})
    return dg.Output(
        table,
        metadata={
            "rows": dg.MetadataValue.int(table.height),
            "available_items": dg.MetadataValue.int(int(table["is_available"].sum())),
            "preview": preview(table),
        },
    )
