"""What the two "taste profile" models (ALS, BPR) share: a vector per user and per item, scored by dot product."""

from __future__ import annotations

import math

import numpy as np

from recs_assets.models.base import Recommender


class MatrixFactorizationRecommender(Recommender):
    """Shared scoring for models that learn a vector per user and per item (ALS, BPR)."""

    def __init__(self) -> None:
        super().__init__()
        self._user_factors: np.ndarray | None = None
        self._item_factors: np.ndarray | None = None
        self._item_factors_64: np.ndarray | None = None
        self._unit_items_64: np.ndarray | None = None

    def _score_users(self, user_idx: np.ndarray) -> np.ndarray:
        assert self._user_factors is not None and self._item_factors_64 is not None
        return batch_independent(self._user_factors[user_idx].astype(np.float64) @ self._item_factors_64.T)

    def _similarity_factors(self) -> np.ndarray:
        """The item vectors compared by cosine in `similar_items`."""
        assert self._item_factors is not None
        return self._item_factors

    def _item_similarities(self, item_idx: np.ndarray) -> np.ndarray:
        if self._unit_items_64 is None:
            factors = self._similarity_factors().astype(np.float64)
            norms = np.linalg.norm(factors, axis=1)
            self._unit_items_64 = factors / np.where(norms > 0, norms, 1.0)[:, None]
        unit = self._unit_items_64
        return batch_independent(unit[item_idx] @ unit.T)

    def _set_factors(self, user_factors: np.ndarray, item_factors: np.ndarray) -> None:
        self._user_factors = np.ascontiguousarray(user_factors)
        self._item_factors = np.ascontiguousarray(item_factors)
        self._item_factors_64 = self._item_factors.astype(np.float64)
        self._unit_items_64 = None

    def _model_state(self) -> dict[str, np.ndarray]:
        assert self._user_factors is not None and self._item_factors is not None
        return {"user_factors": self._user_factors, "item_factors": self._item_factors}

    def _restore_model(self, state: dict[str, np.ndarray]) -> None:
        self._set_factors(state["user_factors"], state["item_factors"])

    @property
    def user_factors(self) -> np.ndarray | None:
        """One row per training user, in the model's internal user order."""
        return self._user_factors

    @property
    def item_factors(self) -> np.ndarray | None:
        """One row per training item, in the model's internal item order."""
        return self._item_factors


def batch_independent(scores: np.ndarray) -> np.ndarray:
    """Round float64 dot products to float32 so a user's scores do not depend on their batch.

    BLAS sums in an order that depends on the matrix shape and a row's place in it, so the same user
    scored alone or among 1,000 others gets scores that differ in the last bits, which can swap two
    near-tied items. Computed in float64, those differences (~1e-16) vanish when rounded to float32
    (~1e-7), so the ranking is the same whoever else is in the request.
    """
    return scores.astype(np.float32)


def finite_or_none(value: float | None) -> float | None:
    """A loss as a plain float for reports, or None when the library gave none (or nan/inf)."""
    return None if value is None or not math.isfinite(value) else float(value)
