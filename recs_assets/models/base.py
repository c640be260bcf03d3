"""What every recommendation model in the project promises, whatever maths is inside it.

A model learns from a table of who interacted with what, and how strongly (`fit`). It can then:
- list the N items a user is most likely to want next (`recommend`), leaving out what they already
  have and anything that may not be shown (sold, out of stock, delisted);
- list the N items most like a given item (`similar_items`), for "more like this" shelves;
- be saved to one file and loaded back, giving exactly the same lists (`save`, `load`).

Rules shared by every model, so that the serving layer and the reports never special-case one:
- Users the model has never seen ("cold" users) get the shop's most popular items that may be shown,
  never an error; `is_known_user` tells the caller which users got this fallback.
- Items that appear only in the catalogue but never in the training interactions cannot be
  recommended: no model has learnt anything about them (`n_unseen_available_items` counts them).
- Lists are best first. When two items score the same, the item that was more popular in training
  comes first (then the smaller item id), so the output never depends on chance or input order.
- When fewer than N items are left to show, the list is padded with None (score NaN).
- Fitting is reproducible: every random choice comes from a seed passed to the constructor.

Implementation notes for developers: subclasses implement `_fit` (learn from the user x item
matrix), `_score_users` (a dense block of scores for a batch of users) and optionally
`_item_similarities`, `_model_state` and `_restore_model`. Scoring runs in batches of users sized
so that one dense block stays under `score_block_cells` cells whatever the catalogue size, so 100k
users x 200k items never becomes one dense matrix. Input checks live in models/inputs.py, top-N
selection in models/top_n.py, the name -> class registry in models/registry.py.
"""

from __future__ import annotations

import abc
import inspect
import json
import os
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl
import scipy.sparse as sp

from recs_assets.models.inputs import (
    as_id_list,
    category_mapping,
    empty_result,
    interaction_matrix,
    list_length,
    to_str_array,
)
from recs_assets.models.top_n import top_n

_SAVE_FORMAT = 1


class Recommender(abc.ABC):
    """Shared base class: data preparation, filtering, top-N selection, fallback and persistence."""

    name: ClassVar[str]
    batch_size: ClassVar[int] = 1024  # users scored per block (capped further for huge catalogues)
    # One dense score block (users x items) holds at most this many cells: about 64 MB in float64,
    # so a 200k-item catalogue is scored 41 users at a time instead of 1,024 (1.6 GB).
    score_block_cells: ClassVar[int] = 1 << 23
    # Scalar attributes describing the last fit (besides fit_seconds, training_loss) that save keeps.
    diagnostics: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        self.fit_seconds: float | None = None
        self.training_loss: float | None = None
        # What the last fit chose to do and why (e.g. EASE approximating a big catalogue): JSON-able,
        # for run metadata. Empty when the model did exactly what its name says.
        self.fit_notes: dict[str, Any] = {}
        self.n_unseen_available_items: int = 0
        self._user_ids: np.ndarray | None = None  # object array of str, sorted
        self._item_ids: np.ndarray | None = None  # object array of str, most popular first
        self._user_items: sp.csr_matrix | None = None  # users x items, summed strength
        self._item_counts: np.ndarray | None = None  # users per item in training
        self._available: np.ndarray | None = None  # bool per item
        self._category_of: dict[str, str] = {}  # every item the caller gave a category for
        self._user_index: dict[str, int] | None = None
        self._item_index: dict[str, int] | None = None

    # --- public API ---------------------------------------------------------------------------

    def params(self) -> dict[str, Any]:
        """The constructor arguments (hyper-parameters, seeds, threads), e.g. for MLflow."""
        signature = inspect.signature(type(self).__init__)
        return {name: getattr(self, name) for name in signature.parameters if name != "self"}

    def fit(
        self,
        interactions: pl.DataFrame,
        available_item_ids: Iterable[str] | None = None,
        item_categories: pl.DataFrame | None = None,
    ) -> Self:
        """Learn from interactions (user_id, item_id, strength > 0; duplicate pairs are summed).

        `available_item_ids` are the items that may be recommended (None: every training item);
        `item_categories` (item_id, category) is optional and may cover more items than training.
        """
        start = time.perf_counter()
        user_items, user_ids, item_ids, item_counts = interaction_matrix(interactions)
        self._user_ids, self._item_ids = user_ids, item_ids
        self._user_items, self._item_counts = user_items, item_counts
        self._user_index = self._item_index = None
        self._category_of = category_mapping(item_categories)
        self.set_available_items(available_item_ids)
        self.training_loss = None
        self.fit_notes = {}
        try:
            self._fit(user_items)
        except BaseException:
            self._user_items = None  # a half-fitted model must not serve
            raise
        self.fit_seconds = time.perf_counter() - start
        return self

    def set_available_items(self, item_ids: Iterable[str] | None) -> None:
        """Change which items may be recommended (None: all training items) without refitting."""
        self._require_fitted()
        assert self._item_ids is not None
        if item_ids is None:
            self._available = np.ones(len(self._item_ids), dtype=bool)
            self.n_unseen_available_items = 0
            return
        wanted = {str(i) for i in as_id_list(item_ids, "available_item_ids")}
        index = self._items_index()
        self._available = np.zeros(len(self._item_ids), dtype=bool)
        known = [index[i] for i in wanted if i in index]
        self._available[known] = True
        self.n_unseen_available_items = len(wanted) - len(known)

    def is_known_user(self, user_ids: Sequence[str]) -> np.ndarray:
        """True where the user was in training, False where `recommend` falls back to popularity."""
        self._require_fitted()
        return self._lookup(as_id_list(user_ids, "user_ids"), self._users_index()) >= 0

    def is_known_item(self, item_ids: Sequence[str]) -> np.ndarray:
        """True where the item was in training (only those can be recommended or get similar items)."""
        self._require_fitted()
        return self._lookup(as_id_list(item_ids, "item_ids"), self._items_index()) >= 0

    def recommend(
        self, user_ids: Sequence[str], N: int, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-N items per user: (item ids, object array (users, N); scores, float64 (users, N)).

        Rows follow `user_ids`. Seen items are left out when `exclude_seen`; unavailable items
        always. Unknown users get the most popular available items. Padding: None / NaN.
        """
        return self._recommend(user_ids, N, exclude_seen, allowed=None)

    def similar_items(self, item_ids: Sequence[str], N: int) -> tuple[np.ndarray, np.ndarray]:
        """The N available items most similar to each item (never the item itself).

        Only items with a positive similarity are listed, so a short row is padded with None /
        NaN. An item unknown to the model gets a row of None / NaN.
        """
        N = list_length(N)
        self._require_fitted()
        ids = as_id_list(item_ids, "item_ids")
        out_ids, out_scores = empty_result(len(ids), N)
        index = self._lookup(ids, self._items_index())
        known_rows = np.flatnonzero(index >= 0)
        assert self._available is not None
        columns = None if self._available.all() else np.flatnonzero(self._available)
        for rows in self._batches(known_rows):
            item_idx = index[rows]
            sims = self._item_similarities(item_idx)
            sims[sims <= 0] = -np.inf
            sims[np.arange(len(rows)), item_idx] = -np.inf
            self._write_top_n(sims, N, rows, out_ids, out_scores, columns)
        return out_ids, out_scores

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the fitted model to one .npz file (no pickle), atomically."""
        self._require_fitted()
        path = Path(path)
        meta = {
            "format": _SAVE_FORMAT,
            "name": self.name,
            "params": self.params(),
            "fit_seconds": self.fit_seconds,
            "training_loss": self.training_loss,
            "n_unseen_available_items": self.n_unseen_available_items,
            "fit_notes": self.fit_notes,
            "diagnostics": {name: getattr(self, name) for name in self.diagnostics},
        }
        assert self._user_items is not None and self._item_ids is not None and self._user_ids is not None
        categories = sorted(self._category_of.items())
        arrays: dict[str, np.ndarray] = {
            "meta": np.array(json.dumps(meta)),
            "user_ids": to_str_array(self._user_ids),
            "item_ids": to_str_array(self._item_ids),
            "user_items.indptr": self._user_items.indptr,
            "user_items.indices": self._user_items.indices,
            "user_items.data": self._user_items.data,
            "item_counts": self._item_counts,  # type: ignore[dict-item]
            "available": self._available,  # type: ignore[dict-item]
            "category.item_ids": to_str_array([item for item, _ in categories]),
            "category.values": to_str_array([category for _, category in categories]),
        }
        for key, value in self._model_state().items():
            arrays[f"model.{key}"] = value
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write next to the target then rename, so a crash never leaves half a model behind.
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, **arrays)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Self:
        """Read a model written by `save`. `Recommender.load` returns whichever model it holds."""
        with np.load(Path(path), allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
        meta = json.loads(str(arrays["meta"]))
        if meta.get("format") != _SAVE_FORMAT:
            raise ValueError(f"{path}: unsupported model file format {meta.get('format')!r}")
        from recs_assets.models.registry import model_class  # the registry imports every model module

        try:
            target = model_class(meta["name"])
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
        if not isinstance(target, type) or not issubclass(target, cls):
            raise TypeError(f"{path} holds a {meta['name']!r} model, not a {cls.__name__}")
        model = target(**meta["params"])
        model.fit_seconds = meta["fit_seconds"]
        model.training_loss = meta["training_loss"]
        model.n_unseen_available_items = meta["n_unseen_available_items"]
        model.fit_notes = meta.get("fit_notes", {})
        for name, value in meta["diagnostics"].items():
            setattr(model, name, value)
        model._user_ids = arrays["user_ids"].astype(object)
        model._item_ids = arrays["item_ids"].astype(object)
        model._user_items = sp.csr_matrix(
            (arrays["user_items.data"], arrays["user_items.indices"], arrays["user_items.indptr"]),
            shape=(len(model._user_ids), len(model._item_ids)),
        )
        model._item_counts = arrays["item_counts"]
        model._available = arrays["available"]
        model._category_of = dict(
            zip(arrays["category.item_ids"].tolist(), arrays["category.values"].tolist(), strict=True)
        )
        model._restore_model({k.removeprefix("model."): v for k, v in arrays.items() if k.startswith("model.")})
        return model  # type: ignore[return-value]

    @property
    def user_ids(self) -> np.ndarray | None:
        """Training users in the model's internal order (sorted by id)."""
        return self._user_ids

    @property
    def item_ids(self) -> np.ndarray | None:
        """Training items in the model's internal order (most popular first, then by id)."""
        return self._item_ids

    @property
    def n_users(self) -> int:
        return 0 if self._user_ids is None else len(self._user_ids)

    @property
    def n_items(self) -> int:
        return 0 if self._item_ids is None else len(self._item_ids)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"

    # --- for subclasses ---------------------------------------------------------------------------

    @abc.abstractmethod
    def _fit(self, user_items: sp.csr_matrix) -> None:
        """Learn from the users x items matrix of summed strengths (float64, canonical CSR)."""

    @abc.abstractmethod
    def _score_users(self, user_idx: np.ndarray) -> np.ndarray:
        """A fresh, writable dense (len(user_idx), n_items) float block: higher = better."""

    def _item_similarities(self, item_idx: np.ndarray) -> np.ndarray:
        """A fresh, writable dense (len(item_idx), n_items) block of item-item similarities."""
        raise NotImplementedError(f"{type(self).__name__} does not define item similarities")

    def _model_state(self) -> dict[str, np.ndarray]:
        """The learned arrays to save (numeric or str arrays only)."""
        return {}

    def _restore_model(self, state: dict[str, np.ndarray]) -> None:
        """Set the learned arrays back from `_model_state`'s output."""

    def _fallback_scores(self) -> np.ndarray:
        """Scores for users the model has never seen: training popularity (users per item)."""
        assert self._item_counts is not None
        return self._item_counts.astype(np.float64)

    def _seen_rows(self, user_idx: np.ndarray) -> sp.csr_matrix:
        assert self._user_items is not None
        return self._user_items[user_idx]

    # --- machinery ----------------------------------------------------------------------------------

    def _recommend(
        self,
        user_ids: Sequence[str],
        N: int,
        exclude_seen: bool,
        allowed: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        N = list_length(N)
        self._require_fitted()
        ids = as_id_list(user_ids, "user_ids")
        out_ids, out_scores = empty_result(len(ids), N)
        index = self._lookup(ids, self._users_index())
        mask = self._available if allowed is None else self._available & allowed  # type: ignore[operator]
        columns = None if mask.all() else np.flatnonzero(mask)  # type: ignore[union-attr]
        known_rows = np.flatnonzero(index >= 0)
        for rows in self._batches(known_rows):
            user_idx = index[rows]
            scores = self._score_users(user_idx)
            if exclude_seen:
                seen = self._seen_rows(user_idx)
                scores[np.repeat(np.arange(len(rows)), np.diff(seen.indptr)), seen.indices] = -np.inf
            self._write_top_n(scores, N, rows, out_ids, out_scores, columns)

        cold_rows = np.flatnonzero(index < 0)
        if len(cold_rows):
            top_ids, top_scores = self._top_items(self._fallback_scores()[None, :], N, columns)
            out_ids[cold_rows] = top_ids
            out_scores[cold_rows] = top_scores
        return out_ids, out_scores

    def _write_top_n(
        self,
        scores: np.ndarray,
        N: int,
        rows: np.ndarray,
        out_ids: np.ndarray,
        out_scores: np.ndarray,
        columns: np.ndarray | None = None,
    ) -> None:
        top_ids, top_scores = self._top_items(scores, N, columns)
        out_ids[rows] = top_ids
        out_scores[rows] = top_scores

    def _top_items(
        self, scores: np.ndarray, N: int, columns: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-N item ids and scores per row; `columns`: the only items allowed (sorted indices)."""
        assert self._item_ids is not None
        # Dropping unavailable columns (rather than setting them to -inf) keeps the selection fast
        # when most of the catalogue is unavailable, e.g. sold-out second-hand listings.
        idx, values = top_n(scores if columns is None else scores[:, columns], N)
        ids = np.full(idx.shape, None, dtype=object)
        valid = idx >= 0
        item_idx = idx[valid] if columns is None else columns[idx[valid]]
        ids[valid] = self._item_ids[item_idx]
        return ids, values

    def _batches(self, rows: np.ndarray) -> Iterable[np.ndarray]:
        size = max(1, min(self.batch_size, self.score_block_cells // max(1, self.n_items)))
        for start in range(0, len(rows), size):
            yield rows[start : start + size]

    def _users_index(self) -> dict[str, int]:
        if self._user_index is None:
            self._user_index = {u: i for i, u in enumerate(self._user_ids)}  # type: ignore[arg-type]
        return self._user_index

    def _items_index(self) -> dict[str, int]:
        if self._item_index is None:
            self._item_index = {u: i for i, u in enumerate(self._item_ids)}  # type: ignore[arg-type]
        return self._item_index

    @staticmethod
    def _lookup(ids: list[str], index: dict[str, int]) -> np.ndarray:
        return np.fromiter((index.get(i, -1) for i in ids), dtype=np.int64, count=len(ids))

    def _require_fitted(self) -> None:
        if self._user_items is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted yet: call fit(interactions) first")
