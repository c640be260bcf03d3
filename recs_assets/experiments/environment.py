"""The simulated shop as an environment any policy can serve: sessions in, business outcomes out.

A policy is a function from a list of user ids to one ranked list of item ids per user (a fitted
`Recommender`, a table of precomputed lists, the popularity baseline, the true-affinity oracle or
random choice). The environment draws who visits, asks the policy for each visitor's slate, and
lets the simulator's own response model (`sources.simulator.response.shopper_response`, through
`sources.simulator.online.respond_to_slates`) decide views, baskets and purchases. Deterministic per
seed; no per-event Python loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from recs_assets.arguments import positive_int
from recs_assets.sources.simulator import SimulatedMarketplace
from recs_assets.sources.simulator.day import ShopState
from recs_assets.sources.simulator.online import (
    EMPTY,
    SlateOutcome,
    available_items,
    draw_visitors,
    last_day,
    respond_to_slates,
    sessions_per_day,
)
from recs_assets.sources.simulator.clock import DAY_US
from recs_assets.sources.simulator.response import shopper_response
from recs_assets.sources.simulator.streams import Stream, random_stream
from recs_assets.sources.simulator.world import World, sigmoid

Policy = Callable[[list[str]], list[list[str]]]
_LATENCY_SAMPLE = 50  # single-user calls timed per policy for the latency guardrail
# Sub-streams of the simulator's ONLINE stream, so traffic and each arm's answers never share draws.
_TRAFFIC, _RESPONSES, _RANDOM_POLICY = 1, 2, 3


@dataclass(frozen=True)
class Traffic:
    """Who opens each session, in time order (user indices and their ids)."""

    user: np.ndarray
    user_ids: np.ndarray  # object array of str, aligned with `user`
    replica: np.ndarray  # the simulated day of each session: each day replays the shop as the history left it

    def __len__(self) -> int:
        return len(self.user)

    def take(self, mask: np.ndarray) -> Traffic:
        return Traffic(user=self.user[mask], user_ids=self.user_ids[mask], replica=self.replica[mask])


@dataclass(frozen=True)
class SessionResults:
    """Per-session outcomes of one policy on one traffic, plus what it showed and how fast it answered."""

    user_ids: np.ndarray
    impressions: np.ndarray
    views: np.ndarray
    carts: np.ndarray
    orders: np.ndarray  # 1 if the session bought anything
    items: np.ndarray  # items bought
    revenue: np.ndarray
    expected_orders: np.ndarray  # P(the session buys anything), from the response model's probabilities
    items_shown: np.ndarray  # distinct item indices shown
    latency_ms: np.ndarray  # per single-user policy call (a sample)

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame({
            "user_id": self.user_ids.tolist(), "impressions": self.impressions, "views": self.views,
            "carts": self.carts, "orders": self.orders, "items": self.items, "revenue": self.revenue,
        }, schema={"user_id": pl.String, "impressions": pl.Int64, "views": pl.Int64, "carts": pl.Int64,
                   "orders": pl.Int64, "items": pl.Int64, "revenue": pl.Float64})


class SimulatorEnvironment:
    """Serves simulated sessions after the history with any policy; the shoppers answer as in the history."""

    def __init__(self, world: World, state: ShopState, user_ids: Sequence[str], item_ids: Sequence[str],
                 slots: int | None = None, seed: int = 0) -> None:
        self.world, self.state = world, state
        self.user_ids = np.asarray(list(user_ids), dtype=object)
        self.item_ids = np.asarray(list(item_ids), dtype=object)
        if len(self.user_ids) != len(world.users.activity) or len(self.item_ids) != len(world.items.category):
            raise ValueError("user_ids and item_ids must name every user and item of the world, in order")
        self.slots = positive_int(slots if slots is not None else world.config.impressions_per_session, "slots")
        self.seed = seed
        self._user_index = {u: i for i, u in enumerate(self.user_ids)}
        self._item_index = {v: i for i, v in enumerate(self.item_ids)}
        self.available = available_items(world, state)

    @classmethod
    def from_market(cls, market: SimulatedMarketplace, slots: int | None = None, seed: int = 0) -> SimulatorEnvironment:
        """The environment after a simulated history: its users, items, tastes and final stock."""
        return cls(market.world, market.final_state, market.users["user_id"].to_list(),
                   market.items["item_id"].to_list(), slots=slots, seed=seed)

    @property
    def n_available(self) -> int:
        return int(self.available.sum())

    def user_index(self, user_ids: Sequence[str]) -> np.ndarray:
        try:
            return np.fromiter((self._user_index[u] for u in user_ids), dtype=np.int64, count=len(user_ids))
        except KeyError as error:
            raise KeyError(f"unknown user_id {error.args[0]!r}: the environment serves only the simulated shop's users") from None

    def item_index(self, item_ids: Sequence[str]) -> np.ndarray:
        """Item indices of these ids; -1 for an id the shop does not have."""
        return np.fromiter((self._item_index.get(i, EMPTY) for i in item_ids), dtype=np.int64, count=len(item_ids))

    def day_of_us(self, at_us: np.ndarray) -> np.ndarray:
        """The simulated day index of each time (microseconds since the epoch)."""
        return (np.asarray(at_us, dtype=np.int64) - self.world.start_us) // DAY_US

    def view_probability(self, user: np.ndarray, item: np.ndarray, position: np.ndarray, day: np.ndarray) -> np.ndarray:
        """P(view | shown) for each (user, item, slot, day), straight from the shoppers' response model."""
        user, item, position, day = (np.asarray(a, dtype=np.int64) for a in (user, item, position, day))
        out = np.empty(len(user))
        rng = np.random.default_rng(0)  # the draws are not used: only the probabilities are read
        for taste_day in np.unique(np.clip(day, 0, last_day(self.world))):
            rows = np.flatnonzero(np.clip(day, 0, last_day(self.world)) == taste_day)
            taste = self.world.taste_on(int(taste_day))
            out[rows] = shopper_response(self.world, user[rows], item[rows], position[rows], taste, rng).p_view
        return out

    def traffic(self, n_sessions: int, seed: int | None = None, users: Sequence[str] | None = None) -> Traffic:
        """`n_sessions` visits (users drawn by how often they visit), optionally only from `users`."""
        positive_int(n_sessions, "n_sessions")
        rng = random_stream(self.seed if seed is None else seed, Stream.ONLINE, _TRAFFIC)
        among = None if users is None else self.user_index(list(users))
        user = draw_visitors(self.world, n_sessions, rng, among=among)
        # A realistic day's volume per replayed day, so stock runs out as fast as it would in the shop.
        per_day = max(1, round(sessions_per_day(self.world, among)))
        return Traffic(user=user, user_ids=self.user_ids[user], replica=np.arange(n_sessions) // per_day)

    def slates(self, policy: Policy, user_ids: Sequence[str]) -> np.ndarray:
        """The policy's lists for these users as item indices (users, slots); unknown or missing items leave a slot empty."""
        users = list(user_ids)
        lists = policy(users)
        if len(lists) != len(users):
            raise ValueError(f"the policy returned {len(lists)} lists for {len(users)} users")
        out = np.full((len(users), self.slots), EMPTY, dtype=np.int64)
        index = self._item_index
        for row, items in enumerate(lists):
            seen = set()
            column = 0
            for item in items:
                if column == self.slots:
                    break
                idx = index.get(item, EMPTY) if item is not None else EMPTY
                if idx != EMPTY and idx not in seen:
                    out[row, column] = idx
                    seen.add(idx)
                    column += 1
        return out

    def latency_ms(self, policy: Policy, user_ids: Sequence[str]) -> np.ndarray:
        """Milliseconds per single-user call of the policy, on up to 50 of these users (the API's shape of call)."""
        sample = list(dict.fromkeys(user_ids))[:_LATENCY_SAMPLE]
        times = []
        for user in sample:
            start = time.perf_counter()
            policy([user])
            times.append(1000.0 * (time.perf_counter() - start))
        return np.asarray(times)

    def run(self, policy: Policy, traffic: Traffic, seed: int | None = None, measure_latency: bool = True) -> SessionResults:
        """Serve every session of the traffic with the policy's slate and collect the shoppers' response.

        The same seed and traffic give the same results; two policies run with the same seed share
        their random numbers slot by slot (common random numbers), so their difference is less noisy.
        """
        unique, inverse = np.unique(traffic.user, return_inverse=True)
        slates = self.slates(policy, self.user_ids[unique].tolist())[inverse]
        rng = random_stream(self.seed if seed is None else seed, Stream.ONLINE, _RESPONSES)
        outcome = respond_to_slates(self.world, self.state, traffic.user, slates, rng, replica=traffic.replica)
        latency = self.latency_ms(policy, self.user_ids[unique].tolist()) if measure_latency else np.zeros(0)
        return summarise_sessions(outcome, traffic, latency)

    # --- reference policies ---------------------------------------------------------------------

    def oracle_policy(self, N: int | None = None) -> Policy:
        """Ranks what can be shown by the true chance of a purchase once shown (owned titles last): the best any model could do."""
        N = N or self.slots
        world, state = self.world, self.state
        items = np.flatnonzero(self.available)
        taste = world.taste_on(last_day(world))

        def oracle(user_ids: list[str]) -> list[list[str]]:
            user = self.user_index(user_ids)
            out = []
            for start in range(0, len(user), 256):
                block = user[start:start + 256]
                u = np.repeat(block, len(items))
                i = np.tile(items, len(block))
                logit = world.affinity_logit(u, i, taste)
                # The response model's own chance of view x purchase in the top slot.
                score = sigmoid(world.preset.view_bias + 0.6 * logit) * sigmoid(logit)
                if world.preset.has_plays and len(state.owned_keys):
                    keys = u * len(world.items.category) + i
                    found = np.minimum(np.searchsorted(state.owned_keys, keys), len(state.owned_keys) - 1)
                    score = np.where(state.owned_keys[found] == keys, -1.0, score)
                score = score.reshape(len(block), len(items))
                top = np.argsort(-score, axis=1, kind="stable")[:, :N]
                out += [self.item_ids[items[row]].tolist() for row in top]
            return out

        return oracle

    def random_policy(self, seed: int = 0, N: int | None = None) -> Policy:
        """Shows N distinct items drawn uniformly from what can be shown, fresh for every user (seeded)."""
        N = N or self.slots
        items = np.flatnonzero(self.available)

        def random_lists(user_ids: list[str]) -> list[list[str]]:
            rng = random_stream(seed, Stream.ONLINE, _RANDOM_POLICY)
            keys = rng.random((len(user_ids), len(items)))
            top = np.argpartition(keys, min(N, len(items) - 1), axis=1)[:, :N] if len(items) > N else np.tile(np.arange(len(items)), (len(user_ids), 1))
            return [self.item_ids[items[row]].tolist() for row in top]

        return random_lists


def summarise_sessions(outcome: SlateOutcome, traffic: Traffic, latency_ms: np.ndarray) -> SessionResults:
    """Per-session sums of the per-slot outcomes."""
    n = outcome.n_sessions

    def per_session(values: np.ndarray) -> np.ndarray:
        return np.bincount(outcome.session, weights=values, minlength=n)

    bought = outcome.bought.astype(np.float64)
    items = per_session(bought).astype(np.int64)
    # P(no purchase in the session) = product over slots of (1 - p_buy), via sums of logs.
    log_none = per_session(np.log1p(-np.minimum(outcome.p_buy, 1 - 1e-12)))
    return SessionResults(
        user_ids=traffic.user_ids,
        impressions=np.bincount(outcome.session, minlength=n).astype(np.int64),
        views=per_session(outcome.viewed.astype(np.float64)).astype(np.int64),
        carts=per_session(outcome.carted.astype(np.float64)).astype(np.int64),
        orders=(items > 0).astype(np.int64),
        items=items,
        revenue=per_session(np.where(outcome.bought, outcome.price, 0.0)),
        expected_orders=-np.expm1(log_none),
        items_shown=np.unique(outcome.item),
        latency_ms=latency_ms,
    )


def lists_policy(lists: pl.DataFrame) -> Policy:
    """A policy that serves precomputed lists (user_id, item_id, rank); a user without a list gets an empty slate."""
    missing = {"user_id", "item_id", "rank"} - set(lists.columns)
    if missing:
        raise ValueError(f"lists need columns user_id, item_id, rank; missing {sorted(missing)}")
    grouped = lists.sort("user_id", "rank").group_by("user_id", maintain_order=True).agg("item_id")
    table = dict(zip(grouped["user_id"].to_list(), grouped["item_id"].to_list()))

    def from_lists(user_ids: list[str]) -> list[list[str]]:
        return [table.get(u, []) for u in user_ids]

    return from_lists


def recommender_policy(model, N: int) -> Policy:
    """A fitted `Recommender` answering live: its top-N for each user (nothing they already had)."""
    positive_int(N, "N")

    def live(user_ids: list[str]) -> list[list[str]]:
        item_ids, _ = model.recommend(user_ids, N, exclude_seen=True)
        return [[i for i in row if i is not None] for row in item_ids.tolist()]

    return live
