"""The simulated shop's events, items and users as tables on the project's data contract."""

from __future__ import annotations

import numpy as np
import polars as pl

from recs_assets.contract import (
    EVENT_TYPES,
    EVENTS_SCHEMA,
    ITEMS_SCHEMA,
    USERS_SCHEMA,
    UTC_TIMESTAMP,
    conform,
)
from recs_assets.sources.simulator.batch import SURFACES, EventBatch
from recs_assets.sources.simulator.presets import COLOURS
from recs_assets.sources.simulator.streams import Stream, random_stream
from recs_assets.sources.simulator.world import UNSOLD, World

_VARIANT = "control"  # the simulated shop runs no experiment: everyone sees the same policy


def _padded(prefix: pl.Expr, number: pl.Expr, width: int) -> pl.Expr:
    """'u' and 42 -> 'u000042': zero-padded ids sort as strings in numeric order."""
    return pl.concat_str(prefix, number.cast(pl.String).str.zfill(width))


def padded_ids(prefix: str, n: int, min_width: int) -> pl.Series:
    """The ids prefix + 1..n, zero-padded to at least `min_width` digits."""
    width = max(min_width, len(str(n)))
    return pl.select(_padded(pl.lit(prefix), pl.int_range(0, n) + 1, width)).to_series()


def events_frame(
    world: World, batch: EventBatch, user_ids: pl.Series, item_ids: pl.Series
) -> pl.DataFrame:
    """The events table: every event in time order, with event and session ids that read in that order.

    Sorts `batch` in place (it is the largest thing alive, so no copy is made).
    """
    preset = world.preset
    # Time first; within a session, ties follow the funnel order of the event type codes.
    order = np.lexsort((batch.event_type, batch.session, batch.at))
    batch.reorder_in_place(order)
    # Number sessions by when they start, so session ids read in time order like event ids.
    first_seen = np.unique(batch.session, return_index=True)
    session_rank = np.empty(len(first_seen[0]), dtype=np.int64)
    session_rank[np.argsort(first_seen[1], kind="stable")] = np.arange(len(first_seen[0]))
    session_number = session_rank[np.searchsorted(first_seen[0], batch.session)]

    queries = pl.Series([*preset.categories, *(b.lower() for b in preset.brands)], dtype=pl.String)
    coded = pl.DataFrame(
        {
            "at": batch.at,
            "user": batch.user,
            "session": session_number,
            "item": batch.item,
            "event_type": batch.event_type.astype(np.int32),
            "query": batch.query.astype(np.int32),
            "surface": batch.surface.astype(np.int32),
            "position": batch.position,
            "propensity": batch.propensity,
            "value": batch.value,
        }
    )
    n_sessions = len(first_seen[0])
    session_width = max(9, len(str(n_sessions)))
    event_width = max(9, len(str(len(coded))))
    has_item = pl.when(pl.col("item") >= 0).then(pl.col("item"))
    events = coded.select(
        event_id=_padded(pl.lit("e"), pl.int_range(pl.len()) + 1, event_width),
        event_at=pl.col("at").cast(UTC_TIMESTAMP),
        user_id=pl.lit(user_ids).gather(pl.col("user")),
        session_id=_padded(pl.lit("s"), pl.col("session") + 1, session_width),
        item_id=pl.lit(item_ids).gather(has_item),
        event_type=pl.lit(pl.Series(EVENT_TYPES)).gather(pl.col("event_type")),
        query=pl.lit(queries).gather(pl.when(pl.col("query") >= 0).then(pl.col("query"))),
        price=pl.lit(pl.Series(world.items.price)).gather(has_item),
        value=pl.col("value").fill_nan(None),
        surface=pl.lit(pl.Series(SURFACES)).gather(pl.col("surface")),
        position=pl.when(pl.col("position") > 0).then(pl.col("position")),
        propensity=pl.col("propensity").fill_nan(None),
        variant=pl.lit(_VARIANT),
    )
    return conform(events, EVENTS_SCHEMA)


def items_frame(world: World, item_ids: pl.Series, sold_at_us: np.ndarray) -> pl.DataFrame:
    """The items table: titles, category, brand, price, condition, listing time and whether still on sale."""
    preset, items = world.preset, world.items
    n = len(items.category)
    category = pl.Series(preset.categories).gather(items.category)
    brand = pl.Series(preset.brands).gather(items.brand)
    number = pl.Series(np.arange(1, n + 1)).cast(pl.String).str.zfill(max(4, len(str(n))))
    if preset.title_nouns:
        colour_rng = random_stream(world.config.seed, Stream.ITEMS, 1)
        colour = pl.Series(COLOURS).gather(colour_rng.integers(0, len(COLOURS), size=n))
        noun = pl.Series(preset.title_nouns).gather(items.category)
        title = pl.select(pl.format("{} {}, {}", pl.lit(brand), pl.lit(noun), pl.lit(colour))).to_series()
        condition = pl.Series(preset.conditions, dtype=pl.String).gather(items.condition)
    else:
        title = pl.select(
            pl.concat_str(pl.lit(category).str.to_titlecase(), pl.lit(" title "), pl.lit(number))
        ).to_series()
        condition = pl.Series([None] * n, dtype=pl.String)
    frame = pl.DataFrame(
        {
            "item_id": item_ids,
            "title": title,
            "category": category,
            "brand": brand,
            "price": items.price,
            "condition": condition,
            "listed_at": pl.Series(items.listed_us).cast(UTC_TIMESTAMP),
            "is_active": sold_at_us == UNSOLD,
        }
    )
    return conform(frame, ITEMS_SCHEMA)


def users_frame(world: World, user_ids: pl.Series) -> pl.DataFrame:
    """The users table: when each user signed up, where they live, and their segment."""
    users, preset = world.users, world.preset
    frame = pl.DataFrame(
        {
            "user_id": user_ids,
            "signup_at": pl.Series(users.signup_us).cast(UTC_TIMESTAMP),
            "country": pl.Series(preset.countries).gather(users.country),
            "segment": pl.Series(users.segment.astype(str), dtype=pl.String),
        }
    )
    return conform(frame, USERS_SCHEMA)
