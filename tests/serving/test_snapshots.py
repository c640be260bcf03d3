"""Serving snapshots: a full list for every user with history, nothing they have or that sold, topped up
from the popular fallback when the models run out; fallbacks per category/segment; each user's history."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from recs_assets.features import DEFAULT_INTERACTION_PARAMS
from recs_assets.models import EASERecommender, PopularityRecommender
from recs_assets.serving.snapshots import (
    ACTIVE_USER_COLUMNS,
    DEFECTS,
    OVERFETCH,
    active_users,
    popular_items_snapshot,
    recommendation_snapshot,
    similar_items_snapshot,
    snapshot_defects,
    snapshot_problems,
    user_history_snapshot,
)
from recs_assets.sources.simulator import SimulatorConfig, simulate
from recs_assets.training.ranking_set import features_at, fit_generator

T0 = datetime(2026, 9, 1, tzinfo=timezone.utc)


class FixedLists:
    """A generator whose ranking per user is fixed; remembers how deep it was asked."""

    def __init__(self, lists: dict[str, list[str]]) -> None:
        self.lists = lists
        self.asked: list[int] = []

    def recommend(self, user_ids, N, exclude_seen=True):
        self.asked.append(N)
        ids = np.full((len(user_ids), N), None, dtype=object)
        scores = np.full((len(user_ids), N), np.nan)
        for row, user in enumerate(user_ids):
            top = self.lists.get(user, [])[:N]
            ids[row, : len(top)] = top
            scores[row, : len(top)] = [1.0 / (k + 1) for k in range(len(top))]
        return ids, scores


def pairs(*rows: tuple[str, str]) -> pl.DataFrame:
    return pl.DataFrame({"user_id": [u for u, _ in rows], "item_id": [i for _, i in rows]},
                        schema={"user_id": pl.String, "item_id": pl.String})


def popular(rows: list[tuple[str | None, list[str]]]) -> pl.DataFrame:
    """Fallback lists (segment, items) at category "all"."""
    return pl.DataFrame(
        [{"segment": s, "category": None, "item_id": it, "rank": r, "score": float(10 - r)}
         for s, items in rows for r, it in enumerate(items, start=1)],
        schema={"segment": pl.String, "category": pl.String, "item_id": pl.String, "rank": pl.Int32, "score": pl.Float64},
    )


def lists_of(snapshot: pl.DataFrame) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for row in snapshot.sort("user_id", "rank").iter_rows(named=True):
        out.setdefault(row["user_id"], []).append((row["item_id"], row["source"]))
    return out


# ------------------------------------------------------------------------------------ hand-made data
def test_history_is_every_interaction_once_and_nothing_else() -> None:
    events = pl.DataFrame({
        "user_id": ["u1", "u1", "u1", "u2", "u2", None, "u3"],
        "item_id": ["a", "a", "b", "c", "d", "a", None],
        "event_type": ["view", "purchase", "impression", "rating", "search", "view", "view"],
    })
    assert user_history_snapshot(events).rows() == [("u1", "a"), ("u2", "c")]
    with pytest.raises(ValueError, match="item_id"):
        user_history_snapshot(events.drop("item_id"))


def test_every_user_with_history_is_covered_by_default() -> None:
    events = pl.DataFrame({
        "user_id": ["old", "new", "browser"],
        "event_type": ["purchase", "view", "impression"],
        "event_at": [T0, T0 + timedelta(days=90), T0 + timedelta(days=90)],
    })
    assert active_users(events) == ["new", "old"]
    assert active_users(events, 30) == ["new"]
    # These columns are all the snapshot step loads of the events for it.
    assert set(events.columns) == set(ACTIVE_USER_COLUMNS)


def test_models_are_asked_deeper_when_what_they_propose_has_sold() -> None:
    sold = [f"s{k}" for k in range(OVERFETCH + 20)]  # more sold items than the first, N + OVERFETCH deep ask
    model = FixedLists({"u": [*sold, "a", "b", "c", "d"]})
    available = pl.Series(["a", "b", "c", "d", "e"])
    snap = recommendation_snapshot("m", {"m": model}, None, ["u"], {}, pairs(("u", "b")), available, N=3, n_candidates=10)
    assert lists_of(snap) == {"u": [("a", "model"), ("c", "model"), ("d", "model")]}
    assert snap["rank"].to_list() == [1, 2, 3] and snap.schema["rank"] == pl.Int32
    assert model.asked == [3 + OVERFETCH, 4 * (3 + OVERFETCH)]


def test_short_model_lists_are_topped_up_from_the_segment_then_the_overall_fallback() -> None:
    model = FixedLists({"v": ["a", "sold"], "w": []})
    available = pl.Series(list("abcdefgh"))
    fallback = popular([("S", ["b", "x", "a", "c"]), (None, ["b", "d", "e", "f"])])
    users = pl.DataFrame({"user_id": ["v", "w"], "segment": ["S", None]})
    snap = recommendation_snapshot("m", {"m": model}, None, ["v", "w"], {}, pairs(("v", "c"), ("w", "e")), available,
                                   N=4, n_candidates=10, fallback=fallback, users=users)
    # v: a from the model; b from segment S (x is not sellable, a is taken, c is history); then d from the overall list
    assert lists_of(snap) == {
        "v": [("a", "model"), ("b", "fallback"), ("d", "fallback"), ("e", "fallback")],
        "w": [("b", "fallback"), ("d", "fallback"), ("f", "fallback")],
    }
    problems = snapshot_problems(snap, ["v", "w"], pairs(), available, 4, history=pairs(("v", "c"), ("w", "e")))
    assert (problems["rows_from_model"], problems["rows_from_fallback"], problems["users_topped_up"]) == (1, 6, 2)
    assert problems["users_short_of_n"] == 1 and problems["short_list_reasons"] == {"candidates_exhausted": 1}
    assert snapshot_defects(problems) == {}


def test_a_user_who_has_nearly_everything_gets_a_shorter_list_with_the_reason() -> None:
    available = pl.Series(list("abcd"))
    history = pairs(("h", "a"), ("h", "b"), ("h", "c"), ("all", "a"), ("all", "b"), ("all", "c"), ("all", "d"))
    model = FixedLists({"h": list("abcd"), "all": list("abcd")})
    snap = recommendation_snapshot("m", {"m": model}, None, ["h", "all"], {}, history, available, N=3, n_candidates=10,
                                   fallback=popular([(None, list("abcd"))]))
    assert lists_of(snap) == {"h": [("d", "model")]}
    problems = snapshot_problems(snap, ["h", "all"], pairs(), available, 3, history=history)
    assert problems["short_list_reasons"] == {"catalogue_exhausted": 2} and problems["users_short_of_n"] == 2
    assert problems["users_without_items"] == 0 and snapshot_defects(problems) == {}


def test_the_check_fails_only_on_real_defects() -> None:
    available = pl.Series(["a", "b", "c"])
    good = pl.DataFrame({"user_id": ["u", "u", "v"], "item_id": ["a", "b", "c"], "rank": [1, 2, 1], "source": ["model"] * 3})
    assert snapshot_defects(snapshot_problems(good, ["u", "v"], pairs(("u", "c")), available, 2)) == {}
    assert set(DEFECTS) <= set(snapshot_problems(good, ["u"], pairs(), available, 2))
    cases = {
        "lists_with_duplicates": good.with_columns(item_id=pl.Series(["a", "a", "c"])),
        "bought_items_recommended": good,
        "unavailable_items_recommended": good.with_columns(item_id=pl.Series(["a", "sold", "c"])),
        "users_without_items": good.filter(pl.col("user_id") == "u"),
    }
    for defect, snapshot in cases.items():
        bought = pairs(("u", "b")) if defect == "bought_items_recommended" else pairs()
        found = snapshot_defects(snapshot_problems(snapshot, ["u", "v"], bought, available, 2))
        assert list(found) == [defect], (defect, found)


def test_an_unknown_champion_is_named() -> None:
    with pytest.raises(ValueError, match="champion 'nope'"):
        recommendation_snapshot("nope", {"m": FixedLists({})}, None, ["u"], {}, pairs(), pl.Series(["a"]), N=1, n_candidates=1)


# ------------------------------------------------------------------------------- a simulated shop
@pytest.fixture(scope="module")
def fashion():
    """A second-hand shop: sold listings are inactive and must never be served."""
    return simulate(SimulatorConfig(preset="fashion", n_users=400, n_items=300, n_days=20, seed=7))


@pytest.fixture(scope="module")
def served(fashion):
    m = fashion
    known = features_at(m.events, m.events, m.items, m.users, None, DEFAULT_INTERACTION_PARAMS)
    ease = fit_generator(EASERecommender(), known["interactions"], known["item_features"])
    history = user_history_snapshot(m.events)
    available = m.items.filter(pl.col("is_active"))["item_id"]
    users = active_users(m.events)
    fallback = popular_items_snapshot(m.events, m.items, m.users, N=10)
    snapshot = recommendation_snapshot("ease", {"ease": ease}, None, users, known, history, available, N=10,
                                       n_candidates=50, fallback=fallback, users=m.users)
    return m, ease, users, history, available, snapshot


def test_every_user_with_history_gets_n_fresh_sellable_items(served):
    m, _, users, history, available, snapshot = served
    assert set(snapshot["user_id"]) == set(history["user_id"]) == set(users)
    bought = m.events.filter(pl.col("event_type") == "purchase").select("user_id", "item_id").unique()
    problems = snapshot_problems(snapshot, users, bought, available, 10, history=history)
    assert snapshot_defects(problems) == {} and problems["users_short_of_n"] == 0
    assert snapshot.join(history, on=["user_id", "item_id"], how="semi").height == 0
    assert snapshot.group_by("user_id").agg(pl.col("rank").sort()).filter(pl.col("rank") != list(range(1, 11))).height == 0


def test_a_snapshot_with_a_sold_listing_is_caught(served):
    m, _, users, history, available, snapshot = served
    sold = m.items.filter(~pl.col("is_active"))["item_id"][0]
    broken = snapshot.with_columns(pl.when(pl.col("rank") == 1).then(pl.lit(sold)).otherwise(pl.col("item_id")).alias("item_id"))
    problems = snapshot_problems(broken, users, pairs(), available, 10, history=history)
    assert list(snapshot_defects(problems)) == ["unavailable_items_recommended"]
    assert problems["unavailable_items_recommended"] == len(users)


def test_similar_items_exclude_the_item_and_unsellable_items(served):
    m, ease, _, _, available, _ = served
    some = [i for i in m.items["item_id"].to_list() if ease.is_known_item([i])[0]][:20]
    snapshot = similar_items_snapshot(ease, some, available, N=5)
    assert snapshot.filter(pl.col("item_id") == pl.col("similar_item_id")).height == 0
    assert snapshot["similar_item_id"].is_in(available.implode()).all()
    assert snapshot.group_by("item_id").len()["len"].max() <= 5


def test_popular_fallbacks_exist_overall_per_category_and_per_segment(fashion):
    m = fashion
    snapshot = popular_items_snapshot(m.events, m.items, m.users, N=5, spare=0)
    overall = snapshot.filter(pl.col("segment").is_null() & pl.col("category").is_null())
    assert overall["rank"].to_list() == [1, 2, 3, 4, 5]
    assert set(snapshot.drop_nulls("category")["category"]) <= set(m.items["category"])
    assert snapshot.drop_nulls("segment")["segment"].n_unique() >= 2
    sold = m.items.filter(~pl.col("is_active"))["item_id"]
    assert not snapshot["item_id"].is_in(sold.implode()).any()
    # Per level, scores never increase down the list.
    assert overall["score"].to_list() == sorted(overall["score"].to_list(), reverse=True)
    # By default each list holds spare items beyond N, for the API to drop what a user already has.
    deep = popular_items_snapshot(m.events, m.items, m.users, N=5)
    deep_overall = deep.filter(pl.col("segment").is_null() & pl.col("category").is_null())
    assert deep_overall["rank"].to_list() == list(range(1, 5 + OVERFETCH + 1))
    assert deep_overall.head(5).equals(overall)
    with pytest.raises(ValueError, match="spare"):
        popular_items_snapshot(m.events, m.items, m.users, N=5, spare=-1)


def test_a_generator_champion_serves_a_user_it_does_not_know(served):
    m, _, _, history, available, _ = served
    known = features_at(m.events, m.events, m.items, m.users, None, DEFAULT_INTERACTION_PARAMS)
    pop = fit_generator(PopularityRecommender(), known["interactions"], known["item_features"])
    snapshot = recommendation_snapshot("popularity", {"popularity": pop}, None, ["nobody"], known, history, available, N=3, n_candidates=10)
    assert snapshot["rank"].to_list() == [1, 2, 3] and snapshot["source"].to_list() == ["model"] * 3
