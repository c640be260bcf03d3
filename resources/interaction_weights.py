"""How much each kind of action says about liking an item: one setting for every table and model."""

import dagster as dg

from recs_assets.features import DEFAULT_INTERACTION_PARAMS


class InteractionWeights(dg.ConfigurableResource):
    """Weights per action and the half-life of old actions, shared by the feature store and all training.

    A resource rather than per-asset config so the features a model trains on and the features it is
    scored with can never be computed with different weights.
    """

    w_view: float = DEFAULT_INTERACTION_PARAMS["w_view"]
    w_add_to_cart: float = DEFAULT_INTERACTION_PARAMS["w_add_to_cart"]
    w_purchase: float = DEFAULT_INTERACTION_PARAMS["w_purchase"]
    w_rating: float = DEFAULT_INTERACTION_PARAMS["w_rating"]
    w_play: float = DEFAULT_INTERACTION_PARAMS["w_play"]
    half_life_days: float | None = DEFAULT_INTERACTION_PARAMS["half_life_days"]

    def params(self) -> dict[str, float | None]:
        """The SQL parameters ($w_view, ... $half_life_days)."""
        return {name: getattr(self, name) for name in DEFAULT_INTERACTION_PARAMS}
