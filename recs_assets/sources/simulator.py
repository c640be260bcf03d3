"""A make-believe marketplace that produces realistic users, items and shopping events on demand.

The simulator invents a shop (a game store or a second-hand fashion app) whose shoppers have hidden
tastes, shows them items the way a simple production recommender would, and records what they look
at, put in the basket, buy and play. Because the hidden tastes are kept, anything trained on the
events can be scored against the truth (`SimulatedMarketplace.true_affinity`), which real data never
allows. It is the project's default data source, so the whole pipeline runs without downloads.

Every random number comes from streams derived from `SimulatorConfig.seed`, so one config gives the
same tables on every machine. The module is pure: no Dagster, no files, no clock.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

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

PRESETS: tuple[str, ...] = ("games", "fashion")

# ---------------------------------------------------------------------------------------------
# Behaviour knobs. They are constants rather than config so that a config stays small and the
# simulated world keeps the same character everywhere; they were tuned to land the funnel rates,
# popularity skew and taste concentration in the ranges seen in real marketplaces.
# ---------------------------------------------------------------------------------------------
_SECOND_US = 1_000_000
_HOUR_US = 3_600 * _SECOND_US
_DAY_US = 24 * _HOUR_US

# Session start hours 0..22 only: a session lasts under an hour, so every event stays inside its day.
_DIURNAL_WEIGHTS = np.array(
    [2, 1, 1, 1, 1, 1, 2, 3, 4, 4, 4, 5, 6, 5, 5, 5, 6, 7, 8, 10, 10, 9, 6], dtype=np.float64
)
_DIURNAL = _DIURNAL_WEIGHTS / _DIURNAL_WEIGHTS.sum()
_WEEKEND_LIFT = 1.2
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

# Session kinds: a personalised home feed, a category page the user picked, or a search.
_HOME, _CATEGORY, _SEARCH = 0, 1, 2
_SESSION_KIND_SHARES = np.array([0.5, 0.3, 0.2])
_SEARCH_BRAND_SHARE = 0.25
# Share of home-feed slots filled from shop-wide bestsellers instead of the user's favourite categories.
_HOME_POPULARITY_SHARE = 0.3
_STOCK_ROUNDS_PER_DAY = 24  # second-hand stock is refreshed hourly
_DRAWS_PER_SLOT = 3  # candidate draws per slot, so duplicates can be skipped without running short

_VIEW_AFFINITY_WEIGHT = 0.6
_POSITION_DECAY = 0.5  # users look less at lower slots
# P(buy | view) = affinity = P(cart | view) * P(purchase | cart); this exponent splits it.
_CART_EXPONENT = 0.55
_FRESHNESS_BOOST = 2.0  # fashion feeds push listings from the last few days
_FRESHNESS_DAYS = 3.0

_IMPRESSION_DELAY_US = 1 * _SECOND_US
_IMPRESSION_GAP_US = 50_000
_FIRST_VIEW_DELAY_US = 5 * _SECOND_US
_MAX_VIEW_GAP_US = 25 * _SECOND_US
_VIEW_SPAN_US = 2_400 * _SECOND_US  # all views of a session fit in 40 minutes, whatever its length
_CART_DELAY_US = (5 * _SECOND_US, 120 * _SECOND_US)
_PURCHASE_DELAY_US = (10 * _SECOND_US, 300 * _SECOND_US)

_PLAY_DAYS_BASE = 1.0
_PLAY_DAYS_PER_AFFINITY = 8.0
_PLAY_GAP_P = 0.4  # chance of playing again the next day; gaps between play days are geometric
_PLAY_HOURS_SIGMA = 0.7

_SURFACES: tuple[str, ...] = ("home", "category", "search", "library")
_SURFACE_LIBRARY = 3
_EVENT_CODE = {name: code for code, name in enumerate(EVENT_TYPES)}
_VARIANT = "control"
_UNSOLD = np.iinfo(np.int64).max  # sold_at of a listing that has not sold


class _Stream(enum.IntEnum):
    """Names of the independent random streams, so adding draws to one never shifts another."""

    USERS = 1
    ITEMS = 2
    SHIFT = 3
    DAY = 4
    PLAYS = 5
    CATEGORIES = 6


def _rng(seed: int, stream: _Stream, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed, int(stream), *keys])


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SimulatorConfig:
    """What kind of shop to simulate, how big it is, how long it runs, and the random seed."""

    preset: str = "games"  # "games" or "fashion"
    seed: int = 42
    n_users: int = 2_000
    n_items: int = 1_000  # games: catalogue size; fashion: listings in stock on day 0
    n_days: int = 30
    start_date: dt.date = dt.date(2026, 9, 1)  # day 0 (UTC)
    sessions_per_user_day: float = 0.25  # mean; per-user activity is heavy-tailed around it
    impressions_per_session: int = 12
    new_listings_per_day: int = 40  # fashion only
    preference_shift_day: int | None = None  # from this day index on, users' category tastes shift
    shift_strength: float = 0.8  # 0 = no change, 1 = completely new tastes

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {', '.join(PRESETS)}; got {self.preset!r}")
        _require_int("seed", self.seed, minimum=0)
        for name in ("n_users", "n_items", "n_days", "impressions_per_session"):
            _require_int(name, getattr(self, name), minimum=1)
        _require_int("new_listings_per_day", self.new_listings_per_day, minimum=0)
        rate = self.sessions_per_user_day
        if not _is_number(rate) or not math.isfinite(rate) or rate <= 0:
            raise ValueError(f"sessions_per_user_day must be a positive number; got {rate!r}")
        if isinstance(self.start_date, dt.datetime) or not isinstance(self.start_date, dt.date):
            raise ValueError(f"start_date must be a datetime.date (not a datetime); got {self.start_date!r}")
        if self.preference_shift_day is not None:
            _require_int("preference_shift_day", self.preference_shift_day, minimum=0)
            if self.preference_shift_day >= self.n_days:
                raise ValueError(
                    f"preference_shift_day must be within [0, n_days={self.n_days}); "
                    f"got {self.preference_shift_day}"
                )
        strength = self.shift_strength
        if not _is_number(strength) or not 0.0 <= strength <= 1.0:
            raise ValueError(f"shift_strength must be a number in [0, 1]; got {strength!r}")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _require_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer; got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")


# ---------------------------------------------------------------------------------------------
# Presets: the vocabulary and price levels of each kind of shop
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Preset:
    id_prefix: str
    categories: tuple[str, ...]
    median_prices: tuple[float, ...]  # one per category
    price_sigma: float
    price_range: tuple[float, float]
    brands: tuple[str, ...]
    countries: tuple[str, ...]
    country_weights: tuple[float, ...]
    popularity_sigma: float  # spread of the lognormal item popularity: larger = more skewed
    base_logit: float  # sets the overall purchase rate
    view_bias: float  # sets the overall click-through rate
    one_of_a_kind: bool  # each listing sells at most once (second-hand)
    has_plays: bool
    conditions: tuple[str, ...] = ()
    condition_weights: tuple[float, ...] = ()
    condition_bonus: tuple[float, ...] = ()  # buyers prefer better condition
    title_nouns: tuple[str, ...] = ()  # one per category, for fashion titles


_GAMES = _Preset(
    id_prefix="g",
    categories=("action", "adventure", "rpg", "strategy", "simulation", "sports", "racing", "puzzle",
                "shooter", "indie"),
    median_prices=(35.0, 30.0, 45.0, 30.0, 25.0, 40.0, 30.0, 12.0, 45.0, 15.0),
    price_sigma=0.45,
    price_range=(5.0, 70.0),
    brands=("Northwind Games", "Pixel Forge", "Red Comet", "Blue Harbor", "Ironbark Studios",
            "Lumen Interactive", "Paper Crane", "Stormglass", "Tiny Giant", "Quasar Works", "Old Oak",
            "Hexagon Play"),
    countries=("US", "GB", "DE", "FR", "BR", "PL", "JP", "CA"),
    country_weights=(0.32, 0.14, 0.12, 0.10, 0.09, 0.08, 0.08, 0.07),
    popularity_sigma=1.3,
    base_logit=-3.6,
    view_bias=-0.2,
    one_of_a_kind=False,
    has_plays=True,
)

_FASHION = _Preset(
    id_prefix="f",
    categories=("dresses", "jeans", "sneakers", "tops", "jackets", "skirts", "boots", "bags", "knitwear",
                "accessories"),
    median_prices=(30.0, 28.0, 50.0, 12.0, 55.0, 18.0, 60.0, 65.0, 25.0, 10.0),
    price_sigma=0.6,
    price_range=(5.0, 300.0),
    brands=("Atelier Nord", "Maison Lune", "Denimworks", "Urban Fox", "Kestrel", "Linen & Co", "Solstice",
            "Rivet", "Peak Trail", "Velvet Row", "Cobalt", "Juniper"),
    countries=("FR", "DE", "GB", "ES", "IT", "PL", "NL", "LT"),
    country_weights=(0.28, 0.18, 0.14, 0.10, 0.10, 0.08, 0.07, 0.05),
    popularity_sigma=0.9,
    base_logit=-3.9,
    view_bias=0.2,
    one_of_a_kind=True,
    has_plays=False,
    conditions=("new_with_tags", "very_good", "good", "fair"),
    condition_weights=(0.15, 0.45, 0.30, 0.10),
    condition_bonus=(0.3, 0.1, -0.1, -0.4),
    title_nouns=("dress", "jeans", "sneakers", "top", "jacket", "skirt", "boots", "bag", "jumper", "scarf"),
)

_PRESETS = {"games": _GAMES, "fashion": _FASHION}
_COLOURS = ("black", "white", "navy", "beige", "red", "green", "grey", "blue", "pink", "brown")


# ---------------------------------------------------------------------------------------------
# The hidden world: latent user and item traits
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Users:
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
class _Items:
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
class _World:
    config: SimulatorConfig
    preset: _Preset
    users: _Users
    items: _Items
    start_us: int

    def taste_on(self, day: int) -> np.ndarray:
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


def _date_us(day: dt.date) -> int:
    return int((day - dt.date(1970, 1, 1)).days) * _DAY_US


def _category_base_shares(rng: np.random.Generator, n_categories: int) -> np.ndarray:
    """How popular each category is across the whole population: Zipf-like, in a random order."""
    shares = 1.0 / np.arange(1, n_categories + 1) ** 0.8
    return rng.permutation(shares / shares.sum())


def _draw_users(config: SimulatorConfig, preset: _Preset, category_demand: np.ndarray) -> _Users:
    rng = _rng(config.seed, _Stream.USERS)
    n = config.n_users
    n_categories = len(preset.categories)
    taste = rng.dirichlet(_TASTE_CONCENTRATION * category_demand, size=n)
    brand_affinity = rng.normal(0.0, _BRAND_AFFINITY_SD, size=(n, len(preset.brands)))
    price_sensitivity = np.exp(rng.normal(math.log(_PRICE_SENSITIVITY_MEDIAN), 0.4, size=n))
    factors = rng.normal(0.0, _FACTOR_SD, size=(n, _N_FACTORS))
    # Mean-one lognormal: the average visit rate equals the config's, the spread is heavy-tailed.
    activity = np.exp(rng.normal(-0.5 * _ACTIVITY_SIGMA**2, _ACTIVITY_SIGMA, size=n))

    start_us = _date_us(config.start_date)
    horizon_us = config.n_days * _DAY_US
    is_new = rng.random(n) < _NEW_USER_SHARE
    tenure_us = (rng.exponential(_TENURE_MEAN_DAYS, size=n) * _DAY_US).astype(np.int64) + _SECOND_US
    joined_during_us = rng.integers(0, horizon_us, size=n)
    signup_us = np.where(is_new, start_us + joined_during_us, start_us - tenure_us)

    country_weights = np.array(preset.country_weights)
    country = rng.choice(len(preset.countries), size=n, p=country_weights / country_weights.sum())
    segment = _segments(signup_us, activity, end_us=start_us + horizon_us)

    shifted_taste = None
    if config.preference_shift_day is not None:
        # A separate stream, so a shifted run matches the unshifted one before the shift day.
        shift_rng = _rng(config.seed, _Stream.SHIFT)
        # New tastes follow a different population-wide trend, so the overall category mix moves too.
        new_base = _category_base_shares(shift_rng, n_categories)
        new_taste = shift_rng.dirichlet(_TASTE_CONCENTRATION * new_base, size=n)
        shifted_taste = (1.0 - config.shift_strength) * taste + config.shift_strength * new_taste

    return _Users(
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
    is_new = signup_us >= end_us - _NEW_SEGMENT_DAYS * _DAY_US
    segment = np.full(len(signup_us), "casual", dtype=object)
    established = np.flatnonzero(~is_new)
    if len(established):
        activity_rank = np.argsort(np.argsort(-activity[established], kind="stable"), kind="stable")
        share = activity_rank / len(established)
        segment[established[share < 0.4]] = "regular"
        segment[established[share < 0.1]] = "power"
    segment[is_new] = "new"
    return segment


def _draw_items(config: SimulatorConfig, preset: _Preset, category_demand: np.ndarray) -> _Items:
    rng = _rng(config.seed, _Stream.ITEMS)
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

    start_us = _date_us(config.start_date)
    if preset.one_of_a_kind:
        # Stock on day 0 was listed over the previous two months; then a fixed number arrive each day.
        initial_listed = start_us - rng.integers(_SECOND_US, 60 * _DAY_US, size=n_initial)
        new_day = np.repeat(np.arange(config.n_days, dtype=np.int64), config.new_listings_per_day)
        new_listed = start_us + new_day * _DAY_US + rng.integers(0, _DAY_US, size=n_new)
        listed_us = np.concatenate([initial_listed, new_listed])
    else:
        listed_us = start_us - rng.integers(_SECOND_US, 3 * 365 * _DAY_US, size=n)

    return _Items(
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


# ---------------------------------------------------------------------------------------------
# The logging policy's item sampler
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _GroupSampler:
    """Draws items within a group (a category, a brand, or the whole shop) in proportion to weights."""

    sorted_items: np.ndarray
    cdf: np.ndarray  # group index + cumulative probability within the group, aligned with sorted_items
    prob: np.ndarray  # per item: the chance it is drawn when its group is drawn from
    has_items: np.ndarray  # per group: anything with positive weight?

    @classmethod
    def build(cls, group_of_item: np.ndarray, weights: np.ndarray, n_groups: int) -> _GroupSampler:
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


def _sample_rows(weights: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """One categorical draw per row of a (non-negative, not necessarily normalised) weight matrix."""
    cumulative = np.cumsum(weights, axis=1)
    chosen = (cumulative <= (uniforms * cumulative[:, -1])[:, None]).sum(axis=1)
    return np.minimum(chosen, weights.shape[1] - 1)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# ---------------------------------------------------------------------------------------------
# One day of shopping
# ---------------------------------------------------------------------------------------------
@dataclass
class _EventBatch:
    """Events in columnar, integer-coded form; strings are only made once, at the very end."""

    at: np.ndarray  # int64 microseconds
    user: np.ndarray
    session: np.ndarray
    item: np.ndarray  # -1 = none
    event_type: np.ndarray
    surface: np.ndarray
    query: np.ndarray  # index into the query vocabulary, -1 = none
    position: np.ndarray  # 0 = none
    propensity: np.ndarray  # NaN = none
    value: np.ndarray  # NaN = none

    @classmethod
    def build(cls, n: int, **columns: np.ndarray | int | float) -> _EventBatch:
        defaults = dict(item=-1, query=-1, position=0, propensity=np.nan, value=np.nan)
        dtypes = dict(at=np.int64, user=np.int32, session=np.int64, item=np.int32, event_type=np.int8,
                      surface=np.int8, query=np.int16, position=np.int32, propensity=np.float64,
                      value=np.float64)
        values = {**defaults, **columns}
        return cls(**{name: np.broadcast_to(np.asarray(values[name], dtype=dtype), (n,)).copy()
                      for name, dtype in dtypes.items()})

    @classmethod
    def concat(cls, batches: list[_EventBatch]) -> _EventBatch:
        names = cls.__dataclass_fields__
        if not batches:
            return cls.build(0)
        return cls(**{name: np.concatenate([getattr(b, name) for b in batches]) for name in names})

    def reorder_in_place(self, order: np.ndarray) -> None:
        # Column by column, so at most one extra column is alive at a time (matters at 10M rows).
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name)[order])

    def take(self, mask: np.ndarray) -> _EventBatch:
        return _EventBatch(**{name: getattr(self, name)[mask] for name in self.__dataclass_fields__})


@dataclass
class _Purchases:
    """Purchases kept aside for follow-up behaviour (play sessions)."""

    user: list[np.ndarray] = field(default_factory=list)
    item: list[np.ndarray] = field(default_factory=list)
    day: list[np.ndarray] = field(default_factory=list)
    affinity: list[np.ndarray] = field(default_factory=list)


@dataclass
class _ShopState:
    """What changes from day to day: sold listings (fashion) and owned titles (games)."""

    sold_at_us: np.ndarray  # per item; int64 max while unsold
    owned_keys: np.ndarray  # sorted user * n_items + item
    next_session: int = 0


@dataclass(frozen=True)
class _StockSamplers:
    """The logging policy's view of the stock: the whole shop, per category and per brand."""

    shop: _GroupSampler
    by_category: _GroupSampler
    by_brand: _GroupSampler


def _stock_samplers(world: _World, now_us: int, state: _ShopState) -> _StockSamplers | None:
    """What the shop can show right now (listed and not sold), weighted by popularity."""
    preset, items = world.preset, world.items
    weights = items.popularity.copy()
    if preset.one_of_a_kind:
        age_days = (now_us - items.listed_us) / _DAY_US
        weights *= 1.0 + _FRESHNESS_BOOST * np.exp(-np.maximum(age_days, 0.0) / _FRESHNESS_DAYS)
        available = (items.listed_us < now_us) & (state.sold_at_us == _UNSOLD)
        weights = np.where(available, weights, 0.0)
    shop = _GroupSampler.build(np.zeros(len(weights), dtype=np.int64), weights, 1)
    if not shop.has_items[0]:
        return None
    return _StockSamplers(
        shop=shop,
        by_category=_GroupSampler.build(items.category.astype(np.int64), weights, len(preset.categories)),
        by_brand=_GroupSampler.build(items.brand.astype(np.int64), weights, len(preset.brands)),
    )


def _draw_visits(
    world: _World, day: int, day_start: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Who visits on a given day and when each visit starts (users only visit after signing up)."""
    config, users = world.config, world.users
    weekday = (config.start_date + dt.timedelta(days=day)).weekday()
    lift = _WEEKEND_LIFT if weekday >= 5 else 1.0
    visits = rng.poisson(config.sessions_per_user_day * users.activity * lift)
    user = np.repeat(np.arange(config.n_users, dtype=np.int64), visits)
    hour = rng.choice(len(_DIURNAL), size=len(user), p=_DIURNAL)
    start = day_start + hour * _HOUR_US + rng.integers(0, _HOUR_US, size=len(user))
    signed_up = start >= users.signup_us[user]
    return user[signed_up], start[signed_up]


@dataclass(frozen=True)
class _Sessions:
    user: np.ndarray
    start: np.ndarray  # int64 microseconds
    kind: np.ndarray  # _HOME, _CATEGORY or _SEARCH; also the surface code
    by_brand_search: np.ndarray  # a search for a brand rather than a category
    taste: np.ndarray  # (n_sessions, n_categories): the user's tastes over categories in stock
    category: np.ndarray  # the category browsed or searched for
    brand: np.ndarray  # the brand searched for


def _open_sessions(
    world: _World,
    user: np.ndarray,
    start: np.ndarray,
    taste: np.ndarray,
    samplers: _StockSamplers,
    rng: np.random.Generator,
) -> _Sessions:
    """Where each visit starts: the home feed, a category page of their choice, or a search."""
    n_sessions = len(user)
    kind = rng.choice(3, size=n_sessions, p=_SESSION_KIND_SHARES)
    by_brand_search = (kind == _SEARCH) & (rng.random(n_sessions) < _SEARCH_BRAND_SHARE)
    # Tastes restricted to what is in stock, so nobody is sent to an empty category.
    session_taste = (taste[user] + 1e-9) * samplers.by_category.has_items
    session_taste /= session_taste.sum(axis=1, keepdims=True)
    category = _sample_rows(session_taste, rng.random(n_sessions))
    brand_weights = np.exp(world.users.brand_affinity[user]) * samplers.by_brand.has_items
    brand = _sample_rows(brand_weights, rng.random(n_sessions))
    return _Sessions(user=user, start=start, kind=kind, by_brand_search=by_brand_search,
                     taste=session_taste, category=category, brand=brand)


@dataclass(frozen=True)
class _Impressions:
    session: np.ndarray  # index into the sessions
    item: np.ndarray
    position: np.ndarray  # 1-based
    propensity: np.ndarray


def _show_items(
    world: _World, sessions: _Sessions, samplers: _StockSamplers, rng: np.random.Generator
) -> _Impressions:
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
    is_home = sessions.kind[draw_session] == _HOME
    from_brand = sessions.by_brand_search[draw_session]
    from_shop = is_home & (rng.random(len(draw_session)) < _HOME_POPULARITY_SHARE)
    from_taste = is_home & ~from_shop
    in_category = from_taste | (~is_home & ~from_brand)
    draw_category = sessions.category[draw_session]
    draw_category[from_taste] = _sample_rows(
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
    return _Impressions(
        session=session,
        item=drawn.reshape(n_sessions, n_draws)[session, column],
        position=rank[session, column],
        propensity=np.clip(propensity[session, column], 1e-12, 1.0),
    )


def _shopper_response(
    world: _World,
    sessions: _Sessions,
    shown: _Impressions,
    taste: np.ndarray,
    state: _ShopState,
    rng: np.random.Generator,
) -> tuple[_EventBatch, np.ndarray]:
    """What shoppers do with what they were shown: view, add to cart, buy.

    Returns the sessions' events and the true affinity behind each purchase, in purchase order.
    """
    config, preset = world.config, world.preset
    n_items = len(world.items.category)
    user = sessions.user[shown.session]
    start = sessions.start[shown.session]
    logit = world.affinity_logit(user, shown.item, taste)
    affinity = _sigmoid(logit)
    position_penalty = _POSITION_DECAY * np.log(shown.position)
    p_view = _sigmoid(preset.view_bias + _VIEW_AFFINITY_WEIGHT * logit - position_penalty)
    viewed = rng.random(len(shown.item)) < p_view
    p_cart = np.where(viewed, affinity**_CART_EXPONENT, 0.0)
    if preset.has_plays:
        # Nobody adds a game they already own to the basket.
        p_cart[_is_owned(state.owned_keys, user * n_items + shown.item)] = 0.0
    carted = rng.random(len(shown.item)) < p_cart
    bought = carted & (rng.random(len(shown.item)) < affinity ** (1.0 - _CART_EXPONENT))

    # Users scroll down the list: each slot's view comes later than the one above it.
    view_gap = min(_MAX_VIEW_GAP_US, _VIEW_SPAN_US // config.impressions_per_session)
    impression_at = start + _IMPRESSION_DELAY_US + (shown.position - 1) * _IMPRESSION_GAP_US
    view_at = (start + _FIRST_VIEW_DELAY_US + (shown.position - 1) * view_gap
               + rng.integers(0, max(1, int(0.8 * view_gap)), size=len(shown.item)))
    cart_at = view_at + rng.integers(*_CART_DELAY_US, size=len(shown.item))
    buy_at = cart_at + rng.integers(*_PURCHASE_DELAY_US, size=len(shown.item))

    session_ids = state.next_session + np.arange(len(sessions.user), dtype=np.int64)
    state.next_session += len(sessions.user)
    searches = np.flatnonzero(sessions.kind == _SEARCH)
    # Query vocabulary: the category words, then the brand words.
    query = np.where(sessions.by_brand_search, len(preset.categories) + sessions.brand, sessions.category)
    item_columns = dict(user=user, session=session_ids[shown.session], item=shown.item,
                        surface=sessions.kind[shown.session], position=shown.position)
    batches = [
        _EventBatch.build(len(searches), at=sessions.start[searches], user=sessions.user[searches],
                          session=session_ids[searches], event_type=_EVENT_CODE["search"],
                          surface=_SEARCH, query=query[searches]),
        _EventBatch.build(len(shown.item), at=impression_at, event_type=_EVENT_CODE["impression"],
                          propensity=shown.propensity, **item_columns),
    ]
    for mask, at, name in ((viewed, view_at, "view"), (carted, cart_at, "add_to_cart"),
                           (bought, buy_at, "purchase")):
        batches.append(_EventBatch.build(int(mask.sum()), at=at[mask], event_type=_EVENT_CODE[name],
                                         **{column: values[mask] for column, values in item_columns.items()}))
    return _EventBatch.concat(batches), affinity[bought]


def _simulate_day(world: _World, day: int, state: _ShopState, purchases: _Purchases) -> _EventBatch:
    """One day of visits: sessions, what the shop showed, and what shoppers viewed, carted and bought."""
    preset = world.preset
    rng = _rng(world.config.seed, _Stream.DAY, day)
    day_start = world.start_us + day * _DAY_US
    taste = world.taste_on(day)
    visitor, start = _draw_visits(world, day, day_start, rng)

    # One-of-a-kind stock changes all day, so the shop refreshes what it can show every hour: a
    # listing sold or listed in one hour is gone from, or appears in, the next hour's feeds.
    n_rounds = _STOCK_ROUNDS_PER_DAY if preset.one_of_a_kind else 1
    round_length = _DAY_US // n_rounds
    round_of_visit = (start - day_start) // round_length
    batches, bought_affinity = [], []
    for round_index in range(n_rounds):
        in_round = round_of_visit == round_index
        samplers = _stock_samplers(world, day_start + round_index * round_length, state)
        if samplers is None or not in_round.any():
            continue
        sessions = _open_sessions(world, visitor[in_round], start[in_round], taste, samplers, rng)
        shown = _show_items(world, sessions, samplers, rng)
        events, affinity = _shopper_response(world, sessions, shown, taste, state, rng)
        if preset.one_of_a_kind:
            _reserve_bought_listings(events, state)
        batches.append(events)
        bought_affinity.append(affinity)
    events = _EventBatch.concat(batches)
    affinity = np.concatenate(bought_affinity) if bought_affinity else np.zeros(0)

    if preset.one_of_a_kind:
        events, kept = _settle_one_of_a_kind_sales(events, state)
    else:
        events, kept = _settle_repeat_purchases(events, state, len(world.items.category))

    is_purchase = events.event_type == _EVENT_CODE["purchase"]
    purchases.user.append(events.user[is_purchase])
    purchases.item.append(events.item[is_purchase])
    purchases.day.append(np.full(int(is_purchase.sum()), day, dtype=np.int64))
    purchases.affinity.append(affinity[kept])
    return events


def _reserve_bought_listings(events: _EventBatch, state: _ShopState) -> None:
    """Take bought listings out of stock for later rounds; the day's settlement decides who got them."""
    is_purchase = events.event_type == _EVENT_CODE["purchase"]
    np.minimum.at(state.sold_at_us, events.item[is_purchase], events.at[is_purchase])


def _is_owned(owned_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    if len(owned_keys) == 0:
        return np.zeros(len(keys), dtype=bool)
    found = np.minimum(np.searchsorted(owned_keys, keys), len(owned_keys) - 1)
    return owned_keys[found] == keys


def _purchase_order(events: _EventBatch) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the day's purchase events, and the permutation that puts them in time order."""
    purchase_idx = np.flatnonzero(events.event_type == _EVENT_CODE["purchase"])
    by_time = np.argsort(events.at[purchase_idx], kind="stable")
    return purchase_idx, by_time


def _settle_one_of_a_kind_sales(events: _EventBatch, state: _ShopState) -> tuple[_EventBatch, np.ndarray]:
    """The first buyer gets a listing; nothing happens to it afterwards (other carts stay as they were)."""
    purchase_idx, by_time = _purchase_order(events)
    ordered_items = events.item[purchase_idx[by_time]]
    _, first = np.unique(ordered_items, return_index=True)
    sale_idx = purchase_idx[by_time[first]]
    sale_at = np.full(len(state.sold_at_us), _UNSOLD, dtype=np.int64)
    sale_at[events.item[sale_idx]] = events.at[sale_idx]

    has_item = events.item >= 0
    is_sale = np.zeros(len(events.at), dtype=bool)
    is_sale[sale_idx] = True
    before_sale = np.ones(len(events.at), dtype=bool)
    before_sale[has_item] = events.at[has_item] < sale_at[events.item[has_item]]
    is_purchase = events.event_type == _EVENT_CODE["purchase"]
    keep = (before_sale & ~is_purchase) | is_sale

    state.sold_at_us[events.item[sale_idx]] = events.at[sale_idx]
    kept_purchases = is_sale[purchase_idx]
    return events.take(keep), kept_purchases


def _settle_repeat_purchases(
    events: _EventBatch, state: _ShopState, n_items: int
) -> tuple[_EventBatch, np.ndarray]:
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


def _simulate_plays(world: _World, purchases: _Purchases, first_session: int) -> _EventBatch:
    """Game owners come back on later days to play, longer and more often the more they like the game."""
    config = world.config
    rng = _rng(config.seed, _Stream.PLAYS)
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
    at = world.start_us + play_day * _DAY_US + hour * _HOUR_US + rng.integers(0, _HOUR_US, size=len(owner))

    within = play_day < config.n_days
    n = int(within.sum())
    return _EventBatch.build(
        n,
        at=at[within],
        user=user[owner[within]],
        session=first_session + np.arange(n, dtype=np.int64),
        item=item[owner[within]],
        event_type=_EVENT_CODE["play"],
        surface=_SURFACE_LIBRARY,
        value=hours[within],
    )


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------
def _padded(prefix: pl.Expr, number: pl.Expr, width: int) -> pl.Expr:
    """'u' and 42 -> 'u000042': zero-padded ids sort as strings in numeric order."""
    return pl.concat_str(prefix, number.cast(pl.String).str.zfill(width))


def _padded_ids(prefix: str, n: int, min_width: int) -> pl.Series:
    width = max(min_width, len(str(n)))
    return pl.select(_padded(pl.lit(prefix), pl.int_range(0, n) + 1, width)).to_series()


def _events_frame(
    world: _World, batch: _EventBatch, user_ids: pl.Series, item_ids: pl.Series
) -> pl.DataFrame:
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
        surface=pl.lit(pl.Series(_SURFACES)).gather(pl.col("surface")),
        position=pl.when(pl.col("position") > 0).then(pl.col("position")),
        propensity=pl.col("propensity").fill_nan(None),
        variant=pl.lit(_VARIANT),
    )
    return conform(events, EVENTS_SCHEMA)


def _items_frame(world: _World, item_ids: pl.Series, sold_at_us: np.ndarray) -> pl.DataFrame:
    preset, items = world.preset, world.items
    n = len(items.category)
    category = pl.Series(preset.categories).gather(items.category)
    brand = pl.Series(preset.brands).gather(items.brand)
    number = pl.Series(np.arange(1, n + 1)).cast(pl.String).str.zfill(max(4, len(str(n))))
    if preset.title_nouns:
        colour_rng = _rng(world.config.seed, _Stream.ITEMS, 1)
        colour = pl.Series(_COLOURS).gather(colour_rng.integers(0, len(_COLOURS), size=n))
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
            "is_active": sold_at_us == _UNSOLD,
        }
    )
    return conform(frame, ITEMS_SCHEMA)


def _users_frame(world: _World, user_ids: pl.Series) -> pl.DataFrame:
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


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------
@dataclass(eq=False)
class SimulatedMarketplace:
    """The simulated shop's three tables, plus the hidden truth about what each user likes."""

    config: SimulatorConfig
    events: pl.DataFrame  # EVENTS_SCHEMA, sorted by event_at then event_id
    items: pl.DataFrame  # ITEMS_SCHEMA
    users: pl.DataFrame  # USERS_SCHEMA
    _world: _World = field(repr=False)

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
        return _sigmoid(self._world.affinity_logit(user_idx, item_idx, taste))

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
        return ((timestamps - start).dt.total_microseconds() // _DAY_US).cast(pl.Int32).alias("day")

    def _day_index(self, day: int | None) -> int:
        if day is None:
            return self.config.n_days - 1
        is_int = isinstance(day, (int, np.integer)) and not isinstance(day, bool)
        if not is_int or not 0 <= day < self.config.n_days:
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
    preset = _PRESETS[config.preset]
    category_demand = _category_base_shares(_rng(config.seed, _Stream.CATEGORIES), len(preset.categories))
    world = _World(
        config=config,
        preset=preset,
        users=_draw_users(config, preset, category_demand),
        items=_draw_items(config, preset, category_demand),
        start_us=_date_us(config.start_date),
    )
    n_items = len(world.items.category)
    state = _ShopState(
        sold_at_us=np.full(n_items, _UNSOLD, dtype=np.int64),
        owned_keys=np.zeros(0, dtype=np.int64),
    )
    purchases = _Purchases()
    days = [_simulate_day(world, day, state, purchases) for day in range(config.n_days)]
    if preset.has_plays:
        days.append(_simulate_plays(world, purchases, first_session=state.next_session))
    batch = _EventBatch.concat(days)
    del days  # the per-day copies are no longer needed; at 10M events they are a gigabyte

    user_ids = _padded_ids("u", config.n_users, 6)
    item_ids = _padded_ids(preset.id_prefix, n_items, 6)
    return SimulatedMarketplace(
        config=config,
        events=_events_frame(world, batch, user_ids, item_ids),
        items=_items_frame(world, item_ids, state.sold_at_us),
        users=_users_frame(world, user_ids),
        _world=world,
    )
