"""The one list of model kinds: name -> class, read by the pipeline, `Recommender.load` and model storage.

A saved model names its kind (e.g. "ease"); loading looks that name up here and nowhere else, so a
file on disk can only ever select one of these classes, never make us import arbitrary code.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from recs_assets.models.als import ALSRecommender
from recs_assets.models.bpr import BPRRecommender
from recs_assets.models.content import ContentRecommender
from recs_assets.models.ease import EASERecommender
from recs_assets.models.item_knn import ItemKNNRecommender
from recs_assets.models.popularity import PopularityRecommender
from recs_assets.models.ranker import LightGBMRanker
from recs_assets.models.sequence_gru import GRU4RecRecommender
from recs_assets.models.session_knn import SessionKNNRecommender
from recs_assets.models.spark_als import SparkALSRecommender
from recs_assets.models.two_tower import TwoTowerRecommender

# The candidate generators, in the order the pipeline builds, reports and combines them.
CANDIDATE_GENERATORS: tuple[type, ...] = (
    PopularityRecommender,
    ItemKNNRecommender,
    EASERecommender,
    ALSRecommender,
    BPRRecommender,
    SessionKNNRecommender,
    GRU4RecRecommender,
    ContentRecommender,
    TwoTowerRecommender,
)

# Generators whose implementation the feature engine (settings.ENGINES) chooses: generator name -> class.
# On Spark the `als` generator is Spark MLlib's ALS, which trains where the data is when it lives on a
# cluster (on one machine implicit's ALS is many times faster, so it stays the default).
ENGINE_IMPLEMENTATIONS: Mapping[str, Mapping[str, type]] = MappingProxyType(
    {"spark": MappingProxyType({"als": SparkALSRecommender})}
)

REGISTRY: Mapping[str, type] = MappingProxyType(
    {cls.name: cls for cls in (*CANDIDATE_GENERATORS, *(c for g in ENGINE_IMPLEMENTATIONS.values() for c in g.values()),
                               LightGBMRanker)}
)

# Each model's name -> class, candidate generators only (what most callers iterate over).
MODELS: Mapping[str, type] = MappingProxyType({cls.name: cls for cls in CANDIDATE_GENERATORS})


def candidate_generators(engine: str = "duckdb") -> Mapping[str, type]:
    """The generators the pipeline fits on this feature engine: MODELS' names, in order, each with the class
    that implements it there (the engine's own where it has one)."""
    own = ENGINE_IMPLEMENTATIONS.get(engine, {})
    return MappingProxyType({name: own.get(name, cls) for name, cls in MODELS.items()})


def model_class(name: object) -> type:
    """The class registered under `name`, or a ValueError listing the known names."""
    cls = REGISTRY.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(REGISTRY)}")
    return cls


def registered_name(model: object) -> str:
    """The registry name of a model instance (ValueError for a class that is not registered)."""
    for name, cls in REGISTRY.items():
        if type(model) is cls:
            return name
    raise ValueError(f"{type(model).__name__} is not a registered model; known models: {', '.join(REGISTRY)}")
