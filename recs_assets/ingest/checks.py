"""Blocking checks on the catalogue and the user table: a broken dimension table stops staging."""


import dagster as dg
import polars as pl

from recs_assets.ingest.items import items
from recs_assets.ingest.users import users
from recs_assets.metadata import schema_check_result
from recs_assets.validation.schemas import items_schema, users_schema


@dg.asset_check(asset=items, blocking=True)
def items_match_schema(items: pl.DataFrame) -> dg.AssetCheckResult:
    """Every item has a unique id, a non-negative price and a known availability."""
    return schema_check_result(items_schema(), items, "items")


@dg.asset_check(asset=users, blocking=True)
def users_match_schema(users: pl.DataFrame) -> dg.AssetCheckResult:
    """Every user has a unique id."""
    return schema_check_result(users_schema(), users, "users")
