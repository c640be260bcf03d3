"""The re-ranker's lessons: candidates proposed from the past, labelled by what users did next.

The training part of the split is cut once more: generators are fitted on everything before an inner
cut-off, propose candidates, and each candidate is labelled by whether the user interacted with it in
the label window that follows. Features are measured at the inner cut-off, so no lesson shows the
ranker anything it would not know at serving time.

    [ generators fit + features ][ label window ][ test window ]
                                T1              T2
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from recs_assets.contract import EVENTS_SCHEMA
from recs_assets.features.sql_runner import columns_named, run_sql
from recs_assets.models.lists import candidates_from_lists, recommend_frame
from recs_assets.models.ranker import attach_labels, ranking_features
from recs_assets.training.splits import GLOBAL_CUT_PROTOCOLS, Split, make_split


def fit_generator(model, interactions: pl.DataFrame, item_features: pl.DataFrame, *, listed_until: datetime | None = None,
                  sequences: pl.DataFrame | None = None):
    """Fit a candidate generator on interactions; it may propose the items on sale while its lists are used.

    That is the items available at the cut-off plus the listings that appear after it (`is_listed_later`,
    only those listed by `listed_until` when given): nothing is known of them but their attributes, so
    only a content model can score them, and no interaction after the cut-off is read. A model whose
    `fit` takes `item_attributes` gets the catalogue's attributes (the `item_features` rows); one whose
    `fit` takes `sequences` (the session models) gets the visits in order (`session_sequences` at the cut-off).
    """
    shown = pl.col("is_available")
    if "is_listed_later" in item_features.columns:
        later = pl.col("is_listed_later")
        if listed_until is not None:
            later = later & (pl.col("listed_at") <= listed_until)
        shown = shown | later.fill_null(False)
    available = item_features.filter(shown)["item_id"].to_list()
    categories = item_features.select("item_id", "category").drop_nulls()
    extra = optional_fit_arguments(model, item_attributes=item_features, sequences=sequences)
    return model.fit(interactions, available_item_ids=available, item_categories=categories, **extra)


def optional_fit_arguments(model, **optional: Any) -> dict[str, Any]:
    """The optional inputs that this model's `fit` declares: a model that does not use one never receives it."""
    accepted = inspect.signature(model.fit).parameters
    return {name: value for name, value in optional.items() if name in accepted and value is not None}


def features_at(events: pl.DataFrame, all_events: pl.DataFrame, items: pl.DataFrame, users: pl.DataFrame,
                cutoff: datetime | None, weights: Mapping[str, Any]) -> dict[str, pl.DataFrame]:
    """User, item and user x category features as known at `cutoff`, from `events` (the visible past).

    Item availability reads `all_events` so that a listing sold after the cut-off still counts as for
    sale at it. Without a cut-off (per-user protocols: random, leave-last-out) the SQL would count every
    event in `all_events`, held-out ones included, in the item's demand; availability is then today's
    state and needs no later event, so the item features read only the visible past.
    """
    params = {"cutoff": cutoff, **weights}
    item_events = all_events if cutoff is not None else events
    return {
        "interactions": run_sql("user_item_interactions", {"events": events}, params),
        "user_features": run_sql("user_features", {"events": events, "items": items, "users": users}, params),
        "item_features": run_sql("item_features", {"events": item_events, "items": items}, params),
        "user_category_affinity": run_sql("user_category_affinity", {"events": events, "items": items}, params),
        "session_sequences": run_sql("session_sequences", {"events": events}, params),
    }


def availability_event_columns() -> list[str]:
    """The event columns `features_at` reads of `all_events`: those the item features' SQL names.

    All a caller needs to load of every event for the lessons or the training features (the visible past
    comes from the split): at 10M events, every column of every event beside the split was the training
    group's memory peak. Found in the SQL itself, so a column the query starts using is loaded with it.
    """
    return columns_named("item_features", list(EVENTS_SCHEMA))


def sample_users(truth: pl.DataFrame, max_users: int | None, seed: int) -> list[str]:
    """The users to build lessons for (all with a label, or a seeded sample when there are too many)."""
    users = truth["user_id"].unique().sort().to_list()
    if max_users is None or len(users) <= max_users:
        return users
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(np.asarray(users, dtype=object), size=max_users, replace=False).tolist())


def fitting_sample(known: Mapping[str, pl.DataFrame], chosen: list[str], max_fit_users: int | None,
                   seed: int) -> Mapping[str, pl.DataFrame]:
    """`known` with its interactions and visits cut to the lesson users plus a seeded sample of the others,
    `max_fit_users` users in all (unchanged when there are no more users than that, or no cap).

    Why: each label window refits every generator, and at 100k users those fits are most of the lessons'
    cost. The lessons teach the ranker how the generators' proposals relate to what a user does next; the
    generators need every lesson user's history for that, and enough other users to learn the items, not
    all of them. Features stay measured on everyone, as at serving time.
    """
    if max_fit_users is None:
        return known
    if not isinstance(max_fit_users, int) or isinstance(max_fit_users, bool) or max_fit_users < 1:
        raise ValueError(f"max_fit_users must be a positive integer or None, got {max_fit_users!r}")
    everyone = known["interactions"]["user_id"].unique().sort()
    if everyone.len() <= max_fit_users:
        return known
    lesson = set(chosen)
    others = [u for u in everyone.to_list() if u not in lesson]
    room = max(0, max_fit_users - len(lesson))
    picked = np.random.default_rng(seed).choice(np.asarray(others, dtype=object), size=min(room, len(others)), replace=False)
    keep = pl.Series("user_id", [*lesson, *picked.tolist()], dtype=everyone.dtype).implode()
    sampled = dict(known)
    for name in ("interactions", "session_sequences"):
        if name in sampled and "user_id" in sampled[name].columns:
            sampled[name] = sampled[name].filter(pl.col("user_id").is_in(keep))
    return sampled


def _label_windows(split: Split, label_days: float, label_fraction: float, n_windows: int, seed: int) -> list[Split]:
    """The inner splits lessons are drawn from, shaped like the evaluation protocol.

    After a global cut (temporal protocols): the last `n_windows` label windows of `label_days` before
    the test window, each ending where the next starts. When the training part is too short for that
    window (sparse or short data), the last share `label_fraction` of its interactions by time. After a
    per-user protocol (random, leave-last-out) or when time cannot be cut: seeded per-user hold-outs.
    A window without a single new interaction teaches nothing and is left out.
    """
    windows = []
    train = split.train
    for window in range(n_windows):
        inner = None
        if split.protocol in GLOBAL_CUT_PROTOCOLS:
            for protocol, options in (("temporal", {"test_days": label_days}), ("temporal_quantile", {"quantile": 1 - label_fraction})):
                try:
                    inner = make_split(train, protocol, **options)
                except ValueError:
                    continue
                if inner.truth.height:
                    break
                inner = None
        if inner is None:
            try:
                inner = make_split(split.train, "random", test_fraction=label_fraction, seed=seed + window)
            except ValueError:
                break
        if inner.truth.height == 0:
            continue
        windows.append(inner)
        if split.protocol in GLOBAL_CUT_PROTOCOLS and inner.protocol != "random":
            train = inner.train  # the next window ends where this one starts
    return windows


def build_ranking_set(
    split: Split,
    all_events: pl.DataFrame,
    items: pl.DataFrame,
    users: pl.DataFrame,
    make_generators: Callable[[], Mapping[str, Any]],
    *,
    weights: Mapping[str, Any],
    label_days: float = 7.0,
    label_fraction: float = 0.25,
    n_windows: int = 2,
    n_candidates: int = 50,
    max_users: int | None = 5_000,
    max_fit_users: int | None = None,
    seed: int = 42,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Labelled candidate pairs for training the re-ranker, and a description for metadata.

    Lessons come from `n_windows` label windows (each with generators refitted on what came before
    it): more lessons, and lessons from more than one moment, make a ranker that generalises.
    `max_users` users get lessons per window; with `max_fit_users`, each window's generators are fitted
    on those users plus a seeded sample of the others, that many in all (see `fitting_sample`).
    """
    frames, described = [], {"windows": []}
    windows = _label_windows(split, label_days, label_fraction, n_windows, seed)
    if not windows:
        raise ValueError(
            "the training part holds no label window with a new interaction, so the re-ranker has nothing to "
            "learn from: use more data, or fewer or shorter label windows (ranking_training_set config)"
        )
    for number, inner in enumerate(windows):
        # The last window's fits and features go before this window's are made, not after.
        generators = known = fit_on = lists = features = None
        truth = inner.truth
        known = features_at(inner.train, all_events, items, users, inner.cutoff, weights)
        chosen = sample_users(truth, max_users, seed + number)
        fit_on = fitting_sample(known, chosen, max_fit_users, seed + number)
        generators = {
            name: fit_generator(model, fit_on["interactions"], known["item_features"], listed_until=_window_end(inner),
                                sequences=fit_on["session_sequences"])
            for name, model in make_generators().items()
        }
        lists = {name: recommend_frame(model, chosen, n_candidates) for name, model in generators.items()}
        features = candidate_features(lists, known)
        labelled = attach_labels(features, truth).with_columns(pl.lit(number, dtype=pl.Int32).alias("window"))
        positives = int(labelled["label"].sum())
        described["windows"].append(
            {
                "label_protocol": inner.protocol,
                "label_cutoff": inner.cutoff.isoformat() if inner.cutoff else None,
                "users": len(chosen),
                "candidate_pairs": labelled.height,
                "positive_pairs": positives,
                # How many of the window's interactions the candidates cover: the ranker's ceiling.
                "candidate_recall": round(positives / truth.filter(pl.col("user_id").is_in(chosen)).height, 4),
            }
        )
        frames.append(labelled)
    frame = pl.concat(frames, how="diagonal_relaxed")
    described.update({"protocol": split.protocol, "candidate_pairs": frame.height, "positive_pairs": int(frame["label"].sum())})
    return frame, described


def _window_end(inner: Split) -> datetime | None:
    """The last moment of an inner split's label window: listings that appear after it teach nothing there."""
    if inner.cutoff is None or "event_at" not in inner.test.columns or inner.test.height == 0:
        return None
    return inner.test["event_at"].max()


def candidate_features(lists: Mapping[str, pl.DataFrame], known: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """The generators' proposals joined into candidate pairs, with user and item features at one cut-off."""
    return ranking_features(
        candidates_from_lists(lists), known["user_features"], known["item_features"], known["user_category_affinity"]
    )


# Users ranked at a time. The candidate table is users x generators x candidates rows with a few dozen
# features (50M rows for 100k users and ten generators): built whole, it alone outgrows 8 GB.
RANK_BLOCK_USERS = 10_000


def _user_blocks(user_ids: list[str], block_users: int) -> list[list[str]]:
    if not isinstance(block_users, int) or isinstance(block_users, bool) or block_users < 1:
        raise ValueError(f"block_users must be a positive integer, got {block_users!r}")
    return [user_ids[i : i + block_users] for i in range(0, len(user_ids), block_users)]


def rank_lists(ranker, lists: Mapping[str, pl.DataFrame], known: Mapping[str, pl.DataFrame], N: int,
               *, block_users: int = RANK_BLOCK_USERS) -> pl.DataFrame:
    """The ranker's top-N over the generators' lists (user_id, item_id, rank, score), `block_users` users at a time.

    A user's ranking reads only that user's candidates, so the blocks' results are exactly the whole's.
    """
    users = sorted(set().union(*(frame["user_id"].unique().to_list() for frame in lists.values()))) if lists else []
    blocks = _user_blocks(users, block_users)
    if len(blocks) <= 1:
        return ranker.rank(candidate_features(lists, known), N)
    block_of = pl.DataFrame({"user_id": users, "_block": np.repeat(np.arange(len(blocks)), [len(b) for b in blocks])},
                            schema_overrides={"user_id": lists[next(iter(lists))].schema["user_id"]})
    parts = {name: frame.join(block_of, on="user_id").partition_by("_block", as_dict=True, include_key=False)
             for name, frame in lists.items()}
    ranked = []
    for b in range(len(blocks)):
        block_lists = {name: by_block.get((b,), lists[name].clear()) for name, by_block in parts.items()}
        ranked.append(ranker.rank(candidate_features(block_lists, known), N))
    return pl.concat(ranked, how="vertical")


def rank_for_users(
    ranker,
    generators: Mapping[str, Any],
    user_ids: list[str],
    known: Mapping[str, pl.DataFrame],
    *,
    n_candidates: int,
    N: int,
    block_users: int = RANK_BLOCK_USERS,
) -> pl.DataFrame:
    """The ranker's top-N for these users: candidates from the generators, features at the same cut-off.

    Candidates are proposed and ranked `block_users` users at a time, so memory stays flat however many users.
    """
    ranked = []
    for block in _user_blocks(list(user_ids), block_users) or [[]]:
        lists = {name: recommend_frame(model, block, n_candidates) for name, model in generators.items()}
        ranked.append(rank_lists(ranker, lists, known, N, block_users=max(block_users, len(block) or 1)))
    return pl.concat(ranked, how="vertical").sort("user_id", "rank") if len(ranked) > 1 else ranked[0]
