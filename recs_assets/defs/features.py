"""The `features` group, the feature store's tables: each runs its SQL file (`sql/<asset>.sql`) on the clean events.

These are today's features (no cut-off: everything known so far), the ones serving reads. Training
(`training_features`) computes the same SQL once at its own cut-off, so models never see the future.
"""

import re
from datetime import UTC, datetime

import dagster as dg
import polars as pl

from recs_assets.feature_store import FEATURE_VIEWS, newest_moment, publish
from recs_assets.features.sql_runner import required_tables, sql_path
from recs_assets.layout import HomeLayout
from recs_assets.defs.common import preview
from resources.feature_engine import FeatureEngine
from resources.interaction_weights import InteractionWeights

FEATURE_TABLES = (
    "user_item_interactions",
    "user_features",
    "user_category_affinity",
    "item_features",
    "session_sequences",
    "user_sequences",
)
# The tables the feature store keeps (its feature views): user, item and user x category.
STORE_VIEWS = tuple(FEATURE_VIEWS)


def sql_summary(name: str) -> str:
    """The first sentence of the SQL file's header comment: the table's description in the UI."""
    header = []
    for line in sql_path(name).read_text().splitlines():
        if not line.startswith("--"):
            break
        header.append(line.lstrip("-").strip())
    text = " ".join(header)
    text = re.sub(rf"^{name}:\s*", "", text)
    sentence = text.split(". ")[0].rstrip(".")
    return sentence[:1].upper() + sentence[1:] + "."


def build_feature_table(name: str) -> dg.AssetsDefinition:
    """One feature table asset: its inputs are the tables its SQL reads."""
    inputs = required_tables(sql_path(name).read_text())

    @dg.asset(
        name=name,
        group_name="features",
        ins={table: dg.AssetIn(table) for table in inputs},
        description=f"{sql_summary(name)} Defined in sql/{name}.sql.",
        kinds={"duckdb", "sql", "parquet"},
    )
    def feature_table(
        interaction_weights: InteractionWeights, feature_engine: FeatureEngine, **tables: pl.DataFrame
    ) -> dg.Output[pl.DataFrame]:
        # DuckDB or Spark SQL, chosen by configuration (RECS_ENGINE): the same SQL file either way.
        table = feature_engine.run_sql(name, tables, {"cutoff": None, **interaction_weights.params()})
        return dg.Output(
            table,
            metadata={
                "rows": dg.MetadataValue.int(table.height),
                "columns": dg.MetadataValue.int(table.width),
                "sql": dg.MetadataValue.path(str(sql_path(name))),
                "engine": dg.MetadataValue.text(feature_engine.engine),
                "preview": preview(table),
            },
        )

    return feature_table


feature_tables = [build_feature_table(name) for name in FEATURE_TABLES]


@dg.asset(
    group_name="features",
    required_resource_keys={"home"},
    # Of the events, only their times: the moment today's tables describe (`newest_moment`).
    ins={**{name: dg.AssetIn(name) for name in STORE_VIEWS}, "events": dg.AssetIn("events", metadata={"columns": ["event_at"]})},
    kinds={"sqlite", "parquet"},
)
def online_feature_store(context: dg.AssetExecutionContext, events: pl.DataFrame, **tables: pl.DataFrame) -> dg.Output[pl.DataFrame]:
    """Today's user, item and user-category features kept in the feature store: added to its history as of the newest event, and copied to the online store the API reads by id.

    The history (one file per table and moment) also holds every training cut-off's tables, so a
    training set asks the store what was known when, with a point-in-time join.
    """
    layout = HomeLayout(context.resources.home.root)
    # Undated events (Steam) describe no moment: today's tables are then stamped with the run's time.
    as_of = newest_moment(events) or datetime.now(UTC)
    summary = publish(layout, {name: tables[name] for name in STORE_VIEWS}, as_of)
    return dg.Output(
        summary,
        metadata={
            "as_of": dg.MetadataValue.text(as_of.isoformat()),
            "note": dg.MetadataValue.text(
                f"online as of {as_of:%Y-%m-%d %H:%M}: "
                + ", ".join(f"{view} {rows:,}" for view, rows in summary.select("view", "rows").iter_rows())
            ),
            "online_store": dg.MetadataValue.path(str(layout.online_store)),
            "offline_store": dg.MetadataValue.path(str(layout.offline_store)),
            **{f"rows_{view}": dg.MetadataValue.int(rows) for view, rows in summary.select("view", "rows").iter_rows()},
        },
    )
