"""Checking and preparing what callers hand to a model: interaction tables, id lists, list lengths.

Every model reads the same users x items matrix built here, so "bad input gets a clear error naming
what is wrong" is written once. Hyper-parameter checks use recs_assets/arguments.py's wording.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import polars as pl
import scipy.sparse as sp

from recs_assets.arguments import number_in, positive_int


def list_length(N: object) -> int:
    """N, the number of items per list, as a plain int (ValueError naming N otherwise)."""
    return positive_int(N, "N")


def non_negative(value: object, name: str) -> float:
    """A finite number >= 0 as a float (ValueError naming the argument otherwise)."""
    return number_in(value, name, 0.0, math.inf, open_high=True)


def positive(value: object, name: str) -> float:
    """A finite number > 0 as a float (ValueError naming the argument otherwise)."""
    return number_in(value, name, 0.0, math.inf, open_low=True, open_high=True)


def as_id_list(ids: Iterable[str], what: str) -> list[str]:
    """Ids as a list of str; a bare string is refused (it would silently become one id per character)."""
    if isinstance(ids, (str, bytes)):
        raise TypeError(f"{what} must be a sequence of ids, not a single string: use [{ids!r}]")
    if isinstance(ids, (pl.Series, np.ndarray)):
        ids = ids.tolist()
    return [str(i) for i in ids]


def empty_result(n_rows: int, N: int) -> tuple[np.ndarray, np.ndarray]:
    """All-padding output of `recommend` / `similar_items`: None ids, NaN scores."""
    return np.full((n_rows, N), None, dtype=object), np.full((n_rows, N), np.nan, dtype=np.float64)


def to_str_array(values: Iterable[str]) -> np.ndarray:
    """A numpy str array (never object dtype, so it saves without pickle)."""
    values = list(values)
    return np.array(values, dtype=str) if values else np.array([], dtype="<U1")


def interaction_matrix(
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


def category_mapping(item_categories: pl.DataFrame | None) -> dict[str, str]:
    """item_id -> category from an (item_id, category) table; an item with two categories is refused."""
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
    return sp.csr_matrix(
        (np.ones(matrix.nnz, dtype=dtype), matrix.indices.copy(), matrix.indptr.copy()), shape=matrix.shape
    )
