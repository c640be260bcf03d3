"""What to simulate: which kind of shop, how big, for how long, and with which random seed."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from recs_assets.arguments import is_number, number_in, positive_int, whole_number
from recs_assets.sources.simulator.presets import PRESETS


@dataclass(frozen=True)
class SimulatorConfig:
    """What kind of shop to simulate, how big it is, how long it runs, and the random seed."""

    preset: str = "games"  # "games" or "fashion"
    seed: int = 42
    n_users: int = 2_000
    n_items: int = 1_000  # games: catalogue size; fashion: listings in stock on day 0
    n_days: int = 30
    start_date: dt.date = dt.date(2026, 9, 1)  # day 0 (UTC)
    sessions_per_user_day: float = 0.25  # mean; per-user activity is heavy-tailed around it
    impressions_per_session: int = 12
    new_listings_per_day: int = 40  # fashion only
    preference_shift_day: int | None = None  # from this day index on, users' category tastes shift
    shift_strength: float = 0.8  # 0 = no change, 1 = completely new tastes

    def __post_init__(self) -> None:
        # The fields keep the values as given: the checks only refuse, they never convert.
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {', '.join(PRESETS)}; got {self.preset!r}")
        whole_number(self.seed, "seed", minimum=0)
        for name in ("n_users", "n_items", "n_days", "impressions_per_session"):
            positive_int(getattr(self, name), name)
        whole_number(self.new_listings_per_day, "new_listings_per_day", minimum=0)
        rate = self.sessions_per_user_day
        if not is_number(rate) or not math.isfinite(rate) or rate <= 0:
            raise ValueError(f"sessions_per_user_day must be a positive number; got {rate!r}")
        if isinstance(self.start_date, dt.datetime) or not isinstance(self.start_date, dt.date):
            raise ValueError(f"start_date must be a datetime.date (not a datetime); got {self.start_date!r}")
        if self.preference_shift_day is not None:
            whole_number(self.preference_shift_day, "preference_shift_day", minimum=0)
            if self.preference_shift_day >= self.n_days:
                raise ValueError(
                    f"preference_shift_day must be within [0, n_days={self.n_days}); "
                    f"got {self.preference_shift_day}"
                )
        number_in(self.shift_strength, "shift_strength", 0.0, 1.0)
