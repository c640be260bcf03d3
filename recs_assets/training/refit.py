"""The champion refitted on everything up to now, so what users are served has learned from the newest days.

Grading needs models that never saw the test window; serving wants the opposite. Once the gate has
chosen a champion, its whole pipeline is fitted again, with the same hyper-parameters, on all data:
- every candidate generator on today's feature tables (no cut-off);
- the re-ranker, when it is the champion, on lessons made exactly as for the graded one, only from
  the full history: its label windows are the newest days, not the days before the test window.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from recs_assets.training.ranking_set import build_ranking_set, fit_generator
from recs_assets.training.splits import NO_PROTOCOL, PROTOCOLS, Split

RANKER = "ranker"


@dataclass
class Refit:
    """The refitted pipeline: generators by name, the ranker (None unless it is the champion) and how its lessons went."""

    champion: str
    generators: dict[str, Any]
    ranker: Any | None
    lessons: dict[str, Any] = field(default_factory=dict)
    note: str = ""


def everything_as_training(events: pl.DataFrame, protocol: str) -> Split:
    """All events as the training part of a split shaped like `protocol` (nothing held out).

    Lessons for the re-ranker are drawn from a split's training part with windows shaped like its
    protocol, so handing the full history here gives the newest windows.
    """
    if protocol not in (*PROTOCOLS, NO_PROTOCOL):
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {', '.join((*PROTOCOLS, NO_PROTOCOL))}")
    return Split(train=events, test=events.clear(), protocol=protocol, cutoff=None,
                 reason="refit on all data for serving: nothing is held out")


def refit_champion(
    champion: str,
    make_generators: Callable[[], Mapping[str, Any]],
    make_ranker: Callable[[], Any],
    known_now: Mapping[str, pl.DataFrame],
    events: pl.DataFrame,
    items: pl.DataFrame,
    users: pl.DataFrame,
    *,
    protocol: str,
    weights: Mapping[str, Any],
    n_candidates: int,
    lesson_options: Mapping[str, Any] | None = None,
    only: list[str] | None = None,
) -> Refit:
    """Fit the champion's pipeline again on all data: every generator, and the ranker when it is the champion.

    `known_now`: the feature tables with no cut-off (interactions, item_features, session_sequences for the
    session models). With the ranker as champion every generator is refitted (it takes them all as
    inputs); otherwise `only` names the generators that serve (see `evaluation.leaderboard.served_generators`),
    default all. When the champion is the ranker but the full history
    holds no lesson with a positive, the ranker cannot be refitted: the result says so and the ranker is
    None, so the caller can fall back to the evaluated one rather than serve nothing.
    """
    generators = make_generators()
    if champion != RANKER and champion not in generators:
        raise ValueError(f"champion {champion!r} is neither {RANKER!r} nor one of the generators {sorted(generators)}")
    if only is not None:
        if champion == RANKER and set(only) != set(generators):
            raise ValueError("the re-ranker's pipeline needs every generator refitted, not only " + ", ".join(only))
        if champion != RANKER and champion not in only:
            raise ValueError(f"`only` must include the champion {champion!r}")
    def refit_generators() -> dict[str, Any]:
        return {
            name: fit_generator(model, known_now["interactions"], known_now["item_features"],
                                sequences=known_now.get("session_sequences"))
            for name, model in generators.items()
            if only is None or name in only
        }

    if champion != RANKER:
        return Refit(champion, refit_generators(), None, note=f"{champion} refitted on all data; no re-ranker in the champion's pipeline")
    # The ranker first, the generators it will serve over after: the lessons' own generator fits are
    # released window by window, and never held beside the refitted ones (at 10M events, GBs).
    try:
        lessons, described = build_ranking_set(
            everything_as_training(events, protocol), events, items, users, make_generators,
            weights=weights, n_candidates=n_candidates, **dict(lesson_options or {}),
        )
    except ValueError as error:
        return Refit(champion, refit_generators(), None, note=f"the re-ranker could not be refitted: {error}")
    if lessons.height == 0 or int(lessons["label"].sum()) == 0:
        return Refit(champion, refit_generators(), None, described, "the re-ranker could not be refitted: no lesson has a positive")
    ranker = make_ranker().fit(lessons)
    del lessons
    return Refit(champion, refit_generators(), ranker, described, "generators and re-ranker refitted on all data")
