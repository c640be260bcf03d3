"""The data source resource: the simulator is built once per run and does not hold the events twice."""

from resources import marketplace_source
from resources.marketplace_source import MarketplaceSource


def test_the_kept_simulation_lets_go_of_its_events_once_raw_events_has_them_and_rebuilds_them_when_asked_again():
    source = MarketplaceSource(n_users=40, n_items=20, n_days=3, seed=11)
    first = source.load_raw_events()
    assert first.height > 0
    kept = marketplace_source._SIMULATIONS[source.simulator_config()]
    assert kept.events.is_empty() and kept.events.columns == first.columns[: len(kept.events.columns)]
    # What the rest of the run reads is still there, from the same simulation.
    assert source.load_items().equals(kept.items) and source.simulation().world is kept.world
    again = source.load_raw_events()
    assert again.equals(first)
