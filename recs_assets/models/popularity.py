"""Bestsellers: recommend what most people interacted with. The baseline every model must beat.

Everyone gets the same list (minus what they already have), optionally within one category
("popular in Strategy"). It needs no personal history, so it is also what brand-new visitors see.
"More like this" for an item means "popular in the same category".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from recs_assets.models.base import Recommender
from recs_assets.models.inputs import as_id_list, empty_result, list_length

_BY = ("users", "strength")


class PopularityRecommender(Recommender):
    """Global (or per-category) popularity.

    `by="users"` ranks items by how many training users interacted with them (what cold users of
    every model get); `by="strength"` by the sum of interaction strengths, which favours items
    that are bought or played heavily by fewer people.
    """

    name = "popularity"

    def __init__(self, by: str = "users") -> None:
        if by not in _BY:
            raise ValueError(f"by must be one of {', '.join(_BY)}; got {by!r}")
        super().__init__()
        self.by = by
        self._scores: np.ndarray | None = None
        self._item_category: np.ndarray | None = None

    def recommend(  # type: ignore[override]
        self,
        user_ids: Sequence[str],
        N: int,
        exclude_seen: bool = True,
        category: str | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """As `Recommender.recommend`; with `category`, only items of that category are listed.

        A category that was never given to `fit` raises ValueError (most likely a typo); a known
        category with nothing left to show gives padded rows.
        """
        allowed = None if category is None else self._category_mask(category)
        return self._recommend(user_ids, N, exclude_seen, allowed=allowed)

    def similar_items(self, item_ids: Sequence[str], N: int) -> tuple[np.ndarray, np.ndarray]:
        """Popular available items of the same category (the whole catalogue if it has none).

        The category is looked up in `item_categories` as given to `fit`, so an item that was
        never interacted with still gets its category's bestsellers. An item unknown in both
        gets a row of None / NaN.
        """
        N = list_length(N)
        self._require_fitted()
        ids = as_id_list(item_ids, "item_ids")
        out_ids, out_scores = empty_result(len(ids), N)
        known = self.is_known_item(ids)
        # Rows sharing a category share one ranking; rank N + 1 so the item itself can be dropped.
        groups: dict[str | None, list[int]] = {}
        for row, (item, is_known) in enumerate(zip(ids, known, strict=True)):
            category = self._category_of.get(item)
            if category is not None or is_known:
                groups.setdefault(category, []).append(row)
        for category, rows in groups.items():
            allowed = self._available if category is None else self._available & self._category_mask(category)
            top_ids, top_scores = self._top_items(self._scores[None, :], N + 1, np.flatnonzero(allowed))  # type: ignore[index]
            for row in rows:
                keep = top_ids[0] != ids[row]
                out_ids[row] = top_ids[0][keep][:N]
                out_scores[row] = top_scores[0][keep][:N]
        return out_ids, out_scores

    def _fit(self, user_items: sp.csr_matrix) -> None:
        assert self._item_counts is not None
        if self.by == "users":
            self._scores = self._item_counts.astype(np.float64)
        else:
            self._scores = np.asarray(user_items.sum(axis=0), dtype=np.float64).ravel()
        self._item_category = None

    def _score_users(self, user_idx: np.ndarray) -> np.ndarray:
        assert self._scores is not None
        return np.tile(self._scores, (len(user_idx), 1))

    def _fallback_scores(self) -> np.ndarray:
        assert self._scores is not None
        return self._scores.copy()

    def _category_mask(self, category: str) -> np.ndarray:
        if not self._category_of:
            raise ValueError(
                f"category={category!r} needs item categories, but fit() was given no item_categories"
            )
        if self._item_category is None:
            assert self._item_ids is not None
            self._item_category = np.array([self._category_of.get(i) for i in self._item_ids], dtype=object)
        mask = self._item_category == category
        if not mask.any() and category not in set(self._category_of.values()):
            known = sorted(set(self._category_of.values()))
            raise ValueError(f"unknown category {category!r}; known categories: {known[:20]}")
        return mask

    def _model_state(self) -> dict[str, np.ndarray]:
        assert self._scores is not None
        return {"scores": self._scores}

    def _restore_model(self, state: dict[str, np.ndarray]) -> None:
        self._scores = state["scores"]
        self._item_category = None
