"""The hidden world: shoppers' tastes and the items' traits that nobody outside the simulator sees.

Users have tastes over categories (which can shift on a given day), brand likings, price sensitivity and
hidden factors; items have a category, brand, price, popularity and quality. `World.affinity_logit` turns
these into the true chance that a user buys an item once they look at it. That one function is both
the core of the shoppers' response model (`day.shopper_response`) and the truth that
`SimulatedMarketplace.true_affinity` reports, so the two can never drift apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from recs_assets.sources.simulator.clock import DAY_US, SECOND_US, date_us
from recs_assets.sources.simulator.config import SimulatorConfig
from recs_assets.sources.simulator.presets import BY_NAME, Preset
from recs_assets.sources.simulator.streams import Stream, random_stream

# Behaviour knobs. They are constants rather than config so that a config stays small and the
# simulated world keeps the same character everywhere; they were tuned to land the funnel rates,
# popularity skew and taste concentration in the ranges seen in real marketplaces.
_ACTIVITY_SIGMA = 1.0  # lognormal spread of how often each user visits; a few users visit a lot
_NEW_USER_SHARE = 0.15  # users who sign up during the simulated period
_TENURE_MEAN_DAYS = 400.0
_NEW_SEGMENT_DAYS = 30  # "new" = signed up in the last 30 days of the period

_CATALOGUE_CONCENTRATION = 50.0  # how closely each category's share of stock follows its demand
_TASTE_CONCENTRATION = 4.0  # sum of Dirichlet parameters: small, so most users love 1-3 categories
_TASTE_WEIGHT = 0.9
_TASTE_FLOOR = 0.05  # keeps the log finite for categories a user never thought about
_BRAND_AFFINITY_SD = 0.4
_PRICE_SENSITIVITY_MEDIAN = 0.8
_N_FACTORS = 8
_FACTOR_SD = 0.46  # gives the hidden user-item factor term a spread of about 0.6 logits
_QUALITY_FROM_POPULARITY = 0.35
_QUALITY_NOISE_SD = 0.25

UNSOLD = np.iinfo(np.int64).max  # sold_at of a listing that has not sold


@dataclass(frozen=True)
class Users:
    """Every user's hidden traits, one row per user."""

    taste: np.ndarray  # (n_users, n_categories), rows sum to 1
    shifted_taste: np.ndarray | None  # tastes from the shift day on
    brand_affinity: np.ndarray  # (n_users, n_brands), logits
    price_sensitivity: np.ndarray  # (n_users,)
    factors: np.ndarray  # (n_users, _N_FACTORS)
    activity: np.ndarray  # (n_users,), mean 1
    signup_us: np.ndarray  # (n_users,), int64 microseconds since the epoch
    country: np.ndarray  # (n_users,), index into preset.countries
    segment: np.ndarray  # (n_users,), str


@dataclass(frozen=True)
class Items:
    """Every item's traits, one row per item (for fashion: every listing over the whole period)."""

    category: np.ndarray  # (n_items,), index into preset.categories
    brand: np.ndarray
    price: np.ndarray
    relative_log_price: np.ndarray  # log(price / category median): what price-sensitive users dislike
    condition: np.ndarray  # index into preset.conditions, -1 when the preset has none
    condition_bonus: np.ndarray
    popularity: np.ndarray  # mean 1, strongly skewed
    quality: np.ndarray  # logit bonus every user sees
    factors: np.ndarray
    listed_us: np.ndarray  # int64 microseconds since the epoch


@dataclass(frozen=True)
class World:
    """The simulated shop's fixed facts: its config, its kind, its users and its items."""

    config: SimulatorConfig
    preset: Preset
    users: Users
    items: Items
    start_us: int

    def taste_on(self, day: int) -> np.ndarray:
        """Every user's tastes over categories on a given day: the shifted ones from the shift day on."""
        shift_day = self.config.preference_shift_day
        if shift_day is not None and day >= shift_day and self.users.shifted_taste is not None:
            return self.users.shifted_taste
        return self.users.taste

    def affinity_logit(self, user_idx: np.ndarray, item_idx: np.ndarray, taste: np.ndarray) -> np.ndarray:
        """The log-odds that a user buys an item once they look at it."""
        users, items = self.users, self.items
        category = items.category[item_idx]
        n_categories = taste.shape[1]
        taste_term = _TASTE_WEIGHT * np.log(n_categories * taste[user_idx, category] + _TASTE_FLOOR)
        brand_term = users.brand_affinity[user_idx, items.brand[item_idx]]
        price_term = -users.price_sensitivity[user_idx] * items.relative_log_price[item_idx]
        factor_term = np.einsum("ij,ij->i", users.factors[user_idx], items.factors[item_idx])
        return (
            self.preset.base_logit
            + taste_term
            + brand_term
            + price_term
            + factor_term
            + items.quality[item_idx]
            + items.condition_bonus[item_idx]
        )


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Log-odds to probability."""
    return 1.0 / (1.0 + np.exp(-x))


def build_world(config: SimulatorConfig) -> World:
    """Draw the users and items of the shop the config describes."""
    preset = BY_NAME[config.preset]
    categories_rng = random_stream(config.seed, Stream.CATEGORIES)
    category_demand = _category_base_shares(categories_rng, len(preset.categories))
    return World(
        config=config,
        preset=preset,
        users=_draw_users(config, preset, category_demand),
        items=_draw_items(config, preset, category_demand),
        start_us=date_us(config.start_date),
    )


def _category_base_shares(rng: np.random.Generator, n_categories: int) -> np.ndarray:
    """How popular each category is across the whole population: Zipf-like, in a random order."""
    shares = 1.0 / np.arange(1, n_categories + 1) ** 0.8
    return rng.permutation(shares / shares.sum())


def _draw_users(config: SimulatorConfig, preset: Preset, category_demand: np.ndarray) -> Users:
    rng = random_stream(config.seed, Stream.USERS)
    n = config.n_users
    n_categories = len(preset.categories)
    taste = rng.dirichlet(_TASTE_CONCENTRATION * category_demand, size=n)
    brand_affinity = rng.normal(0.0, _BRAND_AFFINITY_SD, size=(n, len(preset.brands)))
    price_sensitivity = np.exp(rng.normal(math.log(_PRICE_SENSITIVITY_MEDIAN), 0.4, size=n))
    factors = rng.normal(0.0, _FACTOR_SD, size=(n, _N_FACTORS))
    # Mean-one lognormal: the average visit rate equals the config's, the spread is heavy-tailed.
    activity = np.exp(rng.normal(-0.5 * _ACTIVITY_SIGMA**2, _ACTIVITY_SIGMA, size=n))

    start_us = date_us(config.start_date)
    horizon_us = config.n_days * DAY_US
    is_new = rng.random(n) < _NEW_USER_SHARE
    tenure_us = (rng.exponential(_TENURE_MEAN_DAYS, size=n) * DAY_US).astype(np.int64) + SECOND_US
    joined_during_us = rng.integers(0, horizon_us, size=n)
    signup_us = np.where(is_new, start_us + joined_during_us, start_us - tenure_us)

    country_weights = np.array(preset.country_weights)
    country = rng.choice(len(preset.countries), size=n, p=country_weights / country_weights.sum())
    segment = _segments(signup_us, activity, end_us=start_us + horizon_us)

    shifted_taste = None
    if config.preference_shift_day is not None:
        # A separate stream, so a shifted run matches the unshifted one before the shift day.
        shift_rng = random_stream(config.seed, Stream.SHIFT)
        # New tastes follow a different population-wide trend, so the overall category mix moves too.
        new_base = _category_base_shares(shift_rng, n_categories)
        new_taste = shift_rng.dirichlet(_TASTE_CONCENTRATION * new_base, size=n)
        shifted_taste = (1.0 - config.shift_strength) * taste + config.shift_strength * new_taste

    return Users(
        taste=taste,
        shifted_taste=shifted_taste,
        brand_affinity=brand_affinity,
        price_sensitivity=price_sensitivity,
        factors=factors,
        activity=activity,
        signup_us=signup_us.astype(np.int64),
        country=country,
        segment=segment,
    )


def _segments(signup_us: np.ndarray, activity: np.ndarray, end_us: int) -> np.ndarray:
    """New users by tenure; everyone else by how often they visit (top 10% power, next 30% regular)."""
    is_new = signup_us >= end_us - _NEW_SEGMENT_DAYS * DAY_US
    segment = np.full(len(signup_us), "casual", dtype=object)
    established = np.flatnonzero(~is_new)
    if len(established):
        activity_rank = np.argsort(np.argsort(-activity[established], kind="stable"), kind="stable")
        share = activity_rank / len(established)
        segment[established[share < 0.4]] = "regular"
        segment[established[share < 0.1]] = "power"
    segment[is_new] = "new"
    return segment


def _draw_items(config: SimulatorConfig, preset: Preset, category_demand: np.ndarray) -> Items:
    rng = random_stream(config.seed, Stream.ITEMS)
    n_initial = config.n_items
    n_new = config.new_listings_per_day * config.n_days if preset.one_of_a_kind else 0
    n = n_initial + n_new
    n_categories = len(preset.categories)

    # Supply roughly follows demand (sellers list what sells), with some imbalance per category.
    category_shares = rng.dirichlet(_CATALOGUE_CONCENTRATION * category_demand)
    category = rng.choice(n_categories, size=n, p=category_shares).astype(np.int32)
    brand_weights = 1.0 / np.arange(1, len(preset.brands) + 1) ** 0.8
    brand = rng.choice(len(preset.brands), size=n, p=brand_weights / brand_weights.sum()).astype(np.int32)

    median = np.array(preset.median_prices)[category]
    raw_price = median * np.exp(rng.normal(0.0, preset.price_sigma, size=n))
    low, high = preset.price_range
    if preset.has_plays:
        price = np.clip(np.round(raw_price), low + 1, high) - 0.01  # store prices end in .99
    else:
        price = np.clip(np.round(raw_price), low, high)  # sellers ask whole amounts
    relative_log_price = np.log(price / median)

    if preset.conditions:
        weights = np.array(preset.condition_weights)
        condition = rng.choice(len(preset.conditions), size=n, p=weights / weights.sum()).astype(np.int32)
        condition_bonus = np.array(preset.condition_bonus)[condition]
    else:
        condition = np.full(n, -1, dtype=np.int32)
        condition_bonus = np.zeros(n)

    log_popularity = rng.normal(0.0, preset.popularity_sigma, size=n)
    popularity = np.exp(log_popularity - 0.5 * preset.popularity_sigma**2)
    # Popular items are somewhat better on average, but popularity is not the whole story.
    quality = (_QUALITY_FROM_POPULARITY * log_popularity / preset.popularity_sigma
               + rng.normal(0.0, _QUALITY_NOISE_SD, size=n))
    factors = rng.normal(0.0, _FACTOR_SD, size=(n, _N_FACTORS))

    start_us = date_us(config.start_date)
    if preset.one_of_a_kind:
        # Stock on day 0 was listed over the previous two months; then a fixed number arrive each day.
        initial_listed = start_us - rng.integers(SECOND_US, 60 * DAY_US, size=n_initial)
        new_day = np.repeat(np.arange(config.n_days, dtype=np.int64), config.new_listings_per_day)
        new_listed = start_us + new_day * DAY_US + rng.integers(0, DAY_US, size=n_new)
        listed_us = np.concatenate([initial_listed, new_listed])
    else:
        listed_us = start_us - rng.integers(SECOND_US, 3 * 365 * DAY_US, size=n)

    return Items(
        category=category,
        brand=brand,
        price=price,
        relative_log_price=relative_log_price,
        condition=condition,
        condition_bonus=condition_bonus,
        popularity=popularity,
        quality=quality,
        factors=factors,
        listed_us=listed_us.astype(np.int64),
    )
