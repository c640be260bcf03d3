"""Which model wins, and whether it may replace the one in production: plain rules a reviewer can check."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


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


@dataclass(frozen=True)
class ChampionDecision:
    champion: str  # the model kind serving after this decision
    promoted: bool  # True when the champion changed hands
    reason: str


def decide_champion(
    scores: dict[str, float],
    current: str | None,
    *,
    margin: float,
    baseline: str = "popularity",
) -> ChampionDecision:
    """The gate: the best challenger replaces the current champion only if it beats it by `margin`.

    Scores are the primary metric of every model on the same held-out data (this run's split), so the
    comparison is like for like. Only models that beat the `baseline` (or the baseline itself) may be
    chosen. With no champion yet, the best eligible model becomes champion; a champion that is no
    longer evaluated (a removed model) is replaced by the best eligible one.
    """
    if not scores:
        raise ValueError("no model scores to decide on")
    floor = scores.get(baseline)
    eligible = {n: s for n, s in scores.items() if floor is None or n == baseline or s > floor}
    best = max(eligible, key=lambda name: (eligible[name], -list(scores).index(name)))
    if current is None or current not in scores:
        why = "no champion yet" if current is None else f"the champion {current!r} is no longer evaluated"
        return ChampionDecision(best, True, f"{why}: {best} leads with {scores[best]:.4f}")
    if best == current:
        return ChampionDecision(current, False, f"{current} is still the best ({scores[current]:.4f}); retrained on fresh data")
    needed = scores[current] * (1 + margin)
    if scores[best] >= needed:
        return ChampionDecision(
            best, True, f"{best} ({scores[best]:.4f}) beats champion {current} ({scores[current]:.4f}) by more than {margin:.0%}"
        )
    return ChampionDecision(
        current,
        False,
        f"{best} ({scores[best]:.4f}) does not beat champion {current} ({scores[current]:.4f}) by {margin:.0%} (needs {needed:.4f})",
    )
