"""The two kinds of shop the simulator can play: a game store and a second-hand fashion app.

A preset is the shop's vocabulary (categories, brands, countries, conditions) and its price levels
and overall appetite for buying; everything else about behaviour is shared.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """One kind of shop: what it sells, at what prices, to whom, and how eagerly people buy."""

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


GAMES = Preset(
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

FASHION = Preset(
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

BY_NAME: dict[str, Preset] = {"games": GAMES, "fashion": FASHION}
PRESETS: tuple[str, ...] = tuple(BY_NAME)
# Colour words for fashion listing titles.
COLOURS = ("black", "white", "navy", "beige", "red", "green", "grey", "blue", "pink", "brown")
