"""The snapshot store: loaded whole from the lake (history included), swapped only when a load succeeds."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

from recs_assets.layout import HomeLayout
from recs_assets.serving.store import SNAPSHOT_FILES, StoreHolder, load_store, snapshot_signature


def _write(df: pl.DataFrame, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    df.write_parquet(tmp)
    os.replace(tmp, path)


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    lake = HomeLayout(tmp_path).lake
    lake.mkdir(parents=True)
    _write(pl.DataFrame({"user_id": ["u1", "u1", "u2"], "item_id": ["b", "a", "c"], "rank": [2, 1, 1],
                         "score": [0.5, 0.9, 0.7], "model": ["m"] * 3, "model_version": [4] * 3}),
           lake / SNAPSHOT_FILES["recommendations"])
    _write(pl.DataFrame({"item_id": ["a", "a"], "similar_item_id": ["a", "b"], "rank": [1, 2], "score": [1.0, 0.5]}),
           lake / SNAPSHOT_FILES["similar"])
    _write(pl.DataFrame({"user_id": ["u1", "u1", "u3"], "item_id": ["x", "y", "x"]}), lake / SNAPSHOT_FILES["history"])
    _write(pl.DataFrame({"item_id": ["a", "b", "c"], "category": ["k", "k", None], "is_active": [True, False, None]}),
           lake / SNAPSHOT_FILES["items"])
    return lake


def test_load_store_builds_ranked_lists_history_and_inactive_items(lake: Path) -> None:
    store = load_store(lake)
    assert store.recommendations == {"u1": (("a", 0.9), ("b", 0.5)), "u2": (("c", 0.7),)}
    assert store.similar == {"a": (("b", 0.5),)}  # an item is never its own neighbour
    assert store.history == {"u1": frozenset({"x", "y"}), "u3": frozenset({"x"})}
    assert store.inactive == frozenset({"b"})  # a null is_active counts as active
    assert (store.model, store.model_version, store.loaded) == ("m", 4, True)
    assert store.counts["users_with_history"] == 2 and store.user_segment == {}
    # No popular snapshot in this lake: the fallback list is rebuilt from the history's counts, and said so.
    assert store.popular == {(None, None): (("x", 1.0), ("y", 0.5))}
    assert store.problems == ("popular: popular_items_snapshot.parquet is missing",
                              "popular: served from the history snapshot's counts instead")


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_a_truncated_file_costs_only_its_own_part_and_is_named(lake: Path) -> None:
    _truncate(lake / SNAPSHOT_FILES["recommendations"])
    store = load_store(lake)
    assert not store.loaded and store.recommendations == {}
    assert store.similar == {"a": (("b", 0.5),)} and store.history["u1"] == frozenset({"x", "y"})
    assert any(p.startswith("recommendations: recommendation_snapshot.parquet is unreadable") for p in store.problems)
    assert store.popular[(None, None)][0] == ("x", 1.0)  # everybody still gets the fallback


def test_with_every_list_broken_the_store_says_it_has_no_fallback(lake: Path) -> None:
    for part in ("recommendations", "history"):
        _truncate(lake / SNAPSHOT_FILES[part])
    store = load_store(lake)
    assert store.popular == {} and "popular: no fallback list at all" in store.problems[-1]


def test_a_broken_newer_file_never_replaces_a_store_that_serves(lake: Path) -> None:
    holder = StoreHolder(lake, reload_interval=60)
    assert holder.refresh()
    _truncate(lake / SNAPSHOT_FILES["similar"])
    assert not holder.refresh()
    assert holder.store.similar == {"a": (("b", 0.5),)} and "similar" in holder.last_error


def test_a_lake_without_a_history_file_still_loads(lake: Path) -> None:
    (lake / SNAPSHOT_FILES["history"]).unlink()
    assert load_store(lake).history == {}


def test_the_holder_swaps_on_change_and_keeps_serving_through_a_bad_file(lake: Path) -> None:
    holder = StoreHolder(lake, reload_interval=60)
    assert holder.refresh() and holder.reloads == 1
    assert not holder.refresh()  # nothing changed
    before = snapshot_signature(lake)
    _write(pl.DataFrame({"user_id": ["u9"], "item_id": ["z"]}), lake / SNAPSHOT_FILES["history"])
    assert snapshot_signature(lake) != before
    assert holder.refresh() and holder.store.history == {"u9": frozenset({"z"})}
    bad = lake / "bad.tmp"
    bad.write_bytes(b"not parquet")
    os.replace(bad, lake / SNAPSHOT_FILES["similar"])
    assert not holder.refresh()
    assert holder.last_error and holder.store.history == {"u9": frozenset({"z"})} and holder.reloads == 2
