"""A make-believe marketplace that produces realistic users, items and shopping events on demand.

The simulator invents a shop (a game store or a second-hand fashion app) whose shoppers have hidden
tastes, shows them items the way a simple production recommender would, and records what they look
at, put in the basket, buy and play. Because the hidden tastes are kept, anything trained on the
events can be scored against the truth (`SimulatedMarketplace.true_affinity`), which real data never
allows. It is the project's default data source, so the whole pipeline runs without downloads.

Every random number comes from streams derived from `SimulatorConfig.seed`, so one config gives the
same tables on every machine. The package is pure: no Dagster, no files, no clock.

Modules, in the order a simulation runs: `config` (what to simulate) and `presets` (the two kinds of
shop); `world` (users' and items' hidden traits, and the true affinity); `policy` (what the shop
shows, with positions and propensities); `day` (one day of sessions and the shoppers' response model,
`shopper_response`); `tables` (the contract's events, items and users frames); `marketplace`
(`simulate` and the result it returns). `clock`, `streams` and `batch` are the shared plumbing:
microsecond times, named random streams and integer-coded event columns.
"""

from recs_assets.sources.simulator.config import SimulatorConfig
from recs_assets.sources.simulator.marketplace import SimulatedMarketplace, simulate
from recs_assets.sources.simulator.presets import PRESETS

__all__ = ["PRESETS", "SimulatedMarketplace", "SimulatorConfig", "simulate"]
