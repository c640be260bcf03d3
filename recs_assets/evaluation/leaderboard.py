"""Which model wins, and whether it may replace the one in production: plain rules a reviewer can check.

Every number on the leaderboard is an average over test users, so it comes with its 95% confidence
interval and with paired tests against the popularity baseline and the current champion
(`uncertainty_table`). The gate (`decide_champion`) then asks two questions of a challenger: is its
gain at least the configured margin, and is that gain significant? Only a yes to both promotes it;
ties and noise keep the champion. `baseline_verdict` is the check that the serving model beats
popularity, which never passes on 0.0 against 0.0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from recs_assets.arguments import fraction, is_number
from recs_assets.evaluation.uncertainty import (
    DEFAULT_CONFIDENCE,
    DEFAULT_MIN_DIFFERING,
    DEFAULT_RESAMPLES,
    bootstrap_ci,
    paired_test_tables,
)

__all__ = [
    "ChampionDecision",
    "baseline_verdict",
    "decide_champion",
    "decide_champion_from_board",
    "leaderboard",
    "uncertainty_table",
    "with_relative_lifts",
    "with_session_columns",
]

BASELINE = "popularity"


def leaderboard(metrics: pl.DataFrame, primary: str) -> pl.DataFrame:
    """Models best first by the primary metric (ties: the simpler, earlier-listed model first)."""
    if primary not in metrics.columns:
        raise ValueError(f"primary metric {primary!r} not among {', '.join(metrics.columns)}")
    return (
        metrics.with_row_index("_order")
        .sort([primary, "_order"], descending=[True, False], nulls_last=True)
        .drop("_order")
        .with_row_index("position", offset=1)
    )


def with_relative_lifts(board: pl.DataFrame, primary: str, baseline: str = BASELINE) -> pl.DataFrame:
    """The leaderboard with relative lifts on the primary metric, beside the absolute differences.

    `lift_vs_{baseline}` is score / baseline's score - 1 (0.106 reads "+10.6%"); `lift_vs_champion`
    likewise against the model named in `compared_champion`. The paired tests' mean per-user
    differences (`gain_vs_*`, in the metric's own units) are kept as `abs_gain_vs_*`, so that no one
    reads 0.004 as 0.4%. A lift is null for the reference itself, and where the reference scores 0 or is
    not on the board.
    """
    if primary not in board.columns:
        raise ValueError(f"primary metric {primary!r} not among {', '.join(board.columns)}")
    scores = dict(zip(board["model"].to_list(), board[primary].to_list()))

    def relative(reference: pl.Expr) -> pl.Expr:
        return pl.when(reference > 0).then(pl.col(primary) / reference - 1)

    base = scores.get(baseline)
    lifts = [pl.when(pl.col("model") != baseline).then(relative(pl.lit(base, dtype=pl.Float64))).alias(f"lift_vs_{baseline}")]
    if "compared_champion" in board.columns:
        champion = pl.col("compared_champion").replace_strict(scores, default=None, return_dtype=pl.Float64)
        lifts.append(pl.when(pl.col("model") != pl.col("compared_champion")).then(relative(champion)).alias("lift_vs_champion"))
    renamed = {c: f"abs_{c}" for c in board.columns if c.startswith("gain_vs_")}
    return board.with_columns(lifts).rename(renamed)


def with_session_columns(board: pl.DataFrame, session_metrics: pl.DataFrame) -> pl.DataFrame:
    """The leaderboard with each model's session-protocol figures beside its user-protocol ones.

    Adds `session_<metric>` (and its `_ci_low` / `_ci_high`) for every HR / MRR column of
    `session_metrics`' "all" segment, matched by model; null for a model the session protocol does not
    grade. The order, and so the champion gate, still follows the user protocol only.
    """
    if session_metrics.height == 0 or "model" not in session_metrics.columns:
        return board
    metrics = [c for c in session_metrics.columns if c.startswith(("hr@", "mrr@"))]
    columns = session_metrics.filter(pl.col("segment") == "all").select(
        "model", *[pl.col(c).alias(f"session_{c}") for c in metrics]
    )
    return board.join(columns, on="model", how="left", maintain_order="left")


def uncertainty_table(
    per_user: Mapping[str, pl.DataFrame],
    primary: str,
    *,
    baseline: str = BASELINE,
    champion: str | None = None,
    metrics: Sequence[str] | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    min_differing: int = DEFAULT_MIN_DIFFERING,
) -> pl.DataFrame:
    """One row per model: evaluable users, each metric's CI, and paired tests on `primary` vs baseline and champion.

    `per_user` maps model -> its `metrics.per_user_metrics` table (user_id + metric columns), all on the
    same truth. Columns: model, evaluable_users (users with a value of `primary`), for each metric m
    `m_ci_low` and `m_ci_high`; then `gain_vs_{baseline}` and `p_vs_{baseline}` (mean per-user
    difference on `primary` and its two-sided paired p-value), `compared_champion` (the champion
    tested against, or null) with `gain_vs_champion` and `p_vs_champion`. A model is not compared
    with itself (null). Join it onto the leaderboard's rows by model.
    """
    if not per_user:
        raise ValueError("no per-user metric tables to summarise")
    first = next(iter(per_user.values()))
    names = [c for c in first.columns if c != "user_id" and first.schema[c].is_numeric()] if metrics is None else list(metrics)
    if primary not in names:
        raise ValueError(f"primary metric {primary!r} not among {', '.join(names)}")
    options = {"confidence": confidence, "n_resamples": n_resamples, "seed": seed}
    rows = []
    for model, table in per_user.items():
        missing = [c for c in ("user_id", *names) if c not in table.columns]
        if missing:
            raise ValueError(f"the per-user table of {model!r} is missing column(s) {missing}")
        row: dict[str, object] = {"model": model}
        for name in names:
            ci = bootstrap_ci(table.get_column(name), **options)
            if name == primary:
                row["evaluable_users"] = ci.n_users
            row[f"{name}_ci_low"], row[f"{name}_ci_high"] = ci.low, ci.high
        for against, prefix in ((baseline, baseline), (champion, "champion")):
            gain = p = None
            if against is not None and against in per_user and against != model:
                test = paired_test_tables(table, per_user[against], primary, min_differing=min_differing, **options)
                gain, p = _or_none(test.mean_diff), _or_none(test.p_value)
            if prefix == "champion":
                row["compared_champion"] = champion if champion in per_user else None
            row[f"gain_vs_{prefix}"], row[f"p_vs_{prefix}"] = gain, p
        rows.append(row)
    schema = {"model": pl.String, "evaluable_users": pl.Int64}
    for name in names:
        schema[f"{name}_ci_low"] = schema[f"{name}_ci_high"] = pl.Float64
    schema.update({f"gain_vs_{baseline}": pl.Float64, f"p_vs_{baseline}": pl.Float64, "compared_champion": pl.String,
                   "gain_vs_champion": pl.Float64, "p_vs_champion": pl.Float64})
    return pl.DataFrame(rows, schema=schema)


@dataclass(frozen=True)
class ChampionDecision:
    champion: str  # the model kind serving after this decision
    promoted: bool  # True when the champion changed hands (or the first champion was named)
    reason: str


def decide_champion(
    scores: Mapping[str, float],
    current: str | None,
    *,
    margin: float,
    p_vs_baseline: Mapping[str, float | None] | None = None,
    p_vs_current: Mapping[str, float | None] | None = None,
    alpha: float = 0.05,
    baseline: str = BASELINE,
) -> ChampionDecision:
    """The gate: a challenger replaces the champion only if it wins by `margin` AND the win is significant.

    - `scores`: every model's primary metric on this run's held-out data (like for like).
    - `p_vs_baseline[m]`: paired p-value of m against `baseline`; `p_vs_current[m]`: of m against
      `current` (the `uncertainty_table` columns). A missing p-value counts as "not significant".
    - Only the baseline itself and models that beat it significantly may become champion.
    - With no champion (or one no longer evaluated), the best such model wins; if no model beats the
      baseline significantly, the baseline serves, and the reason says so.
    - Against a champion, the best eligible challenger must have relative gain >= margin over it and a
      significant paired test (p < alpha). Ties (0.0 against 0.0 included) and noise keep the champion.
    """
    if not scores:
        raise ValueError("no model scores to decide on")
    if not is_number(margin) or not margin >= 0:
        raise ValueError(f"margin must be a relative gain >= 0 (0.02 for 2%); got {margin!r}")
    fraction(alpha, "alpha (the significance level)")
    p_base = dict(p_vs_baseline or {})
    p_cur = dict(p_vs_current or {})
    order = list(scores)

    def score(name: str) -> float:
        value = scores[name]
        return -math.inf if value is None or math.isnan(value) else float(value)

    def rank_key(name: str) -> tuple[float, int]:
        return score(name), -order.index(name)

    def significant(p: float | None) -> bool:
        return p is not None and not math.isnan(p) and p < alpha

    has_baseline = baseline in scores
    beats_baseline = [
        name for name in order
        if name != baseline and (not has_baseline or (score(name) > score(baseline) and significant(p_base.get(name))))
    ]
    eligible = ([baseline] if has_baseline else []) + beats_baseline

    if current is None or current not in scores:
        why = "no champion yet" if current is None else f"the champion {current!r} is no longer evaluated"
        if beats_baseline:
            best = max(beats_baseline, key=rank_key)
            versus = f", beating {baseline} significantly (p{_p(p_base.get(best))})" if has_baseline else ""
            return ChampionDecision(best, True, f"{why}: {best} leads with {_f(scores[best])}{versus}")
        if has_baseline:
            return ChampionDecision(
                baseline, True, f"{why}: {_nobody_beats(scores, baseline, p_base, rank_key)}, so {baseline} serves"
            )
        best = max(order, key=rank_key)
        return ChampionDecision(best, True, f"{why}: {best} leads with {_f(scores[best])}")

    challengers = [name for name in eligible if name != current]
    if not challengers:
        return ChampionDecision(current, False, f"{current} keeps serving: no other model beats {baseline} significantly")
    best = max(challengers, key=rank_key)
    held, challenger = score(current), score(best)
    if challenger <= held:
        return ChampionDecision(
            current, False,
            f"{current} is still the best ({_f(scores[current])}; best challenger {best} {_f(scores[best])}); retrained on fresh data",
        )
    needed = held * (1 + margin)
    if challenger < needed:
        return ChampionDecision(
            current, False,
            f"{best} ({_f(scores[best])}) does not beat champion {current} ({_f(scores[current])}) by {margin:.0%} "
            f"(needs {needed:.4f})",
        )
    p = p_cur.get(best)
    if not significant(p):
        return ChampionDecision(
            current, False,
            f"{best} ({_f(scores[best])}) beats champion {current} ({_f(scores[current])}) by {_gain(challenger, held)}, "
            f"but the gain is not significant (p{_p(p)}, needs < {alpha:g}): noise keeps the champion",
        )
    return ChampionDecision(
        best, True,
        f"{best} ({_f(scores[best])}) beats champion {current} ({_f(scores[current])}) by {_gain(challenger, held)} "
        f"(margin {margin:.0%}), significantly (p{_p(p)})",
    )


def decide_champion_from_board(
    board: pl.DataFrame,
    primary: str,
    current: str | None,
    *,
    margin: float,
    alpha: float = 0.05,
    baseline: str = BASELINE,
) -> ChampionDecision:
    """`decide_champion` on a leaderboard that carries `uncertainty_table`'s columns (model, primary, p-values).

    The board's p_vs_champion must have been computed against `current`: a board tested against
    another champion is an error, since its p-values would answer a different question.
    """
    needed = ["model", primary, f"p_vs_{baseline}", "p_vs_champion", "compared_champion"]
    missing = [c for c in needed if c not in board.columns]
    if missing:
        raise ValueError(f"the leaderboard is missing column(s) {missing}; join uncertainty_table onto it first")
    compared = {c for c in board.get_column("compared_champion").to_list() if c is not None}
    if current is not None and current in board.get_column("model").to_list() and compared != {current}:
        raise ValueError(
            f"the leaderboard's paired tests were run against champion {sorted(compared) or None}, not {current!r}; "
            "rebuild it with uncertainty_table(..., champion=current)"
        )
    models = board.get_column("model").to_list()
    return decide_champion(
        dict(zip(models, board.get_column(primary).to_list())),
        current,
        margin=margin,
        p_vs_baseline=dict(zip(models, board.get_column(f"p_vs_{baseline}").to_list())),
        p_vs_current=dict(zip(models, board.get_column("p_vs_champion").to_list())),
        alpha=alpha,
        baseline=baseline,
    )


def baseline_verdict(
    champion: str,
    score: float | None,
    baseline_score: float | None,
    *,
    p_value: float | None = None,
    metric: str = "ndcg@10",
    alpha: float = 0.05,
    baseline: str = BASELINE,
) -> tuple[bool, str]:
    """(passed, description) for the check "the serving model beats the popularity baseline".

    Passes when the champion's score is above the baseline's with a significant paired test
    (`p_value` of champion vs baseline < alpha), or when the champion is the baseline itself with a
    score above 0 (then the description says plainly that no model beats popularity). Fails on 0.0
    against 0.0 (the test set cannot tell models apart), on a missing or NaN score, and on a gain that
    is absent or not significant.
    """
    if baseline_score is None or _nan(baseline_score):
        return False, f"{baseline} was not graded ({metric} missing), so nothing shows that {champion} beats it"
    if score is None or _nan(score):
        return False, f"{champion} has no {metric} (no evaluable users), so it cannot be compared with {baseline}"
    numbers = f"{champion} {metric} {score:.4f} vs {baseline} {baseline_score:.4f}"
    if score == 0 and baseline_score == 0:
        return False, f"{numbers}: both are 0, so this test set cannot tell any model from {baseline}"
    if champion == baseline:
        return True, f"no model beats {baseline}: {baseline} serves ({metric} {baseline_score:.4f})"
    if score <= baseline_score:
        return False, f"{numbers}: {champion} does not beat {baseline}"
    if p_value is None or _nan(p_value):
        return False, f"{numbers}: no paired test, so the gain ({_gain(score, baseline_score)}) is not shown significant"
    if p_value >= alpha:
        return False, f"{numbers} ({_gain(score, baseline_score)}, p{_p(p_value)}): the gain is not significant"
    return True, f"{numbers} ({_gain(score, baseline_score)}, p{_p(p_value)}): beats {baseline} significantly"


# --- helpers --------------------------------------------------------------------------------------


def _nobody_beats(scores: Mapping[str, float], baseline: str, p_base: Mapping[str, float | None], rank_key) -> str:
    others = [n for n in scores if n != baseline]
    if not others:
        return f"{baseline} is the only model"
    best = max(others, key=rank_key)
    return (
        f"no model beats {baseline} significantly (best: {best} {_f(scores[best])} vs {baseline} "
        f"{_f(scores[baseline])}, p{_p(p_base.get(best))})"
    )


def _f(value: float | None) -> str:
    return "n/a" if value is None or _nan(value) else f"{value:.4f}"


def _p(p: float | None) -> str:
    """"=0.041", or "<0.001" at the bootstrap's resolution (1 / (resamples + 1) with the default 1,000)."""
    if p is None or _nan(p):
        return "=n/a"
    return "<0.001" if p < 0.001 else f"={p:.3g}"


def _gain(new: float, old: float) -> str:
    return "+inf%" if old == 0 else f"{(new - old) / old:+.1%}"


def _nan(value: float) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _or_none(value: float) -> float | None:
    return None if math.isnan(value) else value


RANKER = "ranker"


def similarity_source(ranked_models: list[str]) -> str:
    """The model behind "more like this": the best on the leaderboard that is neither the ranker (it has no
    item-to-item view) nor popularity (it has no notion of similar); popularity when nothing else is graded."""
    return next((m for m in ranked_models if m not in (RANKER, BASELINE)), BASELINE)


def served_generators(champion: str, generators: list[str], ranked_models: list[str], session_model: str | None) -> list[str]:
    """The generators whose refits users are served, in registry order (so only those are refitted).

    The ranker's pipeline needs all of them; a single-model champion needs itself, plus the model behind
    "more like this" and the session model the API scores live visits with.
    """
    if champion == RANKER:
        return list(generators)
    needed = {champion, similarity_source(ranked_models)} | ({session_model} if session_model else set())
    unknown = needed - set(generators)
    if unknown:
        raise ValueError(f"served model(s) {sorted(unknown)} are not generators; known: {', '.join(generators)}")
    return [g for g in generators if g in needed]
