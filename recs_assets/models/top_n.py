"""Picking the best N of many scores, the same way everywhere: best first, ties to the smaller index.

Item indices are ordered by training popularity, so "ties go to the smaller index" means ties go
to the more popular item, and no list ever depends on chance or on input order.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


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


# Cells of the padded block `sparse_top_k` partitions at a time (8 bytes each: 32 MB).
_PARTITION_CELLS = 1 << 22


def sparse_top_k(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep, per row of a CSR matrix, only its k largest positive stored values (ties: smaller column).

    Returns a canonical CSR (sorted indices) of the same shape. Stored values <= 0 are dropped, as
    are explicit zeros: a kept neighbour always has a positive weight. Linear time: rows with more
    than k values find their k-th largest by partitioning, a block of similar-length rows at a time
    (padded to the block's longest row, at most `_PARTITION_CELLS` cells), and keep what is above it
    plus the ties at it by column order. A sort of every stored value was the session model's
    largest cost at 30k users.
    """
    matrix = sp.csr_matrix(matrix, copy=True)
    matrix.sort_indices()
    n_rows = matrix.shape[0]
    rows = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(matrix.indptr))
    positive = matrix.data > 0
    rows = rows[positive]
    cols = matrix.indices[positive].astype(np.int64, copy=False)
    vals = matrix.data[positive].astype(np.float64, copy=False)
    counts = np.bincount(rows, minlength=n_rows)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    keep = np.ones(len(rows), dtype=bool)
    # Rows are in row order and, within a row, in column order: a row's entries are one slice.
    big = np.flatnonzero(counts > k)
    big = big[np.argsort(counts[big], kind="stable")]
    i = 0
    while i < len(big):
        j = min(len(big), i + max(1, _PARTITION_CELLS // int(counts[big[i]])))
        while j - i > 1 and (j - i) * int(counts[big[j - 1]]) > _PARTITION_CELLS:
            j = i + max(1, _PARTITION_CELLS // int(counts[big[j - 1]]))
        block = big[i:j]
        lengths = counts[block]
        width = int(lengths[-1])
        local = np.repeat(np.arange(len(block)), lengths)
        position = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        entries = np.repeat(starts[block], lengths) + position
        padded = np.full((len(block), width), -np.inf)
        padded[local, position] = vals[entries]
        kth = np.partition(padded, width - k, axis=1)[:, width - k][local]
        value = vals[entries]
        above, tied = value > kth, value == kth
        room = k - np.bincount(local[above], minlength=len(block))
        # Each tie's place among its row's ties, in column order.
        tie_count = np.cumsum(tied)
        tie_rank = tie_count - 1 - np.repeat(np.concatenate([[0], tie_count[np.cumsum(lengths)[:-1] - 1]]), lengths)
        keep[entries] = above | (tied & (tie_rank < room[local]))
        i = j
    return sp.csr_matrix((vals[keep], (rows[keep], cols[keep])), shape=matrix.shape)
