"""Hyper-parameters and seeds of the candidate generators: one place, read by every asset that fits them.

The model assets and the re-ranker's training set both fit the generators; reading the same resource
guarantees they fit the same models. A field left empty (None) takes the model class's own default,
so defaults live in one place, the model's constructor; MLflow records the values actually used.
"""

from typing import Any

import dagster as dg

from recs_assets.models import MODELS
from recs_assets.models.registry import candidate_generators


class PopularityParams(dg.Config):
    by: str | None = None


class ItemKNNParams(dg.Config):
    k: int | None = None
    shrinkage: float | None = None


class EASEParams(dg.Config):
    l2: float | None = None
    # Above this many items in training, exact EASE runs on the most popular ones and the tail is sparse.
    max_dense_items: int | None = None
    sparse_neighbours: int | None = None


class ALSParams(dg.Config):
    factors: int | None = None
    regularization: float | None = None
    alpha: float | None = None
    iterations: int | None = None
    seed: int | None = None


class BPRParams(dg.Config):
    factors: int | None = None
    learning_rate: float | None = None
    regularization: float | None = None
    iterations: int | None = None
    seed: int | None = None
    # 1 (the default) keeps fits reproducible; more threads update shared factors without locks (Hogwild):
    # faster on a big shop (BPR is most of a 10M-event run), but two fits then differ slightly.
    num_threads: int | None = None


class ContentParams(dg.Config):
    cf_weight: float | None = None
    cf_neighbours: int | None = None
    category_weight: float | None = None
    brand_weight: float | None = None
    condition_weight: float | None = None
    size_weight: float | None = None
    price_weight: float | None = None
    title_weight: float | None = None
    n_price_bands: int | None = None


class TwoTowerParams(dg.Config):
    dim: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    temperature: float | None = None
    logq: int | None = None
    max_steps_per_epoch: int | None = None
    seed: int | None = None
    threads: int | None = None
    ann: str | None = None
    ann_min_items: int | None = None


class SessionKNNParams(dg.Config):
    k: int | None = None
    decay: str | None = None
    max_history: int | None = None
    shrinkage: float | None = None
    sample_size: int | None = None  # recent past visits per item a visit is compared with


class GRU4RecParams(dg.Config):
    factors: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    n_negatives: int | None = None
    max_length: int | None = None
    max_history: int | None = None
    max_train_items: int | None = None
    seed: int | None = None
    threads: int | None = None


class CandidateModels(dg.ConfigurableResource):
    """The five candidate generators' settings (change them in the launchpad or in definitions)."""

    # How many items each generator proposes to the re-ranker, in training and in scoring alike.
    n_candidates: int = 50
    # The feature engine (settings.ENGINES): it chooses some generators' implementation (on Spark, `als`
    # is Spark MLlib's), so the model assets, the ranker's lessons and the refits all fit the same class.
    engine: str = "duckdb"
    popularity: PopularityParams = PopularityParams()
    item_knn: ItemKNNParams = ItemKNNParams()
    ease: EASEParams = EASEParams()
    als: ALSParams = ALSParams()
    bpr: BPRParams = BPRParams()
    session_knn: SessionKNNParams = SessionKNNParams()
    gru4rec: GRU4RecParams = GRU4RecParams()
    content: ContentParams = ContentParams()
    two_tower: TwoTowerParams = TwoTowerParams()

    def build(self, name: str) -> Any:
        """A fresh, unfitted model of the named kind with its configured hyper-parameters."""
        if name not in MODELS:
            raise ValueError(f"unknown model {name!r}; expected one of {', '.join(MODELS)}")
        overrides = {k: v for k, v in getattr(self, name).model_dump().items() if v is not None}
        return candidate_generators(self.engine)[name](**overrides)

    def build_all(self) -> dict[str, Any]:
        return {name: self.build(name) for name in MODELS}
