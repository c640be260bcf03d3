"""`items`: the catalogue (titles, categories, brands, prices, availability)."""


import dagster as dg
import polars as pl

from recs_assets.ingest.loading import load_or_fail
from recs_assets.metadata import preview
from resources.marketplace_source import MarketplaceSource


@dg.asset(group_name="ingest", kinds={"parquet", "duckdb"})
def items(source: MarketplaceSource) -> dg.Output[pl.DataFrame]:
    """The catalogue: every item (game title, listing) with its category, brand, price and whether it can still be sold.

    A catalogue with unreadable values is rejected whole, with the bad values named: a silently
    missing item would make every event that points at it look invalid.
    """
    catalogue = load_or_fail("items", source.load_items)
    categories = catalogue.group_by("category").len().sort("len", descending=True).head(15)
    return dg.Output(
        catalogue,
        metadata={
            "rows": dg.MetadataValue.int(catalogue.height),
            "active_items": dg.MetadataValue.int(int(catalogue["is_active"].sum() or 0)),
            "categories": dg.MetadataValue.int(catalogue["category"].n_unique()),
            "items_per_category": dg.MetadataValue.json({str(c): int(n) for c, n in categories.iter_rows()}),
            "preview": preview(catalogue),
        },
    )
