"""Where the pipeline keeps its outputs and which data it reads, taken from environment variables.

Everything is optional: with no variable set, the pipeline runs on the built-in simulator and writes
into `.recs_home/` inside the checkout.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

SOURCES = ("simulator", "movielens_100k", "steam_200k", "files")
_CHECKOUT = Path(__file__).resolve().parents[1]


def default_home() -> Path:
    """`.recs_home/` in the checkout (git-ignored); outside a checkout, in the working directory."""
    root = _CHECKOUT if (_CHECKOUT / "pyproject.toml").exists() else Path.cwd()
    return root / ".recs_home"


def _int(environ: Mapping[str, str], name: str, default: int | None, minimum: int = 0) -> int | None:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {text!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


@dataclass(frozen=True)
class Settings:
    """The run's configuration: home folder, source, and the simulator's scale knobs."""

    home: Path
    source: str = "simulator"
    data_dir: Path | None = None
    sim_preset: str = "games"
    sim_seed: int = 42
    # 10k users: enough behaviour for the re-ranker to learn from (on 2k its lessons are mostly noise),
    # and `make run` still takes under two minutes on 2 cores.
    sim_users: int = 10_000
    sim_items: int = 5_000
    sim_days: int = 30
    sim_start_date: date = date(2026, 9, 1)
    sim_shift_day: int | None = None

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"RECS_SOURCE must be one of {', '.join(SOURCES)}; got {self.source!r}")
        if self.sim_preset not in ("games", "fashion"):
            raise ValueError(f"RECS_SIM_PRESET must be games or fashion; got {self.sim_preset!r}")
        if self.source != "simulator" and self.data_dir is None:
            raise ValueError(f"RECS_SOURCE={self.source} needs RECS_DATA_DIR: the folder holding its files")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        data_dir = env.get("RECS_DATA_DIR", "").strip()
        start = env.get("RECS_SIM_START_DATE", "").strip()
        try:
            start_date = date.fromisoformat(start) if start else cls.sim_start_date
        except ValueError:
            raise ValueError(f"RECS_SIM_START_DATE must be a date like 2026-09-01, got {start!r}") from None
        return cls(
            home=Path(env.get("RECS_HOME", "").strip() or default_home()).resolve(),
            source=env.get("RECS_SOURCE", "").strip() or "simulator",
            data_dir=Path(data_dir).resolve() if data_dir else None,
            sim_preset=env.get("RECS_SIM_PRESET", "").strip() or cls.sim_preset,
            sim_seed=_int(env, "RECS_SIM_SEED", cls.sim_seed),
            sim_users=_int(env, "RECS_SIM_USERS", cls.sim_users, minimum=1),
            sim_items=_int(env, "RECS_SIM_ITEMS", cls.sim_items, minimum=1),
            sim_days=_int(env, "RECS_SIM_DAYS", cls.sim_days, minimum=1),
            sim_start_date=start_date,
            sim_shift_day=_int(env, "RECS_SIM_SHIFT_DAY", None),
        )

    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def lake_dir(self) -> Path:
        return self.home / "lake"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"
