"""A small simulated shop shared by the experiment tests (built once per session of tests)."""

from __future__ import annotations

import pytest

from recs_assets.experiments.environment import SimulatorEnvironment
from recs_assets.sources.simulator import SimulatorConfig, simulate

SMALL = SimulatorConfig(preset="games", seed=11, n_users=600, n_items=300, n_days=10)
SMALL_FASHION = SimulatorConfig(preset="fashion", seed=11, n_users=600, n_items=300, n_days=10, new_listings_per_day=20)


@pytest.fixture(scope="session")
def small_market():
    return simulate(SMALL)


@pytest.fixture(scope="session")
def small_fashion():
    return simulate(SMALL_FASHION)


@pytest.fixture(scope="session")
def env(small_market) -> SimulatorEnvironment:
    return SimulatorEnvironment.from_market(small_market, slots=10)
