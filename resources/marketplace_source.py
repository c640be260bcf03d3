"""The data source resource: the built-in simulator, MovieLens 100k, Steam 200k, or a folder of files."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from datetime import date, timedelta
from importlib import import_module
from pathlib import Path
from types import ModuleType

import dagster as dg
import polars as pl

from recs_assets.contract import EVENTS_SCHEMA, RAW_PROVENANCE_SCHEMA
from recs_assets.settings import Settings
from recs_assets.sources.simulator import SimulatedMarketplace, SimulatorConfig, simulate

# Modules with the same functions (load_raw_events, load_items, load_users, event_date_range, HAS_TIMESTAMPS).
_ADAPTERS = {
    "movielens_100k": "recs_assets.sources.movielens",
    "steam_200k": "recs_assets.sources.steam",
    "files": "recs_assets.sources.files",
    "open_bandit": "recs_assets.sources.open_bandit",
}


# raw_events, items, users and the ground-truth readers each ask for the same simulation within one run:
# it is built once and kept (the two newest configurations).
_SIMULATIONS: OrderedDict[SimulatorConfig, SimulatedMarketplace] = OrderedDict()
_KEPT_SIMULATIONS = 2


def _simulation(config: SimulatorConfig, *, with_events: bool = False) -> SimulatedMarketplace:
    market = _SIMULATIONS.get(config)
    if market is None or (with_events and market.events is _TAKEN.get(config)):
        market = simulate(config)
    _SIMULATIONS[config] = market
    _SIMULATIONS.move_to_end(config)
    while len(_SIMULATIONS) > _KEPT_SIMULATIONS:
        _SIMULATIONS.popitem(last=False)
    return market


# Configurations whose events were handed to raw_events: the kept marketplace holds an empty frame in
# their place (the marker), because a run reads its events once and lands them in the lake; keeping them
# here as well would hold a second copy for the whole run (2.3 GB at 10M events).
_TAKEN: dict[SimulatorConfig, pl.DataFrame] = {}


def _take_events(config: SimulatorConfig) -> pl.DataFrame:
    market = _simulation(config, with_events=True)
    events = market.events
    _TAKEN[config] = events.clear()
    _SIMULATIONS[config] = dataclasses.replace(market, events=_TAKEN[config])
    return events


class MarketplaceSource(dg.ConfigurableResource):
    """Where raw behaviour comes from. `kind` chooses the adapter; all map onto the same contract."""

    kind: str = "simulator"
    data_dir: str | None = None
    preset: str = Settings.sim_preset
    seed: int = Settings.sim_seed
    n_users: int = Settings.sim_users
    n_items: int = Settings.sim_items
    n_days: int = Settings.sim_days
    start_date: str = Settings.sim_start_date.isoformat()
    preference_shift_day: int | None = None
    # The `files` source's CSV delimiter; None = detected from the header (`,` `;` tab `|`).
    csv_delimiter: str | None = None

    def simulator_config(self) -> SimulatorConfig:
        return SimulatorConfig(
            preset=self.preset,
            seed=self.seed,
            n_users=self.n_users,
            n_items=self.n_items,
            n_days=self.n_days,
            start_date=date.fromisoformat(self.start_date),
            preference_shift_day=self.preference_shift_day,
        )

    def simulation(self) -> SimulatedMarketplace:
        """The simulated marketplace itself, with its ground truth (only for kind=simulator)."""
        if self.kind != "simulator":
            raise ValueError(f"the ground truth exists only for the simulator, not for {self.kind}")
        return _simulation(self.simulator_config())

    def _adapter(self) -> tuple[ModuleType, Path]:
        if self.kind not in _ADAPTERS:
            raise ValueError(f"unknown source kind {self.kind!r}; expected simulator or one of {', '.join(_ADAPTERS)}")
        if not self.data_dir:
            raise ValueError(f"source {self.kind} needs data_dir (RECS_DATA_DIR)")
        return import_module(_ADAPTERS[self.kind]), Path(self.data_dir)

    def _reader_options(self) -> dict:
        """Options only the `files` reader takes (the other adapters read fixed formats)."""
        return {"delimiter": self.csv_delimiter} if self.kind == "files" and self.csv_delimiter else {}

    @property
    def label(self) -> str:
        return f"simulator:{self.preset}" if self.kind == "simulator" else self.kind

    @property
    def has_timestamps(self) -> bool:
        """False for sources without event times (Steam): later stages then split without time."""
        if self.kind == "simulator":
            return True
        return self._adapter()[0].HAS_TIMESTAMPS

    def event_date_range(self) -> tuple[date, date] | None:
        """First and last UTC day with events, when the source is organised by day (else None)."""
        if self.kind == "simulator":
            start = date.fromisoformat(self.start_date)
            return start, start + timedelta(days=self.n_days - 1)
        adapter, data_dir = self._adapter()
        return adapter.event_date_range(data_dir)

    def load_raw_events(self) -> pl.DataFrame:
        """Every raw event the source holds, as it came, with provenance columns."""
        if self.kind == "simulator":
            events = _take_events(self.simulator_config())
            return events.with_columns(
                pl.lit(self.label).alias("_source"),
                pl.int_range(1, events.height + 1, dtype=pl.Int64).alias("_line"),
                pl.lit(None, dtype=pl.String).alias("_parse_error"),
                pl.lit(None, dtype=pl.String).alias("_raw_line"),
            ).select([*EVENTS_SCHEMA, *RAW_PROVENANCE_SCHEMA])
        adapter, data_dir = self._adapter()
        return adapter.load_raw_events(data_dir, **self._reader_options())

    def expected_raw_rows(self) -> int | None:
        """How many records the source holds, counted without parsing it; None where no such count exists.

        For a folder of files: the events file's non-empty data lines (Parquet: its rows), which
        `validation.reconciliation.reconcile_with_source` compares with what raw_events holds. None for
        the simulator (it has no source besides itself) and for sources read by day.
        """
        if self.kind == "simulator":
            return None
        adapter, data_dir = self._adapter()
        count = getattr(adapter, "source_record_count", None)
        return None if count is None else count(data_dir)

    def load_items(self) -> pl.DataFrame:
        if self.kind == "simulator":
            return _simulation(self.simulator_config()).items
        adapter, data_dir = self._adapter()
        return adapter.load_items(data_dir, **self._reader_options())

    def load_users(self) -> pl.DataFrame:
        if self.kind == "simulator":
            return _simulation(self.simulator_config()).users
        adapter, data_dir = self._adapter()
        return adapter.load_users(data_dir, **self._reader_options())
