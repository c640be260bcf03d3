"""The session protocol on hand-made visits with known answers, and on the simulator (slow)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from recs_assets.contract import ANONYMOUS_USER_PREFIX
from recs_assets.evaluation.session_protocol import (
    NoSessions,
    best_session_model,
    evaluate_sessions,
    fit_blend_weight,
    fuse,
    grade_sessions,
    held_out_sessions,
)
from recs_assets.training.splits import Split

CUT = dt.datetime(2026, 9, 8, tzinfo=dt.UTC)


def events(rows: list[tuple[str, str, str, str, int]]) -> pl.DataFrame:
    """(user_id, session_id, item_id, event_type, minutes after the cut-off; negative = before)."""
    return pl.DataFrame(
        {
            "event_id": [f"e{i:03d}" for i in range(len(rows))],
            "event_at": [CUT + dt.timedelta(minutes=m) for *_, m in rows],
            "user_id": [r[0] for r in rows],
            "session_id": [r[1] for r in rows],
            "item_id": [r[2] for r in rows],
            "event_type": [r[3] for r in rows],
        },
        schema_overrides={"event_at": pl.Datetime("us", "UTC")},
    )


def split_of(rows) -> Split:
    frame = events(rows)
    return Split(frame.filter(pl.col("event_at") < CUT), frame.filter(pl.col("event_at") >= CUT), "temporal", CUT)


ANON = f"{ANONYMOUS_USER_PREFIX}s2"
ROWS = [
    ("u1", "s0", "a", "view", -30), ("u1", "s0", "b", "view", -29),
    ("u1", "s0", "c", "view", 1),  # s0 started before the cut-off: left out
    ("u1", "s1", "a", "view", 10), ("u1", "s1", "a", "add_to_cart", 11), ("u1", "s1", "b", "view", 12),
    ("u1", "s1", "a", "purchase", 13), ("u1", "s1", "c", "view", 14), ("u1", "s1", "c", "impression", 15),
    (ANON, "s2", "b", "view", 20), ("x", "s2", "b", "impression", 21), (ANON, "s2", "d", "view", 22),
    ("u3", "s3", "a", "view", 30),  # one item only: nothing to predict
]


def test_held_out_visits_are_replayed_step_by_step_with_distinct_items() -> None:
    cases = held_out_sessions(split_of(ROWS))
    assert cases.select("session_id", "segment", "step", "prefix", "target").rows() == [
        ("s1", "known", 1, ["a"], "b"),
        ("s1", "known", 2, ["a", "b"], "c"),
        ("s2", "anonymous", 1, ["b"], "d"),
    ]


def test_visits_are_sampled_with_a_seed() -> None:
    rows = [(f"u{s}", f"v{s}", item, "view", s * 10 + j) for s in range(20) for j, item in enumerate("xy")]
    first = held_out_sessions(split_of(rows), max_sessions=5, seed=3)
    assert first["session_id"].n_unique() == 5
    assert first.equals(held_out_sessions(split_of(rows), max_sessions=5, seed=3))
    assert not first.equals(held_out_sessions(split_of(rows), max_sessions=5, seed=4))


@pytest.mark.parametrize(
    "split,reason",
    [
        (Split(events(ROWS), events(ROWS), "random", None), "no single cut-off"),
        (Split(events(ROWS), events(ROWS), "leave_last_out", None), "no single cut-off"),
        (split_of([(u, None, i, t, m) for u, _, i, t, m in ROWS]), "no session ids"),
        (split_of([("u", "s", "a", "view", 1), ("u", "s", "a", "purchase", 2)]), "two or more distinct items"),
    ],
)
def test_no_held_out_visits_is_a_reason_not_a_crash(split: Split, reason: str) -> None:
    with pytest.raises(NoSessions, match=reason):
        held_out_sessions(split)


def test_hit_rate_and_reciprocal_rank_by_segment_have_known_values() -> None:
    cases = held_out_sessions(split_of(ROWS))
    lists = {
        "popularity": [["x", "y"], ["x", "y"], ["x", "y"]],  # never right
        "perfect": [["b", "x"], ["x", "c"], ["d"]],  # ranks 1, 2, 1
    }
    table = grade_sessions(lists, cases, k=2, n_resamples=50)
    row = {(r["model"], r["segment"]): r for r in table.iter_rows(named=True)}
    assert row[("perfect", "all")]["hr@2"] == 1.0
    assert row[("perfect", "all")]["mrr@2"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert row[("perfect", "known")]["mrr@2"] == pytest.approx(0.75) and row[("perfect", "known")]["sessions"] == 1
    assert row[("perfect", "anonymous")]["predictions"] == 1
    assert row[("popularity", "all")]["hr@2"] == 0.0 and row[("popularity", "all")]["p_vs_popularity"] is None
    # k cuts the lists: at k=1 the second case's rank 2 is a miss
    assert grade_sessions(lists, cases, k=1, n_resamples=50).filter(
        (pl.col("model") == "perfect") & (pl.col("segment") == "all"))["hr@1"][0] == pytest.approx(2 / 3)


def test_fusion_mixes_ranks_by_the_weight_and_skips_what_the_visit_had() -> None:
    assert [i for i, _ in fuse(["s1", "s2"], ["p1", "p2"], 1.0, set(), 4)][:2] == ["s1", "s2"]
    assert [i for i, _ in fuse(["s1", "s2"], ["p1", "p2"], 0.0, set(), 2)] == ["p1", "p2"]
    # equal weight: "both" (rank 2 in both lists) ties with s1 at 0.5, and the session list's order breaks it
    fused = fuse(["s1", "both"], ["p1", "both"], 0.5, {"p1"}, 3)
    assert [i for i, _ in fused] == ["s1", "both"] and [s for _, s in fused] == pytest.approx([0.5, 0.5])
    assert [i for i, _ in fuse(["s1", "both"], ["p1", "both"], 0.6, {"p1"}, 3)] == ["s1", "both"]
    assert [i for i, _ in fuse(["s1", "s2", "s3"], ["p1", "s3"], 0.5, set(), 2)] == ["s1", "p1"]


class FixedSession:
    """A stand-in session model with a fixed answer (a test double for the fusion fit, not a model under test)."""

    def __init__(self, answer: list[str]) -> None:
        self.answer = answer

    def recommend_for_sequence(self, prefixes, N, exclude_seen=True):
        ids = np.array([[i for i in self.answer if i not in p][:N] for p in prefixes], dtype=object)
        return ids, np.ones(ids.shape)


def test_the_blend_weight_follows_which_list_holds_the_next_items() -> None:
    cases = pl.DataFrame({"session_id": ["v1", "v2"], "user_id": ["u1", "u1"], "segment": ["known"] * 2, "step": [1, 1],
                          "prefix": [["a"], ["a"]], "target": ["t1", "t2"]})
    snapshot = pl.DataFrame({"user_id": ["u1"] * 3, "item_id": ["t1", "t2", "z"], "rank": [1, 2, 3]})
    weight, curve = fit_blend_weight(FixedSession(["q", "r", "t1"]), cases, snapshot, k=20)
    assert weight < 0.5 and curve[0.0] == pytest.approx(0.75)  # the precomputed list holds both targets at 1 and 2
    weight, _ = fit_blend_weight(FixedSession(["t1", "t2"]), cases, snapshot.with_columns(item_id=pl.lit("z") + pl.col("item_id")), k=20)
    assert weight > 0.5
    assert fit_blend_weight(FixedSession(["t1"]), cases.with_columns(user_id=pl.lit("stranger")), snapshot) == (1.0, {})


def test_the_best_session_model_is_never_a_baseline() -> None:
    table = pl.DataFrame({"model": ["popularity", "session_knn", "gru4rec", "item_knn"], "segment": ["all"] * 4,
                          "mrr@20": [0.9, 0.2, 0.3, 0.8]})
    assert best_session_model(table) == "gru4rec"
    assert best_session_model(table.filter(pl.col("model") == "popularity")) is None


@pytest.mark.slow
def test_on_the_simulator_the_session_model_beats_popularity_and_item_knn_on_anonymous_visits() -> None:
    from recs_assets.features import DEFAULT_INTERACTION_PARAMS
    from recs_assets.models import MODELS
    from recs_assets.sources.simulator import SimulatorConfig, simulate
    from recs_assets.training.ranking_set import features_at, fit_generator
    from recs_assets.training.splits import make_split

    shop = simulate(SimulatorConfig(n_users=2_000, n_items=2_000, n_days=21, seed=7))
    # Half the visits made without an account, keyed by session as staging keys them.
    sessions = shop.events["session_id"].drop_nulls().unique().sort()
    anonymous = sessions.filter(pl.Series(np.random.default_rng(1).random(sessions.len()) < 0.5))
    ev = shop.events.with_columns(
        pl.when(pl.col("session_id").is_in(anonymous.implode()))
        .then(pl.lit(ANONYMOUS_USER_PREFIX) + pl.col("session_id")).otherwise(pl.col("user_id")).alias("user_id")
    )
    split = make_split(ev, "temporal", test_days=5)
    known = features_at(split.train, ev, shop.items, shop.users, split.cutoff, DEFAULT_INTERACTION_PARAMS)
    models = {
        name: fit_generator(MODELS[name](), known["interactions"], known["item_features"], sequences=known["session_sequences"])
        for name in ("popularity", "item_knn", "gru4rec")
    }
    table = evaluate_sessions(models, split, n_resamples=200).filter(pl.col("segment") == "anonymous")
    scores = dict(table.select("model", "hr@20").iter_rows())
    assert scores["gru4rec"] > max(scores["popularity"], scores["item_knn"]), scores
    gru = table.filter(pl.col("model") == "gru4rec").row(0, named=True)
    assert gru["p_vs_popularity"] < 0.05 and gru["sessions"] > 100
