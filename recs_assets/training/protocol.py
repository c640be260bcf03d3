"""Which evaluation protocol suits this data: chosen from the data, overridable, and always explained.

A leaderboard is only as good as its test set. Grading on the last 7 days is the honest default (it
is how a model is used: learn from the past, predict the future), but on a dataset whose last week
holds a handful of shoppers every model scores about 0 and the numbers mean nothing. So, for
`requested="auto"`, the first protocol in this order whose test side holds enough *evaluable users*
wins:

1. `temporal`: one global cut, the last `test_days` days test.
2. `temporal_quantile`: the same global cut, widened to a quantile of interaction time (0.8: the
   last 20% of interactions test). It comes before leave-last-out because it keeps one cut-off for
   everyone: no model trains on anyone's future, and features "as known at the cut-off" mean the same
   thing for every user (the re-ranker's label windows rely on that).
3. `leave_last_out`: each user's last interaction tests. Every active user can be graded, but their
   test moments differ, so the training side holds other users' later behaviour (trends leak a little).

Data with no usable time (a missing `event_at`, all timestamps equal, or a source that declares none)
gets `random`: a seeded share of each user's items is held out. Data too small for any protocol gets
`none`: nothing is held out, the models are still trained and served, and there is no leaderboard.

"Enough" is `required_users = max(min_floor, min(min_users, ceil(min_share x active users)))`, where
active users are the users with at least one interaction event in the data: 200 users for a big
shop, 10% of its users for a small one (94 on MovieLens 100k), and never fewer than `min_floor`.

An evaluable user is a test user with at least one held-out item they had not interacted with in
training AND at least one interaction in training (`Split.evaluable_users`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from recs_assets.arguments import fraction, non_negative_int, number_in, positive_int, positive_number
from recs_assets.contract import INTERACTION_TYPES
from recs_assets.contract import ANONYMOUS_USER_PREFIX
from recs_assets.training.splits import (
    NO_PROTOCOL,
    PROTOCOLS,
    Split,
    interaction_events,
    make_split,
    no_split,
)

__all__ = ["ProtocolChoice", "choose_protocol", "required_users"]

AUTO = "auto"


@dataclass(frozen=True)
class ProtocolChoice:
    """The protocol picked for a run, why, how many users it can grade, and the split it makes."""

    protocol: str  # one of splits.PROTOCOLS, or "none" when the data is too small for any
    reason: str  # one plain sentence, for metadata and beside every leaderboard number
    evaluable_users: int
    required_users: int  # what "auto" asks of a protocol (see module docstring)
    params: dict[str, Any]  # the protocol's parameters (test_days, quantile, test_fraction, seed, cutoff)
    split: Split = field(repr=False)
    requested: str = AUTO
    # Every protocol looked at, in order: (protocol, evaluable users or None when it could not be made, note).
    tried: tuple[tuple[str, int | None, str], ...] = ()

    @property
    def has_leaderboard(self) -> bool:
        """False when the data was too small to hold anything out: train and serve, but grade nothing."""
        return self.protocol != NO_PROTOCOL

    def as_metadata(self) -> dict[str, Any]:
        """Plain values (str, int, float, None, lists) for run metadata."""
        return {
            "protocol": self.protocol,
            "reason": self.reason,
            "requested": self.requested,
            "evaluable_users": self.evaluable_users,
            "required_users": self.required_users,
            **{f"param_{k}": v for k, v in self.params.items()},
            "tried": [{"protocol": p, "evaluable_users": n, "note": note} for p, n, note in self.tried],
        }


def required_users(active_users: int, *, min_users: int = 200, min_share: float = 0.10, min_floor: int = 20) -> int:
    """How many evaluable users a protocol must give: min(min_users, share of active users), at least min_floor."""
    return max(int(min_floor), min(int(min_users), math.ceil(min_share * active_users)))


def choose_protocol(
    events: pl.DataFrame,
    *,
    requested: str = AUTO,
    test_days: float = 7.0,
    min_users: int = 200,
    min_share: float = 0.10,
    min_floor: int = 20,
    quantile: float = 0.8,
    test_fraction: float = 0.25,
    seed: int = 42,
    has_timestamps: bool = True,
    event_types: Sequence[str] = INTERACTION_TYPES,
) -> ProtocolChoice:
    """Pick the evaluation protocol from the data (or honour the one requested), with a one-sentence reason.

    `requested` is "auto" or a protocol name from run config ("temporal", "temporal_quantile",
    "leave_last_out", "random", "none"). A requested protocol is used even when it gives fewer
    evaluable users than "auto" would ask (the reason says so); one that cannot be made on this data
    is a ValueError naming why. "auto" never raises for small data: it returns protocol "none".
    """
    _check_options(requested, test_days, min_users, min_share, min_floor, quantile, test_fraction, seed)
    _require_columns(events)
    interactions = interaction_events(events, event_types)
    # Anonymous shoppers (one id per session) can never be evaluable users: counting them would make a
    # session-heavy shop demand more evaluable users than it has known shoppers.
    known = interactions.get_column("user_id").drop_nulls()
    active = known.filter(~known.str.starts_with(ANONYMOUS_USER_PREFIX)).n_unique()
    needed = required_users(active, min_users=min_users, min_share=min_share, min_floor=min_floor)
    options = {"test_days": test_days, "quantile": quantile, "test_fraction": test_fraction, "seed": seed}
    need_text = _needed_text(needed, min_users, min_share, min_floor, active)

    if requested != AUTO:
        return _requested(events, requested, options, needed, need_text)

    untimed = _why_untimed(events, interactions, has_timestamps)
    if untimed is not None:
        order: list[str] = ["random"]
    else:
        order = ["temporal", "temporal_quantile", "leave_last_out"]

    tried: list[tuple[str, int | None, str]] = []
    best: tuple[str, int] | None = None
    for protocol in order:
        try:
            split = make_split(events, protocol, **options)
        except ValueError as error:
            tried.append((protocol, None, str(error)))
            continue
        n = split.evaluable_users
        tried.append((protocol, n, _window_text(protocol, split, options)))
        if best is None or n > best[1]:
            best = (protocol, n)
        if n >= needed:
            reason = _auto_reason(protocol, split, n, need_text, tried, untimed, options)
            return ProtocolChoice(
                protocol=protocol,
                reason=reason,
                evaluable_users=n,
                required_users=needed,
                params=_params(protocol, split, options),
                split=dataclasses.replace(split, reason=reason),
                requested=requested,
                tried=tuple(tried),
            )

    if best is None:
        found = "no protocol could hold anything out (" + "; ".join(note for _, _, note in tried) + ")"
    else:
        found = f"the best protocol, {best[0]}, gives {best[1]:,} evaluable users and {need_text}"
    reason = (
        f"Too small for any protocol: {found}; the models are trained on all events and served, without a "
        "leaderboard."
    )
    return ProtocolChoice(
        protocol=NO_PROTOCOL,
        reason=reason,
        evaluable_users=0 if best is None else best[1],
        required_users=needed,
        params={},
        split=no_split(events, reason),
        requested=requested,
        tried=tuple(tried),
    )


# --- helpers --------------------------------------------------------------------------------------


def _requested(
    events: pl.DataFrame, requested: str, options: dict[str, Any], needed: int, need_text: str
) -> ProtocolChoice:
    if requested == NO_PROTOCOL:
        reason = "No protocol, as requested in run config: nothing is held out and there is no leaderboard."
        return ProtocolChoice(NO_PROTOCOL, reason, 0, needed, {}, no_split(events, reason), requested)
    try:
        split = make_split(events, requested, **options)
    except ValueError as error:
        raise ValueError(f"protocol {requested!r} was requested in run config but cannot be used here: {error}") from error
    n = split.evaluable_users
    short = "" if n >= needed else f"; that is fewer than auto asks ({need_text}), so expect wide intervals"
    reason = f"{requested} as requested in run config: {_window_text(requested, split, options)} gives {n:,} evaluable users{short}."
    return ProtocolChoice(
        protocol=requested,
        reason=reason,
        evaluable_users=n,
        required_users=needed,
        params=_params(requested, split, options),
        split=dataclasses.replace(split, reason=reason),
        requested=requested,
        tried=((requested, n, _window_text(requested, split, options)),),
    )


def _why_untimed(events: pl.DataFrame, interactions: pl.DataFrame, has_timestamps: bool) -> str | None:
    """Why time cannot order these events (None when it can)."""
    if not has_timestamps:
        return "the source declares no event times"
    missing = events.get_column("event_at").null_count()
    if missing:
        return f"{missing:,} of {events.height:,} events have no time"
    times = interactions.get_column("event_at")
    if times.len() and times.min() == times.max():
        return f"every interaction has the same time ({times.min().isoformat()}), so time gives no order"
    return None


def _window_text(protocol: str, split: Split, options: dict[str, Any]) -> str:
    if protocol == "temporal":
        return f"the last {options['test_days']:g} days"
    if protocol == "temporal_quantile":
        share = 1.0 - options["quantile"]
        return f"the last {share:.0%} of interactions (from {split.cutoff.date().isoformat()})"
    if protocol == "leave_last_out":
        return "each user's last interaction"
    if protocol == "random":
        return f"a seeded {options['test_fraction']:.0%} of each user's items (seed {options['seed']})"
    return protocol


def _auto_reason(
    protocol: str,
    split: Split,
    n: int,
    need_text: str,
    tried: list[tuple[str, int | None, str]],
    untimed: str | None,
    options: dict[str, Any],
) -> str:
    window = _window_text(protocol, split, options)
    if protocol == "random":
        return f"random hold-out, because {untimed}: {window} gives {n:,} evaluable users ({need_text})."
    if protocol == "temporal":
        return f"temporal, because {window} give {n:,} evaluable users ({need_text})."
    rejected = " and ".join(
        f"{name} could not be made" if count is None else f"{note} gave only {count:,}" for name, count, note in tried[:-1]
    )
    return f"{protocol}, because {rejected} evaluable users ({need_text}), while {window} gives {n:,}."


def _needed_text(needed: int, min_users: int, min_share: float, min_floor: int, active: int) -> str:
    share_count = math.ceil(min_share * active)
    if needed == min_floor and min_floor >= min(min_users, share_count):
        why = f"the floor of {min_floor}"
    elif share_count < min_users:
        why = f"{min_share:.0%} of {active:,} active users"
    else:
        why = f"min_users={min_users}"
    return f"at least {needed:,} needed: {why}"


def _params(protocol: str, split: Split, options: dict[str, Any]) -> dict[str, Any]:
    keep = {
        "temporal": ("test_days",),
        "temporal_quantile": ("quantile",),
        "leave_last_out": (),
        "random": ("test_fraction", "seed"),
    }[protocol]
    params: dict[str, Any] = {name: options[name] for name in keep}
    params["cutoff"] = split.cutoff.isoformat() if split.cutoff is not None else None
    return params


def _check_options(
    requested: object,
    test_days: object,
    min_users: object,
    min_share: object,
    min_floor: object,
    quantile: object,
    test_fraction: object,
    seed: object,
) -> None:
    allowed = (AUTO, NO_PROTOCOL, *PROTOCOLS)
    if requested not in allowed:
        raise ValueError(f"unknown protocol {requested!r} requested; expected one of {', '.join(allowed)}")
    for name, value in (("min_users", min_users), ("min_floor", min_floor)):
        positive_int(value, name)
    number_in(min_share, "min_share", 0.0, 1.0)
    # Checked here, not only by the split that uses them: "auto" would otherwise read a bad value as
    # "this protocol cannot be made" and silently move on to the next one.
    positive_number(test_days, "test_days")
    for name, value in (("quantile", quantile), ("test_fraction", test_fraction)):
        fraction(value, name)
    non_negative_int(seed, "seed")


def _require_columns(events: pl.DataFrame) -> None:
    missing = [c for c in ("event_id", "event_at", "user_id", "item_id", "event_type") if c not in events.columns]
    if missing:
        raise ValueError(f"events is missing column(s) {missing}; it has {events.columns}")
