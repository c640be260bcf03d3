"""The simulator's entry point: `simulate(config)` returns the shop's tables and its hidden truth."""

from __future__ import annotations

import numbers
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from recs_assets.sources.simulator.batch import EventBatch
from recs_assets.sources.simulator.clock import DAY_US
from recs_assets.sources.simulator.config import SimulatorConfig
from recs_assets.sources.simulator.day import Purchases, ShopState, simulate_day, simulate_plays
from recs_assets.sources.simulator.tables import events_frame, items_frame, padded_ids, users_frame
from recs_assets.sources.simulator.world import World, build_world, sigmoid


@dataclass(eq=False)
class SimulatedMarketplace:
    """The simulated shop's three tables, plus the hidden truth about what each user likes."""

    config: SimulatorConfig
    events: pl.DataFrame  # EVENTS_SCHEMA, sorted by event_at then event_id
    items: pl.DataFrame  # ITEMS_SCHEMA
    users: pl.DataFrame  # USERS_SCHEMA
    _world: World = field(repr=False)
    _state: ShopState | None = field(default=None, repr=False)  # the shop as the history left it

    @property
    def world(self) -> World:
        """The hidden world (tastes, traits) the tables were drawn from: what the online environment replays."""
        return self._world

    @property
    def final_state(self) -> ShopState:
        """The shop as the last simulated day left it: sold listings and owned titles."""
        if self._state is None:
            raise ValueError("this marketplace was built without its final shop state")
        return self._state

    def true_affinity(
        self, user_ids: Sequence[str], item_ids: Sequence[str], day: int | None = None
    ) -> np.ndarray:
        """The true chance that each user buys the paired item once they look at it, on a given day.

        Pairs are matched by position (same-length inputs). `day` is a day index; the default is the
        last day, so after a preference shift the shifted tastes apply. Unknown ids raise KeyError.
        For games the value ignores whether the user already owns the title.
        """
        if len(user_ids) != len(item_ids):
            raise ValueError(
                f"user_ids and item_ids must have the same length; got {len(user_ids)} and {len(item_ids)}"
            )
        user_idx = _lookup(user_ids, self.users["user_id"], "user_id")
        item_idx = _lookup(item_ids, self.items["item_id"], "item_id")
        taste = self._world.taste_on(self._day_index(day))
        return sigmoid(self._world.affinity_logit(user_idx, item_idx, taste))

    def preferred_categories(self, user_ids: Sequence[str], day: int | None = None) -> list[str]:
        """Each user's favourite category on a given day (default: the last day)."""
        user_idx = _lookup(user_ids, self.users["user_id"], "user_id")
        taste = self._world.taste_on(self._day_index(day))
        categories = self._world.preset.categories
        return [categories[c] for c in np.argmax(taste[user_idx], axis=1)]

    def day_of(self, timestamps: pl.Series) -> pl.Series:
        """The day index (0 = start_date, negative before it) of each timestamp."""
        start = dt.datetime.combine(self.config.start_date, dt.time(), tzinfo=dt.timezone.utc)
        # Floor division, so a listing from the evening before day 0 is on day -1, not day 0.
        return ((timestamps - start).dt.total_microseconds() // DAY_US).cast(pl.Int32).alias("day")

    def _day_index(self, day: int | None) -> int:
        if day is None:
            return self.config.n_days - 1
        if not isinstance(day, numbers.Integral) or isinstance(day, bool) or not 0 <= day < self.config.n_days:
            raise ValueError(f"day must be an integer in [0, n_days={self.config.n_days}); got {day!r}")
        return int(day)


def _lookup(ids: Sequence[str], known: pl.Series, name: str) -> np.ndarray:
    wanted = pl.Series(name, list(ids) if not isinstance(ids, pl.Series) else ids, dtype=pl.String)
    index = wanted.replace_strict(known, pl.Series(np.arange(len(known), dtype=np.int64)), default=None)
    missing = index.is_null()
    if missing.any():
        unknown = wanted.filter(missing).unique(maintain_order=True).head(10).to_list()
        raise KeyError(f"unknown {name}(s): {unknown}")
    return index.to_numpy().astype(np.int64)


def simulate(config: SimulatorConfig) -> SimulatedMarketplace:
    """Generate users, items and a month (or any period) of shopping events for a simulated shop."""
    world = build_world(config)
    preset = world.preset
    n_items = len(world.items.category)
    state = ShopState.opening(n_items)
    purchases = Purchases()
    days = [simulate_day(world, day, state, purchases) for day in range(config.n_days)]
    if preset.has_plays:
        days.append(simulate_plays(world, purchases, first_session=state.next_session))
    batch = EventBatch.concat(days)
    del days  # the per-day copies are no longer needed; at 10M events they are a gigabyte

    user_ids = padded_ids("u", config.n_users, 6)
    item_ids = padded_ids(preset.id_prefix, n_items, 6)
    return SimulatedMarketplace(
        config=config,
        events=events_frame(world, batch, user_ids, item_ids),
        items=items_frame(world, item_ids, state.sold_at_us),
        users=users_frame(world, user_ids),
        _world=world,
        _state=state,
    )
