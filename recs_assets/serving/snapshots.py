"""What the app serves, computed ahead of time: top-N per user, "more like this" per item, popular items
per category and segment for users the models do not know, and each user's history (never served again).

Pure functions; the `serving` assets call them with the champion pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from recs_assets.contract import INTERACTION_TYPES
from recs_assets.models.lists import recommend_frame
from recs_assets.training.ranking_set import rank_for_users

# Asked for beyond N so that dropping what the user already has or what sold still leaves N.
OVERFETCH = 50
# Users still short after a round are asked again with a 4x deeper list, at most this many rounds in all.
FETCH_ROUNDS = 3
FETCH_GROWTH = 4

SNAPSHOT_SCHEMA = {"user_id": pl.String, "item_id": pl.String, "rank": pl.Int32, "score": pl.Float64, "source": pl.String}
# What `snapshot_problems` treats as a real defect (the others are reported, never failed on).
DEFECTS = ("users_without_items", "lists_with_duplicates", "bought_items_recommended", "unavailable_items_recommended")


# The event columns `active_users` reads: all a step that only needs the active users loads of the events.
ACTIVE_USER_COLUMNS = ("user_id", "event_type", "event_at")


def active_users(events: pl.DataFrame, days: float | None = None) -> list[str]:
    """Users with an interaction, sorted; only those active in the last `days` before the latest event
    when `days` is given (None, the default: every user with history)."""
    acted = events.filter(pl.col("event_type").is_in(INTERACTION_TYPES) & pl.col("user_id").is_not_null())
    if days is not None and acted["event_at"].null_count() < acted.height:
        latest = acted["event_at"].max()
        acted = acted.filter(pl.col("event_at") >= latest - pl.duration(days=days))
    return acted["user_id"].unique().sort().to_list()


def user_history_snapshot(events: pl.DataFrame) -> pl.DataFrame:
    """Every item each user has interacted with (viewed, carted, bought, rated, played): never shown to them again.

    Columns: user_id, item_id (one row per pair, sorted).
    """
    missing = [c for c in ("user_id", "item_id", "event_type") if c not in events.columns]
    if missing:
        raise ValueError(f"user_history_snapshot needs events with columns {missing}")
    return (
        events.filter(
            pl.col("event_type").is_in(INTERACTION_TYPES) & pl.col("user_id").is_not_null() & pl.col("item_id").is_not_null()
        )
        .select(pl.col("user_id").cast(pl.String), pl.col("item_id").cast(pl.String))
        .unique()
        .sort("user_id", "item_id")
    )


def _model_lists(champion, generators, ranker, user_ids, known, n_candidates: int, depth: int) -> pl.DataFrame:
    if champion == "ranker":
        ranked = rank_for_users(ranker, generators, user_ids, known, n_candidates=n_candidates, N=depth)
    elif champion in generators:
        ranked = recommend_frame(generators[champion], user_ids, depth)
    else:
        raise ValueError(f"champion {champion!r} is neither 'ranker' nor one of the generators {sorted(generators)}")
    return ranked.select(pl.col("user_id").cast(pl.String), pl.col("item_id").cast(pl.String), "rank",
                         pl.col("score").cast(pl.Float64))


def _servable(candidates: pl.DataFrame, exclude: pl.DataFrame, available: pl.Series) -> pl.DataFrame:
    return candidates.join(exclude, on=["user_id", "item_id"], how="anti").filter(
        pl.col("item_id").is_in(available.implode())
    )


def _from_models(champion, generators, ranker, user_ids, known, exclude, available, N: int, n_candidates: int) -> pl.DataFrame:
    """Each user's model list after the exclusions, deep enough for N where the models can give N."""
    depth, pending, kept = N + OVERFETCH, list(user_ids), []
    for round_ in range(FETCH_ROUNDS):
        if not pending:
            break
        raw = _model_lists(champion, generators, ranker, pending, known, n_candidates, depth)
        clean = _servable(raw, exclude, available)
        raw_n = raw.group_by("user_id").len("raw")
        clean_n = clean.group_by("user_id").len("clean")
        status = (
            pl.DataFrame({"user_id": pending}, schema={"user_id": pl.String})
            .join(raw_n, on="user_id", how="left")
            .join(clean_n, on="user_id", how="left")
            .fill_null(0)
        )
        # Done: enough, or the model gave fewer than asked (it has nothing more), or the last round.
        done = status.filter(
            (pl.col("clean") >= N) | (pl.col("raw") < depth) | pl.lit(round_ == FETCH_ROUNDS - 1)
        )["user_id"]
        kept.append(clean.filter(pl.col("user_id").is_in(done.implode())))
        pending = status.filter(~pl.col("user_id").is_in(done.implode()))["user_id"].to_list()
        depth *= FETCH_GROWTH
    if not kept:
        return pl.DataFrame(schema={"user_id": pl.String, "item_id": pl.String, "rank": pl.Int32, "score": pl.Float64})
    return pl.concat(kept).sort("user_id", "rank").group_by("user_id", maintain_order=True).head(N)


def _top_up(short: pl.DataFrame, fallback: pl.DataFrame, users: pl.DataFrame | None, taken: pl.DataFrame,
            exclude: pl.DataFrame, available: pl.Series) -> pl.DataFrame:
    """For users short of N (user_id, missing): popular items of their segment, then overall, not yet taken."""
    segments = (
        users.select(pl.col("user_id").cast(pl.String), pl.col("segment").cast(pl.String)).unique("user_id")
        if users is not None and "segment" in users.columns
        else pl.DataFrame(schema={"user_id": pl.String, "segment": pl.String})
    )
    short = short.join(segments, on="user_id", how="left")
    lists = fallback.filter(pl.col("category").is_null()).select(
        pl.col("segment").cast(pl.String), pl.col("item_id").cast(pl.String), "rank", pl.col("score").cast(pl.Float64)
    )
    by_segment = short.join(lists.filter(pl.col("segment").is_not_null()), on="segment").with_columns(level=pl.lit(0))
    overall = short.join(lists.filter(pl.col("segment").is_null()).drop("segment"), how="cross").with_columns(level=pl.lit(1))
    pool = pl.concat([by_segment.drop("segment"), overall.drop("segment")], how="diagonal")
    pool = _servable(pool, exclude, available).join(taken, on=["user_id", "item_id"], how="anti")
    return (
        pool.sort("user_id", "level", "rank")
        .unique(["user_id", "item_id"], keep="first", maintain_order=True)
        .filter(pl.int_range(pl.len()).over("user_id") < pl.col("missing"))
        .select("user_id", "item_id", "score")
    )


def recommendation_snapshot(
    champion: str,
    generators: Mapping[str, Any],
    ranker: Any,
    user_ids: list[str],
    known: Mapping[str, pl.DataFrame],
    exclude: pl.DataFrame,
    available: pl.Series,
    *,
    N: int,
    n_candidates: int,
    fallback: pl.DataFrame | None = None,
    users: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Top-N per user from the champion (the re-ranker over the generators, or one generator), topped up
    from the popular fallback when the models run out of items the user may get.

    `exclude` (user_id, item_id): everything the user has interacted with, up to now; `available`: items
    that may be shown now. Users the models cannot fill after the exclusions are asked again with deeper
    lists, then topped up from `fallback` (`popular_items_snapshot`: their `users` segment's list, then the
    overall one). A list is shorter than N only when neither has enough fresh sellable items.
    Columns: user_id, item_id, rank, score, source ("model" or "fallback").
    """
    if not isinstance(N, int) or isinstance(N, bool) or N < 1:
        raise ValueError(f"N must be a positive integer, got {N!r}")
    exclude = exclude.select(pl.col("user_id").cast(pl.String), pl.col("item_id").cast(pl.String))
    from_models = _from_models(champion, generators, ranker, user_ids, known, exclude, available, N, n_candidates)
    parts = [from_models.select("user_id", "item_id", "score", source=pl.lit("model"))]
    if fallback is not None and user_ids:
        short = (
            pl.DataFrame({"user_id": list(user_ids)}, schema={"user_id": pl.String})
            .join(from_models.group_by("user_id").len("have"), on="user_id", how="left")
            .select("user_id", missing=N - pl.col("have").fill_null(0))
            .filter(pl.col("missing") > 0)
        )
        if short.height:
            topped = _top_up(short, fallback, users, from_models.select("user_id", "item_id"), exclude, available)
            parts.append(topped.with_columns(source=pl.lit("fallback")))
    # Model items first (by rank), then fallback items (in fallback order): the concat keeps that order.
    return (
        pl.concat(parts)
        .with_columns(pl.int_range(1, pl.len() + 1).over("user_id").cast(pl.Int32).alias("rank"))
        .sort("user_id", "rank")
        .select(list(SNAPSHOT_SCHEMA))
        .cast(SNAPSHOT_SCHEMA)
    )


def similar_items_snapshot(model: Any, item_ids: list[str], available: pl.Series, *, N: int) -> pl.DataFrame:
    """"More like this": for each item, the N most similar items that can be sold now."""
    similar, scores = model.similar_items(item_ids, N + OVERFETCH)
    n = similar.shape[1]
    frame = pl.DataFrame(
        {
            # Plain lists: polars reads a numpy object array that starts with many Nones as Object.
            "item_id": np.repeat(np.asarray(item_ids, dtype=object), n).tolist(),
            "similar_item_id": similar.reshape(-1).tolist(),
            "rank": np.tile(np.arange(1, n + 1, dtype=np.int32), len(item_ids)),
            "score": scores.reshape(-1).astype(np.float64),
        },
        schema={"item_id": pl.String, "similar_item_id": pl.String, "rank": pl.Int32, "score": pl.Float64},
    ).filter(pl.col("similar_item_id").is_not_null() & pl.col("similar_item_id").is_in(available.implode()))
    return frame.with_columns(pl.int_range(1, pl.len() + 1).over("item_id").cast(pl.Int32).alias("rank")).filter(
        pl.col("rank") <= N
    )


def popular_items_snapshot(
    events: pl.DataFrame,
    items: pl.DataFrame,
    users: pl.DataFrame,
    *,
    N: int,
    days: float | None = 30.0,
    spare: int = OVERFETCH,
) -> pl.DataFrame:
    """The cold-start fallback: the most popular available items overall, per category, per user
    segment, and per segment x category (distinct users interacting in the last `days`).

    Each list holds N + `spare` items, so that the API (and the snapshot's top-up) can drop what a
    user already has and still serve N. Columns: segment (null = any), category (null = all), item_id,
    rank, score (distinct users).
    """
    if not isinstance(spare, int) or isinstance(spare, bool) or spare < 0:
        raise ValueError(f"spare must be a whole number >= 0, got {spare!r}")
    depth = N + spare
    acted = events.filter(pl.col("event_type").is_in(INTERACTION_TYPES) & pl.col("item_id").is_not_null())
    if days is not None and acted["event_at"].null_count() < acted.height:
        acted = acted.filter(pl.col("event_at") >= acted["event_at"].max() - pl.duration(days=days))
    sellable = items.filter(pl.col("is_active").fill_null(True)).select("item_id", "category")
    pairs = (
        acted.select("user_id", "item_id")
        .unique()
        .join(sellable, on="item_id")
        .join(users.select("user_id", "segment"), on="user_id", how="left")
    )
    levels = []
    for by in ([], ["category"], ["segment"], ["segment", "category"]):
        counted = pairs.group_by([*by, "item_id"]).agg(pl.len().cast(pl.Float64).alias("score"))
        ranked = counted.sort([*by, "score", "item_id"], descending=[False] * len(by) + [True, False]).with_columns(
            (pl.int_range(1, pl.len() + 1).over(by) if by else pl.int_range(1, pl.len() + 1)).cast(pl.Int32).alias("rank")
        )
        missing = [c for c in ("segment", "category") if c not in by]
        levels.append(
            ranked.filter(pl.col("rank") <= depth).with_columns(*[pl.lit(None, dtype=pl.String).alias(c) for c in missing])
        )
    return pl.concat([lvl.select("segment", "category", "item_id", "rank", "score") for lvl in levels])


def snapshot_problems(
    snapshot: pl.DataFrame,
    expected_users: list[str],
    bought: pl.DataFrame,
    available: pl.Series,
    N: int,
    history: pl.DataFrame | None = None,
) -> dict[str, Any]:
    """What a snapshot check looks for. Defects (see `DEFECTS`): a user with nothing to be shown,
    duplicates in a list, items the user bought, items that cannot be sold. Reported, not defects:
    lists shorter than N with the reason, how many items came from the models and the fallback, and
    the catalogue coverage.

    With `history` (user_id, item_id: everything each user interacted with), a short list is explained:
    "catalogue_exhausted" when fewer than N sellable items are left that the user has not interacted with
    (an empty list is then not a defect either), else "candidates_exhausted" (models and fallback ran out).
    """
    per_user = snapshot.group_by("user_id").agg(pl.len().alias("n"), pl.col("item_id").n_unique().alias("distinct"))
    counts = (
        pl.DataFrame({"user_id": list(expected_users)}, schema={"user_id": pl.String})
        .join(per_user, on="user_id", how="left")
        .with_columns(pl.col("n").fill_null(0))
    )
    short = counts.filter(pl.col("n") < N)
    if history is not None:
        sellable = pl.DataFrame({"item_id": available.cast(pl.String).unique()})
        used = (
            history.select(pl.col("user_id").cast(pl.String), pl.col("item_id").cast(pl.String))
            .unique()
            .join(sellable, on="item_id", how="semi")
            .group_by("user_id")
            .len("used")
        )
        short = short.join(used, on="user_id", how="left").with_columns(
            fresh=sellable.height - pl.col("used").fill_null(0)
        ).with_columns(
            reason=pl.when(pl.col("fresh") < N).then(pl.lit("catalogue_exhausted")).otherwise(pl.lit("candidates_exhausted"))
        )
    else:
        short = short.with_columns(fresh=pl.lit(None, dtype=pl.Int64), reason=pl.lit("unknown"))
    empty = short.filter((pl.col("n") == 0) & ~((pl.col("reason") == "catalogue_exhausted") & (pl.col("fresh") == 0)))
    sources = snapshot["source"].value_counts() if "source" in snapshot.columns else None
    from_source = dict(zip(sources["source"].to_list(), sources["count"].to_list())) if sources is not None else {}
    topped_up = snapshot.filter(pl.col("source") == "fallback")["user_id"].n_unique() if "source" in snapshot.columns else 0
    return {
        "users_without_items": empty.height,
        "sample_users_without_items": empty["user_id"].head(5).to_list(),
        "lists_with_duplicates": per_user.filter(pl.col("distinct") < pl.col("n")).height,
        "bought_items_recommended": snapshot.join(bought, on=["user_id", "item_id"], how="semi").height,
        "unavailable_items_recommended": snapshot.filter(~pl.col("item_id").is_in(available.implode())).height,
        "users_short_of_n": short.height,
        "sample_short_users": short["user_id"].head(5).to_list(),
        "short_list_reasons": dict(short.group_by("reason").len().sort("reason").iter_rows()),
        "rows_from_model": int(from_source.get("model", 0)),
        "rows_from_fallback": int(from_source.get("fallback", 0)),
        "users_topped_up": topped_up,
        "coverage": snapshot["item_id"].n_unique() / max(len(available), 1),
    }


def snapshot_defects(problems: Mapping[str, Any]) -> dict[str, Any]:
    """The defects among `snapshot_problems`' findings (empty when the snapshot may be served)."""
    return {k: problems[k] for k in DEFECTS if problems[k]}
