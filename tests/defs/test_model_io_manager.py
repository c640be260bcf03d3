"""A model asset with nothing to learn from hands on None, and downstream assets never get a stale model."""

import dagster as dg
import polars as pl

from recs_assets.models import PopularityRecommender
from resources.model_io_manager import ModelIOManager


def test_none_is_stored_as_not_trained_and_replaces_an_older_model(tmp_path):
    manager = ModelIOManager(home=str(tmp_path))
    key = dg.AssetKey("ranker_model")
    model = PopularityRecommender().fit(pl.DataFrame({"user_id": ["u1"], "item_id": ["i1"], "strength": [1.0]}))
    manager.handle_output(dg.build_output_context(asset_key=key), model)
    assert manager.load_input(dg.build_input_context(asset_key=key)) is not None
    manager.handle_output(dg.build_output_context(asset_key=key), None)
    assert manager.load_input(dg.build_input_context(asset_key=key)) is None
    manager.handle_output(dg.build_output_context(asset_key=key), model)
    assert manager.load_input(dg.build_input_context(asset_key=key)).n_items == 1
