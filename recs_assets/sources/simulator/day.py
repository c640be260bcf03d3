"""One shopping day: who visits, where they start, what they are shown, and what they do with it.

A session starts on the home feed, a category page or a search; the logging policy fills its slots;
the shoppers' response model (`response.shopper_response`) decides what is viewed, added to the basket and bought. Shop rules are
then applied (a second-hand listing sells once, a game is bought once) and game owners come back on
later days to play.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from recs_assets.sources.simulator.batch import EVENT_CODE, LIBRARY, SEARCH, EventBatch
from recs_assets.sources.simulator.clock import DAY_US, HOUR_US, SECOND_US
from recs_assets.sources.simulator.policy import (
    Impressions,
    Sessions,
    StockSamplers,
    sample_rows,
    show_items,
    stock_samplers,
)
from recs_assets.sources.simulator.response import ShopperResponse, shopper_response
from recs_assets.sources.simulator.streams import Stream, random_stream
from recs_assets.sources.simulator.world import UNSOLD, World

# Behaviour knobs, constants for the same reason as the world's (see world.py).
# Session start hours 0..22 only: a session lasts under an hour, so every event stays inside its day.
_DIURNAL_WEIGHTS = np.array(
    [2, 1, 1, 1, 1, 1, 2, 3, 4, 4, 4, 5, 6, 5, 5, 5, 6, 7, 8, 10, 10, 9, 6], dtype=np.float64
)
_DIURNAL = _DIURNAL_WEIGHTS / _DIURNAL_WEIGHTS.sum()
_WEEKEND_LIFT = 1.2
# Where a visit starts, in the order of the surface codes HOME, CATEGORY, SEARCH.
_SESSION_KIND_SHARES = np.array([0.5, 0.3, 0.2])
_SEARCH_BRAND_SHARE = 0.25
_STOCK_ROUNDS_PER_DAY = 24  # second-hand stock is refreshed hourly

_IMPRESSION_DELAY_US = 1 * SECOND_US
_IMPRESSION_GAP_US = 50_000
_FIRST_VIEW_DELAY_US = 5 * SECOND_US
_MAX_VIEW_GAP_US = 25 * SECOND_US
_VIEW_SPAN_US = 2_400 * SECOND_US  # all views of a session fit in 40 minutes, whatever its length
_CART_DELAY_US = (5 * SECOND_US, 120 * SECOND_US)
_PURCHASE_DELAY_US = (10 * SECOND_US, 300 * SECOND_US)

_PLAY_DAYS_BASE = 1.0
_PLAY_DAYS_PER_AFFINITY = 8.0
_PLAY_GAP_P = 0.4  # chance of playing again the next day; gaps between play days are geometric
_PLAY_HOURS_SIGMA = 0.7


@dataclass
class ShopState:
    """What changes from day to day: sold listings (fashion) and owned titles (games)."""

    sold_at_us: np.ndarray  # per item; int64 max while unsold
    owned_keys: np.ndarray  # sorted user * n_items + item
    next_session: int = 0

    @classmethod
    def opening(cls, n_items: int) -> ShopState:
        """The shop before day 0: nothing sold, nothing owned, no sessions yet."""
        sold_at_us = np.full(n_items, UNSOLD, dtype=np.int64)
        return cls(sold_at_us=sold_at_us, owned_keys=np.zeros(0, dtype=np.int64))


@dataclass
class Purchases:
    """Purchases kept aside for follow-up behaviour (play sessions)."""

    user: list[np.ndarray] = field(default_factory=list)
    item: list[np.ndarray] = field(default_factory=list)
    day: list[np.ndarray] = field(default_factory=list)
    affinity: list[np.ndarray] = field(default_factory=list)


def draw_visits(
    world: World, day: int, day_start: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Who visits on a given day and when each visit starts (users only visit after signing up)."""
    config, users = world.config, world.users
    weekday = (config.start_date + dt.timedelta(days=day)).weekday()
    lift = _WEEKEND_LIFT if weekday >= 5 else 1.0
    visits = rng.poisson(config.sessions_per_user_day * users.activity * lift)
    user = np.repeat(np.arange(config.n_users, dtype=np.int64), visits)
    hour = rng.choice(len(_DIURNAL), size=len(user), p=_DIURNAL)
    start = day_start + hour * HOUR_US + rng.integers(0, HOUR_US, size=len(user))
    signed_up = start >= users.signup_us[user]
    return user[signed_up], start[signed_up]


def open_sessions(
    world: World,
    user: np.ndarray,
    start: np.ndarray,
    taste: np.ndarray,
    samplers: StockSamplers,
    rng: np.random.Generator,
) -> Sessions:
    """Where each visit starts: the home feed, a category page of their choice, or a search."""
    n_sessions = len(user)
    kind = rng.choice(3, size=n_sessions, p=_SESSION_KIND_SHARES)
    by_brand_search = (kind == SEARCH) & (rng.random(n_sessions) < _SEARCH_BRAND_SHARE)
    # Tastes restricted to what is in stock, so nobody is sent to an empty category.
    session_taste = (taste[user] + 1e-9) * samplers.by_category.has_items
    session_taste /= session_taste.sum(axis=1, keepdims=True)
    category = sample_rows(session_taste, rng.random(n_sessions))
    brand_weights = np.exp(world.users.brand_affinity[user]) * samplers.by_brand.has_items
    brand = sample_rows(brand_weights, rng.random(n_sessions))
    return Sessions(user=user, start=start, kind=kind, by_brand_search=by_brand_search,
                    taste=session_taste, category=category, brand=brand)


def _session_events(
    world: World,
    sessions: Sessions,
    shown: Impressions,
    response: ShopperResponse,
    state: ShopState,
    rng: np.random.Generator,
) -> EventBatch:
    """The sessions' events: the search that opened them, each impression, view, cart and purchase."""
    config, preset = world.config, world.preset
    user = sessions.user[shown.session]
    start = sessions.start[shown.session]
    # Users scroll down the list: each slot's view comes later than the one above it.
    view_gap = min(_MAX_VIEW_GAP_US, _VIEW_SPAN_US // config.impressions_per_session)
    impression_at = start + _IMPRESSION_DELAY_US + (shown.position - 1) * _IMPRESSION_GAP_US
    view_at = (start + _FIRST_VIEW_DELAY_US + (shown.position - 1) * view_gap
               + rng.integers(0, max(1, int(0.8 * view_gap)), size=len(shown.item)))
    cart_at = view_at + rng.integers(*_CART_DELAY_US, size=len(shown.item))
    buy_at = cart_at + rng.integers(*_PURCHASE_DELAY_US, size=len(shown.item))

    session_ids = state.next_session + np.arange(len(sessions.user), dtype=np.int64)
    state.next_session += len(sessions.user)
    searches = np.flatnonzero(sessions.kind == SEARCH)
    # Query vocabulary: the category words, then the brand words.
    query = np.where(sessions.by_brand_search, len(preset.categories) + sessions.brand, sessions.category)
    item_columns = dict(user=user, session=session_ids[shown.session], item=shown.item,
                        surface=sessions.kind[shown.session], position=shown.position)
    batches = [
        EventBatch.build(len(searches), at=sessions.start[searches], user=sessions.user[searches],
                         session=session_ids[searches], event_type=EVENT_CODE["search"],
                         surface=SEARCH, query=query[searches]),
        EventBatch.build(len(shown.item), at=impression_at, event_type=EVENT_CODE["impression"],
                         propensity=shown.propensity, **item_columns),
    ]
    steps = ((response.viewed, view_at, "view"), (response.carted, cart_at, "add_to_cart"),
             (response.bought, buy_at, "purchase"))
    for mask, at, name in steps:
        batches.append(EventBatch.build(int(mask.sum()), at=at[mask], event_type=EVENT_CODE[name],
                                        **{column: values[mask] for column, values in item_columns.items()}))
    return EventBatch.concat(batches)


def simulate_day(world: World, day: int, state: ShopState, purchases: Purchases) -> EventBatch:
    """One day of visits: sessions, what the shop showed, and what shoppers viewed, carted and bought."""
    preset = world.preset
    n_items = len(world.items.category)
    rng = random_stream(world.config.seed, Stream.DAY, day)
    day_start = world.start_us + day * DAY_US
    taste = world.taste_on(day)
    visitor, start = draw_visits(world, day, day_start, rng)

    # One-of-a-kind stock changes all day, so the shop refreshes what it can show every hour: a
    # listing sold or listed in one hour is gone from, or appears in, the next hour's feeds.
    n_rounds = _STOCK_ROUNDS_PER_DAY if preset.one_of_a_kind else 1
    round_length = DAY_US // n_rounds
    round_of_visit = (start - day_start) // round_length
    batches, bought_affinity = [], []
    for round_index in range(n_rounds):
        in_round = round_of_visit == round_index
        samplers = stock_samplers(world, day_start + round_index * round_length, state.sold_at_us)
        if samplers is None or not in_round.any():
            continue
        sessions = open_sessions(world, visitor[in_round], start[in_round], taste, samplers, rng)
        shown = show_items(world, sessions, samplers, rng)
        user = sessions.user[shown.session]
        owned = _is_owned(state.owned_keys, user * n_items + shown.item) if preset.has_plays else None
        response = shopper_response(world, user, shown.item, shown.position, taste, rng, owned=owned)
        events = _session_events(world, sessions, shown, response, state, rng)
        if preset.one_of_a_kind:
            _reserve_bought_listings(events, state)
        batches.append(events)
        bought_affinity.append(response.affinity[response.bought])
    events = EventBatch.concat(batches)
    affinity = np.concatenate(bought_affinity) if bought_affinity else np.zeros(0)

    if preset.one_of_a_kind:
        events, kept = _settle_one_of_a_kind_sales(events, state)
    else:
        events, kept = _settle_repeat_purchases(events, state, n_items)

    is_purchase = events.event_type == EVENT_CODE["purchase"]
    purchases.user.append(events.user[is_purchase])
    purchases.item.append(events.item[is_purchase])
    purchases.day.append(np.full(int(is_purchase.sum()), day, dtype=np.int64))
    purchases.affinity.append(affinity[kept])
    return events


def _reserve_bought_listings(events: EventBatch, state: ShopState) -> None:
    """Take bought listings out of stock for later rounds; the day's settlement decides who got them."""
    is_purchase = events.event_type == EVENT_CODE["purchase"]
    np.minimum.at(state.sold_at_us, events.item[is_purchase], events.at[is_purchase])


def _is_owned(owned_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Which user * n_items + item keys are in the sorted set of owned ones."""
    if len(owned_keys) == 0:
        return np.zeros(len(keys), dtype=bool)
    found = np.minimum(np.searchsorted(owned_keys, keys), len(owned_keys) - 1)
    return owned_keys[found] == keys


def _purchase_order(events: EventBatch) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the day's purchase events, and the permutation that puts them in time order."""
    purchase_idx = np.flatnonzero(events.event_type == EVENT_CODE["purchase"])
    by_time = np.argsort(events.at[purchase_idx], kind="stable")
    return purchase_idx, by_time


def _settle_one_of_a_kind_sales(events: EventBatch, state: ShopState) -> tuple[EventBatch, np.ndarray]:
    """The first buyer gets a listing; nothing happens to it afterwards (other carts stay as they were)."""
    purchase_idx, by_time = _purchase_order(events)
    ordered_items = events.item[purchase_idx[by_time]]
    _, first = np.unique(ordered_items, return_index=True)
    sale_idx = purchase_idx[by_time[first]]
    sale_at = np.full(len(state.sold_at_us), UNSOLD, dtype=np.int64)
    sale_at[events.item[sale_idx]] = events.at[sale_idx]

    has_item = events.item >= 0
    is_sale = np.zeros(len(events.at), dtype=bool)
    is_sale[sale_idx] = True
    before_sale = np.ones(len(events.at), dtype=bool)
    before_sale[has_item] = events.at[has_item] < sale_at[events.item[has_item]]
    is_purchase = events.event_type == EVENT_CODE["purchase"]
    keep = (before_sale & ~is_purchase) | is_sale

    state.sold_at_us[events.item[sale_idx]] = events.at[sale_idx]
    kept_purchases = is_sale[purchase_idx]
    return events.take(keep), kept_purchases


def _settle_repeat_purchases(
    events: EventBatch, state: ShopState, n_items: int
) -> tuple[EventBatch, np.ndarray]:
    """A user buys a title once: a second same-day purchase of it (from another session) is dropped."""
    purchase_idx, by_time = _purchase_order(events)
    keys = events.user[purchase_idx].astype(np.int64) * n_items + events.item[purchase_idx]
    _, first = np.unique(keys[by_time], return_index=True)
    kept_purchases = np.zeros(len(purchase_idx), dtype=bool)
    kept_purchases[by_time[first]] = True
    keep = np.ones(len(events.at), dtype=bool)
    keep[purchase_idx[~kept_purchases]] = False
    state.owned_keys = np.union1d(state.owned_keys, keys[kept_purchases])
    return events.take(keep), kept_purchases


def simulate_plays(world: World, purchases: Purchases, first_session: int) -> EventBatch:
    """Game owners come back on later days to play, longer and more often the more they like the game."""
    config = world.config
    rng = random_stream(config.seed, Stream.PLAYS)
    user = np.concatenate(purchases.user) if purchases.user else np.zeros(0, dtype=np.int32)
    item = np.concatenate(purchases.item) if purchases.item else np.zeros(0, dtype=np.int32)
    day = np.concatenate(purchases.day) if purchases.day else np.zeros(0, dtype=np.int64)
    affinity = np.concatenate(purchases.affinity) if purchases.affinity else np.zeros(0)

    n_play_days = rng.poisson(_PLAY_DAYS_BASE + _PLAY_DAYS_PER_AFFINITY * affinity)
    owner = np.repeat(np.arange(len(user)), n_play_days)
    gaps = rng.geometric(_PLAY_GAP_P, size=len(owner))
    cumulative = np.cumsum(gaps)
    group_start = np.cumsum(n_play_days) - n_play_days
    offset = cumulative - np.concatenate([[0], cumulative])[group_start][owner]
    play_day = day[owner] + offset
    mean_hours = 0.5 + 6.0 * affinity[owner]
    hours = np.exp(rng.normal(np.log(mean_hours) - 0.5 * _PLAY_HOURS_SIGMA**2, _PLAY_HOURS_SIGMA))
    hours = np.maximum(np.round(hours, 1), 0.1)
    hour = rng.choice(len(_DIURNAL), size=len(owner), p=_DIURNAL)
    at = world.start_us + play_day * DAY_US + hour * HOUR_US + rng.integers(0, HOUR_US, size=len(owner))

    within = play_day < config.n_days
    n = int(within.sum())
    return EventBatch.build(
        n,
        at=at[within],
        user=user[owner[within]],
        session=first_session + np.arange(n, dtype=np.int64),
        item=item[owner[within]],
        event_type=EVENT_CODE["play"],
        surface=LIBRARY,
        value=hours[within],
    )
