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
`_item_similarities`, `_model_state` and `_restore_model`. Scoring runs in batches, so 100k users x
20k items never becomes one dense matrix.
"""

from __future__ import annotations

import abc
import inspect
import json
import math
import os
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl
import scipy.sparse as sp

# Caps one dense score block at about 64 MB (float64), whatever the catalogue size.
_MAX_BLOCK_CELLS = 1 << 23
_SAVE_FORMAT = 1


class Recommender(abc.ABC):
    """Shared base class: data preparation, filtering, top-N selection, fallback and persistence."""

    name: ClassVar[str]
    batch_size: ClassVar[int] = 1024  # users scored per block (capped further for huge catalogues)
    # Scalar attributes describing the last fit (besides fit_seconds, training_loss) that save keeps.
    diagnostics: ClassVar[tuple[str, ...]] = ()

    _registry: ClassVar[dict[str, type[Recommender]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            Recommender._registry[cls.name] = cls

    def __init__(self) -> None:
        self.fit_seconds: float | None = None
        self.training_loss: float | None = None
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
        user_items, user_ids, item_ids, item_counts = _interaction_matrix(interactions)
        self._user_ids, self._item_ids = user_ids, item_ids
        self._user_items, self._item_counts = user_items, item_counts
        self._user_index = self._item_index = None
        self._category_of = _category_mapping(item_categories)
        self.set_available_items(available_item_ids)
        self.training_loss = None
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
        wanted = {str(i) for i in _as_id_list(item_ids, "available_item_ids")}
        index = self._items_index()
        self._available = np.zeros(len(self._item_ids), dtype=bool)
        known = [index[i] for i in wanted if i in index]
        self._available[known] = True
        self.n_unseen_available_items = len(wanted) - len(known)

    def is_known_user(self, user_ids: Sequence[str]) -> np.ndarray:
        """True where the user was in training, False where `recommend` falls back to popularity."""
        self._require_fitted()
        return self._lookup(_as_id_list(user_ids, "user_ids"), self._users_index()) >= 0

    def is_known_item(self, item_ids: Sequence[str]) -> np.ndarray:
        """True where the item was in training (only those can be recommended or get similar items)."""
        self._require_fitted()
        return self._lookup(_as_id_list(item_ids, "item_ids"), self._items_index()) >= 0

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
        N = _check_n(N)
        self._require_fitted()
        ids = _as_id_list(item_ids, "item_ids")
        out_ids, out_scores = _empty_result(len(ids), N)
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
            "diagnostics": {name: getattr(self, name) for name in self.diagnostics},
        }
        assert self._user_items is not None and self._item_ids is not None and self._user_ids is not None
        categories = sorted(self._category_of.items())
        arrays: dict[str, np.ndarray] = {
            "meta": np.array(json.dumps(meta)),
            "user_ids": _to_str_array(self._user_ids),
            "item_ids": _to_str_array(self._item_ids),
            "user_items.indptr": self._user_items.indptr,
            "user_items.indices": self._user_items.indices,
            "user_items.data": self._user_items.data,
            "item_counts": self._item_counts,  # type: ignore[dict-item]
            "available": self._available,  # type: ignore[dict-item]
            "category.item_ids": _to_str_array([item for item, _ in categories]),
            "category.values": _to_str_array([category for _, category in categories]),
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
        target = Recommender._registry.get(meta["name"])
        if target is None:
            raise ValueError(f"{path}: unknown model {meta['name']!r}")
        if not issubclass(target, cls):
            raise TypeError(f"{path} holds a {meta['name']!r} model, not a {cls.__name__}")
        model = target(**meta["params"])
        model.fit_seconds = meta["fit_seconds"]
        model.training_loss = meta["training_loss"]
        model.n_unseen_available_items = meta["n_unseen_available_items"]
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
        N = _check_n(N)
        self._require_fitted()
        ids = _as_id_list(user_ids, "user_ids")
        out_ids, out_scores = _empty_result(len(ids), N)
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
        size = max(1, min(self.batch_size, _MAX_BLOCK_CELLS // max(1, self.n_items)))
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
        return _batch_independent(self._user_factors[user_idx].astype(np.float64) @ self._item_factors_64.T)

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
        return _batch_independent(unit[item_idx] @ unit.T)

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


def _batch_independent(scores: np.ndarray) -> np.ndarray:
    """Round float64 dot products to float32 so a user's scores do not depend on their batch.

    BLAS sums in an order that depends on the matrix shape and a row's place in it, so the same user
    scored alone or among 1,000 others gets scores that differ in the last bits, which can swap two
    near-tied items. Computed in float64, those differences (~1e-16) vanish when rounded to float32
    (~1e-7), so the ranking is the same whoever else is in the request.
    """
    return scores.astype(np.float32)


# --- top-N selection --------------------------------------------------------------------------------


def top_n(scores: np.ndarray, N: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the column indices of the N highest scores, best first, and their float64 scores.

    Ties go to the smaller column index. -inf and NaN mean "not allowed": such slots come back as
    index -1 with score NaN. Linear time per row (argpartition); only boundary ties need a re-pick.
    """
    n_rows, n_cols = scores.shape
    take = min(N, n_cols)
    idx = np.full((n_rows, N), -1, dtype=np.int64)
    values = np.full((n_rows, N), np.nan, dtype=np.float64)
    if n_rows == 0 or take == 0:
        return idx, values
    scores = np.where(np.isnan(scores), -np.inf, scores) if np.isnan(scores).any() else scores

    if take < n_cols:
        # Partitioning the negated scores around a small kth is several times faster than around
        # n_cols - take when most values are equal (item_knn rows are ~95% zeros).
        part = np.argpartition(-scores, take - 1, axis=1)[:, :take]
        kth = np.take_along_axis(scores, part, axis=1).min(axis=1)
        above = (scores > kth[:, None]).sum(axis=1)
        tied = (scores == kth[:, None]).sum(axis=1)
        # argpartition breaks ties at the cut arbitrarily; re-pick those rows by column order.
        for row in np.flatnonzero((above + tied > take) & np.isfinite(kth)):
            better = np.flatnonzero(scores[row] > kth[row])
            equal = np.flatnonzero(scores[row] == kth[row])[: take - len(better)]
            part[row] = np.concatenate([better, equal])
    else:
        part = np.broadcast_to(np.arange(n_cols), (n_rows, n_cols)).copy()

    chosen = np.take_along_axis(scores, part, axis=1).astype(np.float64)
    order = np.lexsort((part, -chosen), axis=-1)
    part = np.take_along_axis(part, order, axis=1)
    chosen = np.take_along_axis(chosen, order, axis=1)
    allowed = np.isfinite(chosen)
    idx[:, :take] = np.where(allowed, part, -1)
    values[:, :take] = np.where(allowed, chosen, np.nan)
    return idx, values


# --- input preparation ------------------------------------------------------------------------------


def _check_n(N: object) -> int:
    if isinstance(N, bool) or not isinstance(N, (int, np.integer)) or N <= 0:
        raise ValueError(f"N (the list length) must be a positive integer; got {N!r}")
    return int(N)


def _as_id_list(ids: Iterable[str], what: str) -> list[str]:
    # A bare string is iterable too; treating "u1" as ["u", "1"] would silently give wrong rows.
    if isinstance(ids, (str, bytes)):
        raise TypeError(f"{what} must be a sequence of ids, not a single string: use [{ids!r}]")
    if isinstance(ids, (pl.Series, np.ndarray)):
        ids = ids.tolist()
    return [str(i) for i in ids]


def _empty_result(n_rows: int, N: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((n_rows, N), None, dtype=object), np.full((n_rows, N), np.nan, dtype=np.float64)


def _to_str_array(values: Iterable[str]) -> np.ndarray:
    values = list(values)
    return np.array(values, dtype=str) if values else np.array([], dtype="<U1")


def _interaction_matrix(
    interactions: pl.DataFrame,
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray, np.ndarray]:
    """Validated users x items matrix of summed strengths, ids, and users per item.

    Users are sorted by id; items by training popularity (most users first), then id, so that
    "ties go to the smaller item index" means "ties go to the more popular item".
    """
    missing = [c for c in ("user_id", "item_id", "strength") if c not in interactions.columns]
    if missing:
        raise ValueError(
            f"interactions is missing column(s) {missing}; expected user_id, item_id, strength "
            f"(got {interactions.columns})"
        )
    df = interactions.select(
        pl.col("user_id").cast(pl.String),
        pl.col("item_id").cast(pl.String),
        pl.col("strength").cast(pl.Float64),
    )
    if df.height == 0:
        raise ValueError("interactions is empty: a model needs at least one (user, item) pair to learn from")
    nulls = {c: n for c, n in zip(df.columns, df.null_count().row(0)) if n}
    if nulls:
        raise ValueError(f"interactions has null values: {nulls}")
    bad = df.filter(~(pl.col("strength").is_finite() & (pl.col("strength") > 0)))
    if bad.height:
        row = bad.row(0, named=True)
        raise ValueError(
            f"interactions.strength must be finite and > 0; {bad.height} row(s) are not, e.g. "
            f"{row['strength']!r} for user {row['user_id']!r}, item {row['item_id']!r}"
        )
    df = df.group_by("user_id", "item_id").agg(pl.col("strength").sum())
    users = df.select(pl.col("user_id").unique().sort()).with_row_index("u")
    items = (
        df.group_by("item_id")
        .agg(pl.len().alias("n_users"))
        .sort(["n_users", "item_id"], descending=[True, False])
        .with_row_index("i")
    )
    coo = df.join(users, on="user_id").join(items.select("item_id", "i"), on="item_id")
    matrix = sp.csr_matrix(
        (
            coo.get_column("strength").to_numpy(),
            (coo.get_column("u").to_numpy(), coo.get_column("i").to_numpy()),
        ),
        shape=(users.height, items.height),
        dtype=np.float64,
    )
    matrix.sum_duplicates()
    matrix.sort_indices()
    return (
        matrix,
        users.get_column("user_id").to_numpy().astype(object),
        items.get_column("item_id").to_numpy().astype(object),
        items.get_column("n_users").to_numpy().astype(np.int64),
    )


def _category_mapping(item_categories: pl.DataFrame | None) -> dict[str, str]:
    if item_categories is None:
        return {}
    missing = [c for c in ("item_id", "category") if c not in item_categories.columns]
    if missing:
        raise ValueError(f"item_categories is missing column(s) {missing}; expected item_id, category")
    df = (
        item_categories.select(pl.col("item_id").cast(pl.String), pl.col("category").cast(pl.String))
        .drop_nulls()
        .unique()
    )
    clash = df.filter(pl.col("item_id").is_duplicated())
    if clash.height:
        item = clash.get_column("item_id")[0]
        found = sorted(clash.filter(pl.col("item_id") == item).get_column("category").to_list())
        raise ValueError(f"item_categories gives item {item!r} more than one category: {found}")
    return dict(zip(df.get_column("item_id").to_list(), df.get_column("category").to_list(), strict=True))


def binarized(matrix: sp.csr_matrix, dtype: np.dtype | type = np.float64) -> sp.csr_matrix:
    """The same sparsity pattern with every stored value set to 1."""
    out = sp.csr_matrix(
        (np.ones(matrix.nnz, dtype=dtype), matrix.indices.copy(), matrix.indptr.copy()), shape=matrix.shape
    )
    return out


def finite_or_none(value: float | None) -> float | None:
    """A loss as a plain float for reports, or None when the library gave none (or nan/inf)."""
    return None if value is None or not math.isfinite(value) else float(value)
