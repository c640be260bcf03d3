"""Sparse item-to-item tables built from who-had-what, without ever holding a dense items x items matrix.

Item-kNN's neighbours and EASE's big-catalogue fallback both weigh, for a pair of items, how many
users had both, and keep only each item's k best partners. The pairs are computed a block of items
at a time as a sparse product, with the block sized by an upper bound on how many pairs it can
produce, so memory follows the number of co-occurring pairs, not the catalogue's square.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from recs_assets.models.top_n import sparse_top_k

# Co-occurring pairs held at once while building one block (data, indices, sort keys): ~250 MB.
BLOCK_PAIRS = 1 << 22

# weigh(rows, cols, shared_users) -> weights, with rows and cols the pairs' global item indices.
Weigh = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def top_k_cooccurrence(
    left: sp.csr_matrix,
    right: sp.csr_matrix,
    k: int,
    weigh: Weigh,
    *,
    row_offset: int = 0,
    col_offset: int = 0,
    block_pairs: int | None = None,
) -> sp.csr_matrix:
    """For each row item of `left` (items x users), its k best column items of `right` (users x items).

    A pair's weight is `weigh(row, col, shared users)`, where row / col are the items' global indices
    (`row_offset` / `col_offset` plus the local index). Only pairs with at least one shared user and
    a positive weight are candidates; an item is never its own partner. Ties go to the smaller column.
    Returns a canonical CSR of shape (left rows, right columns). `block_pairs` (default
    BLOCK_PAIRS) bounds the pairs computed at once; the result does not depend on it.
    """
    block_pairs = BLOCK_PAIRS if block_pairs is None else block_pairs
    n_rows, n_cols = left.shape[0], right.shape[1]
    # Items per user, so each row's number of pairs is bounded before multiplying.
    per_user = np.diff(sp.csr_matrix(right).indptr).astype(np.float64)
    bound = np.minimum(left @ per_user, n_cols)
    pieces = []
    start = 0
    while start < n_rows:
        cumulative = np.cumsum(bound[start:])
        stop = start + max(1, int(np.searchsorted(cumulative, block_pairs, side="right")))
        shared = sp.csr_matrix(left[start:stop] @ right)
        local_rows = np.repeat(np.arange(stop - start), np.diff(shared.indptr))
        rows = local_rows + start + row_offset
        cols = shared.indices.astype(np.int64) + col_offset
        weights = np.asarray(weigh(rows, cols, shared.data), dtype=np.float64)
        weights[rows == cols] = 0.0  # sparse_top_k drops non-positive weights
        block = sp.csr_matrix((weights, shared.indices, shared.indptr), shape=(stop - start, n_cols))
        pieces.append(sparse_top_k(block, k))
        start = stop
    if not pieces:
        return sp.csr_matrix((n_rows, n_cols), dtype=np.float64)
    return sp.csr_matrix(sp.vstack(pieces, format="csr"))
