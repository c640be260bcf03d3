"""Train/test splits: which past behaviour a model learns from, and which later behaviour it is graded on.

A recommender is judged by how well it predicts what people did next, so the test side must hold
interactions the model never saw. Four ways to choose them (`training.protocol.choose_protocol`
picks one from the data when the run config says "auto"):

- `temporal_split` (the default for sources with timestamps): everything before a cut-off date trains,
  the last `test_days` of interactions test. This is how the model is used in production (learn from
  the past, predict the future), so it is the most honest estimate.
- `quantile_split`: the same global cut, placed at a quantile of interaction time instead of a fixed
  number of days (quantile 0.9: the last 10% of interactions test). It widens a test window that
  holds too few users, and keeps the "learn from the past" property for everyone.
- `leave_last_out`: each user's most recent interaction is the test case; the rest trains. Every active
  user is tested once, which suits small or sparse data (MovieLens), but users' test moments differ.
- `random_split` (for sources without time, e.g. Steam): for each user, a seeded random share of the
  items they interacted with is held out, all events of those pairs together.

What each side holds, in all of them: the test side holds only interaction events (view, add_to_cart,
purchase, rating, play by default: what a user did with an item, the thing to predict). The train side
keeps every other event type too (impressions, searches) as long as it is not later than the held-out
moment, because features and propensity models learn from them. Impressions and searches after the
cut-off (temporal), after a user's held-out interaction (leave-last-out), or of a held-out pair
(random) are in neither side: they could give away the answer, and they are not something to predict.

The held-out truth is a property of the split (`Split.truth`): what each test user did with items
they had not interacted with in training. An *evaluable user* is a test user with at least one such
item AND at least one interaction event (with an item) in training; shoppers first seen after the
cut-off have no history, are not evaluable, and are graded in their own segment.

The functions are pure (no Dagster, no files) and deterministic: the same events, protocol and seed
always give the same split.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import polars as pl

from recs_assets.arguments import fraction, non_negative_int, positive_number
from recs_assets.contract import INTERACTION_TYPES

# Protocols that make a test side. "none" (see `no_split`) is the answer for data too small to grade.
PROTOCOLS: tuple[str, ...] = ("temporal", "temporal_quantile", "leave_last_out", "random")
NO_PROTOCOL = "none"
# Protocols with one global cut-off, so features "as known at the cut-off" mean the same for everyone.
GLOBAL_CUT_PROTOCOLS: tuple[str, ...] = ("temporal", "temporal_quantile")


@dataclass(frozen=True)
class Split:
    """A train/test split of events, with how it was made and why that way."""

    train: pl.DataFrame
    test: pl.DataFrame
    protocol: str  # one of PROTOCOLS, or "none" when the data was too small to hold anything out
    cutoff: dt.datetime | None  # the global cut (temporal protocols); None when each user has their own moment
    reason: str = ""  # one plain sentence: why this protocol (filled by choose_protocol)

    @cached_property
    def truth(self) -> pl.DataFrame:
        """What each test user did with items they had not interacted with in training: (user_id, item_id), unique.

        Pairs the user already interacted with in training are left out because models never
        re-recommend them; so are items the user was shown in training. Includes test
        users with no training history (new shoppers); `evaluable_truth` leaves them out.
        """
        # Every pair present in training (impressions included) counts as seen, as it always has: the
        # held-out figures stay comparable across versions of the project.
        seen = self.train.filter(pl.col("item_id").is_not_null()).select("user_id", "item_id").unique()
        return (
            self.test.filter(pl.col("item_id").is_not_null() & pl.col("user_id").is_not_null())
            .select("user_id", "item_id")
            .unique()
            .join(seen, on=["user_id", "item_id"], how="anti")
            .sort("user_id", "item_id")
        )

    @cached_property
    def history_users(self) -> pl.Series:
        """Users with at least one interaction event (with an item) in training, sorted."""
        return interaction_events(self.train).get_column("user_id").drop_nulls().unique().sort()

    @cached_property
    def evaluable_truth(self) -> pl.DataFrame:
        """`truth` of the evaluable users only: those who also have a training history."""
        return self.truth.filter(pl.col("user_id").is_in(self.history_users.implode()))

    def with_test_users(self, users: list[str] | pl.Series) -> Split:
        """The same split with only these users' held-out events (training untouched): a graded sample."""
        keep = pl.Series("user_id", list(users), dtype=self.test.schema["user_id"]).implode()
        return Split(self.train, self.test.filter(pl.col("user_id").is_in(keep)), self.protocol, self.cutoff, self.reason)

    @property
    def evaluable_users(self) -> int:
        """How many test users can grade a model: a new item in test and some history in training."""
        return self.evaluable_truth.get_column("user_id").n_unique()

    def describe(self) -> dict[str, object]:
        """Sizes of both sides, for run metadata: protocol and why, rows, users, items, evaluable and new users."""
        train_users = set(self.train.get_column("user_id").drop_nulls().unique().to_list())
        train_items = set(self.train.get_column("item_id").drop_nulls().unique().to_list())
        test_users = set(self.test.get_column("user_id").drop_nulls().unique().to_list())
        test_items = set(self.test.get_column("item_id").drop_nulls().unique().to_list())
        return {
            "protocol": self.protocol,
            "reason": self.reason,
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
            "evaluable_users": self.evaluable_users,
        }


def graded_users(split: Split, max_users: int | None, seed: int) -> list[str]:
    """The test users models are graded on: every user in `split.truth`, or a seeded sample of `max_users`.

    Sorted. A uniform sample keeps every segment's share in expectation; the intervals over users widen
    as 1/sqrt(users), so 30,000 users already pin nDCG@10 to about +-0.002.
    """
    users = split.truth["user_id"].unique().sort()
    if max_users is None or users.len() <= max_users:
        return users.to_list()
    if not isinstance(max_users, int) or isinstance(max_users, bool) or max_users < 1:
        raise ValueError(f"max_users must be a positive integer or None, got {max_users!r}")
    picked = np.random.default_rng(seed).choice(users.len(), size=max_users, replace=False)
    return users.gather(np.sort(picked)).to_list()


def holdout_truth(split: Split) -> pl.DataFrame:
    """The split's held-out truth (`split.truth`, computed once per split): see `Split.truth`."""
    return split.truth


_FRAME_COLUMNS = ("split", "protocol", "cutoff_at", "protocol_reason")


def split_to_frame(split: Split) -> pl.DataFrame:
    """One table for the warehouse: both sides' events with a `split` column ("train"/"test") and the
    protocol, its reason and the cut-off repeated on every row, so the split can be read back exactly."""
    cutoff = pl.lit(split.cutoff, dtype=pl.Datetime("us", "UTC")).alias("cutoff_at")
    return pl.concat(
        [
            split.train.with_columns(pl.lit("train").alias("split")),
            split.test.with_columns(pl.lit("test").alias("split")),
        ]
    ).with_columns(
        pl.lit(split.protocol).alias("protocol"), cutoff, pl.lit(split.reason, dtype=pl.String).alias("protocol_reason")
    )


def split_protocol(frame: pl.DataFrame) -> str:
    """The protocol a split table was made with (it needs only the table's `protocol` column)."""
    if frame.height == 0:
        raise ValueError("the split table is empty")
    return frame["protocol"][0]


def split_from_frame(frame: pl.DataFrame) -> Split:
    """The inverse of `split_to_frame` (tables written before the reason was stored read back with reason "")."""
    protocol = split_protocol(frame)
    cutoff = frame["cutoff_at"][0]
    reason = frame["protocol_reason"][0] if "protocol_reason" in frame.columns else ""
    side = pl.col("split")
    helpers = [c for c in _FRAME_COLUMNS if c in frame.columns]
    return Split(
        train=frame.filter(side == "train").drop(helpers),
        test=frame.filter(side == "test").drop(helpers),
        protocol=protocol,
        cutoff=cutoff,
        reason=reason or "",
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
    positive_number(test_days, "test_days")
    _require_timestamps(events, "temporal_split")
    last_at = events.get_column("event_at").max()
    if last_at is None:
        raise ValueError("temporal_split: events is empty; there is nothing to split")
    first_at = events.get_column("event_at").min()
    cutoff = last_at - dt.timedelta(days=test_days)
    span_days = (last_at - first_at).total_seconds() / 86_400
    train, test = _cut_at(events, cutoff, event_types)
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


def quantile_split(
    events: pl.DataFrame, quantile: float, event_types: Sequence[str] = INTERACTION_TYPES
) -> Split:
    """One global cut at the `quantile` of interaction times: quantile 0.9 tests on the last ~10% of interactions.

    The cut is the earliest interaction time at or above the quantile ("lower" rule, so it is a real
    event time); everything before it trains, interactions at or after it test, as in `temporal_split`.
    Impressions and searches do not move the cut: a shop logs many more of them than interactions.
    """
    fraction(quantile, "quantile")
    _require_timestamps(events, "quantile_split")
    times = interaction_events(events, event_types).get_column("event_at")
    if times.is_empty():
        raise ValueError("quantile_split: there are no interaction events to place a cut among")
    cutoff = times.quantile(float(quantile), interpolation="lower")
    train, test = _cut_at(events, cutoff, event_types)
    if train.is_empty():
        raise ValueError(
            f"quantile_split: the {quantile} quantile of interaction time is the first event time "
            f"({cutoff.isoformat()}), so nothing would be left to train on; the times carry too little order"
        )
    return Split(train=train, test=test, protocol="temporal_quantile", cutoff=cutoff)


def _cut_at(
    events: pl.DataFrame, cutoff: dt.datetime, event_types: Sequence[str]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    before = pl.col("event_at") < cutoff
    return events.filter(before), interaction_events(events.filter(~before), event_types)


def no_split(events: pl.DataFrame, reason: str) -> Split:
    """Everything trains and nothing is held out: the answer for data too small to grade any model on.

    The models are still trained (on all events) and served; there is no leaderboard.
    """
    return Split(train=events, test=events.clear(), protocol=NO_PROTOCOL, cutoff=None, reason=reason)


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
    fraction(test_fraction, "test_fraction")
    non_negative_int(seed, "seed")
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


def make_split(
    events: pl.DataFrame,
    protocol: str,
    *,
    test_days: float = 7.0,
    test_fraction: float = 0.25,
    quantile: float = 0.9,
    seed: int = 42,
    has_timestamps: bool = True,
    reason: str = "",
    **choice_options: float,
) -> Split:
    """Split by the named protocol; "auto" lets `choose_protocol` pick one from the data (and say why).

    `choice_options` (min_users, min_share, min_floor) only matter for "auto". "none" holds nothing
    out (see `no_split`).
    """
    if protocol == "auto":
        from recs_assets.training.protocol import choose_protocol  # protocol.py builds on this module

        return choose_protocol(
            events, requested="auto", test_days=test_days, test_fraction=test_fraction, quantile=quantile,
            seed=seed, has_timestamps=has_timestamps, **choice_options,
        ).split
    if choice_options:
        raise ValueError(f"{', '.join(sorted(choice_options))} only apply to protocol 'auto', not {protocol!r}")
    if protocol == "temporal":
        split = temporal_split(events, test_days)
    elif protocol == "temporal_quantile":
        split = quantile_split(events, quantile)
    elif protocol == "leave_last_out":
        split = leave_last_out(events)
    elif protocol == "random":
        split = random_split(events, test_fraction, seed)
    elif protocol == NO_PROTOCOL:
        return no_split(events, reason or "no protocol: nothing is held out, as requested")
    else:
        raise ValueError(
            f"unknown split protocol {protocol!r}; expected auto, {NO_PROTOCOL} or one of {', '.join(PROTOCOLS)}"
        )
    return dataclasses.replace(split, reason=reason) if reason else split
