"""The `training` group: the split, the features as they were at its cut-off, and the re-ranker's lessons.

Everything here looks only at the past of the split's cut-off, so no model learns from the future it
is graded on.
"""

import dagster as dg
import polars as pl

from recs_assets.defs.common import preview
from recs_assets.feature_store import FEATURE_VIEWS, through_history
from recs_assets.layout import HomeLayout
from recs_assets.training.ranking_set import availability_event_columns, build_ranking_set, features_at
from recs_assets.training.protocol import choose_protocol
from recs_assets.training.splits import NO_PROTOCOL, split_from_frame, split_to_frame
from resources.candidate_models import CandidateModels
from resources.home_folder import HomeFolder
from resources.interaction_weights import InteractionWeights
from resources.marketplace_source import MarketplaceSource


class SplitConfig(dg.Config):
    """How models are graded. `auto` chooses from the data: the last `test_days` when that window holds
    enough evaluable users, else the last (1 - `quantile`) of interactions, else each user's last
    interactions by time; a seeded per-user random hold-out when there is no usable time. Enough =
    max(`min_floor`, min(`min_users`, `min_share` x active users)). Or name one protocol:
    temporal, temporal_quantile, leave_last_out, random, none."""

    protocol: str = "auto"
    test_days: float = 7.0
    quantile: float = 0.8
    test_fraction: float = 0.25
    min_users: int = 200
    min_share: float = 0.25
    min_floor: int = 20
    seed: int = 42


@dg.asset(group_name="training", kinds={"parquet", "duckdb"})
def train_test_split(config: SplitConfig, source: MarketplaceSource, events: pl.DataFrame) -> dg.Output[pl.DataFrame]:
    """The events split into a training part and a later (or held-out) test part that grades every model.

    With timestamps the last days form the test window (how models are used: learn from the past,
    predict the future); without them (Steam) a seeded share of each user's items is held out.
    """
    choice = choose_protocol(
        events,
        requested=config.protocol,
        test_days=config.test_days,
        quantile=config.quantile,
        min_users=config.min_users,
        min_share=config.min_share,
        min_floor=config.min_floor,
        test_fraction=config.test_fraction,
        seed=config.seed,
        has_timestamps=source.has_timestamps,
    )
    split = choice.split
    described = split.describe()
    return dg.Output(
        split_to_frame(split),
        metadata={
            "rows": dg.MetadataValue.int(split.train.height + split.test.height),
            "protocol": dg.MetadataValue.text(split.protocol),
            "protocol_reason": dg.MetadataValue.text(choice.reason),
            "cutoff": dg.MetadataValue.text(str(described["cutoff"])),
            "required_users": dg.MetadataValue.int(choice.required_users),
            "protocol_choice": dg.MetadataValue.json(choice.as_metadata()),
            **{k: dg.MetadataValue.int(v) for k, v in described.items() if isinstance(v, int)},
        },
    )


# The tables the feature store keeps (user, item, user x category): the rest stay the SQL's output.
STORE_VIEWS = tuple(FEATURE_VIEWS)

TRAINING_FEATURES = {
    "training_interactions": (
        "interactions",
        "How strongly each user liked each item, from the training part only (sql/user_item_interactions.sql at "
        "the cut-off): every candidate model learns from this table.",
    ),
    "training_user_features": (
        "user_features",
        "Each user as known at the cut-off (activity, recency, spend, price level, favourite category): what the "
        "re-ranker knows about the shopper.",
    ),
    "training_item_features": (
        "item_features",
        "Each item as it stood at the cut-off: demand so far, conversion rates, and whether it could be sold then "
        "(a listing sold after the cut-off was still for sale at it).",
    ),
    "training_user_category_affinity": (
        "user_category_affinity",
        "Each user's share of interest per category at the cut-off.",
    ),
    "training_session_sequences": (
        "session_sequences",
        "Each visit before the cut-off with the items it looked at, in order: what the session models learn from.",
    ),
}


# Of every event, the training features and the lessons read only what item availability needs (the
# visible past comes from the split): `availability_event_columns`.
ALL_EVENTS_FOR_AVAILABILITY = dg.AssetIn("events", metadata={"columns": availability_event_columns()})


@dg.multi_asset(
    outs={
        name: dg.AssetOut(group_name="training", description=description, kinds={"duckdb", "sql", "parquet"})
        for name, (_, description) in TRAINING_FEATURES.items()
    },
    ins={"events": ALL_EVENTS_FOR_AVAILABILITY},
)
def training_features(
    interaction_weights: InteractionWeights,
    home: HomeFolder,
    train_test_split: pl.DataFrame,
    events: pl.DataFrame,
    items: pl.DataFrame,
    users: pl.DataFrame,
):
    """The feature store's SQL run once at the split's cut-off on the training part; every model, grade and lesson reads it.

    With a cut-off, the user, item and user-category tables are added to the feature store's history as of
    the cut-off and read back from it with the point-in-time join: what was known then, as the store says.
    """
    split = split_from_frame(train_test_split)
    known = features_at(split.train, events, items, users, split.cutoff, interaction_weights.params())
    stored: dict[str, bool] = {}
    if split.cutoff is not None:
        # Per-user protocols (random, leave-last-out) have no one moment to stamp: their tables stay the SQL's.
        read_back = through_history(HomeLayout(home.root), {v: known[v] for v in STORE_VIEWS}, split.cutoff)
        stored = {v: read_back[v].equals(known[v]) for v in STORE_VIEWS}  # shown: the store must say what the SQL said
        known.update(read_back)
    for name, (key, _) in TRAINING_FEATURES.items():
        table = known[key]
        yield dg.Output(
            table,
            name,
            metadata={
                "rows": dg.MetadataValue.int(table.height),
                "cutoff": dg.MetadataValue.text(str(split.cutoff)),
                "source": dg.MetadataValue.text(
                    "feature store (point-in-time join at the cut-off)" if key in stored else "feature SQL at the cut-off"
                ),
                **({"store_matches_sql": dg.MetadataValue.bool(stored[key])} if key in stored else {}),
                "preview": preview(table),
            },
        )


class RankingSetConfig(dg.Config):
    """How the lessons are made: the label windows and how many users per window."""

    label_days: float = 7.0
    label_fraction: float = 0.25
    n_windows: int = 2
    max_users: int = 5_000
    # Each window refits every generator; above this many users they are fitted on the lesson users plus
    # a seeded sample of the others (None: on everyone). Below it (ml-100k, Steam, a 10k-user shop) it changes nothing.
    max_fit_users: int | None = 30_000
    seed: int = 42


@dg.asset(group_name="training", required_resource_keys={"candidate_models", "interaction_weights"}, kinds={"parquet", "duckdb"},
          ins={"events": ALL_EVENTS_FOR_AVAILABILITY})
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
    split = split_from_frame(train_test_split)
    try:
        frame, described = build_ranking_set(
            split, events, items, users, models.build_all,
            weights=weights.params(), label_days=config.label_days, label_fraction=config.label_fraction,
            n_windows=config.n_windows, n_candidates=models.n_candidates, max_users=config.max_users,
            max_fit_users=config.max_fit_users, seed=config.seed,
        )
    except ValueError as error:
        # Too little data for a single lesson: the re-ranker is skipped and the generators serve alone.
        return dg.Output(pl.DataFrame(schema={"user_id": pl.String, "item_id": pl.String, "label": pl.Int32}),
                         metadata={"rows": dg.MetadataValue.int(0), "note": dg.MetadataValue.text(str(error))})
    return dg.Output(
        frame,
        metadata={
            "rows": dg.MetadataValue.int(frame.height),
            "positive_pairs": dg.MetadataValue.int(described["positive_pairs"]),
            "windows": dg.MetadataValue.json(described["windows"]),
            "preview": preview(frame.select("user_id", "item_id", "label", "n_generators")),
        },
    )
