"""How good is each way of ordering search results? Graded on held-out searches against what shoppers did.

Each held-out search is re-ordered by every ranker over the items it actually showed (their outcomes
are known), and graded:

- `ndcg@k` with the graded outcome as gain (purchase 3, add to cart 2, view 1, shown only 0);
- `mrr`: 1 / the slot of the first item the shopper engaged with (viewed or better).

Searches where the shopper engaged with nothing are left out (every order scores the same). Rankers:
`bm25` (the lexical score alone; its many ties, e.g. every item of a searched category, are broken in
a seeded random order, as a plain search engine would), `bm25_popularity` (BM25 plus
`popularity_weight` x ln(1 + buyers)), `personalised` (the search ranker) and `logged` (the order the
shop's logging policy actually used, for reference). Means come with per-search bootstrap intervals
(evaluation.uncertainty), per segment (anonymous, new: no history before the cut-off, regular) and
overall, and each ranker is compared with `bm25` by a paired bootstrap on the same searches.

Where a simulator provides the true chance that a shopper buys an item once they look at it,
`simulated_ndcg@k` grades each order by that truth instead of one noisy draw of behaviour.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import numpy as np
import polars as pl

from recs_assets.contract import ANONYMOUS_USER_PREFIX, METRIC_K
from recs_assets.evaluation.metrics import ndcg_at_k, reciprocal_rank
from recs_assets.evaluation.uncertainty import bootstrap_ci, paired_test
from recs_assets.search.features import SEARCH_FEATURES
from recs_assets.search.ranker import score_matrix

RANKERS: tuple[str, ...] = ("bm25", "bm25_popularity", "personalised", "logged")
BASELINE = "bm25"
ALL, ANONYMOUS, NEW, REGULAR = "all", "anonymous", "new", "regular"
SEGMENTS: tuple[str, ...] = (ALL, ANONYMOUS, NEW, REGULAR)
POPULARITY_WEIGHT = 0.5
TRUE_AFFINITY = "true_affinity"


def shopper_segments(user_ids: pl.Series, history_users: Collection[str]) -> pl.Series:
    """anonymous (a session-keyed shopper), new (no interaction before the cut-off) or regular."""
    known = pl.Series(list(history_users), dtype=pl.String)
    return pl.select(
        pl.when(user_ids.str.starts_with(ANONYMOUS_USER_PREFIX)).then(pl.lit(ANONYMOUS))
        .when(user_ids.is_in(known.implode())).then(pl.lit(REGULAR))
        .otherwise(pl.lit(NEW)).alias("segment")
    ).to_series()


def ranker_scores(lessons: pl.DataFrame, ranker=None, *, popularity_weight: float = POPULARITY_WEIGHT,
                  seed: int = 42) -> pl.DataFrame:
    """One score column per ranker (higher = earlier) beside each held-out lesson row.

    A tie-break column (seeded hash of search and item) orders equal scores the same way for every ranker.
    """
    scored = lessons.with_columns(
        pl.col("bm25").alias("score_bm25"),
        (pl.col("bm25") + popularity_weight * pl.col("item_log_users").fill_null(0.0)).alias("score_bm25_popularity"),
        (-pl.col("position").cast(pl.Float64)).alias("score_logged"),
        pl.concat_str("search_id", pl.lit("|"), "item_id").hash(seed).alias("tie_break"),
    )
    personal = (score_matrix(ranker, scored.select(SEARCH_FEATURES).to_numpy()) if ranker is not None
                else np.full(scored.height, np.nan))
    return scored.with_columns(pl.Series("score_personalised", personal, dtype=pl.Float64))


def _grade(order: list[str], gains: dict[str, float], k: int, affinity: dict[str, float] | None) -> dict[str, float]:
    relevant = [item for item, gain in gains.items() if gain > 0]
    out = {f"ndcg@{k}": ndcg_at_k(order, relevant, k, gains=gains), "mrr": reciprocal_rank(order, relevant)}
    if affinity is not None:
        out[f"simulated_ndcg@{k}"] = ndcg_at_k(order, list(affinity), k, gains=affinity)
    return out


def per_search_metrics(scored: pl.DataFrame, *, k: int = METRIC_K, rankers: tuple[str, ...] = RANKERS) -> pl.DataFrame:
    """search_id, user_id, segment, ranker and each metric, for every held-out search with an engagement."""
    engaged = scored.filter(pl.col("label").max().over("search_id") > 0)
    with_truth = TRUE_AFFINITY in engaged.columns
    rows = []
    for (search_id,), group in engaged.group_by("search_id", maintain_order=True):
        items = group["item_id"].to_list()
        gains = dict(zip(items, group["label"].cast(pl.Float64).to_list()))
        affinity = dict(zip(items, group[TRUE_AFFINITY].to_list())) if with_truth else None
        tie = group["tie_break"].to_numpy()
        head = {"search_id": search_id, "user_id": group["user_id"][0], "segment": group["segment"][0]}
        for name in rankers:
            score = group[f"score_{name}"].to_numpy()
            if np.isnan(score).all():
                continue
            order = [items[i] for i in np.lexsort((tie, -np.nan_to_num(score, nan=-np.inf)))]
            rows.append({**head, "ranker": name, **_grade(order, gains, k, affinity)})
    metrics = [f"ndcg@{k}", "mrr", *([f"simulated_ndcg@{k}"] if with_truth else [])]
    schema = {"search_id": pl.String, "user_id": pl.String, "segment": pl.String, "ranker": pl.String,
              **{m: pl.Float64 for m in metrics}}
    return pl.DataFrame(rows, schema=schema)


def evaluation_table(per_search: pl.DataFrame, *, seed: int = 42, n_resamples: int = 1000,
                     baseline: str = BASELINE) -> pl.DataFrame:
    """ranker, segment, metric, mean, ci_low, ci_high, searches, and the paired difference with `baseline` (p-value)."""
    metrics = [c for c in per_search.columns if c not in ("search_id", "user_id", "segment", "ranker")]
    rows = []
    for segment in SEGMENTS:
        part = per_search if segment == ALL else per_search.filter(pl.col("segment") == segment)
        if part.height == 0:
            continue
        wide = {name: group.sort("search_id") for (name,), group in part.group_by("ranker", maintain_order=True)}
        base = wide.get(baseline)
        for name, group in wide.items():
            for metric in metrics:
                ci = bootstrap_ci(group[metric], seed=seed, n_resamples=n_resamples)
                diff, p = np.nan, np.nan
                if base is not None and name != baseline:
                    both = group.select("search_id", metric).join(base.select("search_id", pl.col(metric).alias("_b")), on="search_id")
                    test = paired_test(both[metric], both["_b"], seed=seed, n_resamples=n_resamples)
                    diff, p = test.mean_diff, test.p_value
                rows.append({"ranker": name, "segment": segment, "metric": metric, "mean": ci.mean, "ci_low": ci.low,
                             "ci_high": ci.high, "searches": ci.n_users, "diff_vs_bm25": diff, "p_vs_bm25": p})
    schema = {"ranker": pl.String, "segment": pl.String, "metric": pl.String, "mean": pl.Float64, "ci_low": pl.Float64,
              "ci_high": pl.Float64, "searches": pl.Int64, "diff_vs_bm25": pl.Float64, "p_vs_bm25": pl.Float64}
    return pl.DataFrame(rows, schema=schema)


def evaluate_searches(
    held_out: pl.DataFrame,
    ranker,
    history_users: Collection[str],
    *,
    true_affinity: Callable[[pl.DataFrame], np.ndarray] | None = None,
    k: int = METRIC_K,
    popularity_weight: float = POPULARITY_WEIGHT,
    seed: int = 42,
    n_resamples: int = 1000,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Grade every ranker on the held-out lessons: (evaluation table, per-search metrics).

    `true_affinity`, when given, maps the lesson rows (user_id, item_id, searched_at) to the true chance
    of purchase once viewed (the simulator's hidden truth) for `simulated_ndcg@k`.
    """
    scored = ranker_scores(held_out, ranker, popularity_weight=popularity_weight, seed=seed).with_columns(
        shopper_segments(held_out["user_id"], history_users)
    )
    if true_affinity is not None and scored.height:
        scored = scored.with_columns(pl.Series(TRUE_AFFINITY, np.asarray(true_affinity(scored), dtype=np.float64)))
    per_search = per_search_metrics(scored, k=k)
    return evaluation_table(per_search, seed=seed, n_resamples=n_resamples), per_search
