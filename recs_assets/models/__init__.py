"""Recommendation models, one module per algorithm, all with the same interface (`Recommender`)."""

from recs_assets.models.als import ALSRecommender
from recs_assets.models.base import MatrixFactorizationRecommender, Recommender, top_n
from recs_assets.models.bpr import BPRRecommender
from recs_assets.models.ease import EASERecommender
from recs_assets.models.item_knn import ItemKNNRecommender
from recs_assets.models.popularity import PopularityRecommender

MODELS: dict[str, type[Recommender]] = {
    cls.name: cls
    for cls in (PopularityRecommender, ItemKNNRecommender, EASERecommender, ALSRecommender, BPRRecommender)
}

__all__ = [
    "MODELS",
    "ALSRecommender",
    "BPRRecommender",
    "EASERecommender",
    "ItemKNNRecommender",
    "MatrixFactorizationRecommender",
    "PopularityRecommender",
    "Recommender",
    "top_n",
]
