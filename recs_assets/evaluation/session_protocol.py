"""The session protocol: can a model guess the next item of a visit from what the visit looked at so far?

The user protocol grades lists for shoppers with a history. This one grades what a shopper who just
arrived sees, with or without an account: for every visit that starts after the split's cut-off, each
next item is predicted from the visit's items before it (the prefix), as in the session-based
literature (Ludewig & Jannach 2018; Hidasi et al. 2016), reported as HR@20 (the next item is in the
top 20) and MRR@20 (1 / its rank, 0 beyond 20), averaged over all predictions, by segment:
"anonymous" (visits without an account, user_id starting with contract.ANONYMOUS_USER_PREFIX) and
"known" (visits with an account).

Details that decide the numbers:
- A visit is its items in order of first look (`SEQUENCE_TYPES` events); an item looked at again
  (the view, then the cart, then the purchase of one listing) is not a new "next item", so lists
  never hold the prefix's items and targets are always new to the visit. Visits with fewer than
  two distinct items predict nothing. A visit already under way at the cut-off is left out (its
  start is in training).
- Every model answers from the prefix alone, also for known shoppers, so the two segments measure the
  same task. Baselines: popularity (the most popular available items) and item-kNN on the prefix's
  last item (its neighbours, then popular items when it has fewer than 20).
- A target never seen in training is a miss for every model (`new_item_targets` says how many).
- Intervals: 95% percentile bootstrap over visits (the unit that varies; several predictions of one
  visit are not independent), with `uncertainty.bootstrap_ci` on per-visit values scaled so that
  their mean is the per-prediction average; the paired test against popularity likewise
  (`uncertainty.paired_test`), on MRR@20.
- Protocols without one global cut-off (leave-last-out, random, none), or events without session
  ids, have no held-out visits: `held_out_sessions` raises `NoSessions` with the reason.

`fit_blend_weight` fits the weight the API uses to merge the session model's list with a known
shopper's precomputed list (reciprocal-rank fusion, `fuse`), on the known shoppers' held-out visits.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from recs_assets.arguments import positive_int
from recs_assets.contract import ANONYMOUS_USER_PREFIX, SEQUENCE_TYPES
from recs_assets.evaluation.uncertainty import DEFAULT_RESAMPLES, bootstrap_ci, paired_test
from recs_assets.training.splits import GLOBAL_CUT_PROTOCOLS, Split

SESSION_K = 20
SEGMENTS = ("all", "anonymous", "known")
BASELINE = "popularity"
LAST_ITEM_KNN = "item_knn"
# A user id no model can know: its `recommend` row is the popularity fallback.
_NOBODY = "\x00no-such-user"
BLEND_GRID = tuple(round(w, 2) for w in np.linspace(0.0, 1.0, 11))

CASE_SCHEMA = {"session_id": pl.String, "user_id": pl.String, "segment": pl.String, "step": pl.Int32,
               "prefix": pl.List(pl.String), "target": pl.String}


class NoSessions(ValueError):
    """The split holds no held-out visit to grade (the message says why)."""


def session_capable(model: Any) -> bool:
    """True for models that predict from a sequence of items (`recommend_for_sequence`)."""
    return callable(getattr(model, "recommend_for_sequence", None))


def held_out_sessions(split: Split, *, max_sessions: int | None = 5_000, seed: int = 42) -> pl.DataFrame:
    """One row per prediction to make: session_id, user_id, segment, step (1 = predicting the 2nd item),
    prefix (the items before, oldest first), target. A seeded sample of `max_sessions` visits at most."""
    if split.protocol not in GLOBAL_CUT_PROTOCOLS or split.cutoff is None:
        raise NoSessions(
            f"the {split.protocol} split has no single cut-off, so no visit is held out whole "
            "(the session protocol needs a temporal split)"
        )
    test = split.test
    if "session_id" not in test.columns or test["session_id"].null_count() == test.height:
        raise NoSessions("the events carry no session ids, so there are no visits to replay")
    started = split.train.filter(pl.col("session_id").is_not_null())["session_id"].unique()
    visits = (
        test.filter(
            pl.col("item_id").is_not_null() & pl.col("session_id").is_not_null()
            & pl.col("event_type").is_in(SEQUENCE_TYPES) & ~pl.col("session_id").is_in(started.implode())
        )
        .sort("event_at", "event_id")
        .unique(["session_id", "item_id"], keep="first", maintain_order=True)
        .group_by("session_id", maintain_order=True)
        .agg(pl.col("user_id").first(), pl.col("item_id").alias("items"))
        .filter(pl.col("items").list.len() >= 2)
        .sort("session_id")
    )
    if visits.height == 0:
        raise NoSessions("no visit after the cut-off looks at two or more distinct items")
    if max_sessions is not None and visits.height > positive_int(max_sessions, "max_sessions"):
        rng = np.random.default_rng(seed)
        visits = visits[np.sort(rng.choice(visits.height, size=max_sessions, replace=False)).tolist()]
    rows = []
    for session_id, user_id, items in visits.iter_rows():
        segment = "anonymous" if user_id is not None and user_id.startswith(ANONYMOUS_USER_PREFIX) else "known"
        for step in range(1, len(items)):
            rows.append((session_id, user_id, segment, step, items[:step], items[step]))
    return pl.DataFrame(rows, schema=CASE_SCHEMA, orient="row")


def session_lists(model: Any, prefixes: Sequence[Sequence[str]], k: int, *, kind: str = "sequence",
                  popular: Sequence[str] | None = None) -> list[list[str]]:
    """Each prefix's top-k next items (never the prefix's own items).

    kind "sequence": the model's `recommend_for_sequence`; "popularity": the model's list for a user it
    does not know; "last_item": the model's `similar_items` of the prefix's last item, then `popular`.
    """
    if kind == "sequence":
        ids, _ = model.recommend_for_sequence(prefixes, k, exclude_seen=True)
        return [[i for i in row if i is not None] for row in ids.tolist()]
    longest = max((len(p) for p in prefixes), default=0)
    if kind == "popularity":
        top = [i for i in model.recommend([_NOBODY], k + longest)[0][0].tolist() if i is not None]
        return [_fill([], top, set(p), k) for p in prefixes]
    if kind == "last_item":
        last = sorted({p[-1] for p in prefixes})
        similar, _ = model.similar_items(last, k + longest)
        neighbours = dict(zip(last, similar.tolist(), strict=True))
        return [_fill([i for i in neighbours[p[-1]] if i is not None], popular or [], set(p), k) for p in prefixes]
    raise ValueError(f"kind must be 'sequence', 'popularity' or 'last_item', got {kind!r}")


def _fill(first: Sequence[str], then: Sequence[str], skip: set[str], k: int) -> list[str]:
    out: list[str] = []
    for item in (*first, *then):
        if len(out) == k:
            break
        if item not in skip and item not in out:
            out.append(item)
    return out


def ranks_of_targets(lists: Sequence[Sequence[str]], targets: Sequence[str]) -> np.ndarray:
    """1-based rank of each target in its list, 0 when absent."""
    return np.fromiter(((lst.index(t) + 1) if t in lst else 0 for lst, t in zip(lists, targets, strict=True)),
                       dtype=np.int64, count=len(targets))


def model_session_lists(models: Mapping[str, Any], cases: pl.DataFrame, k: int = SESSION_K) -> dict[str, list[list[str]]]:
    """Every graded model's lists for the cases: each session-capable model, popularity, item-kNN's last item."""
    prefixes = cases["prefix"].to_list()
    out: dict[str, list[list[str]]] = {}
    popular: list[str] = []
    if BASELINE in models:
        out[BASELINE] = session_lists(models[BASELINE], prefixes, k, kind="popularity")
        longest = max((len(p) for p in prefixes), default=0)
        popular = [i for i in models[BASELINE].recommend([_NOBODY], k + longest)[0][0].tolist() if i is not None]
    if LAST_ITEM_KNN in models:
        out[LAST_ITEM_KNN] = session_lists(models[LAST_ITEM_KNN], prefixes, k, kind="last_item", popular=popular)
    for name, model in models.items():
        if name not in out and session_capable(model):
            out[name] = session_lists(model, prefixes, k, kind="sequence")
    return out


def grade_sessions(
    lists: Mapping[str, Sequence[Sequence[str]]],
    cases: pl.DataFrame,
    *,
    k: int = SESSION_K,
    known_items: set[str] | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> pl.DataFrame:
    """HR@k and MRR@k per model and segment, with bootstrap intervals and the paired test against popularity.

    `known_items`: the items models trained on (for the count of targets no model could know).
    """
    hr, mrr = f"hr@{k}", f"mrr@{k}"
    targets = cases["target"].to_list()
    per_model = {}
    for name, model_lists in lists.items():
        ranks = ranks_of_targets([list(x)[:k] for x in model_lists], targets)
        per_model[name] = cases.select("session_id", "segment").with_columns(
            pl.Series(hr, (ranks > 0).astype(np.float64)),
            pl.Series(mrr, np.where(ranks > 0, 1.0 / np.maximum(ranks, 1), 0.0)),
        )
    new_targets = cases.with_columns(
        new=~pl.col("target").is_in(pl.Series(sorted(known_items or set()), dtype=pl.String).implode())
        if known_items is not None else pl.lit(None, dtype=pl.Boolean)
    )
    rows = []
    for segment in SEGMENTS:
        chosen = cases if segment == "all" else cases.filter(pl.col("segment") == segment)
        if chosen.height == 0:
            continue
        sessions = chosen["session_id"].n_unique()
        scale = sessions / chosen.height  # per-visit sums x scale average to the per-prediction mean
        new = new_targets if segment == "all" else new_targets.filter(pl.col("segment") == segment)
        per_visit = {}
        for name, table in per_model.items():
            part = table if segment == "all" else table.filter(pl.col("segment") == segment)
            per_visit[name] = part.group_by("session_id").agg(pl.col(hr).sum() * scale, pl.col(mrr).sum() * scale).sort("session_id")
        for name, visits in per_visit.items():
            row: dict[str, Any] = {"model": name, "segment": segment, "sessions": sessions, "predictions": chosen.height}
            for metric in (hr, mrr):
                ci = bootstrap_ci(visits[metric], n_resamples=n_resamples, seed=seed)
                row[metric], row[f"{metric}_ci_low"], row[f"{metric}_ci_high"] = ci.mean, ci.low, ci.high
            gain = p = None
            if BASELINE in per_visit and name != BASELINE:
                test = paired_test(visits[mrr], per_visit[BASELINE][mrr], n_resamples=n_resamples, seed=seed)
                gain, p = test.mean_diff, test.p_value
            row[f"gain_vs_{BASELINE}"], row[f"p_vs_{BASELINE}"] = gain, p
            row["new_item_targets"] = int(new["new"].sum()) if known_items is not None else None
            rows.append(row)
    schema = {"model": pl.String, "segment": pl.String, "sessions": pl.Int64, "predictions": pl.Int64}
    for metric in (hr, mrr):
        schema.update({metric: pl.Float64, f"{metric}_ci_low": pl.Float64, f"{metric}_ci_high": pl.Float64})
    schema.update({f"gain_vs_{BASELINE}": pl.Float64, f"p_vs_{BASELINE}": pl.Float64, "new_item_targets": pl.Int64})
    return pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)


def evaluate_sessions(
    models: Mapping[str, Any],
    split: Split,
    *,
    k: int = SESSION_K,
    max_sessions: int | None = 5_000,
    seed: int = 42,
    n_resamples: int = DEFAULT_RESAMPLES,
) -> pl.DataFrame:
    """The session protocol end to end: held-out visits, every model's lists, the graded table.

    Columns: model, segment, sessions, predictions, hr@k, mrr@k with their intervals, gain and p-value of
    MRR@k against popularity, new_item_targets, then protocol ("session") and cutoff. Raises `NoSessions`.
    """
    cases = held_out_sessions(split, max_sessions=max_sessions, seed=seed)
    lists = model_session_lists(models, cases, k)
    if not lists:
        raise NoSessions("no model to grade: neither popularity, item-kNN nor a session model was given")
    known_items: set[str] = set()
    for model in models.values():
        item_ids = getattr(model, "item_ids", None)
        if item_ids is not None:
            known_items.update(str(i) for i in item_ids)
    table = grade_sessions(lists, cases, k=k, known_items=known_items or None, n_resamples=n_resamples, seed=seed)
    return table.with_columns(
        pl.lit("session").alias("protocol"), pl.lit(split.cutoff.isoformat() if split.cutoff else None, dtype=pl.String).alias("cutoff")
    )


def best_session_model(session_metrics: pl.DataFrame, metric: str = f"mrr@{SESSION_K}") -> str | None:
    """The session-capable model (not a baseline) with the best `metric` over all visits, or None."""
    if session_metrics.height == 0 or metric not in session_metrics.columns:
        return None
    board = session_metrics.filter((pl.col("segment") == "all") & ~pl.col("model").is_in([BASELINE, LAST_ITEM_KNN]))
    if board.height == 0:
        return None
    return board.sort([metric, "model"], descending=[True, False], nulls_last=True)["model"][0]


# --- blending a known shopper's precomputed list with the session model --------------------------


def fuse(session_items: Sequence[str], snapshot_items: Sequence[str], weight: float, skip: Container[str], n: int) -> list[tuple[str, float]]:
    """Reciprocal-rank fusion: score(i) = weight / rank in the session list + (1 - weight) / rank in the
    precomputed list (a list that lacks i adds 0). Best first, ties to the session list's order, then the
    precomputed list's; items in `skip` never listed. Ranks, not scores, so models of any scale mix."""
    scores: dict[str, float] = {}
    for rank, item in enumerate(session_items, start=1):
        scores[item] = scores.get(item, 0.0) + weight / rank
    for rank, item in enumerate(snapshot_items, start=1):
        scores[item] = scores.get(item, 0.0) + (1.0 - weight) / rank
    order = {item: i for i, item in enumerate(dict.fromkeys((*session_items, *snapshot_items)))}
    ranked = sorted((i for i in scores if i not in skip), key=lambda i: (-scores[i], order[i]))
    return [(i, scores[i]) for i in ranked[:n]]


def fit_blend_weight(
    session_model: Any,
    cases: pl.DataFrame,
    snapshot_lists: pl.DataFrame,
    *,
    k: int = SESSION_K,
    depth: int = 50,
    grid: Sequence[float] = BLEND_GRID,
) -> tuple[float, dict[float, float]]:
    """The fusion weight with the best MRR@k on known shoppers' held-out visits, and MRR@k for every weight.

    `snapshot_lists` (user_id, item_id, rank): each shopper's precomputed list as served (the champion's
    held-out list). Only cases of shoppers with such a list count. Ties go to the smaller weight (the
    precomputed list changes least). No such case: weight 1.0 (the session model alone) and an empty curve.
    """
    lists = (
        snapshot_lists.sort("user_id", "rank").group_by("user_id", maintain_order=True).agg(pl.col("item_id"))
    )
    own = dict(zip(lists["user_id"].to_list(), lists["item_id"].to_list(), strict=True))
    chosen = cases.filter(pl.col("user_id").is_in(pl.Series(list(own), dtype=pl.String).implode()))
    if chosen.height == 0:
        return 1.0, {}
    prefixes = chosen["prefix"].to_list()
    session = session_lists(session_model, prefixes, depth, kind="sequence")
    targets = chosen["target"].to_list()
    users = chosen["user_id"].to_list()
    curve = {}
    for weight in grid:
        fused = [[i for i, _ in fuse(s, own[u], weight, set(p), k)] for s, u, p in zip(session, users, prefixes, strict=True)]
        ranks = ranks_of_targets(fused, targets)
        curve[float(weight)] = float(np.where(ranks > 0, 1.0 / np.maximum(ranks, 1), 0.0).mean())
    best = max(curve, key=lambda w: (curve[w], -w))
    return best, curve
