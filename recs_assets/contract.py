"""The one data contract: the canonical columns and types of `events`, `items` and `users`.

Every source (simulator, MovieLens, Steam, a folder of files) is mapped onto these tables, and every
layer uses these names. Ids are strings so that any source's keys (numbers, titles, UUIDs) fit.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl

EVENT_TYPES: tuple[str, ...] = (
    "impression",
    "view",
    "add_to_cart",
    "purchase",
    "search",
    "rating",
    "play",
)

# Event types that show a preference for the item (impressions and searches do not). Every layer that
# counts "what the user did with an item" uses these: models, features (sql/ agrees, tested), evaluation.
INTERACTION_TYPES: tuple[str, ...] = ("view", "add_to_cart", "purchase", "rating", "play")
# Event types that form a browsing sequence (plays repeat a purchase, so they are left out).
SEQUENCE_TYPES: tuple[str, ...] = ("view", "add_to_cart", "purchase", "rating")
# Event types a shop's front end may post live to the API.
LIVE_EVENT_TYPES: tuple[str, ...] = ("view", "add_to_cart", "purchase")
# The times a live event may claim; the API refuses others (422). Live events are posted as they
# happen, so nothing a shop sends live predates 2000 (an earlier time is an unset or epoch clock:
# 0001-01-01, 1970-01-01), and a front end's clock may run a few minutes ahead of the server's, not more.
EARLIEST_LIVE_EVENT_AT = datetime(2000, 1, 1, tzinfo=timezone.utc)
LIVE_EVENT_MAX_FUTURE = timedelta(minutes=5)

# An event without a user id but with a session id belongs to an anonymous shopper. Staging keys such
# a shopper by the session: user_id = ANONYMOUS_USER_PREFIX + session_id, so every layer can treat the
# session as a user while evaluation and serving can still tell anonymous shoppers apart.
ANONYMOUS_USER_PREFIX = "anonymous:"

# Metric cut-off (k) and served list length (N): the defaults every config starts from.
METRIC_K = 10
LIST_N = 10

UTC_TIMESTAMP = pl.Datetime("us", "UTC")

EVENTS_SCHEMA: dict[str, pl.DataType] = {
    "event_id": pl.String(),
    "event_at": UTC_TIMESTAMP,
    "user_id": pl.String(),
    "session_id": pl.String(),
    "item_id": pl.String(),
    "event_type": pl.String(),
    "query": pl.String(),
    "price": pl.Float64(),
    "value": pl.Float64(),
    "surface": pl.String(),
    "position": pl.Int32(),
    "propensity": pl.Float64(),
    "variant": pl.String(),
}

ITEMS_SCHEMA: dict[str, pl.DataType] = {
    "item_id": pl.String(),
    "title": pl.String(),
    "category": pl.String(),
    "brand": pl.String(),
    "price": pl.Float64(),
    "condition": pl.String(),
    "listed_at": UTC_TIMESTAMP,
    "is_active": pl.Boolean(),
}

USERS_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.String(),
    "signup_at": UTC_TIMESTAMP,
    "country": pl.String(),
    "segment": pl.String(),
}

# Columns a source must provide; the others may be absent and are then filled with nulls.
EVENTS_REQUIRED = ("event_id", "event_at", "user_id", "event_type")
ITEMS_REQUIRED = ("item_id",)
USERS_REQUIRED = ("user_id",)

# Provenance columns carried by `raw_events` so that every row can be traced back to its origin.
RAW_PROVENANCE_SCHEMA: dict[str, pl.DataType] = {
    "_source": pl.String(),  # e.g. "simulator:games", "movielens_100k:u.data", "files:events.csv"
    "_line": pl.Int64(),  # 1-based row number in the source file (data rows), or generation order
    "_parse_error": pl.String(),  # set when the source line itself could not be parsed
    "_raw_line": pl.String(),  # the unparsed text of such a line, kept as it came
}


def empty_frame(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """A zero-row frame with the given columns and types."""
    return pl.DataFrame(schema=schema)


def conform(df: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Select the contract's columns in order, adding missing optional ones as typed nulls.

    Columns already present are cast strictly: a source adapter that produces the wrong type is a bug
    in the adapter, not bad data, so it should fail loudly here.
    """
    exprs = []
    for name, dtype in schema.items():
        if name in df.columns:
            exprs.append(pl.col(name).cast(dtype, strict=True))
        else:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
    return df.select(exprs)
