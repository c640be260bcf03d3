"""ALS on Spark MLlib: the model contract, safe storage, and a place among the generators only on Spark."""

from __future__ import annotations

import copy
import zipfile

import numpy as np
import pytest

from recs_assets.features.spark_engine import local_spark_session, spark_unavailable
from recs_assets.models import REGISTRY, ALSRecommender, Recommender
from recs_assets.models.registry import MODELS, candidate_generators
from recs_assets.models.spark_als import SparkALSRecommender
from tests.models.conftest import CATEGORIES, INTERACTIONS, USERS
from tests.models.test_contract import ModelContract
from tests.models.test_quality import movielens_split, ndcg_at_10  # noqa: F401 (a fixture)

pytestmark = pytest.mark.spark


@pytest.fixture(scope="session")
def spark():
    reason = spark_unavailable()
    if reason:
        pytest.skip(reason)
    # getOrCreate: shares the session of tests/features/test_engines.py when both run.
    session = local_spark_session({"spark.sql.codegen.wholeStage": "false", "spark.sql.shuffle.partitions": "1"})
    yield session
    session.stop()


@pytest.mark.slow
@pytest.mark.usefixtures("spark")
class TestSparkALS(ModelContract):
    # One Spark fit per distinct call (seconds each): the contract's tests get copies of it, never a
    # model another test changed.
    _fits: dict = {}

    def make_model(self) -> Recommender:
        return SparkALSRecommender(factors=8, regularization=0.01, alpha=1.0, iterations=15, seed=3)

    def fitted(self, **fit_kwargs) -> Recommender:
        key = repr(sorted(fit_kwargs.items()))
        if key not in self._fits:
            self._fits[key] = super().fitted(**fit_kwargs)
        return copy.deepcopy(self._fits[key])


def test_spark_als_implements_the_als_generator_only_on_spark():
    assert "spark_als" not in MODELS and SparkALSRecommender not in candidate_generators("duckdb").values()
    assert candidate_generators("duckdb")["als"] is ALSRecommender
    assert candidate_generators("spark")["als"] is SparkALSRecommender
    # The same generators in the same order: only the implementation of `als` changes.
    assert list(candidate_generators("spark")) == list(MODELS)
    assert {n: c for n, c in candidate_generators("spark").items() if n != "als"} == {
        n: c for n, c in MODELS.items() if n != "als"}
    # Storage can load it whatever the engine.
    assert REGISTRY["spark_als"] is SparkALSRecommender


@pytest.mark.usefixtures("spark")
def test_saved_factors_are_plain_arrays_and_load_to_the_same_lists(tmp_path):
    model = SparkALSRecommender(factors=4, iterations=5, seed=1).fit(INTERACTIONS, item_categories=CATEGORIES)
    path = tmp_path / "spark_als.npz"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert {"model.user_factors.npy", "model.item_factors.npy"} <= set(names)
        for name in names:
            # allow_pickle=False refuses object arrays: nothing in the file can run code when loaded.
            np.load(archive.open(name), allow_pickle=False)
    loaded = Recommender.load(path)
    assert type(loaded) is SparkALSRecommender and loaded.params() == model.params()
    before, after = model.recommend(USERS, 3), loaded.recommend(USERS, 3)
    assert np.array_equal(before[0], after[0]) and np.allclose(before[1], after[1])


# Spark MLlib ALS must match implicit ALS on MovieLens 100k to within this much NDCG@10 (measured: 0.456
# both; the margin absorbs Spark's different initialisation and solver).
QUALITY_MARGIN = 0.03


@pytest.mark.slow
@pytest.mark.usefixtures("spark")
def test_spark_als_is_as_good_as_implicit_als_on_movielens(movielens_split):
    implicit_ndcg = ndcg_at_10(ALSRecommender(), *movielens_split)
    spark_ndcg = ndcg_at_10(SparkALSRecommender(), *movielens_split)
    assert implicit_ndcg > 0.4
    assert spark_ndcg > implicit_ndcg - QUALITY_MARGIN, f"spark_als {spark_ndcg:.4f} vs als {implicit_ndcg:.4f}"
