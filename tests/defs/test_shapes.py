"""The whole graph on data of every shape a marketplace may hand us, through the `files` source.

Each shape is cut from one small simulated shop and written as a user would export it. Every run must
build every asset, and every check must pass or be skipped with a reason: a missing column is a
shape of data, not an error.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from recs_assets.cli import run_everything, skipped_checks
from recs_assets.sources.simulator import SimulatorConfig, simulate
from recs_assets.settings import Settings

pytestmark = pytest.mark.slow

EVENT_COLUMNS = ["event_id", "event_at", "user_id", "session_id", "item_id", "event_type", "query", "price", "value"]


@pytest.fixture(scope="module")
def shop():
    return simulate(SimulatorConfig(preset="fashion", n_users=400, n_items=200, n_days=24, seed=5))


@pytest.fixture(scope="module")
def game_shop():
    # Ratings need titles many people buy: one-of-a-kind listings sell once and leave nothing to predict.
    return simulate(SimulatorConfig(preset="games", n_users=400, n_items=200, n_days=24, seed=5))


def _write(folder: Path, events: pl.DataFrame, items: pl.DataFrame, users: pl.DataFrame) -> Path:
    folder.mkdir(parents=True)
    events.with_columns(pl.col("event_at").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")).write_csv(folder / "events.csv")
    items.with_columns(pl.col(c).dt.strftime("%Y-%m-%dT%H:%M:%SZ") for c in items.columns if items.schema[c] == pl.Datetime("us", "UTC")).write_csv(folder / "items.csv")
    users.with_columns(pl.col(c).dt.strftime("%Y-%m-%dT%H:%M:%SZ") for c in users.columns if users.schema[c] == pl.Datetime("us", "UTC")).write_csv(folder / "users.csv")
    return folder


def no_prices_or_categories(shop):
    return shop.events.select(EVENT_COLUMNS).drop("price"), shop.items.select("item_id", "title", "is_active"), shop.users


def anonymous_sessions(shop):
    sessions = shop.events["session_id"].drop_nulls().unique().sort()
    hidden = sessions.filter(pl.Series(range(sessions.len())) % 10 < 7)  # 70% of sessions lose their user id
    events = shop.events.select(EVENT_COLUMNS).with_columns(
        pl.when(pl.col("session_id").is_in(hidden.implode())).then(None).otherwise(pl.col("user_id")).alias("user_id")
    )
    return events, shop.items, shop.users


def no_timestamps(shop):
    return shop.events.select(EVENT_COLUMNS).with_columns(pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias("event_at")), shop.items, shop.users


def ratings_only(shop):
    rated = (
        shop.events.filter(pl.col("event_type") == "purchase")
        .select("event_id", "event_at", "user_id", "item_id")
        .with_columns(pl.lit("rating").alias("event_type"), (pl.col("event_id").str.len_chars() % 5 + 1).cast(pl.Float64).alias("value"))
    )
    return rated, shop.items.select("item_id", "title"), shop.users.select("user_id")


def single_event_type(shop):
    return shop.events.select(EVENT_COLUMNS).filter(pl.col("event_type") == "view"), shop.items, shop.users


SHAPES = [no_prices_or_categories, anonymous_sessions, no_timestamps, ratings_only, single_event_type]


@pytest.mark.parametrize("shape", SHAPES, ids=[s.__name__ for s in SHAPES])
def test_every_asset_is_built_and_every_check_passes_or_is_skipped_with_a_reason(shop, game_shop, shape, home, tmp_path):
    folder = _write(tmp_path / shape.__name__, *shape(game_shop if shape is ratings_only else shop))
    result, planned = run_everything(Settings(home=home, source="files", data_dir=folder))
    built = {e.event_specific_data.materialization.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    failures = [e.event_specific_data.error for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    checks = {c.check_name: c.description for c in result.get_asset_check_evaluations() if not c.passed}
    assert result.success, ([(f.cause or f).message for f in failures], checks)
    assert set(planned) <= built, f"not built: {sorted(set(planned) - built)}"
    checks = result.get_asset_check_evaluations()
    failed = [f"{c.check_name}: {c.description}" for c in checks if not c.passed and c.blocking]
    assert failed == []
    evaluated = {c.check_name for c in checks}
    for name, reason in skipped_checks(result, evaluated):
        assert reason, f"{name} skipped without a reason"
    board = pl.read_parquet(home / "lake" / "model_leaderboard.parquet")
    if board.height:
        assert board["protocol_reason"].is_not_null().all()
    if shape is anonymous_sessions:
        segments = pl.read_parquet(home / "lake" / "model_metrics.parquet")["segment"].unique().to_list()
        assert "anonymous" in segments
