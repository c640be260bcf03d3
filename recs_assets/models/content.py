"""Content-based cold start: recommend listings nobody has touched yet, by what they are.

Collaborative models only know items that someone interacted with in training, so a listing put up
after the cut-off (every day, on a second-hand marketplace) can never be recommended by them. This
model describes every item by its attributes (category, brand, condition, size, price band, title
words: whichever the catalogue has) and every user by the attributes of what they interacted with,
so a brand-new listing reaches the users whose taste it matches on the day it appears.

It is a hybrid: for items with a training history it adds an item-to-item collaborative score, so
old favourites are not ranked on attributes alone.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, Self

import numpy as np
import polars as pl
import scipy.sparse as sp

from recs_assets.arguments import positive_int
from recs_assets.models.base import Recommender
from recs_assets.models.inputs import binarized, non_negative, to_str_array
from recs_assets.models.item_knn import cosine_neighbours

# The attribute fields the model understands, in the order their tokens are laid out. "price" becomes
# a price band; "title" becomes its words. A catalogue may have any subset of them (or none).
CATEGORICAL_FIELDS = ("category", "brand", "condition", "size")
FIELDS = (*CATEGORICAL_FIELDS, "price", "title")
_WORD = re.compile(r"[a-z0-9]+")


def attribute_matrix(
    item_attributes: pl.DataFrame,
    field_weights: Mapping[str, float],
    *,
    n_price_bands: int = 5,
    min_title_items: int = 2,
    max_title_share: float = 0.5,
) -> tuple[list[str], sp.csr_matrix, list[str], dict[str, Any]]:
    """Item ids, a unit-length attribute vector per item (items x tokens, CSR), the tokens, and what was used.

    Each field that exists and has values gives one block of tokens ("brand=Kestrel", "price_band=2",
    "title=jacket"), each block scaled to length `field_weights[field]` for every item that has the field,
    and the whole vector then scaled to length 1, so cosine similarity is a dot product.
    - price: the band (quantile over the catalogue, `n_price_bands` of them) of log price relative to
      the item's category median when categories exist (a cheap jacket and a cheap top are both
      "cheap"); the neighbouring bands get half weight, so nearby prices stay similar.
    - title: lower-cased words, weighted by rarity (idf); words in fewer than `min_title_items` items
      (serial numbers, unique names) or in more than `max_title_share` of them ("title") are dropped.
    An item without any usable attribute gets a zero vector (similar to nothing).
    """
    if "item_id" not in item_attributes.columns:
        raise ValueError(f"item_attributes needs an item_id column; got {item_attributes.columns}")
    frame = item_attributes.filter(pl.col("item_id").is_not_null()).with_columns(pl.col("item_id").cast(pl.String))
    duplicated = frame.filter(pl.col("item_id").is_duplicated())
    if duplicated.height:
        raise ValueError(f"item_attributes lists item {duplicated.item(0, 'item_id')!r} more than once")
    item_ids = frame["item_id"].to_list()
    n = len(item_ids)
    blocks: list[sp.csr_matrix] = []
    tokens: list[str] = []
    used: dict[str, Any] = {}

    def add_block(field: str, block: sp.csr_matrix, names: list[str]) -> None:
        weight = float(field_weights.get(field, 0.0))
        if weight <= 0 or block.nnz == 0:
            return
        norms = np.sqrt(np.asarray(block.multiply(block).sum(axis=1)).ravel())
        scale = np.divide(weight, norms, out=np.zeros_like(norms), where=norms > 0)
        blocks.append(sp.csr_matrix(sp.diags(scale) @ block))
        tokens.extend(f"{field}={name}" for name in names)
        used[field] = {"tokens": len(names), "items_with_value": int((norms > 0).sum())}

    for field in CATEGORICAL_FIELDS:
        if field not in frame.columns:
            continue
        text = pl.col(field).cast(pl.String).str.strip_chars()
        values = frame.select(pl.when(text != "").then(text))[field]  # an empty string says nothing
        names = sorted(v for v in values.unique().to_list() if v is not None)
        if names:
            code = {v: i for i, v in enumerate(names)}
            rows = np.flatnonzero(values.is_not_null().to_numpy())
            cols = np.array([code[v] for v in values.gather(rows).to_list()], dtype=np.int64)
            add_block(field, sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, len(names))), names)

    if "price" in frame.columns and n_price_bands > 1:
        price = frame["price"].cast(pl.Float64, strict=False).to_numpy().astype(np.float64)
        ok = np.isfinite(price) & (price > 0)
        if ok.sum() >= n_price_bands:
            level = np.full(n, np.nan)
            level[ok] = np.log(price[ok])
            if "category" in frame.columns:
                relative = pl.DataFrame({"level": level, "category": frame["category"].cast(pl.String)}).select(
                    pl.col("level") - pl.col("level").fill_nan(None).median().over("category")
                )["level"].to_numpy()
                level = np.where(np.isfinite(relative), relative, level)
            edges = np.quantile(level[ok], np.linspace(0, 1, n_price_bands + 1)[1:-1])
            band = np.searchsorted(edges, level[ok], side="right")
            rows, cols, vals = [], [], []
            for offset, weight in ((0, 1.0), (-1, 0.5), (1, 0.5)):
                neighbour = band + offset
                keep = (neighbour >= 0) & (neighbour < n_price_bands)
                rows.append(np.flatnonzero(ok)[keep])
                cols.append(neighbour[keep])
                vals.append(np.full(int(keep.sum()), weight))
            block = sp.csr_matrix(
                (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n_price_bands)
            )
            add_block("price", block, [f"band{b}" for b in range(n_price_bands)])

    if "title" in frame.columns:
        words = [sorted(set(_WORD.findall(t.lower()))) if t else [] for t in frame["title"].cast(pl.String).to_list()]
        counts: dict[str, int] = {}
        for item_words in words:
            for word in item_words:
                counts[word] = counts.get(word, 0) + 1
        keep = sorted(w for w, c in counts.items() if c >= min_title_items and c <= max_title_share * n)
        if keep:
            code = {w: i for i, w in enumerate(keep)}
            idf = np.array([math.log(n / counts[w]) + 1.0 for w in keep])
            rows, cols = [], []
            for row, item_words in enumerate(words):
                for word in item_words:
                    if word in code:
                        rows.append(row)
                        cols.append(code[word])
            cols_arr = np.asarray(cols, dtype=np.int64)
            block = sp.csr_matrix((idf[cols_arr], (np.asarray(rows, dtype=np.int64), cols_arr)), shape=(n, len(keep)))
            add_block("title", block, keep)

    matrix = sp.hstack(blocks, format="csr") if blocks else sp.csr_matrix((n, 0))
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    matrix = sp.csr_matrix(sp.diags(scale) @ matrix)
    matrix.sort_indices()
    return item_ids, matrix, tokens, used


def extend_catalogue(model: Recommender, catalogue_ids: list[str]) -> int:
    """Append to a fitted model's items the catalogue items nobody interacted with in training (after the
    training items, so ties still go to the more popular item); returns how many joined."""
    assert model._item_ids is not None and model._user_items is not None and model._item_counts is not None
    known = set(model._item_ids.tolist())
    extra = sorted({i for i in catalogue_ids if i not in known})
    if not extra:
        return 0
    n_users = model._user_items.shape[0]
    model._item_ids = np.concatenate([model._item_ids, np.array(extra, dtype=object)])
    model._user_items = sp.csr_matrix(sp.hstack([model._user_items, sp.csr_matrix((n_users, len(extra)))], format="csr"))
    model._item_counts = np.concatenate([model._item_counts, np.zeros(len(extra), dtype=model._item_counts.dtype)])
    model._item_index = None
    return len(extra)


def content_neighbours(content: sp.csr_matrix, has_history: np.ndarray, k: int, block_cells: int) -> sp.csr_matrix:
    """Items x items CSR: column j (an item without history) holds its k content-nearest items with history,
    weights summing to 1 (cosine-weighted); columns of items with history are empty."""
    n = content.shape[0]
    donors, takers = np.flatnonzero(has_history), np.flatnonzero(~has_history)
    if len(donors) == 0 or len(takers) == 0 or content.shape[1] == 0:
        return sp.csr_matrix((n, n))
    k = min(k, len(donors))
    donor_t = sp.csr_matrix(content[donors].T)
    rows, cols, vals = [], [], []
    step = max(1, block_cells // len(donors))
    for start in range(0, len(takers), step):
        block = takers[start : start + step]
        sims = (content[block] @ donor_t).toarray()
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        weight = np.take_along_axis(sims, top, axis=1)
        weight[weight <= 0] = 0.0
        total = weight.sum(axis=1, keepdims=True)
        weight = np.divide(weight, total, out=np.zeros_like(weight), where=total > 0)
        keep = weight > 0
        rows.append(donors[top[keep]])
        cols.append(np.repeat(block, k).reshape(len(block), k)[keep])
        vals.append(weight[keep])
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))


class ContentRecommender(Recommender):
    """A hybrid of attribute (content) similarity and item-to-item collaborative filtering.

    score(u, j) = cosine(profile(u), x_j) + cf_weight * cf(u, j)
    - x_j: item j's attribute vector (`attribute_matrix`), for every item of the catalogue, including
      items nobody interacted with in training; those join the model's items (`item_ids`) and can be
      recommended as soon as they are available.
    - profile(u): the mean of x_i over the items i the user interacted with, weighted by
      log(1 + strength), so one obsessive item does not decide the whole profile.
    - cf(u, j): item-kNN's score (cosine neighbours on the binarised matrix, `cf_neighbours` per item),
      divided by the user's largest, so it lies in [0, 1] like the cosine; 0 for items without history.
      So among items that fit the user's taste equally, the ones people like them actually chose win,
      and a new listing needs only to fit the taste better than the old items to be shown.
    Chosen over a learned attributes -> factors mapping: it needs no training data per attribute, works
    from a single interaction, and degrades to item-kNN when the catalogue has no attributes at all.

    `fit` takes `item_attributes` (item_id plus any of category, brand, condition, size, price, title;
    the `item_features` table works as is); without it, `item_categories` is the only attribute.
    `fit_notes` says which attributes were used and how many catalogue items joined.
    """

    name = "content"
    diagnostics = ("n_catalogue_only_items",)

    def __init__(
        self,
        cf_weight: float = 0.5,
        cf_neighbours: int = 50,
        category_weight: float = 1.0,
        brand_weight: float = 1.0,
        condition_weight: float = 0.5,
        size_weight: float = 0.5,
        price_weight: float = 0.5,
        title_weight: float = 0.25,
        n_price_bands: int = 5,
    ) -> None:
        cf_weight = non_negative(cf_weight, "cf_weight")
        cf_neighbours = positive_int(cf_neighbours, "cf_neighbours")
        weights = {
            field: non_negative(value, f"{field}_weight")
            for field, value in zip(
                FIELDS, (category_weight, brand_weight, condition_weight, size_weight, price_weight, title_weight),
                strict=True,
            )
        }
        n_price_bands = positive_int(n_price_bands, "n_price_bands")
        super().__init__()
        self.cf_weight = cf_weight
        self.cf_neighbours = cf_neighbours
        self.category_weight = weights["category"]
        self.brand_weight = weights["brand"]
        self.condition_weight = weights["condition"]
        self.size_weight = weights["size"]
        self.price_weight = weights["price"]
        self.title_weight = weights["title"]
        self.n_price_bands = n_price_bands
        self.n_catalogue_only_items = 0
        self._attributes: pl.DataFrame | None = None
        self._requested_available: list[str] | None = None
        self._content: sp.csr_matrix | None = None  # items x tokens, unit rows (zero rows: no attributes)
        self._tokens: list[str] = []
        self._similarity: sp.csr_matrix | None = None  # items x items, CF neighbours (training items only)
        self._profile_weights: sp.csr_matrix | None = None  # users x items, log(1 + strength)
        self._binary: sp.csr_matrix | None = None

    @property
    def field_weights(self) -> dict[str, float]:
        return {field: getattr(self, f"{field}_weight") for field in FIELDS}

    def fit(
        self,
        interactions: pl.DataFrame,
        available_item_ids: Iterable[str] | None = None,
        item_categories: pl.DataFrame | None = None,
        item_attributes: pl.DataFrame | None = None,
    ) -> Self:
        """As `Recommender.fit`, plus `item_attributes`: the catalogue's attributes, one row per item."""
        if item_attributes is None:
            item_attributes = item_categories
        if item_attributes is not None and not isinstance(item_attributes, pl.DataFrame):
            raise TypeError(f"item_attributes must be a polars DataFrame; got {type(item_attributes).__name__}")
        self._attributes = item_attributes
        self._requested_available = None if available_item_ids is None else list(available_item_ids)
        try:
            return super().fit(interactions, self._requested_available, item_categories)
        finally:
            self._attributes = None  # the frame is the caller's; the model keeps only its own arrays

    def _fit(self, user_items: sp.csr_matrix) -> None:
        if self._attributes is not None and self._attributes.height:
            ids, matrix, tokens, used = attribute_matrix(self._attributes, self.field_weights, n_price_bands=self.n_price_bands)
        else:
            ids, matrix, tokens, used = [], sp.csr_matrix((0, 0)), [], {}
        self._extend_catalogue(ids)
        assert self._item_ids is not None
        position = {item: row for row, item in enumerate(ids)}
        rows = np.fromiter((position.get(i, -1) for i in self._item_ids), dtype=np.int64, count=len(self._item_ids))
        has = rows >= 0
        selector = sp.csr_matrix(
            (np.ones(int(has.sum())), (np.flatnonzero(has), rows[has])), shape=(len(self._item_ids), len(ids))
        )
        self._content = sp.csr_matrix(selector @ matrix)
        self._tokens = tokens
        self._build_cf()
        # Availability was first set on training items only; now the catalogue-only items exist too.
        self.set_available_items(self._requested_available)
        missing = [field for field in FIELDS if field not in used]
        self.fit_notes = {
            "attributes_used": used,
            "attributes_missing": missing,
            "catalogue_only_items": self.n_catalogue_only_items,
            "items_without_attributes": int((np.diff(self._content.indptr) == 0).sum()),
            "hybrid": f"cosine(user profile, item attributes) + {self.cf_weight} x item-kNN score scaled to [0, 1]",
        }
        if not used:
            self.fit_notes["degraded"] = "no item attributes: every item's content vector is empty, so this is item-kNN"

    def _extend_catalogue(self, catalogue_ids: list[str]) -> None:
        self.n_catalogue_only_items = extend_catalogue(self, catalogue_ids)

    def _build_cf(self) -> None:
        assert self._user_items is not None and self._content is not None and self._item_counts is not None
        self._binary = binarized(self._user_items)
        similarity = cosine_neighbours(self._binary, self.cf_neighbours, 10.0)
        # An item without history borrows the CF score of its content-nearest items with history, so a new
        # listing competes with old ones on the same scale however much weight CF gets.
        borrow = content_neighbours(self._content, self._item_counts > 0, self.cf_neighbours, self.score_block_cells)
        self._similarity = sp.csr_matrix(similarity + similarity @ borrow)
        self._similarity.sort_indices()
        weights = self._user_items.copy()
        weights.data = np.log1p(weights.data)
        self._profile_weights = weights

    def _profiles(self, user_idx: np.ndarray) -> np.ndarray:
        assert self._profile_weights is not None and self._content is not None
        profile = np.asarray((self._profile_weights[user_idx] @ self._content).todense())
        norms = np.linalg.norm(profile, axis=1, keepdims=True)
        return np.divide(profile, norms, out=np.zeros_like(profile), where=norms > 0)

    def _score_users(self, user_idx: np.ndarray) -> np.ndarray:
        assert self._content is not None and self._binary is not None and self._similarity is not None
        scores = np.asarray(self._content @ self._profiles(user_idx).T).T
        if self.cf_weight > 0:
            cf = (self._binary[user_idx] @ self._similarity).toarray()
            top = cf.max(axis=1, keepdims=True)
            scores += self.cf_weight * np.divide(cf, top, out=np.zeros_like(cf), where=top > 0)
        return np.ascontiguousarray(scores)

    def _item_similarities(self, item_idx: np.ndarray) -> np.ndarray:
        assert self._content is not None and self._similarity is not None
        sims = (self._content[item_idx] @ self._content.T).toarray()
        if self.cf_weight > 0:
            sims += self.cf_weight * self._similarity[item_idx].toarray()
        return sims

    def item_vectors(self, item_ids: list[str]) -> np.ndarray:
        """The attribute vectors of these items (dense rows; zero for unknown items), e.g. for inspection."""
        self._require_fitted()
        assert self._content is not None
        index = self._lookup([str(i) for i in item_ids], self._items_index())
        out = np.zeros((len(item_ids), self._content.shape[1]))
        known = index >= 0
        out[known] = self._content[index[known]].toarray()
        return out

    @property
    def tokens(self) -> list[str]:
        """The attribute tokens, in the order of the item vectors' columns ("brand=Kestrel", ...)."""
        return list(self._tokens)

    def _model_state(self) -> dict[str, np.ndarray]:
        assert self._content is not None and self._similarity is not None
        c, s = self._content, self._similarity
        return {
            "content.data": c.data, "content.indices": c.indices, "content.indptr": c.indptr,
            "content.shape": np.array(c.shape, dtype=np.int64), "tokens": to_str_array(self._tokens),
            "similarity.data": s.data, "similarity.indices": s.indices, "similarity.indptr": s.indptr,
        }

    def _restore_model(self, state: dict[str, np.ndarray]) -> None:
        n = self.n_items
        shape = tuple(int(v) for v in state["content.shape"])
        self._content = sp.csr_matrix((state["content.data"], state["content.indices"], state["content.indptr"]), shape=shape)
        self._tokens = state["tokens"].tolist()
        self._similarity = sp.csr_matrix(
            (state["similarity.data"], state["similarity.indices"], state["similarity.indptr"]), shape=(n, n)
        )
        assert self._user_items is not None
        self._binary = binarized(self._user_items)
        weights = self._user_items.copy()
        weights.data = np.log1p(weights.data)
        self._profile_weights = weights
