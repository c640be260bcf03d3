"""Two-tower retrieval: a user vector and an item vector whose dot product says how well they match.

The item tower reads an item's id and its attributes (category, brand, price band, title words...);
the user tower reads the user's history. Both are trained together so that the item a user went on
to interact with scores above the other items of the same training batch (in-batch negatives with a
sampled-softmax loss, corrected for popular items appearing as negatives more often: logQ).

Item vectors go into a nearest-neighbour index (models/ann.py), so finding a user's best items costs
about log(items) at serving time however big the catalogue: the retrieval stage in front of the
re-ranker. Items nobody interacted with in training still get a vector from their attributes, so
new listings can be retrieved too.

PyTorch (CPU) is used for training only; the fitted towers are stored as numpy arrays in the model's
.npz and scoring runs in numpy / faiss.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Self

import numpy as np
import polars as pl
import scipy.sparse as sp

from recs_assets.arguments import number_in, positive_int, whole_number
from recs_assets.models.ann import KINDS, VectorIndex
from recs_assets.models.base import Recommender
from recs_assets.models.content import attribute_matrix, extend_catalogue
from recs_assets.models.inputs import as_id_list, binarized, empty_result, list_length, positive, to_str_array

ANN_CHOICES = ("auto", *KINDS)


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


class TwoTowerRecommender(Recommender):
    """User tower over the history, item tower over id + attributes, trained with in-batch softmax.

    - item vector v_j = normalise(id_j + mean of j's attribute-token embeddings), plus a learnt bias b_j
      (score = u . v_j / temperature + b_j, stored as one inner product of [u / temperature, 1] and
      [v_j, b_j]); id embeddings and biases start at zero, so an item never seen in training is placed by
      its attributes alone.
    - user vector u = normalise(MLP(weighted mean of the history's item representations)), weights
      log(1 + strength); while training, the target item is left out of its own history.
    - loss: softmax over the batch's items of u . v / temperature, minus log(sampling probability) of
      each item when `logq` (so popular items are not pushed down just for being frequent negatives);
      other rows of the same item are not counted as negatives.
    - `epochs`, `dim`, `batch_size` are small by default: the model must fit within seconds on CPU.
    - `ann`: "exact" or "hnsw" search over the available items' vectors for `recommend` when the
      catalogue has at least `ann_min_items` items (below that, one dense product is faster and exact);
      "auto" = HNSW from `ann_min_items` on. `retrieve` always uses the index.
    - seeds and torch threads come from the constructor (`threads`, 1 in tests).
    User features are not used: `fit` receives interactions and item attributes only.
    """

    name = "two_tower"
    diagnostics = ("n_catalogue_only_items", "epochs_run")

    def __init__(
        self,
        dim: int = 32,
        epochs: int = 3,
        batch_size: int = 1024,
        # Chosen on 10 simulated shops (seeds 1-11, both presets, 3k users): against popularity
        # 0.01 x 2 epochs gave min 0.99x / mean 1.46x, 0.005 x 3 epochs min 1.04x / mean 1.56x.
        learning_rate: float = 0.005,
        temperature: float = 0.1,
        history_dropout: float = 0.2,
        logq: int = 1,
        max_steps_per_epoch: int = 50,
        seed: int = 42,
        threads: int = 1,
        ann: str = "auto",
        ann_min_items: int = 50_000,
    ) -> None:
        if ann not in ANN_CHOICES:
            raise ValueError(f"ann must be one of {', '.join(ANN_CHOICES)}; got {ann!r}")
        if whole_number(logq, "logq") not in (0, 1):
            raise ValueError(f"logq must be 0 or 1; got {logq!r}")
        super().__init__()
        self.dim = positive_int(dim, "dim")
        self.epochs = positive_int(epochs, "epochs")
        self.batch_size = positive_int(batch_size, "batch_size")
        self.learning_rate = positive(learning_rate, "learning_rate")
        self.temperature = positive(temperature, "temperature")
        self.logq = int(logq)
        self.history_dropout = number_in(history_dropout, "history_dropout", 0.0, 1.0, open_high=True)
        self.max_steps_per_epoch = positive_int(max_steps_per_epoch, "max_steps_per_epoch")
        self.seed = whole_number(seed, "seed", minimum=0)
        self.threads = positive_int(threads, "threads")
        self.ann = ann
        self.ann_min_items = positive_int(ann_min_items, "ann_min_items")
        self.n_catalogue_only_items = 0
        self.epochs_run = 0
        self._attributes: pl.DataFrame | None = None
        self._requested_available: list[str] | None = None
        self._item_vectors: np.ndarray | None = None  # items x dim, unit rows (float32)
        self._user_vectors: np.ndarray | None = None  # users x dim, unit rows (float32)
        self._history_table: np.ndarray | None = None  # items x dim: what a history item contributes
        self._mlp: dict[str, np.ndarray] = {}
        self._index: VectorIndex | None = None
        self._index_rows: np.ndarray | None = None  # model item index of each index row

    # --- fitting ----------------------------------------------------------------------------------

    def fit(
        self,
        interactions: pl.DataFrame,
        available_item_ids: Iterable[str] | None = None,
        item_categories: pl.DataFrame | None = None,
        item_attributes: pl.DataFrame | None = None,
    ) -> Self:
        """As `Recommender.fit`, plus `item_attributes` (item_id + any of category, brand, condition, size,
        price, title): the item tower's features; without it, `item_categories`; without both, ids only."""
        self._attributes = item_attributes if item_attributes is not None else item_categories
        self._requested_available = None if available_item_ids is None else list(available_item_ids)
        try:
            return super().fit(interactions, self._requested_available, item_categories)
        finally:
            self._attributes = None

    def _fit(self, user_items: sp.csr_matrix) -> None:
        import torch

        if self._attributes is not None and self._attributes.height:
            weights = {"category": 1.0, "brand": 1.0, "condition": 1.0, "size": 1.0, "price": 1.0, "title": 1.0}
            ids, tokens, names, used = attribute_matrix(self._attributes, weights)
        else:
            ids, tokens, names, used = [], sp.csr_matrix((0, 0)), [], {}
        self.n_catalogue_only_items = extend_catalogue(self, ids)
        assert self._item_ids is not None and self._user_items is not None
        n_users, n_items = self._user_items.shape
        position = {item: row for row, item in enumerate(ids)}
        rows = np.fromiter((position.get(i, -1) for i in self._item_ids), dtype=np.int64, count=n_items)
        has = rows >= 0
        selector = sp.csr_matrix((np.ones(int(has.sum())), (np.flatnonzero(has), rows[has])), shape=(n_items, len(ids)))
        item_tokens = binarized(sp.csr_matrix(selector @ tokens)) if len(names) else sp.csr_matrix((n_items, 0))

        previous_threads = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            self._train(torch, item_tokens, max(1, len(names)))
        finally:
            torch.set_num_threads(previous_threads)
        self.set_available_items(self._requested_available)
        self.fit_notes = {
            "attributes_used": sorted(used),
            "catalogue_only_items": self.n_catalogue_only_items,
            "user_features": "not used: generators receive interactions and item attributes only",
            "training": f"{self.epochs_run} epochs of in-batch softmax, batch {self.batch_size}, logQ {'on' if self.logq else 'off'}",
        }
        if not used:
            self.fit_notes["degraded"] = "no item attributes: the item tower sees ids only"

    def _train(self, torch, item_tokens: sp.csr_matrix, n_tokens: int) -> None:
        nn = torch.nn
        assert self._user_items is not None
        generator = torch.Generator().manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        torch.manual_seed(self.seed)
        n_users, n_items = self._user_items.shape
        d = self.dim

        weights = self._user_items.copy()
        weights.data = np.log1p(weights.data)
        weights.sort_indices()
        tok = item_tokens.tocsr()
        token_index = torch.from_numpy(tok.indices.astype(np.int64))
        token_offsets = torch.from_numpy(tok.indptr[:-1].astype(np.int64))

        class Towers(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.item_id = nn.Embedding(n_items, d)
                self.history_id = nn.Embedding(n_items, d)
                nn.init.zeros_(self.item_id.weight)
                nn.init.zeros_(self.history_id.weight)
                self.item_tokens = nn.EmbeddingBag(n_tokens, d, mode="mean")
                self.history_tokens = nn.EmbeddingBag(n_tokens, d, mode="mean")
                for bag in (self.item_tokens, self.history_tokens):
                    nn.init.normal_(bag.weight, std=0.1, generator=generator)
                self.history_only = nn.Embedding(n_items, d)  # items without attributes still carry taste
                nn.init.normal_(self.history_only.weight, std=0.1, generator=generator)
                self.user_mlp = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))
                self.item_bias = nn.Embedding(n_items, 1)  # appeal to everyone, beyond being sampled often
                nn.init.zeros_(self.item_bias.weight)

            def token_part(self, bag):
                out = bag(token_index, token_offsets) if len(token_index) else torch.zeros(n_items, d)
                return out

            def tables(self):
                items = self.item_id.weight + self.token_part(self.item_tokens)
                history = self.history_id.weight + self.history_only.weight + self.token_part(self.history_tokens)
                return items, history

        model = Towers()
        optimiser = torch.optim.Adam(model.parameters(), lr=self.learning_rate)
        users, items = np.repeat(np.arange(n_users), np.diff(weights.indptr)), weights.indices.astype(np.int64)
        frequency = np.bincount(items, minlength=n_items).astype(np.float64)
        log_q = torch.from_numpy(np.log(np.maximum(frequency, 1.0) / max(1, len(items))).astype(np.float32))
        totals = np.asarray(weights.sum(axis=1)).ravel()
        losses = []
        self.epochs_run = 0
        for _ in range(self.epochs):
            order = rng.permutation(len(items))[: self.max_steps_per_epoch * self.batch_size]
            epoch_loss = []
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                if len(batch) < 2:
                    continue
                bu, bi = users[batch], items[batch]
                item_table, history_table = model.tables()
                # Each user's weighted history as a sparse (batch x items) product, the target left out.
                sub = weights[bu]
                counts = np.diff(sub.indptr)
                row = np.repeat(np.arange(len(bu)), counts)
                col, val = sub.indices, sub.data
                # The target is left out of its own history, and each other history item is dropped with
                # probability `history_dropout`: without it, small data is memorised history by history.
                keep = (col != np.repeat(bi, counts)) & (rng.random(len(col)) >= self.history_dropout)
                val = np.where(keep, val, 0.0)
                denominator = np.maximum(np.bincount(row, weights=val, minlength=len(bu)), 1e-9)
                history = torch.sparse_coo_tensor(
                    torch.from_numpy(np.vstack([row, col]).astype(np.int64)),
                    torch.from_numpy((val / denominator[row]).astype(np.float32)),
                    (len(bu), n_items),
                    check_invariants=False,
                )
                user_vec = nn.functional.normalize(model.user_mlp(torch.sparse.mm(history, history_table)), dim=1)
                target_items = torch.from_numpy(bi)
                item_vec = nn.functional.normalize(item_table[target_items], dim=1)
                logits = user_vec @ item_vec.T / self.temperature + model.item_bias(target_items).T
                if self.logq:
                    logits = logits - log_q[target_items][None, :]
                same = target_items[:, None] == target_items[None, :]
                logits = logits.masked_fill(same & ~torch.eye(len(bu), dtype=torch.bool), float("-inf"))
                loss = nn.functional.cross_entropy(logits, torch.arange(len(bu)))
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                epoch_loss.append(loss.item())
            if epoch_loss:
                losses.append(float(np.mean(epoch_loss)))
            self.epochs_run += 1
        self.training_loss = losses[-1] if losses else None

        with torch.no_grad():
            item_table, history_table = model.tables()
            # Stored as [v, bias] against users' [u / temperature, 1]: one inner product, so the index still works.
            self._item_vectors = np.hstack(
                [_normalise(item_table.numpy()), model.item_bias.weight.numpy()]
            ).astype(np.float32)
            self._history_table = history_table.numpy().astype(np.float32)
            self._mlp = {name: p.detach().numpy().astype(np.float32) for name, p in model.user_mlp.state_dict().items()}
        self._user_vectors = self._embed(weights, totals)

    # --- the user tower in numpy ------------------------------------------------------------------

    def _tower(self, mean_history: np.ndarray) -> np.ndarray:
        m = self._mlp
        hidden = np.maximum(mean_history @ m["0.weight"].T + m["0.bias"], 0.0)
        user = _normalise((hidden @ m["2.weight"].T + m["2.bias"]).astype(np.float32)) / self.temperature
        return np.hstack([user, np.ones((len(user), 1), dtype=np.float32)]).astype(np.float32)

    def _embed(self, weights: sp.csr_matrix, totals: np.ndarray) -> np.ndarray:
        assert self._history_table is not None
        mean = np.asarray(weights @ self._history_table) / np.maximum(totals, 1e-9)[:, None]
        return self._tower(mean.astype(np.float32))

    def embed_history(self, item_ids: Sequence[str], strengths: Sequence[float] | None = None) -> np.ndarray:
        """The user vector of a history given as items (and strengths, default 1), e.g. a live session's views."""
        self._require_fitted()
        ids = as_id_list(item_ids, "item_ids")
        index = self._lookup(ids, self._items_index())
        w = np.ones(len(ids)) if strengths is None else np.asarray(strengths, dtype=np.float64)
        if len(w) != len(ids) or (w <= 0).any():
            raise ValueError("strengths must be one positive number per item")
        keep = index >= 0
        row = sp.csr_matrix((np.log1p(w[keep]), (np.zeros(int(keep.sum()), dtype=np.int64), index[keep])), shape=(1, self.n_items))
        return self._embed(row, np.asarray(row.sum(axis=1)).ravel())[0]

    # --- scoring ----------------------------------------------------------------------------------

    def _score_users(self, user_idx: np.ndarray) -> np.ndarray:
        assert self._user_vectors is not None and self._item_vectors is not None
        # float64 products: a float32 one can differ in the last bit with the batch's size (BLAS blocking).
        return self._user_vectors[user_idx].astype(np.float64) @ self._item_vectors.T.astype(np.float64)

    def _item_similarities(self, item_idx: np.ndarray) -> np.ndarray:
        # "More like this" as the towers learnt it: the items a user whose history is just this item would get.
        assert self._item_vectors is not None and self._history_table is not None
        return self._tower(self._history_table[item_idx]).astype(np.float64) @ self._item_vectors.T.astype(np.float64)

    def set_available_items(self, item_ids: Iterable[str] | None) -> None:
        super().set_available_items(item_ids)
        self._index = None  # rebuilt over the new available items when first needed

    def index_kind(self) -> str:
        return ("hnsw" if self.n_items >= self.ann_min_items else "exact") if self.ann == "auto" else self.ann

    def vector_index(self) -> VectorIndex:
        """The nearest-neighbour index over the available items' vectors (built on first use)."""
        self._require_fitted()
        if self._index is None:
            assert self._available is not None and self._item_vectors is not None and self._item_ids is not None
            rows = np.flatnonzero(self._available)
            self._index_rows = rows
            vectors = self._item_vectors[rows] if len(rows) else np.zeros((1, self.dim + 1), dtype=np.float32)
            self._index = VectorIndex(self.index_kind(), threads=self.threads).build(
                vectors, to_str_array(self._item_ids[rows]) if len(rows) else None
            )
            if not len(rows):
                self._index_rows = np.array([-1], dtype=np.int64)
        return self._index

    def _recommend(self, user_ids, N, exclude_seen, allowed):
        if allowed is None and self.n_items >= self.ann_min_items:
            return self.retrieve(user_ids, N, exclude_seen)
        return super()._recommend(user_ids, N, exclude_seen, allowed)

    def retrieve(self, user_ids: Sequence[str], N: int, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """`recommend` through the nearest-neighbour index: the same lists when the index is exact."""
        N = list_length(N)
        self._require_fitted()
        ids = as_id_list(user_ids, "user_ids")
        out_ids, out_scores = empty_result(len(ids), N)
        index = self._lookup(ids, self._users_index())
        ann = self.vector_index()
        assert self._index_rows is not None and self._user_vectors is not None and self._item_ids is not None
        known_rows = np.flatnonzero(index >= 0)
        for rows in self._batches(known_rows):
            user_idx = index[rows]
            seen = self._seen_rows(user_idx) if exclude_seen else None
            extra = int(np.diff(seen.indptr).max()) if seen is not None and seen.nnz else 0
            found, scores = ann.search(self._user_vectors[user_idx], N + extra)
            item_idx = np.where(found >= 0, self._index_rows[np.maximum(found, 0)], -1)
            for r, (items_r, scores_r) in enumerate(zip(item_idx, scores, strict=True)):
                valid = (items_r >= 0) & np.isfinite(scores_r)
                if seen is not None:
                    valid &= ~np.isin(items_r, seen.indices[seen.indptr[r] : seen.indptr[r + 1]])
                # Exact ties go to the more popular item (the smaller index), as everywhere else.
                chosen = items_r[valid]
                chosen_scores = scores_r[valid].astype(np.float64)
                order = np.lexsort((chosen, -chosen_scores))[:N]
                out_ids[rows[r], : len(order)] = self._item_ids[chosen[order]]
                out_scores[rows[r], : len(order)] = chosen_scores[order]
        cold_rows = np.flatnonzero(index < 0)
        if len(cold_rows):
            assert self._available is not None
            columns = None if self._available.all() else np.flatnonzero(self._available)
            top_ids, top_scores = self._top_items(self._fallback_scores()[None, :], N, columns)
            out_ids[cold_rows] = top_ids
            out_scores[cold_rows] = top_scores
        return out_ids, out_scores

    # --- persistence --------------------------------------------------------------------------------

    def _model_state(self) -> dict[str, np.ndarray]:
        assert self._item_vectors is not None and self._user_vectors is not None and self._history_table is not None
        index = self.vector_index()
        assert self._index_rows is not None
        return {
            "item_vectors": self._item_vectors,
            "user_vectors": self._user_vectors,
            "history_table": self._history_table,
            **{f"mlp.{k}": v for k, v in self._mlp.items()},
            # The index as faiss writes it (faiss.serialize_index: the write_index format), not rebuilt on load.
            "index.faiss": index.to_bytes(),
            "index.rows": self._index_rows,
            "index.kind": np.array(index.kind),
        }

    def _restore_model(self, state: dict[str, np.ndarray]) -> None:
        self._item_vectors = state["item_vectors"]
        self._user_vectors = state["user_vectors"]
        self._history_table = state["history_table"]
        self._mlp = {k.removeprefix("mlp."): v for k, v in state.items() if k.startswith("mlp.")}
        rows = state["index.rows"]
        assert self._item_ids is not None
        names = to_str_array(self._item_ids[rows]) if len(rows) and rows[0] >= 0 else np.array(["0"])
        self._index = VectorIndex.from_bytes(state["index.faiss"], names, kind=str(state["index.kind"]), threads=self.threads)
        self._index_rows = rows

