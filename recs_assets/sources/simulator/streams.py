"""The simulator's independent random streams, all derived from the config's seed."""

from __future__ import annotations

import enum

import numpy as np


class Stream(enum.IntEnum):
    """Names of the independent random streams, so adding draws to one never shifts another."""

    USERS = 1
    ITEMS = 2
    SHIFT = 3
    DAY = 4
    PLAYS = 5
    CATEGORIES = 6
    ONLINE = 7  # sessions served after the history by another policy (online.py)


def random_stream(seed: int, stream: Stream, *keys: int) -> np.random.Generator:
    """The generator for one stream (and, for per-day streams, one day): same seed, same numbers."""
    return np.random.default_rng([seed, int(stream), *keys])
