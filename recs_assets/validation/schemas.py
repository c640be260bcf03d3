"""Pandera schemas: the rules a row must meet to enter the warehouse.

One definition serves twice: the staging step uses it to sort rows into clean and quarantined (with the
failed rule as the reason), and the asset checks run it again on what was written, as a guard.
"""

from __future__ import annotations

from datetime import datetime

import pandera.polars as pa
import polars as pl

from recs_assets.contract import ANONYMOUS_USER_PREFIX, EVENT_TYPES, EVENTS_SCHEMA, ITEMS_SCHEMA, USERS_SCHEMA

# Event types that must point at an item; a search has a query instead.
ITEM_EVENT_TYPES = tuple(t for t in EVENT_TYPES if t != "search")


def _known_ids(column: str, ids: pl.Series, table: str, exempt_prefix: str | None = None) -> pa.Check:
    """Referential integrity: a non-null id must exist in the given dimension table.

    Ids starting with `exempt_prefix` (anonymous shoppers, keyed by their session) are in no table.
    """
    ids = ids.unique().implode()

    def check(data: pa.PolarsData) -> pl.LazyFrame:
        col = pl.col(data.key)
        known = col.is_null() | col.is_in(ids)
        if exempt_prefix is not None:
            known = known | col.str.starts_with(exempt_prefix)
        return data.lazyframe.select(known)

    return pa.Check(check, name=f"known_{column}", error=f"{column} not found in {table}")


def _row_rule(name: str, expr: pl.Expr, error: str) -> pa.Check:
    """A rule across columns, evaluated per row (True = row is fine).

    A null result (e.g. the event type itself is missing) counts as passing: that row already fails
    the rule about the missing column, and one clear reason beats two.
    """
    return pa.Check(lambda data: data.lazyframe.select(expr.fill_null(True)), name=name, error=error)


def events_schema(
    *,
    item_ids: pl.Series | None = None,
    user_ids: pl.Series | None = None,
    earliest_event_at: datetime | None = None,
    latest_event_at: datetime | None = None,
    require_timestamps: bool = True,
) -> pa.DataFrameSchema:
    """Rules for a clean event; ids and time bounds are passed in because they depend on the load."""
    event_at_checks = []
    if earliest_event_at is not None:
        event_at_checks.append(
            pa.Check.ge(earliest_event_at, error=f"event_at before {earliest_event_at.isoformat()}")
        )
    if latest_event_at is not None:
        event_at_checks.append(
            pa.Check.le(latest_event_at, error=f"event_at in the future (after {latest_event_at.isoformat()})")
        )
    item_checks = [_known_ids("item_id", item_ids, "items")] if item_ids is not None else []
    user_checks = (
        [_known_ids("user_id", user_ids, "users", exempt_prefix=ANONYMOUS_USER_PREFIX)] if user_ids is not None else []
    )
    is_item_event = pl.col("event_type").is_in(ITEM_EVENT_TYPES)
    return pa.DataFrameSchema(
        {
            "event_id": pa.Column(EVENTS_SCHEMA["event_id"], nullable=False, unique=True),
            "event_at": pa.Column(
                EVENTS_SCHEMA["event_at"], nullable=not require_timestamps, checks=event_at_checks
            ),
            # Null is refused by the row rule below, whose reason also names the missing session.
            "user_id": pa.Column(EVENTS_SCHEMA["user_id"], nullable=True, checks=user_checks),
            "session_id": pa.Column(EVENTS_SCHEMA["session_id"], nullable=True),
            "item_id": pa.Column(EVENTS_SCHEMA["item_id"], nullable=True, checks=item_checks),
            "event_type": pa.Column(
                EVENTS_SCHEMA["event_type"],
                nullable=False,
                checks=pa.Check.isin(EVENT_TYPES, error=f"event_type not one of {', '.join(EVENT_TYPES)}"),
            ),
            "query": pa.Column(EVENTS_SCHEMA["query"], nullable=True),
            "price": pa.Column(
                EVENTS_SCHEMA["price"], nullable=True, checks=pa.Check.ge(0, error="price is negative")
            ),
            "value": pa.Column(EVENTS_SCHEMA["value"], nullable=True),
            "surface": pa.Column(EVENTS_SCHEMA["surface"], nullable=True),
            "position": pa.Column(
                EVENTS_SCHEMA["position"], nullable=True, checks=pa.Check.ge(1, error="position below 1")
            ),
            "propensity": pa.Column(
                EVENTS_SCHEMA["propensity"],
                nullable=True,
                checks=pa.Check.in_range(0, 1, include_min=False, error="propensity outside (0, 1]"),
            ),
            "variant": pa.Column(EVENTS_SCHEMA["variant"], nullable=True),
        },
        checks=[
            _row_rule(
                "user_or_session_required",
                pl.col("user_id").is_not_null(),
                "user_id and session_id are both missing (an anonymous shopper's event needs its session_id)",
            ),
            _row_rule(
                "anonymous_user_matches_session",
                ~pl.col("user_id").str.starts_with(ANONYMOUS_USER_PREFIX)
                | (pl.col("user_id") == pl.lit(ANONYMOUS_USER_PREFIX) + pl.col("session_id")).fill_null(False),
                f"user_id starts with '{ANONYMOUS_USER_PREFIX}', which is kept for anonymous shoppers, "
                "but does not match the event's session_id",
            ),
            _row_rule(
                "item_id_required",
                ~is_item_event | pl.col("item_id").is_not_null(),
                "item_id is missing for an item event",
            ),
            _row_rule(
                "rating_in_range",
                (pl.col("event_type") != "rating") | pl.col("value").is_between(0, 10).fill_null(False),
                "rating value missing or outside 0..10",
            ),
            _row_rule(
                "play_hours_non_negative",
                (pl.col("event_type") != "play") | (pl.col("value") >= 0).fill_null(False),
                "play value (hours) missing or negative",
            ),
        ],
        strict=True,
        name="events",
    )


def items_schema() -> pa.DataFrameSchema:
    """Rules for the item catalogue."""
    return pa.DataFrameSchema(
        {
            "item_id": pa.Column(ITEMS_SCHEMA["item_id"], nullable=False, unique=True),
            "title": pa.Column(ITEMS_SCHEMA["title"], nullable=True),
            "category": pa.Column(ITEMS_SCHEMA["category"], nullable=True),
            "brand": pa.Column(ITEMS_SCHEMA["brand"], nullable=True),
            "price": pa.Column(
                ITEMS_SCHEMA["price"], nullable=True, checks=pa.Check.ge(0, error="price is negative")
            ),
            "condition": pa.Column(ITEMS_SCHEMA["condition"], nullable=True),
            "listed_at": pa.Column(ITEMS_SCHEMA["listed_at"], nullable=True),
            "is_active": pa.Column(ITEMS_SCHEMA["is_active"], nullable=False),
        },
        strict=True,
        name="items",
    )


def users_schema() -> pa.DataFrameSchema:
    """Rules for the user table."""
    return pa.DataFrameSchema(
        {
            "user_id": pa.Column(USERS_SCHEMA["user_id"], nullable=False, unique=True),
            "signup_at": pa.Column(USERS_SCHEMA["signup_at"], nullable=True),
            "country": pa.Column(USERS_SCHEMA["country"], nullable=True),
            "segment": pa.Column(USERS_SCHEMA["segment"], nullable=True),
        },
        strict=True,
        name="users",
    )
