"""`train_test_split`: which behaviour the models learn from and which later behaviour grades them."""

import dagster as dg
import polars as pl

from recs_assets.training.splits import make_split, split_to_frame
from resources.marketplace_source import MarketplaceSource


class SplitConfig(dg.Config):
    """auto = temporal (last `test_days` are the test window) where the source has time, else random."""

    protocol: str = "auto"
    test_days: float = 7.0
    test_fraction: float = 0.25
    seed: int = 42


@dg.asset(group_name="training", kinds={"parquet", "duckdb"})
def train_test_split(config: SplitConfig, source: MarketplaceSource, events: pl.DataFrame) -> dg.Output[pl.DataFrame]:
    """The events split into a training part and a later (or held-out) test part that grades every model.

    With timestamps the last days form the test window (how models are used: learn from the past,
    predict the future); without them (Steam) a seeded share of each user's items is held out.
    """
    split = make_split(
        events,
        config.protocol,
        test_days=config.test_days,
        test_fraction=config.test_fraction,
        seed=config.seed,
        has_timestamps=source.has_timestamps,
    )
    described = split.describe()
    return dg.Output(
        split_to_frame(split),
        metadata={
            "rows": dg.MetadataValue.int(split.train.height + split.test.height),
            "protocol": dg.MetadataValue.text(split.protocol),
            "cutoff": dg.MetadataValue.text(str(described["cutoff"])),
            **{k: dg.MetadataValue.int(v) for k, v in described.items() if isinstance(v, int)},
        },
    )
