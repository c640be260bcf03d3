"""Checks on arguments that every layer shares: one wording for one kind of mistake.

`True` is an `int` in Python; a list length of True is a bug in the caller, so booleans are refused.
Each check returns the value as a plain Python type, so callers can write `n = positive_int(n, "N")`.
"""

from __future__ import annotations

import math
import numbers


def is_number(value: object) -> bool:
    """A real number that is not a boolean."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def whole_number(value: object, name: str, minimum: int | None = None) -> int:
    """An integer (not a bool) at least `minimum`, or a ValueError naming the argument."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be a whole number; got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}; got {value!r}")
    return int(value)


def positive_int(value: object, name: str) -> int:
    """An integer >= 1 (not a bool), or a ValueError naming the argument."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def number_in(value: object, name: str, low: float, high: float, *, open_low: bool = False, open_high: bool = False) -> float:
    """A finite number within [low, high] (ends open where asked), or a ValueError naming the range."""
    if not is_number(value) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a number; got {value!r}")
    v = float(value)
    if v < low or v > high or (open_low and v == low) or (open_high and v == high):
        left, right = "(" if open_low else "[", ")" if open_high else "]"
        raise ValueError(f"{name} must be in {left}{low}, {high}{right}; got {value!r}")
    return v


def non_negative_int(value: object, name: str) -> int:
    """An integer >= 0 (not a bool), e.g. a seed, or a ValueError naming the argument."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer; got {value!r}")
    return int(value)


def fraction(value: object, name: str) -> float:
    """A number strictly between 0 and 1 (a share, a quantile, a confidence level)."""
    if not is_number(value) or not 0.0 < float(value) < 1.0:
        raise ValueError(f"{name} must be a number strictly between 0 and 1; got {value!r}")
    return float(value)


def positive_number(value: object, name: str) -> float:
    """A finite number > 0 (not a bool), e.g. a number of days."""
    if not is_number(value) or not math.isfinite(float(value)) or float(value) <= 0:
        raise ValueError(f"{name} must be a positive number; got {value!r}")
    return float(value)
