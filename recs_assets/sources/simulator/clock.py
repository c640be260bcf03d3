"""The simulator's clock: every time is an integer count of microseconds since 1970-01-01 UTC."""

from __future__ import annotations

import datetime as dt

SECOND_US = 1_000_000
HOUR_US = 3_600 * SECOND_US
DAY_US = 24 * HOUR_US


def date_us(day: dt.date) -> int:
    """Midnight UTC at the start of `day`, in microseconds since the epoch."""
    return int((day - dt.date(1970, 1, 1)).days) * DAY_US
