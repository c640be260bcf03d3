"""Top-N selection (models/top_n.py): best first, ties to the smaller index, dense and sparse alike."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recs_assets.models.top_n import sparse_top_k, top_n


def test_top_n_breaks_ties_by_column_index_even_at_the_cut():
    scores = np.array([[1.0, 3.0, 2.0, 3.0, 2.0, 2.0]])
    idx, values = top_n(scores, 4)
    assert idx.tolist() == [[1, 3, 2, 4]]
    assert values.tolist() == [[3.0, 3.0, 2.0, 2.0]]


def test_top_n_treats_minus_inf_and_nan_as_not_allowed_and_pads():
    scores = np.array([[-np.inf, 0.5, np.nan, 0.1]], dtype=np.float32)
    idx, values = top_n(scores, 5)
    assert idx.tolist() == [[1, 3, -1, -1, -1]]
    assert values[0, :2] == pytest.approx([0.5, 0.1]) and np.isnan(values[0, 2:]).all()
    assert values.dtype == np.float64


@pytest.mark.parametrize("seed", range(3))
def test_top_n_equals_a_stable_full_sort(seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 5, size=(20, 50)).astype(float)  # many ties
    idx, values = top_n(scores, 7)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :7]
    assert np.array_equal(idx, order)


def test_sparse_top_k_keeps_the_k_largest_positive_values_per_row_ties_to_the_smaller_column():
    dense = np.array(
        [
            [0.0, 2.0, 5.0, 2.0, 2.0, -1.0],
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [-3.0, 1.0, 0.0, 0.0, 0.0, 0.0],
        ]
    )
    kept = sparse_top_k(sp.csr_matrix(dense), 3)
    assert kept.has_canonical_format
    assert kept.toarray().tolist() == [
        [0.0, 2.0, 5.0, 2.0, 0.0, 0.0],  # 5, then the tied 2s at columns 1 and 3 (not 4)
        [0.0] * 6,
        [0.0, 1.0, 0.0, 0.0, 0.0, 0.0],  # negative values never count as neighbours
    ]


@pytest.mark.parametrize("seed", range(3))
def test_sparse_top_k_agrees_with_dense_top_n(seed):
    rng = np.random.default_rng(seed)
    dense = rng.integers(0, 4, size=(15, 40)).astype(float) * (rng.random((15, 40)) < 0.3)
    kept = sparse_top_k(sp.csr_matrix(dense), 5).toarray()
    idx, values = top_n(np.where(dense > 0, dense, -np.inf), 5)
    expected = np.zeros_like(dense)
    for row, (cols, vals) in enumerate(zip(idx, values, strict=True)):
        expected[row, cols[cols >= 0]] = vals[cols >= 0]
    assert np.array_equal(kept, expected)


@pytest.mark.parametrize("cells", [1, 9, 64])
def test_sparse_top_k_is_the_same_when_its_rows_are_partitioned_in_small_blocks(cells, monkeypatch):
    """Rows of many lengths, many ties, blocks of one row and of several: always the dense answer."""
    import sys

    # `recs_assets.models.top_n` is also the name of a function re-exported by the package.
    monkeypatch.setattr(sys.modules[sparse_top_k.__module__], "_PARTITION_CELLS", cells)
    rng = np.random.default_rng(cells)
    dense = rng.integers(-1, 4, size=(30, 25)).astype(float) * (rng.random((30, 25)) < rng.random((30, 1)))
    kept = sparse_top_k(sp.csr_matrix(dense), 4)
    idx, values = top_n(np.where(dense > 0, dense, -np.inf), 4)
    expected = np.zeros_like(dense)
    for row, (cols, vals) in enumerate(zip(idx, values, strict=True)):
        expected[row, cols[cols >= 0]] = vals[cols >= 0]
    assert kept.has_canonical_format and np.array_equal(kept.toarray(), expected)
