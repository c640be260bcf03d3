"""The search group, whole-graph: a simulated shop with searches builds every search asset; a source without
searches (MovieLens-shaped ratings) marks them not applicable and `make run` still exits 0."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from recs_assets.cli import main
from recs_assets.layout import HomeLayout
from recs_assets.sources.simulator import SimulatorConfig, simulate

pytestmark = pytest.mark.slow

SEARCH_ASSETS = ("search_catalogue", "search_user_signals", "search_training_set", "search_ranker_model",
                 "search_evaluation", "popular_query_results")
SHOP = {"RECS_SIM_USERS": "600", "RECS_SIM_ITEMS": "200", "RECS_SIM_DAYS": "24"}


def asset_lines(out: str) -> dict[str, str]:
    """The summary's "Assets:" block as {asset: headline}."""
    block = out.split("Assets:", 1)[1].split("\n\n", 1)[0]
    return {parts[0]: (parts[1] if len(parts) > 1 else "") for parts in
            (line.strip().split(None, 1) for line in block.splitlines() if line.strip())}


def test_a_simulated_shop_builds_search_and_grades_it(home, monkeypatch, capsys):
    for name, value in SHOP.items():
        monkeypatch.setenv(name, value)
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    lines = asset_lines(out)
    for asset in SEARCH_ASSETS:
        assert asset in lines, f"{asset} not built: {sorted(lines)}"
        assert "not applicable" not in lines[asset], lines[asset]
    assert "PASS search_catalogue.zero_result_rate_check" in out
    lake = HomeLayout(home).lake
    evaluation = pl.read_parquet(lake / "search_evaluation.parquet")
    assert {"bm25", "bm25_popularity", "personalised"} <= set(evaluation["ranker"])
    assert {"ndcg@10", "mrr", "simulated_ndcg@10"} <= set(evaluation["metric"]) and "all" in set(evaluation["segment"])
    popular = pl.read_parquet(lake / "popular_query_results.parquet")
    assert popular.height and popular["model_version"].drop_nulls().len() == popular.height
    sold = pl.read_parquet(lake / "search_catalogue.parquet").filter(~pl.col("is_sellable"))["item_id"]
    assert not popular["item_id"].is_in(sold.implode()).any()
    assert (HomeLayout(home).model_dir("search_ranker_model") / "model.bin").exists()


def test_a_source_without_searches_marks_search_not_applicable_and_exits_0(home, tmp_path: Path, monkeypatch, capsys):
    shop = simulate(SimulatorConfig(preset="games", n_users=300, n_items=120, n_days=24, seed=3))
    folder = tmp_path / "ratings"
    folder.mkdir()
    # MovieLens-shaped: star ratings only, items with a title and a genre, no queries anywhere.
    ratings = (shop.events.filter(pl.col("event_type") == "purchase")
               .select("event_id", "event_at", "user_id", "item_id")
               .with_columns(pl.lit("rating").alias("event_type"), (pl.col("event_id").str.len_chars() % 5 + 1).cast(pl.Float64).alias("value")))
    ratings.with_columns(pl.col("event_at").dt.strftime("%Y-%m-%dT%H:%M:%SZ")).write_csv(folder / "events.csv")
    shop.items.select("item_id", "title", "category").write_csv(folder / "items.csv")
    shop.users.select("user_id").write_csv(folder / "users.csv")
    monkeypatch.setenv("RECS_SOURCE", "files")
    monkeypatch.setenv("RECS_DATA_DIR", str(folder))
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    lines = asset_lines(out)
    assert set(SEARCH_ASSETS) <= set(lines), (sorted(set(SEARCH_ASSETS) - set(lines)), out)
    notes = {asset: latest_metadata(asset) for asset in SEARCH_ASSETS}
    assert "applicable" not in notes["search_catalogue"] and notes["search_catalogue"]["rows"].value > 0  # titles are searchable
    for asset in ("search_training_set", "search_ranker_model", "search_evaluation", "popular_query_results"):
        assert notes[asset]["applicable"].value is False, asset
        assert notes[asset]["note"].value.startswith("not applicable: "), notes[asset]["note"].value
    assert "no search" in notes["search_training_set"]["note"].value
    assert "zero_result_rate_check" in out and "query_distribution_check" in out  # reported as skipped, with the reason


def latest_metadata(asset: str) -> dict:
    import dagster as dg

    event = dg.DagsterInstance.get().get_latest_materialization_event(dg.AssetKey(asset))
    return dict(event.asset_materialization.metadata)
