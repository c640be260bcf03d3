"""Does the offline leaderboard order the models as the simulated A/B test does? Kendall's tau and the pairs that disagree."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations

import polars as pl
from scipy import stats


def order_agreement(offline: Mapping[str, float], online: Mapping[str, float]) -> tuple[float, float, list[tuple[str, str]]]:
    """Kendall's tau between two scorings of the same models (higher = better in both), its p-value and the discordant pairs.

    A discordant pair (a, b) is one where offline puts `a` above `b` and online puts `b` above `a`.
    """
    models = [m for m in offline if m in online]
    if len(models) < 2:
        raise ValueError(f"order agreement needs at least two models scored both offline and online; got {models}")
    off = [float(offline[m]) for m in models]
    on = [float(online[m]) for m in models]
    tau, p = stats.kendalltau(off, on)
    discordant = []
    for a, b in combinations(models, 2):
        if (offline[a] - offline[b]) * (online[a] - online[b]) < 0:
            discordant.append((a, b) if offline[a] > offline[b] else (b, a))
    return float(tau), float(p), discordant


def agreement_table(offline: Mapping[str, float], online: Mapping[str, float]) -> pl.DataFrame:
    """One row per model: its offline and online score and rank."""
    models = [m for m in offline if m in online]
    frame = pl.DataFrame({"model": models, "offline": [float(offline[m]) for m in models],
                          "online": [float(online[m]) for m in models]})
    return frame.with_columns(
        offline_rank=pl.col("offline").rank("ordinal", descending=True).cast(pl.Int32),
        online_rank=pl.col("online").rank("ordinal", descending=True).cast(pl.Int32),
    ).sort("offline_rank")
