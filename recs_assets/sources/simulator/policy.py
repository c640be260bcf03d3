"""The logging policy: what the shop shows in each session, in which slot, and with what probability.

It behaves like a simple production recommender: the home feed mixes shop-wide bestsellers with items
from the user's favourite categories, category pages and searches show popular items in what was asked
for. Every impression records its position and the probability the policy had of choosing it, so
off-policy estimates (inverse-propensity weighting) can be computed on the logs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recs_assets.sources.simulator.batch import HOME
from recs_assets.sources.simulator.clock import DAY_US
from recs_assets.sources.simulator.world import UNSOLD, World

# Share of home-feed slots filled from shop-wide bestsellers instead of the user's favourite categories.
_HOME_POPULARITY_SHARE = 0.3
_DRAWS_PER_SLOT = 3  # candidate draws per slot, so duplicates can be skipped without running short
_FRESHNESS_BOOST = 2.0  # fashion feeds push listings from the last few days
_FRESHNESS_DAYS = 3.0


@dataclass(frozen=True)
class GroupSampler:
    """Draws items within a group (a category, a brand, or the whole shop) in proportion to weights."""

    sorted_items: np.ndarray
    cdf: np.ndarray  # group index + cumulative probability within the group, aligned with sorted_items
    prob: np.ndarray  # per item: the chance it is drawn when its group is drawn from
    has_items: np.ndarray  # per group: anything with positive weight?

    @classmethod
    def build(cls, group_of_item: np.ndarray, weights: np.ndarray, n_groups: int) -> GroupSampler:
        totals = np.bincount(group_of_item, weights=weights, minlength=n_groups)
        item_total = totals[group_of_item]
        prob = np.divide(weights, item_total, out=np.zeros(len(weights)), where=item_total > 0)

        order = np.argsort(group_of_item, kind="stable")
        group_sorted = group_of_item[order]
        cumulative = np.cumsum(prob[order])
        starts = np.searchsorted(group_sorted, np.arange(n_groups), side="left")
        ends = np.searchsorted(group_sorted, np.arange(n_groups), side="right")
        before_group = np.concatenate([[0.0], cumulative])[starts]
        within = cumulative - before_group[group_sorted]
        # Divide by each group's own final value so it ends at exactly 1 and rounding never spills a
        # draw into the next group.
        group_end = np.where(ends > starts, np.concatenate([[0.0], within])[ends], 0.0)
        group_end = np.where(group_end > 0, group_end, 1.0)
        cdf = group_sorted + within / group_end[group_sorted]
        return cls(sorted_items=order.astype(np.int64), cdf=cdf, prob=prob, has_items=totals > 0)

    def sample(self, groups: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
        targets = groups + np.minimum(uniforms, 1.0 - 1e-9)
        found = np.searchsorted(self.cdf, targets, side="right")
        return self.sorted_items[np.minimum(found, len(self.sorted_items) - 1)]


def sample_rows(weights: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """One categorical draw per row of a (non-negative, not necessarily normalised) weight matrix."""
    cumulative = np.cumsum(weights, axis=1)
    chosen = (cumulative <= (uniforms * cumulative[:, -1])[:, None]).sum(axis=1)
    return np.minimum(chosen, weights.shape[1] - 1)


@dataclass(frozen=True)
class StockSamplers:
    """The logging policy's view of the stock: the whole shop, per category and per brand."""

    shop: GroupSampler
    by_category: GroupSampler
    by_brand: GroupSampler


def stock_samplers(world: World, now_us: int, sold_at_us: np.ndarray) -> StockSamplers | None:
    """What the shop can show right now (listed and not sold), weighted by popularity; None if nothing."""
    preset, items = world.preset, world.items
    weights = items.popularity.copy()
    if preset.one_of_a_kind:
        age_days = (now_us - items.listed_us) / DAY_US
        weights *= 1.0 + _FRESHNESS_BOOST * np.exp(-np.maximum(age_days, 0.0) / _FRESHNESS_DAYS)
        available = (items.listed_us < now_us) & (sold_at_us == UNSOLD)
        weights = np.where(available, weights, 0.0)
    shop = GroupSampler.build(np.zeros(len(weights), dtype=np.int64), weights, 1)
    if not shop.has_items[0]:
        return None
    return StockSamplers(
        shop=shop,
        by_category=GroupSampler.build(items.category.astype(np.int64), weights, len(preset.categories)),
        by_brand=GroupSampler.build(items.brand.astype(np.int64), weights, len(preset.brands)),
    )


@dataclass(frozen=True)
class Sessions:
    """The requests the policy answers: who asked, when, on which surface, for which category or brand."""

    user: np.ndarray
    start: np.ndarray  # int64 microseconds
    kind: np.ndarray  # HOME, CATEGORY or SEARCH; also the surface code
    by_brand_search: np.ndarray  # a search for a brand rather than a category
    taste: np.ndarray  # (n_sessions, n_categories): the user's tastes over categories in stock
    category: np.ndarray  # the category browsed or searched for
    brand: np.ndarray  # the brand searched for


@dataclass(frozen=True)
class Impressions:
    """What the policy showed: one row per slot filled, with the probability of that choice."""

    session: np.ndarray  # index into the sessions
    item: np.ndarray
    position: np.ndarray  # 1-based
    propensity: np.ndarray


def show_items(
    world: World, sessions: Sessions, samplers: StockSamplers, rng: np.random.Generator
) -> Impressions:
    """The logging policy fills each session's slots and records how likely each choice was.

    Home feed: a share of slots from shop-wide bestsellers, the rest from a category drawn from the
    user's tastes, by popularity within it. Category pages and searches: by popularity within the
    category or brand the user asked for (so the propensity is conditional on that choice).
    """
    n_items = len(world.items.category)
    n_sessions = len(sessions.user)
    slots = world.config.impressions_per_session
    n_draws = _DRAWS_PER_SLOT * slots
    draw_session = np.repeat(np.arange(n_sessions, dtype=np.int64), n_draws)
    is_home = sessions.kind[draw_session] == HOME
    from_brand = sessions.by_brand_search[draw_session]
    from_shop = is_home & (rng.random(len(draw_session)) < _HOME_POPULARITY_SHARE)
    from_taste = is_home & ~from_shop
    in_category = from_taste | (~is_home & ~from_brand)
    draw_category = sessions.category[draw_session]
    draw_category[from_taste] = sample_rows(
        sessions.taste[draw_session[from_taste]], rng.random(int(from_taste.sum()))
    )

    uniforms = rng.random(len(draw_session))
    drawn = np.empty(len(draw_session), dtype=np.int64)
    drawn[from_shop] = samplers.shop.sample(np.zeros(int(from_shop.sum())), uniforms[from_shop])
    drawn[in_category] = samplers.by_category.sample(draw_category[in_category], uniforms[in_category])
    draw_brand = sessions.brand[draw_session[from_brand]]
    drawn[from_brand] = samplers.by_brand.sample(draw_brand, uniforms[from_brand])

    draw_prob = np.where(from_brand, samplers.by_brand.prob[drawn], samplers.by_category.prob[drawn])
    home_items = drawn[is_home]
    home_taste = sessions.taste[draw_session[is_home], world.items.category[home_items]]
    draw_prob[is_home] = (
        _HOME_POPULARITY_SHARE * samplers.shop.prob[home_items]
        + (1.0 - _HOME_POPULARITY_SHARE) * home_taste * samplers.by_category.prob[home_items]
    )

    # Keeping the first draw of each item within a session is sampling without replacement: the
    # chance of the k-th shown item is its probability renormalised over what is not yet shown.
    _, first_index = np.unique(draw_session * n_items + drawn, return_index=True)
    is_first = np.zeros(len(drawn), dtype=bool)
    is_first[first_index] = True
    is_first = is_first.reshape(n_sessions, n_draws)
    rank = np.cumsum(is_first, axis=1)
    first_prob = np.where(is_first, draw_prob.reshape(n_sessions, n_draws), 0.0)
    already_shown_prob = np.cumsum(first_prob, axis=1) - first_prob
    remaining = np.maximum(1.0 - already_shown_prob, first_prob)
    propensity = np.divide(first_prob, remaining, out=np.ones_like(first_prob), where=remaining > 0)

    session, column = np.nonzero(is_first & (rank <= slots))
    return Impressions(
        session=session,
        item=drawn.reshape(n_sessions, n_draws)[session, column],
        position=rank[session, column],
        propensity=np.clip(propensity[session, column], 1e-12, 1.0),
    )
