"""The feature engine chooses the `als` generator's implementation: Spark MLlib's on Spark, implicit's on DuckDB."""

from __future__ import annotations

import pytest

from recs_assets.definitions import build_definitions
from recs_assets.features.spark_engine import spark_unavailable
from recs_assets.models import ALSRecommender, MODELS
from recs_assets.models.spark_als import SparkALSRecommender
from recs_assets.settings import Settings

pytestmark = pytest.mark.spark


def _als(engine: str, home):
    defs = build_definitions(Settings(home=home, engine=engine, sim_users=150, sim_items=80, sim_days=24))
    asset = defs.resolve_assets_def("als_model")
    spec = next(iter(asset.specs))
    models = defs.resources["candidate_models"]
    return spec, models, defs


@pytest.mark.skipif(bool(spark_unavailable()), reason=spark_unavailable() or "")
def test_on_spark_the_als_model_is_spark_mllib_for_the_asset_the_ranker_and_the_refits(tmp_path):
    spec, models, defs = _als("spark", tmp_path)
    assert spec.tags["recs/implementation"] == "spark_als"
    assert "spark" in spec.kinds and "Spark MLlib" in spec.description
    # The resource the ranker's training set and the champion's refit read builds the same class.
    assert type(models.build("als")) is SparkALSRecommender
    assert type(models.build_all()["als"]) is SparkALSRecommender
    # Every other generator, and the asset names downstream groups read, are unchanged.
    assert {type(m) for n, m in models.build_all().items() if n != "als"} == {c for n, c in MODELS.items() if n != "als"}
    assert {f"{name}_model" for name in MODELS} <= {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}


def test_on_duckdb_the_als_model_is_implicits(tmp_path):
    spec, models, _ = _als("duckdb", tmp_path)
    assert spec.tags["recs/implementation"] == "als"
    assert "spark" not in spec.kinds and "implicit" in spec.description
    assert type(models.build("als")) is ALSRecommender
    assert all(not isinstance(m, SparkALSRecommender) for m in models.build_all().values())
