"""Shared data for the model tests: the "checkerboard", whose right answers are known by construction.

Two groups of users, each interacting only with its own block of items, every user missing two
items of their block: a user must be recommended the block items they have not seen, and an item's
most similar items are in its block.
"""

from __future__ import annotations

import numpy as np
import polars as pl

GROUPS = ("A", "B")
USERS_PER_GROUP = 8
ITEMS_PER_GROUP = 6


def block_items(group: str) -> list[str]:
    return [f"{group}{i}" for i in range(ITEMS_PER_GROUP)]


def missing_items(group: str, j: int) -> set[str]:
    return {f"{group}{j % ITEMS_PER_GROUP}", f"{group}{(j + 3) % ITEMS_PER_GROUP}"}


def checkerboard() -> pl.DataFrame:
    rows = []
    for group in GROUPS:
        for j in range(USERS_PER_GROUP):
            user = f"{group.lower()}{j}"
            for i, item in enumerate(block_items(group)):
                if item not in missing_items(group, j):
                    rows.append((user, item, 1.0 + (i + j) % 3))
    return pl.DataFrame(rows, schema={"user_id": pl.String, "item_id": pl.String, "strength": pl.Float64}, orient="row")


INTERACTIONS = checkerboard()
USERS = sorted(INTERACTIONS["user_id"].unique().to_list())
ITEMS = sorted(INTERACTIONS["item_id"].unique().to_list())
CATEGORIES = pl.DataFrame({"item_id": ITEMS, "category": [item[0] for item in ITEMS]})
SEEN = {u: set(g["item_id"].to_list()) for (u,), g in INTERACTIONS.group_by("user_id")}


def group_of(user: str) -> str:
    return user[0].upper()


def popularity_order(interactions: pl.DataFrame, allowed: set[str] | None = None) -> list[str]:
    """Items by number of users (desc), then id: the documented cold-user fallback."""
    counts = interactions.group_by("item_id").agg(pl.len().alias("n")).sort(["n", "item_id"], descending=[True, False])
    return [i for i in counts["item_id"].to_list() if allowed is None or i in allowed]


def same(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> bool:
    return np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1], equal_nan=True)


def random_interactions(n_users: int, n_items: int, density: float, seed: int) -> pl.DataFrame:
    """Random binary-ish data where every user and every item has at least one interaction."""
    rng = np.random.default_rng(seed)
    dense = rng.random((n_users, n_items)) < density
    dense[np.arange(n_users), rng.integers(0, n_items, n_users)] = True
    dense[rng.integers(0, n_users, n_items), np.arange(n_items)] = True
    users, items = np.nonzero(dense)
    return pl.DataFrame(
        {
            "user_id": [f"u{u:03d}" for u in users],
            "item_id": [f"i{i:03d}" for i in items],
            "strength": rng.uniform(1, 5, len(users)),
        }
    )
