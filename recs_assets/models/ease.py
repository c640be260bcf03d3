"""EASE: a one-shot linear model of "which items predict which", often the most accurate simple model.

EASE (Steck, 2019, "Embarrassingly Shallow Autoencoders for Sparse Data") learns, for every pair of
items, how much having the first predicts wanting the second, in one exact calculation (no training
loop, no randomness). It keeps a full item x item table in memory, so it suits catalogues up to tens
of thousands of items; beyond 30,000 items use item_knn or ALS instead.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg.lapack as lapack
import scipy.sparse as sp

from recs_assets.models.base import Recommender, binarized

_BLOCK_CELLS = 1 << 23  # rows of G built at a time: about 64 MB
MAX_ITEMS = 30_000  # the item x item solve needs n_items^2 x 8 bytes: 7.2 GB at 30,000


class EASERecommender(Recommender):
    """EASE^R closed form on the binarised user-item matrix X (as in the paper):

        G = X^T X + l2 I,  P = G^-1,  B = -P / diag(P) (column-wise),  diag(B) = 0,  scores = X B.

    `l2` is the only hyper-parameter: larger values trust co-occurrence less (more smoothing).
    B is kept as float32 (half the memory; rankings are unaffected at that precision).
    `similar_items(i)` lists the items j with the largest positive weight B[i, j], i.e. the items
    that having i most predicts.
    """

    name = "ease"

    def __init__(self, l2: float = 500.0) -> None:
        if not np.isfinite(l2) or l2 <= 0:
            raise ValueError(f"l2 must be a finite number > 0; got {l2!r}")
        super().__init__()
        self.l2 = float(l2)
        self._weights: np.ndarray | None = None
        self._binary: sp.csr_matrix | None = None

    @property
    def weights(self) -> np.ndarray | None:
        """B, items x items in the model's internal item order."""
        return self._weights

    def _fit(self, user_items: sp.csr_matrix) -> None:
        n_items = user_items.shape[1]
        if n_items > MAX_ITEMS:
            raise ValueError(
                f"EASE keeps a dense item x item matrix: {n_items:,} items would need about "
                f"{n_items**2 * 8 / 1e9:.1f} GB; the limit is {MAX_ITEMS:,} items. "
                "Use item_knn or als, or restrict the catalogue (e.g. to items with enough interactions)."
            )
        self._binary = binarized(user_items)
        self._weights = np.ascontiguousarray(ease_weights(self._binary, self.l2), dtype=np.float32)

    def _score_users(self, user_idx: np.ndarray) -> np.ndarray:
        assert self._binary is not None and self._weights is not None
        return np.asarray(self._binary[user_idx].astype(np.float32) @ self._weights)

    def _item_similarities(self, item_idx: np.ndarray) -> np.ndarray:
        assert self._weights is not None
        return self._weights[item_idx].copy()

    def _model_state(self) -> dict[str, np.ndarray]:
        assert self._weights is not None
        return {"weights": self._weights}

    def _restore_model(self, state: dict[str, np.ndarray]) -> None:
        self._weights = np.ascontiguousarray(state["weights"])
        assert self._user_items is not None
        self._binary = binarized(self._user_items)


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
