"""The shoppers' response model: what a shopper does with an item shown in a given slot.

It is the simulator's one and only response model. The history generator (`day.simulate_day`) calls it
for every impression the logging policy makes, and the online environment (`online.respond_to_slates`)
calls it for every slot another policy fills, so a simulated A/B test, a bandit or an off-policy
check judges a policy by exactly the behaviour the training data came from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recs_assets.sources.simulator.world import World, sigmoid

_VIEW_AFFINITY_WEIGHT = 0.6
_POSITION_DECAY = 0.5  # users look less at lower slots
# P(buy | view) = affinity = P(cart | view) * P(purchase | cart); this exponent splits it.
_CART_EXPONENT = 0.55


@dataclass(frozen=True)
class ShopperResponse:
    """What shoppers did with each item they were shown, and the chances behind it (one row per item)."""

    affinity: np.ndarray  # P(purchase | view): the true affinity of the user for the item
    p_view: np.ndarray  # P(view | shown): higher for liked items, lower in lower slots
    p_cart: np.ndarray  # P(add to cart | view); 0 for a game the user already owns
    p_purchase: np.ndarray  # P(purchase | in the basket)
    viewed: np.ndarray  # bool
    carted: np.ndarray  # bool; only viewed items are carted
    bought: np.ndarray  # bool; only carted items are bought


def shopper_response(
    world: World,
    user: np.ndarray,
    item: np.ndarray,
    position: np.ndarray,
    taste: np.ndarray,
    rng: np.random.Generator,
    owned: np.ndarray | None = None,
    logit: np.ndarray | None = None,
) -> ShopperResponse:
    """How shoppers respond to the items they are shown: look at them, put them in the basket, buy them.

    This is the simulator's one response model, for any list of impressions: `user`, `item` and
    `position` (1-based slot) are aligned arrays of user and item indices, `taste` is the users'
    category tastes of the day (`World.taste_on`), and `owned` marks impressions of a game the user
    already has, which nobody puts in the basket. A shown item is viewed with `p_view`, a viewed one
    carted with `p_cart` and a carted one bought with `p_purchase`, so P(purchase | view) is the true
    affinity. Draws exactly three uniforms per impression from `rng`, in that order. `logit` may
    pass `world.affinity_logit(user, item, taste)` when the caller already has it (the environment
    computes it once per distinct user-item pair, since a user sees the same slate many times).
    """
    if logit is None:
        logit = world.affinity_logit(user, item, taste)
    affinity = sigmoid(logit)
    position_penalty = _POSITION_DECAY * np.log(position)
    p_view = sigmoid(world.preset.view_bias + _VIEW_AFFINITY_WEIGHT * logit - position_penalty)
    p_cart = affinity**_CART_EXPONENT
    if owned is not None:
        p_cart = np.where(owned, 0.0, p_cart)
    p_purchase = affinity ** (1.0 - _CART_EXPONENT)
    n = len(item)
    viewed = rng.random(n) < p_view
    carted = viewed & (rng.random(n) < p_cart)
    bought = carted & (rng.random(n) < p_purchase)
    return ShopperResponse(affinity=affinity, p_view=p_view, p_cart=p_cart, p_purchase=p_purchase,
                           viewed=viewed, carted=carted, bought=bought)
