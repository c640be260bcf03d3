"""`users`: who the shoppers are (sign-up date, country, segment)."""


import dagster as dg
import polars as pl

from recs_assets.ingest.loading import load_or_fail
from recs_assets.metadata import preview
from resources.marketplace_source import MarketplaceSource


@dg.asset(group_name="ingest", kinds={"parquet", "duckdb"})
def users(source: MarketplaceSource) -> dg.Output[pl.DataFrame]:
    """Every known user with sign-up date, country and segment (used for cold-start fallbacks and reporting).

    A user table with unreadable values is rejected whole, with the bad values named.
    """
    people = load_or_fail("users", source.load_users)
    segments = people.group_by("segment").len().sort("len", descending=True).head(15)
    return dg.Output(
        people,
        metadata={
            "rows": dg.MetadataValue.int(people.height),
            "users_per_segment": dg.MetadataValue.json({str(s): int(n) for s, n in segments.iter_rows()}),
            "preview": preview(people),
        },
    )
