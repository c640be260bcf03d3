"""Tiny hand-made shops for the monitoring tests: every week repeats the first, unless told to shift.

Because each week is an exact copy of the first (shifted by 7 days), per-user features are identical
across windows and no drift test may fire; `shift_last_week` moves most puzzle lovers to rpg in the
last week (the population's category mix changes), which the category features must reveal. Variants drop what real datasets lack: prices,
categories, everything but ratings, timestamps.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from recs_assets.contract import EVENTS_SCHEMA, ITEMS_SCHEMA, USERS_SCHEMA, conform

UTC = dt.timezone.utc
MONDAY = dt.datetime(2026, 9, 7, tzinfo=UTC)
CATEGORIES = ("rpg", "puzzle", "racing")


def shop_items(categories: bool = True, prices: bool = True) -> pl.DataFrame:
    """Two items per category: i0, i1 rpg; i2, i3 puzzle; i4, i5 racing; prices 10, 11, 20, 21, 30, 31."""
    ids = [f"i{j}" for j in range(6)]
    return conform(
        pl.DataFrame(
            {
                "item_id": ids,
                "category": [CATEGORIES[j // 2] for j in range(6)] if categories else [None] * 6,
                "price": [10.0 * (j // 2 + 1) + j % 2 for j in range(6)] if prices else [None] * 6,
            },
            schema_overrides={"category": pl.String, "price": pl.Float64},
        ),
        ITEMS_SCHEMA,
    )


def shop_events(
    n_users: int = 40,
    weeks: int = 2,
    event_types: tuple[str, ...] = ("view", "add_to_cart", "purchase"),
    prices: bool = True,
    dated: bool = True,
    shift_last_week: bool = False,
    sessions: bool = True,
    anonymous: int = 0,
) -> pl.DataFrame:
    """User u<k> is active on 1 + k % 3 days a week (Monday, Thursday, Sunday) and likes category k % 3;
    a cart on every other active day, a purchase on every fourth. Ratings are 1 + k % 5. With
    `shift_last_week`, puzzle lovers (k % 3 == 1) buy rpg in the last week, except every fifth user.
    `anonymous` extra shoppers have only a session ("anonymous:s<k>", as staging keys them)."""
    rows = []
    for week in range(weeks):
        for k in range(n_users + anonymous):
            user = f"u{k:02d}" if k < n_users else f"anonymous:s{k}"
            favourite = k % 3
            if shift_last_week and week == weeks - 1 and favourite == 1 and k % 5:
                favourite = 0
            for d in range(1 + k % 3):
                at = MONDAY + dt.timedelta(days=7 * week + 3 * d, hours=9 + k % 5)
                item = f"i{2 * favourite + (k + d) % 2}"
                for step, kind in enumerate(event_types):
                    if kind == "add_to_cart" and (k + d) % 2:
                        continue
                    if kind == "purchase" and (k + d) % 4:
                        continue
                    rows.append(
                        {
                            "event_id": f"e{len(rows)}",
                            "event_at": at + dt.timedelta(minutes=step) if dated else None,
                            "user_id": user,
                            "session_id": f"s{week}-{k}-{d}" if sessions else None,
                            "item_id": item,
                            "event_type": kind,
                            "price": 10.0 * (favourite + 1) if prices and kind != "rating" else None,
                            "value": float(1 + k % 5) if kind == "rating" else None,
                        }
                    )
    return conform(pl.DataFrame(rows, schema_overrides={"event_at": pl.Datetime("us", "UTC"), "price": pl.Float64,
                                                         "value": pl.Float64, "session_id": pl.String}), EVENTS_SCHEMA)


def shop_users(n_users: int = 40) -> pl.DataFrame:
    return conform(pl.DataFrame({"user_id": [f"u{k:02d}" for k in range(n_users)]}), USERS_SCHEMA)
