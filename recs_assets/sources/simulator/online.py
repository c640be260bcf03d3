"""The simulated shop as an environment: after the history ends, any policy fills the sessions' slots.

The history generator lets the shop's own logging policy choose what to show. Here the caller
chooses instead: `respond_to_slates` takes one slate (a ranked row of item indices) per session and
the shoppers answer with the same response model (`response.shopper_response`: position bias,
views, baskets, purchases), under the shop's rules as the history left it (a sold listing is gone
and a one-of-a-kind listing sells once; a title the user owns is never bought again, nor bought
twice). Everything is vectorised over sessions and slots, and every random number comes from the
caller's generator, so one seed gives one answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recs_assets.sources.simulator.clock import DAY_US
from recs_assets.sources.simulator.day import ShopState, _is_owned
from recs_assets.sources.simulator.response import shopper_response
from recs_assets.sources.simulator.world import UNSOLD, World

EMPTY = -1  # an unfilled slot in a slate


@dataclass(frozen=True)
class SlateOutcome:
    """What happened to every item shown, one row per filled slot (sessions numbered in time order)."""

    n_sessions: int
    session: np.ndarray  # index into the sessions
    item: np.ndarray
    position: np.ndarray  # 1-based, after sold listings were taken out of the slate
    price: np.ndarray
    p_view: np.ndarray
    p_buy: np.ndarray  # P(view, basket and purchase) of this impression, before the shop's rules
    viewed: np.ndarray
    carted: np.ndarray
    bought: np.ndarray  # after the shop's rules (first buyer of a listing; a title once per user)


def last_day(world: World) -> int:
    return world.config.n_days - 1


def end_of_history_us(world: World) -> int:
    return world.start_us + world.config.n_days * DAY_US


def available_items(world: World, state: ShopState) -> np.ndarray:
    """Which items can be shown after the history: everything listed by then and not sold."""
    items = world.items
    if not world.preset.one_of_a_kind:
        return np.ones(len(items.category), dtype=bool)
    return (items.listed_us < end_of_history_us(world)) & (state.sold_at_us == UNSOLD)


def sessions_per_day(world: World, among: np.ndarray | None = None) -> float:
    """How many sessions the shop (or these users) opens on an ordinary day, at the config's visit rate."""
    activity = world.users.activity if among is None else world.users.activity[np.unique(among)]
    return max(1.0, world.config.sessions_per_user_day * float(activity.sum()))


def draw_visitors(
    world: World, n_sessions: int, rng: np.random.Generator, among: np.ndarray | None = None
) -> np.ndarray:
    """Who opens each of `n_sessions` sessions: users drawn by how often they visit (heavy users return often).

    `among` restricts the visitors to these user indices (for example the users a model has lists
    for). Only users who have signed up by the end of the history visit.
    """
    users = world.users
    candidates = np.arange(len(users.activity)) if among is None else np.unique(np.asarray(among, dtype=np.int64))
    candidates = candidates[users.signup_us[candidates] < end_of_history_us(world)]
    if len(candidates) == 0:
        raise ValueError("no user can visit: none of the given users had signed up by the end of the history")
    weights = users.activity[candidates]
    return candidates[rng.choice(len(candidates), size=n_sessions, p=weights / weights.sum())]


def respond_to_slates(
    world: World,
    state: ShopState,
    user: np.ndarray,
    slates: np.ndarray,
    rng: np.random.Generator,
    day: int | None = None,
    replica: np.ndarray | None = None,
) -> SlateOutcome:
    """The shoppers' answer to one slate per session (rows of item indices, `EMPTY` for an unfilled slot).

    Sessions are taken to happen in row order after the history, with the users' tastes of `day`
    (default the last simulated day). A slate's items should be distinct. Items that cannot be shown
    (sold, not yet listed) are taken out and the rest move up, as a live page would do.

    `replica` numbers the simulated day of each session (non-decreasing): every such day replays the
    shop as the history left it, and the shop's rules apply within it (a listing sells to its first
    buyer that day, a title is bought once). Without it all sessions share one day.
    """
    user = np.asarray(user, dtype=np.int64)
    slates = np.asarray(slates, dtype=np.int64)
    if slates.ndim != 2 or len(slates) != len(user):
        raise ValueError(f"slates must be a (sessions, slots) matrix with one row per user; got {slates.shape} for {len(user)} users")
    n_items = len(world.items.category)
    if slates.size and (slates.max() >= n_items or slates.min() < EMPTY):
        raise ValueError(f"slates hold item indices in [0, {n_items}) or {EMPTY} for an empty slot")
    showable = (slates >= 0) & available_items(world, state)[np.maximum(slates, 0)]
    order = np.argsort(~showable, axis=1, kind="stable")
    compact = np.take_along_axis(slates, order, axis=1)
    session, column = np.nonzero(np.take_along_axis(showable, order, axis=1))
    item = compact[session, column]
    shown_user = user[session]
    owned = None
    if world.preset.has_plays:
        owned = _is_owned(state.owned_keys, shown_user * n_items + item)
    taste = world.taste_on(last_day(world) if day is None else day)
    pairs, pair_of = np.unique(shown_user * n_items + item, return_inverse=True)
    logit = world.affinity_logit(pairs // n_items, pairs % n_items, taste)[pair_of]
    response = shopper_response(world, shown_user, item, column + 1, taste, rng, owned=owned, logit=logit)

    # Shop rules, first come first served: rows are in session order, so the first occurrence of a
    # key among the purchases is the earliest one.
    bought_idx = np.flatnonzero(response.bought)
    if world.preset.one_of_a_kind:
        keys, span = item[bought_idx], n_items
    else:
        keys, span = shown_user[bought_idx] * n_items + item[bought_idx], len(world.users.activity) * n_items
    if replica is not None:
        replica = np.asarray(replica, dtype=np.int64)
        if len(replica) != len(user):
            raise ValueError(f"replica needs one day number per session; got {len(replica)} for {len(user)} sessions")
        keys = replica[session[bought_idx]] * span + keys
    _, first = np.unique(keys, return_index=True)
    bought = np.zeros(len(item), dtype=bool)
    bought[bought_idx[first]] = True
    return SlateOutcome(
        n_sessions=len(user),
        session=session,
        item=item,
        position=column + 1,
        price=world.items.price[item],
        p_view=response.p_view,
        p_buy=response.p_view * response.p_cart * response.p_purchase,
        viewed=response.viewed,
        carted=response.carted,
        bought=bought,
    )
