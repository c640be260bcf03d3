"""EASE: a one-shot linear model of "which items predict which", often the most accurate simple model.

EASE (Steck, 2019, "Embarrassingly Shallow Autoencoders for Sparse Data") learns, for every pair of
items, how much having the first predicts wanting the second, in one exact calculation (no training
loop, no randomness). The exact calculation needs a full item x item table, so it runs on catalogues
up to `max_dense_items` items (6,000 by default: about 6 s and 300 MB on one core). On a bigger
catalogue, EASE is computed exactly for the `max_dense_items` most popular items, and every pair
involving a rarer item gets EASE's first-order (sparse) weight instead; `fit_notes` says so.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg.lapack as lapack
import scipy.sparse as sp

from recs_assets.arguments import positive_int
from recs_assets.models.base import Recommender
from recs_assets.models.cooccurrence import top_k_cooccurrence
from recs_assets.models.inputs import binarized, positive

_BLOCK_CELLS = 1 << 23  # rows of G built at a time: about 64 MB
MAX_ITEMS = 30_000  # the item x item solve needs n_items^2 x 8 bytes: 7.2 GB at 30,000
# Measured on the 2-core target machine, one BLAS thread (the exact solve grows as items cubed):
# 2,000 items 0.3 s, 4,000 1.5 s, 6,000 5.5 s, 8,000 10.5 s, 16,000 about 70 s. 6,000 keeps the
# bundled catalogues (simulator 5,000 items, Steam 200k 5,155, MovieLens 100k 1,682) exact.
DEFAULT_MAX_DENSE_ITEMS = 6_000


class EASERecommender(Recommender):
    """EASE^R closed form on the binarised user-item matrix X (as in the paper):

        G = X^T X + l2 I,  P = G^-1,  B = -P / diag(P) (column-wise),  diag(B) = 0,  scores = X B.

    `l2` is the only hyper-parameter of the model itself: larger values trust co-occurrence less.
    B is kept as float32 (half the memory; rankings are unaffected at that precision).
    `similar_items(i)` lists the items j with the largest positive weight B[i, j], i.e. the items
    that having i most predicts.

    Catalogues above `max_dense_items` (items in training): B is exact among the `max_dense_items`
    most popular items ("head"); every other pair (i, j) gets

        B[i, j] ~ |users of i and j| / (|users of i| + l2),

    the first term of expanding P = (D + O)^-1 around its diagonal D = diag(G) (O: off-diagonal
    co-occurrence), keeping each item's `sparse_neighbours` largest such weights. That term is
    EASE's own answer when an item's co-occurrences are small next to its count + l2, which is what
    the long tail of a big catalogue looks like (a handful of users per item, l2 = 500). The exact
    head keeps full EASE where the data is dense enough for it to matter; cost grows with the
    co-occurring pairs, not with items squared.
    """

    name = "ease"

    def __init__(
        self,
        l2: float = 500.0,
        max_dense_items: int = DEFAULT_MAX_DENSE_ITEMS,
        sparse_neighbours: int = 100,
    ) -> None:
        l2 = positive(l2, "l2")
        max_dense_items = positive_int(max_dense_items, "max_dense_items")
        if max_dense_items > MAX_ITEMS:
            raise ValueError(
                f"max_dense_items must be at most {MAX_ITEMS:,} (a dense {max_dense_items:,} x "
                f"{max_dense_items:,} solve needs about {max_dense_items**2 * 8 / 1e9:.1f} GB); got {max_dense_items!r}"
            )
        sparse_neighbours = positive_int(sparse_neighbours, "sparse_neighbours")
        super().__init__()
        self.l2 = l2
        self.max_dense_items = max_dense_items
        self.sparse_neighbours = sparse_neighbours
        self._weights: np.ndarray | None = None  # head x head, dense
        self._sparse: sp.csr_matrix | None = None  # items x items, every pair outside head x head
        self._binary: sp.csr_matrix | None = None

    @property
    def weights(self) -> np.ndarray | None:
        """B among the head items (all items when the catalogue is small), internal item order."""
        return self._weights

    @property
    def sparse_weights(self) -> sp.csr_matrix | None:
        """First-order weights for every pair outside head x head (None when all items are exact)."""
        return self._sparse

    @property
    def dense_items(self) -> int:
        """How many (most popular) items the exact solve covered in the last fit."""
        return 0 if self._weights is None else self._weights.shape[0]

    def _fit(self, user_items: sp.csr_matrix) -> None:
        n_items = user_items.shape[1]
        self._binary = binarized(user_items)
        head = min(n_items, self.max_dense_items)
        dense_part = self._binary if head == n_items else self._binary[:, :head]
        self._weights = np.ascontiguousarray(ease_weights(dense_part, self.l2), dtype=np.float32)
        if head == n_items:
            self._sparse = None
            self.fit_notes = {"ease_mode": "exact", "dense_items": head, "n_items": n_items}
            return
        self._sparse = first_order_ease(self._binary, head, self.l2, self.sparse_neighbours)
        self.fit_notes = {
            "ease_mode": "exact_head_sparse_tail",
            "dense_items": head,
            "n_items": n_items,
            "sparse_pairs": int(self._sparse.nnz),
            "reason": (
                f"{n_items:,} items in training > max_dense_items={self.max_dense_items:,}: exact EASE on "
                f"the {head:,} most popular items, first-order sparse EASE weights (top "
                f"{self.sparse_neighbours} per item) for every pair with a rarer item"
            ),
        }

    def _score_users(self, user_idx: np.ndarray) -> np.ndarray:
        assert self._binary is not None and self._weights is not None
        rows = self._binary[user_idx].astype(np.float32)
        if self._sparse is None:
            return np.asarray(rows @ self._weights)
        head = self.dense_items
        scores = (rows @ self._sparse).toarray()
        scores[:, :head] += rows[:, :head] @ self._weights
        return scores

    def _item_similarities(self, item_idx: np.ndarray) -> np.ndarray:
        assert self._weights is not None
        if self._sparse is None:
            return self._weights[item_idx].copy()
        head = self.dense_items
        sims = self._sparse[item_idx].toarray()
        in_head = np.flatnonzero(item_idx < head)
        sims[in_head, :head] += self._weights[item_idx[in_head]]
        return sims

    def _model_state(self) -> dict[str, np.ndarray]:
        assert self._weights is not None
        state = {"weights": self._weights}
        if self._sparse is not None:
            s = self._sparse
            state.update({"sparse.data": s.data, "sparse.indices": s.indices, "sparse.indptr": s.indptr})
        return state

    def _restore_model(self, state: dict[str, np.ndarray]) -> None:
        self._weights = np.ascontiguousarray(state["weights"])
        n = self.n_items
        self._sparse = None
        if "sparse.data" in state:
            self._sparse = sp.csr_matrix(
                (state["sparse.data"], state["sparse.indices"], state["sparse.indptr"]), shape=(n, n)
            )
        assert self._user_items is not None
        self._binary = binarized(self._user_items)


def first_order_ease(binary: sp.csr_matrix, head: int, l2: float, k: int) -> sp.csr_matrix:
    """Items x items float32 CSR of |users of i and j| / (|users of i| + l2) for pairs outside head x head.

    Each item keeps its k largest weights: head items among the tail items only (their weights to
    other head items are exact), tail items among all items.
    """
    n_items = binary.shape[1]
    item_users = binary.T.tocsr()
    counts = np.diff(item_users.indptr).astype(np.float64)

    def weight(rows: np.ndarray, cols: np.ndarray, shared: np.ndarray) -> np.ndarray:
        return shared / (counts[rows] + l2)

    to_tail = top_k_cooccurrence(item_users[:head], binary[:, head:], k, weight, col_offset=head)
    from_tail = top_k_cooccurrence(item_users[head:], binary, k, weight, row_offset=head)
    head_rows = sp.hstack([sp.csr_matrix((head, head)), to_tail], format="csr")
    return sp.csr_matrix(sp.vstack([head_rows, from_tail], format="csr"), dtype=np.float32)


def ease_weights(user_items: sp.csr_matrix, l2: float) -> np.ndarray:
    """B = -P / diag(P) with zero diagonal, P = (X^T X + l2 I)^-1, as float64."""
    n_items = user_items.shape[1]
    block = max(1, _BLOCK_CELLS // max(1, n_items))
    # Dense G filled block by block: a sparse X^T X of a dense-ish catalogue costs 12 bytes a cell.
    # Fortran order, so LAPACK below works in place instead of on a second n x n copy; G is
    # symmetric, so a block of rows is also the transposed block of columns.
    gram = np.empty((n_items, n_items), dtype=np.float64, order="F")
    item_users = user_items.T.tocsr()
    for start in range(0, n_items, block):
        gram[:, start : start + block] = (item_users[start : start + block] @ user_items).toarray().T
    gram[np.diag_indices_from(gram)] += l2
    # G is symmetric positive definite: Cholesky inverts it with half the work of LU.
    factor, info = lapack.dpotrf(gram, lower=False, overwrite_a=True, clean=False)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE: X^T X + l2 I is not positive definite (dpotrf info={info})")
    inverse, info = lapack.dpotri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE: could not invert X^T X + l2 I (dpotri info={info})")
    _mirror_upper(inverse, block)
    # P is symmetric, so its transpose is the same matrix in C order: rows contiguous, which is
    # what scoring (sparse rows of X times B) reads. Column order made it 25x slower at 20k items.
    weights = inverse.T
    weights /= -np.diag(weights)[None, :]
    weights[np.diag_indices_from(weights)] = 0.0
    return weights


def _mirror_upper(matrix: np.ndarray, block: int) -> None:
    """Copy the upper triangle onto the lower one in place, a block of rows at a time.

    (dpotri fills only the upper triangle; index arrays for the whole triangle would cost as much
    memory as the matrix itself.)
    """
    n = matrix.shape[0]
    for start in range(0, n, block):
        stop = min(start + block, n)
        matrix[start:stop, :start] = matrix[:start, start:stop].T
        diagonal = matrix[start:stop, start:stop]
        matrix[start:stop, start:stop] = np.triu(diagonal) + np.triu(diagonal, 1).T
