"""The re-ranker: LightGBM LambdaRank over the union of the candidate generators' top items.

Each generator (popularity, item-kNN, EASE, ALS, BPR) proposes its top items for a user; the re-ranker
looks at all proposals together with what we know of the user and the item (how active the user is,
their favourite categories and price level, the item's popularity, conversion rates, freshness and
price) and learns, from what users did next, which proposals to put first.

A saved ranker is one JSON file holding its settings, its feature list and the trained trees in
LightGBM's own text format (no pickle: loading a file can never run code).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import polars as pl

from recs_assets.models.inputs import list_length

_SAVE_FORMAT = 1

# What the ranker reads about users and items (columns of user_features / item_features).
USER_COLUMNS = (
    "n_events",
    "n_sessions",
    "n_active_days",
    "n_purchases",
    "recency_days",
    "monetary",
    "price_level",
    "top_category_share",
)
ITEM_COLUMNS = (
    "n_users",
    "n_views",
    "n_purchases",
    "popularity_rank",
    "view_to_cart_rate",
    "cart_to_purchase_rate",
    "view_to_purchase_rate",
    "price",
    "listing_age_days",
)

def ranking_features(
    candidate_pairs: pl.DataFrame,
    user_features: pl.DataFrame,
    item_features: pl.DataFrame,
    user_category_affinity: pl.DataFrame,
) -> pl.DataFrame:
    """Add what we know about each user and item to the candidate pairs (all measured at one cut-off).

    Also two pair features: the user's affinity for the item's category, and the item's price relative
    to the user's usual price level.
    """
    users = user_features.select("user_id", *[pl.col(c).cast(pl.Float64).alias(f"user_{c}") for c in USER_COLUMNS])
    items = item_features.select(
        "item_id", "category", *[pl.col(c).cast(pl.Float64).alias(f"item_{c}") for c in ITEM_COLUMNS]
    )
    affinity = user_category_affinity.select("user_id", "category", pl.col("share").alias("user_category_share"))
    return (
        candidate_pairs.join(users, on="user_id", how="left")
        .join(items, on="item_id", how="left")
        .join(affinity, on=["user_id", "category"], how="left")
        .with_columns(
            pl.col("user_category_share").fill_null(0.0),
            (pl.col("item_price") / pl.col("user_price_level")).alias("price_to_user_level"),
        )
        .drop("category")
    )

def attach_labels(features: pl.DataFrame, truth: pl.DataFrame) -> pl.DataFrame:
    """Label each candidate 1 if the user interacted with it in the label window, else 0."""
    positives = truth.select("user_id", "item_id").unique().with_columns(pl.lit(1, dtype=pl.Int32).alias("label"))
    return features.join(positives, on=["user_id", "item_id"], how="left").with_columns(pl.col("label").fill_null(0))

# Columns that identify or label a row rather than describe it.
NOT_FEATURES = ("user_id", "item_id", "label", "window")

def feature_columns(frame: pl.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in NOT_FEATURES]

class LightGBMRanker:
    """LambdaRank on candidate pairs grouped by user; hyper-parameters and seed are explicit.

    `booster` is the trained LightGBM model (`lightgbm.Booster`, what MLflow's LightGBM flavour logs).
    """

    name = "ranker"

    def __init__(
        self,
        n_estimators: int = 100,
        learning_rate: float = 0.05,
        num_leaves: int = 7,
        min_child_samples: int = 100,
        seed: int = 42,
    ) -> None:
        # Small trees and large leaves on purpose: positives are rare (about 1 in 100 candidates), and a
        # bigger model learns the label windows' noise (in-sample NDCG doubles, held-out NDCG drops).
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.seed = seed
        self.features: list[str] = []
        self.booster: lgb.Booster | None = None
        self.fit_seconds: float | None = None

    def params(self) -> dict[str, Any]:
        return {
            "n_estimators": self.n_estimators,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "seed": self.seed,
        }

    def fit(self, labelled: pl.DataFrame) -> LightGBMRanker:
        """Learn from labelled candidates; users with no positive candidate teach nothing and are left out."""
        # One ranked list per user and label window; lists without a positive teach nothing.
        keys = ["window", "user_id"] if "window" in labelled.columns else ["user_id"]
        useful = labelled.filter(pl.col("label").max().over(keys) > 0).sort([*keys, "item_id"])
        if useful.height == 0:
            raise ValueError("no user has a positive candidate: the label window or candidate lists are too small")
        self.features = feature_columns(useful)
        groups = useful.group_by(keys, maintain_order=True).len()["len"].to_numpy()
        started = time.perf_counter()
        model = lgb.LGBMRanker(
            objective="lambdarank",
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            random_state=self.seed,
            deterministic=True,
            force_row_wise=True,
            n_jobs=2,
            verbose=-1,
        )
        model.fit(useful.select(self.features).to_numpy(), useful["label"].to_numpy(), group=groups)
        self.booster = model.booster_
        self.fit_seconds = time.perf_counter() - started
        return self

    def score(self, features: pl.DataFrame) -> np.ndarray:
        if self.booster is None:
            raise RuntimeError("the ranker has not been fitted")
        missing = [c for c in self.features if c not in features.columns]
        if missing:
            raise ValueError(f"ranking features missing: {', '.join(missing)}")
        return self.booster.predict(features.select(self.features).to_numpy())

    def rank(self, features: pl.DataFrame, N: int) -> pl.DataFrame:
        """Top-N per user: user_id, item_id, rank (1 = best), score."""
        N = list_length(N)
        scored = features.select("user_id", "item_id").with_columns(pl.Series("score", self.score(features)))
        return (
            scored.sort(["user_id", "score", "item_id"], descending=[False, True, False])
            .with_columns(pl.int_range(1, pl.len() + 1).over("user_id").cast(pl.Int32).alias("rank"))
            .filter(pl.col("rank") <= N)
            .select("user_id", "item_id", "rank", "score")
        )

    def importance(self) -> dict[str, float]:
        """Total gain per feature: which signals the ranker leans on."""
        if self.booster is None:
            return {}
        gains = self.booster.feature_importance(importance_type="gain")
        return dict(sorted(zip(self.features, map(float, gains)), key=lambda kv: -kv[1]))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the fitted ranker to one JSON file (trees in LightGBM's text format), atomically."""
        if self.booster is None:
            raise RuntimeError("the ranker has not been fitted: nothing to save")
        path = Path(path)
        document = {
            "format": _SAVE_FORMAT,
            "name": self.name,
            "params": self.params(),
            "features": self.features,
            "fit_seconds": self.fit_seconds,
            "lightgbm_model": self.booster.model_to_string(),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(document, handle)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LightGBMRanker:
        """Read a ranker written by `save`."""
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{path} is not a saved ranker (expected JSON with a LightGBM text model): {error}") from None
        if not isinstance(document, dict) or document.get("format") != _SAVE_FORMAT or document.get("name") != cls.name:
            found = document.get("format") if isinstance(document, dict) else type(document).__name__
            raise ValueError(f"{path}: not a saved ranker of format {_SAVE_FORMAT} (found {found!r})")
        ranker = cls(**document["params"])
        ranker.features = list(document["features"])
        ranker.fit_seconds = document["fit_seconds"]
        ranker.booster = lgb.Booster(model_str=document["lightgbm_model"])
        return ranker
