"""Train/test splits: which past behaviour a model learns from, and which later behaviour it is graded on.

A recommender is judged by how well it predicts what people did next, so the test side must hold
interactions the model never saw. Three ways to choose them:

- `temporal_split` (the default for sources with timestamps): everything before a cut-off date trains,
  the last `test_days` of interactions test. This is how the model is used in production (learn from
  the past, predict the future), so it is the most honest estimate.
- `leave_last_out`: each user's most recent interaction is the test case; the rest trains. Every active
  user is tested once, which suits small or sparse data (MovieLens), but users' test moments differ.
- `random_split` (for sources without time, e.g. Steam): for each user, a seeded random share of the
  items they interacted with is held out, all events of those pairs together.

What each side holds, in all three: the test side holds only interaction events (view, add_to_cart,
purchase, rating, play by default: what a user did with an item, the thing to predict). The train side
keeps every other event type too (impressions, searches) as long as it is not later than the held-out
moment, because features and propensity models learn from them. Impressions and searches after the
cut-off (temporal), after a user's held-out interaction (leave-last-out), or of a held-out pair
(random) are in neither side: they could give away the answer, and they are not something to predict.

The functions are pure (no Dagster, no files) and deterministic: the same events, protocol and seed
always give the same split.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

INTERACTION_TYPES: tuple[str, ...] = ("view", "add_to_cart", "purchase", "rating", "play")

PROTOCOLS: tuple[str, ...] = ("temporal", "leave_last_out", "random")


@dataclass(frozen=True)
class Split:
    """A train/test split of events, with how it was made."""

    train: pl.DataFrame
    test: pl.DataFrame
    protocol: str  # "temporal", "leave_last_out" or "random"
    cutoff: dt.datetime | None  # the global cut (temporal); None when each user has their own moment

    def describe(self) -> dict[str, object]:
        """Sizes of both sides, for run metadata: rows, users, items, and how many test users/items are new."""
        train_users = set(self.train.get_column("user_id").drop_nulls().unique().to_list())
        train_items = set(self.train.get_column("item_id").drop_nulls().unique().to_list())
        test_users = set(self.test.get_column("user_id").drop_nulls().unique().to_list())
        test_items = set(self.test.get_column("item_id").drop_nulls().unique().to_list())
        return {
            "protocol": self.protocol,
            "cutoff": self.cutoff.isoformat() if self.cutoff is not None else None,
            "train_rows": self.train.height,
            "test_rows": self.test.height,
            "train_users": len(train_users),
            "test_users": len(test_users),
            "train_items": len(train_items),
            "test_items": len(test_items),
            # Users and items seen only in test are cold starts: no collaborative model can score them.
            "test_users_not_in_train": len(test_users - train_users),
            "test_items_not_in_train": len(test_items - train_items),
        }


def split_to_frame(split: Split) -> pl.DataFrame:
    """One table for the warehouse: both sides' events with a `split` column ("train"/"test") and the
    protocol and cut-off repeated on every row, so the split can be read back exactly."""
    cutoff = pl.lit(split.cutoff, dtype=pl.Datetime("us", "UTC")).alias("cutoff_at")
    return pl.concat(
        [
            split.train.with_columns(pl.lit("train").alias("split")),
            split.test.with_columns(pl.lit("test").alias("split")),
        ]
    ).with_columns(pl.lit(split.protocol).alias("protocol"), cutoff)


def split_from_frame(frame: pl.DataFrame) -> Split:
    """The inverse of `split_to_frame`."""
    if frame.height == 0:
        raise ValueError("the split table is empty")
    protocol = frame["protocol"][0]
    cutoff = frame["cutoff_at"][0]
    side = pl.col("split")
    return Split(
        train=frame.filter(side == "train").drop("split", "protocol", "cutoff_at"),
        test=frame.filter(side == "test").drop("split", "protocol", "cutoff_at"),
        protocol=protocol,
        cutoff=cutoff,
    )


def interaction_events(
    events: pl.DataFrame, event_types: Sequence[str] = INTERACTION_TYPES
) -> pl.DataFrame:
    """The events that say a user engaged with an item (of the given types, with an item)."""
    return events.filter(pl.col("event_type").is_in(list(event_types)) & pl.col("item_id").is_not_null())


def temporal_split(
    events: pl.DataFrame, test_days: float, event_types: Sequence[str] = INTERACTION_TYPES
) -> Split:
    """Cut at (last event time - test_days): train = events before the cut, test = interactions at/after it."""
    if not _is_positive_number(test_days):
        raise ValueError(f"test_days must be a positive number of days; got {test_days!r}")
    _require_timestamps(events, "temporal_split")
    last_at = events.get_column("event_at").max()
    if last_at is None:
        raise ValueError("temporal_split: events is empty; there is nothing to split")
    first_at = events.get_column("event_at").min()
    cutoff = last_at - dt.timedelta(days=test_days)
    before = pl.col("event_at") < cutoff
    train = events.filter(before)
    test = interaction_events(events.filter(~before), event_types)
    span_days = (last_at - first_at).total_seconds() / 86_400
    if train.is_empty():
        raise ValueError(
            f"temporal_split: test_days={test_days} reaches back to {cutoff.isoformat()}, before the first "
            f"event ({first_at.isoformat()}); the data spans {span_days:.2f} days, so test_days must be "
            "smaller than that"
        )
    if test.is_empty():
        raise ValueError(
            f"temporal_split: no interaction events at or after the cutoff {cutoff.isoformat()} "
            f"(last {test_days} days); use a larger test_days"
        )
    return Split(train=train, test=test, protocol="temporal", cutoff=cutoff)


def leave_last_out(events: pl.DataFrame, event_types: Sequence[str] = INTERACTION_TYPES) -> Split:
    """Each user's last interaction (latest event_at, ties by highest event_id) is their test case.

    Users with a single interaction keep it in train and are not tested: holding it out would leave
    nothing to learn their taste from.
    """
    _require_timestamps(events, "leave_last_out")
    interactions = interaction_events(events, event_types)
    ranked = interactions.select("user_id", "event_id", "event_at").with_columns(
        pl.len().over("user_id").alias("_n")
    )
    last = (
        ranked.filter(pl.col("_n") >= 2)
        .sort("user_id", "event_at", "event_id")
        .group_by("user_id", maintain_order=True)
        .last()
        .select("user_id", pl.col("event_id").alias("_held_id"), pl.col("event_at").alias("_held_at"))
    )
    if last.is_empty():
        raise ValueError(
            "leave_last_out: no user has two or more interaction events, so nobody can be tested"
        )
    test = interactions.join(last.select(pl.col("_held_id").alias("event_id")), on="event_id", how="semi")
    # Events of tested users from the held-out moment on would give away the answer; equal times are
    # ordered by event_id, as when picking the last interaction.
    marked = events.join(last, on="user_id", how="left")
    after_held = (pl.col("event_at") > pl.col("_held_at")) | (
        (pl.col("event_at") == pl.col("_held_at")) & (pl.col("event_id") >= pl.col("_held_id"))
    )
    train = marked.filter(pl.col("_held_id").is_null() | ~after_held).select(events.columns)
    return Split(train=train, test=test, protocol="leave_last_out", cutoff=None)


def random_split(
    events: pl.DataFrame,
    test_fraction: float,
    seed: int,
    event_types: Sequence[str] = INTERACTION_TYPES,
) -> Split:
    """Hold out, per user, a seeded random test_fraction of the distinct items they interacted with.

    A user with n >= 2 distinct items has round(test_fraction x n) of them held out, at least 1 and at
    most n - 1, so everyone tested still has something in train; users with one item stay in train.
    All interaction events of a held-out (user, item) pair go to test, so a later purchase cannot hint
    at a held-out view. The draw depends only on the seed and the set of pairs, not on row order.
    """
    if not (_is_number(test_fraction) and 0.0 < test_fraction < 1.0):
        raise ValueError(f"test_fraction must be a number strictly between 0 and 1; got {test_fraction!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    interactions = interaction_events(events, event_types)
    pairs = interactions.select("user_id", "item_id").unique().sort("user_id", "item_id")
    draws = np.random.default_rng(int(seed)).random(pairs.height)
    # Round half up (not Python's banker's rounding) so "half of 3 items" is 2, as a person would say.
    n_held = (
        (pl.lit(test_fraction) * pl.len().over("user_id") + 0.5)
        .floor()
        .clip(1, pl.len().over("user_id") - 1)
    )
    held = (
        pairs.with_columns(pl.Series("_draw", draws))
        .with_columns(pl.col("_draw").rank("ordinal").over("user_id").alias("_order"))
        .filter((pl.len().over("user_id") >= 2) & (pl.col("_order") <= n_held))
        .select("user_id", "item_id")
    )
    if held.is_empty():
        raise ValueError(
            "random_split: no user has interacted with two or more distinct items, so nobody can be tested"
        )
    test = interactions.join(held, on=["user_id", "item_id"], how="semi", nulls_equal=False)
    train = events.join(held, on=["user_id", "item_id"], how="anti", nulls_equal=False)
    return Split(train=train, test=test, protocol="random", cutoff=None)


def _require_timestamps(events: pl.DataFrame, protocol: str) -> None:
    n_missing = events.get_column("event_at").null_count()
    if n_missing:
        raise ValueError(
            f"{protocol} needs event times, but {n_missing:,} of {events.height:,} events have no event_at "
            "(a source without timestamps, such as Steam); use random_split(events, test_fraction, seed) "
            "instead"
        )


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _is_positive_number(value: object) -> bool:
    return _is_number(value) and math.isfinite(value) and value > 0


def make_split(
    events: pl.DataFrame,
    protocol: str,
    *,
    test_days: float = 7.0,
    test_fraction: float = 0.25,
    seed: int = 42,
    has_timestamps: bool = True,
) -> Split:
    """Split by the named protocol; "auto" means temporal where the data has time, random where not."""
    if protocol == "auto":
        protocol = "temporal" if has_timestamps else "random"
    if protocol == "temporal":
        return temporal_split(events, test_days)
    if protocol == "leave_last_out":
        return leave_last_out(events)
    if protocol == "random":
        return random_split(events, test_fraction, seed)
    raise ValueError(f"unknown split protocol {protocol!r}; expected auto or one of {', '.join(PROTOCOLS)}")
