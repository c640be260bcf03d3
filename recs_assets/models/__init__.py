"""Recommendation models, one module per algorithm, all with the same interface (`Recommender`)."""

from recs_assets.models.als import ALSRecommender
from recs_assets.models.base import Recommender
from recs_assets.models.bpr import BPRRecommender
from recs_assets.models.ease import EASERecommender
from recs_assets.models.item_knn import ItemKNNRecommender
from recs_assets.models.matrix_factorization import MatrixFactorizationRecommender
from recs_assets.models.popularity import PopularityRecommender
from recs_assets.models.ranker import LightGBMRanker
from recs_assets.models.registry import MODELS, REGISTRY, model_class
from recs_assets.models.top_n import top_n

__all__ = [
    "MODELS",
    "REGISTRY",
    "ALSRecommender",
    "BPRRecommender",
    "EASERecommender",
    "ItemKNNRecommender",
    "LightGBMRanker",
    "MatrixFactorizationRecommender",
    "PopularityRecommender",
    "Recommender",
    "model_class",
    "top_n",
]
