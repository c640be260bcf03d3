"""Shared builders for the serving tests: a tiny hand-made snapshot store with known answers."""

from __future__ import annotations

import pytest

from recs_assets.serving.store import SnapshotStore


def ranked(*items: str) -> tuple[tuple[str, float], ...]:
    """A ranked list with scores 1, 1/2, 1/3, ..."""
    return tuple((item, 1.0 / rank) for rank, item in enumerate(items, start=1))


@pytest.fixture
def store() -> SnapshotStore:
    """10 items (i1..i5 books, i6..i10 toys; i9 inactive), u1 and u2 with lists, u3 segment A without one."""
    return SnapshotStore(
        recommendations={"u1": ranked("i1", "i9", "i2", "i3", "i6", "i7"), "u2": ranked("i5", "i4", "i1", "i2")},
        similar={"i8": ranked("i10", "i9", "i7"), "i4": ranked("i5"), "i1": ranked("i2")},
        popular={
            ("A", None): ranked("i2", "i3", "i7"),
            ("A", "toys"): ranked("i7", "i9", "i8"),
            (None, None): ranked("i5", "i4", "i1"),
            (None, "toys"): ranked("i10"),
        },
        user_segment={"u1": "A", "u2": "B", "u3": "A"},
        item_category={f"i{k}": "books" if k <= 5 else "toys" for k in range(1, 11)},
        inactive=frozenset({"i9"}),
        model="ranker_model",
        model_version=3,
        loaded=True,
    )
