"""The re-ranker: LightGBM LambdaRank over the union of the candidate generators' top items.

Each generator (popularity, item-kNN, EASE, ALS, BPR) proposes its top items for a user; the re-ranker
looks at all proposals together with what we know of the user and the item (how active the user is,
their favourite categories and price level, the item's popularity, conversion rates, freshness and
price) and learns, from what users did next, which proposals to put first.

Honest by construction: a seeded share of the lesson lists (whole users) is held out, a ranker is
fitted on the rest, and the held-out lists gate it (`fallback`): when the best single generator orders
them at least as well as the ranker does, the ranker keeps that generator's list instead of its own.
The trees are then refit on every lesson (optionally with the number early stopping chose). A choice made inside
training, on validation only, so a ranker never serves worse than its best input *as measured there*.

A saved ranker is one JSON file holding its settings, its feature list, the gate's decision and the
trained trees in LightGBM's own text format (no pickle: loading a file can never run code).
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

from recs_assets.arguments import fraction
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


def generator_names(columns: list[str]) -> list[str]:
    """The candidate generators behind a lesson table: every `<name>` with both `<name>_score` and `<name>_rank`."""
    present = set(columns)
    return [c[: -len("_rank")] for c in columns if c.endswith("_rank") and f"{c[: -len('_rank')]}_score" in present]


def list_ndcg(labels: np.ndarray, scores: np.ndarray, groups: np.ndarray, k: int) -> float:
    """Mean NDCG@k over consecutive lists (`groups` = their lengths), binary labels, higher score first.

    The ideal is the list's own positives, so several orders of the same candidates compare fairly; a
    list without a positive has no NDCG and is skipped. Ties keep the rows' order (a stable sort).
    """
    labels, scores, groups = np.asarray(labels, dtype=float), np.asarray(scores, dtype=float), np.asarray(groups, dtype=int)
    if labels.shape != scores.shape or groups.sum() != labels.size:
        raise ValueError(f"labels ({labels.size}), scores ({scores.size}) and the list lengths (sum {groups.sum()}) disagree")
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    values, start = [], 0
    for size in groups:
        gain, order = labels[start:start + size], np.argsort(-scores[start:start + size], kind="stable")
        start += size
        positives = int((gain > 0).sum())
        if positives == 0:
            continue
        top = gain[order][:k]
        values.append(float((top * discount[: top.size]).sum() / discount[: min(positives, k)].sum()))
    return float(np.mean(values)) if values else float("nan")


def _rank_order(ranks: np.ndarray) -> np.ndarray:
    """A generator's rank as a score (higher first); items it did not propose come last."""
    ranks = np.asarray(ranks, dtype=float)
    return np.where(np.isnan(ranks), -np.inf, -ranks)

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
        validation_fraction: float = 0.2,
        early_stopping_rounds: int | None = None,
        gate: bool = True,
    ) -> None:
        # Small trees and large leaves on purpose: positives are rare (about 1 in 100 candidates), and a
        # bigger model learns the label windows' noise (in-sample NDCG doubles, held-out NDCG drops).
        # With `early_stopping_rounds`, `n_estimators` is the most trees and the held-out lists pick how
        # many. Off by default: on MovieLens 100k's validation split inside train (benchmarks/
        # movielens_100k.py's seed-43 split) it changed nothing (0.02 x up to 300 trees, patience 50:
        # 0.2734; 100 trees: 0.2731; the generators' best 0.2686; patience 20 at 0.05 stopped at 5 trees:
        # 0.2648), and on the simulator (10k users) it stopped at 46 trees and lost: 0.0391 against
        # 0.0425 for 100 trees (two_tower 0.0417). The lesson lists peak earlier than the test week does.
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.seed = seed
        self.validation_fraction = 0.0 if validation_fraction == 0 else fraction(validation_fraction, "validation_fraction")
        self.early_stopping_rounds = early_stopping_rounds
        self.gate = bool(gate)
        self.features: list[str] = []
        self.booster: lgb.Booster | None = None
        self.fit_seconds: float | None = None
        # The gate's decision: None = the ranker's own order; a generator's name = that generator's list.
        self.fallback: str | None = None
        self.validation: dict[str, Any] = {}

    def params(self) -> dict[str, Any]:
        return {
            "n_estimators": self.n_estimators,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "seed": self.seed,
            "validation_fraction": self.validation_fraction,
            "early_stopping_rounds": self.early_stopping_rounds,
            "gate": self.gate,
        }

    def fit(self, labelled: pl.DataFrame) -> LightGBMRanker:
        """Learn from labelled candidates; users with no positive candidate teach nothing and are left out.

        With `validation_fraction` > 0 (and at least two users to learn from), a seeded share of the
        users' lists is held out: the gate compares the ranker's NDCG@10 on it with each generator's
        (`validation`; with `early_stopping_rounds`, early stopping on it also picks the number of
        trees), and the trees are then refit on every lesson.
        """
        # One ranked list per user and label window; lists without a positive teach nothing.
        keys = ["window", "user_id"] if "window" in labelled.columns else ["user_id"]
        useful = labelled.filter(pl.col("label").max().over(keys) > 0).sort([*keys, "item_id"])
        if useful.height == 0:
            raise ValueError("no user has a positive candidate: the label window or candidate lists are too small")
        self.features = feature_columns(useful)
        self.fallback, self.validation = None, {}
        started = time.perf_counter()
        rounds = self.n_estimators
        held_out = self._held_out_users(useful)
        if held_out is not None:
            inside = useful["user_id"].is_in(held_out.implode())
            fit_part, valid_part = useful.filter(~inside), useful.filter(inside)
            booster = self._train(fit_part, keys, self.n_estimators, valid_part)
            if self.early_stopping_rounds:
                rounds = max(1, booster.best_iteration or self.n_estimators)
            self.validation = self._validate(booster, valid_part, keys, rounds)
            if self.gate and self.validation["best_generator"] is not None:
                if self.validation["best_generator_ndcg@10"] >= self.validation["ranker_ndcg@10"]:
                    self.fallback = self.validation["best_generator"]
        self.booster = self._train(useful, keys, rounds)
        self.fit_seconds = time.perf_counter() - started
        return self

    def _held_out_users(self, useful: pl.DataFrame) -> pl.Series | None:
        """The users whose lists are held out for early stopping and the gate (None: no validation)."""
        users = useful["user_id"].unique().sort()
        n_valid = int(round(self.validation_fraction * users.len()))
        if self.validation_fraction == 0 or n_valid == 0 or n_valid == users.len():
            return None
        rng = np.random.default_rng(self.seed)
        return pl.Series("user_id", rng.choice(users.to_numpy(), size=n_valid, replace=False), dtype=users.dtype)

    def _train(self, frame: pl.DataFrame, keys: list[str], rounds: int, valid: pl.DataFrame | None = None) -> lgb.Booster:
        params = {
            "objective": "lambdarank",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_child_samples,
            "seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": 2,
            "verbose": -1,
            "metric": "ndcg",
            "eval_at": [10],
        }

        def dataset(part: pl.DataFrame, reference: lgb.Dataset | None = None) -> lgb.Dataset:
            groups = part.group_by(keys, maintain_order=True).len()["len"].to_numpy()
            return lgb.Dataset(part.select(self.features).to_numpy(), part["label"].to_numpy(), group=groups,
                               reference=reference, free_raw_data=False)

        train = dataset(frame)
        if valid is None:
            return lgb.train(params, train, num_boost_round=rounds)
        if not self.early_stopping_rounds:
            return lgb.train(params, train, num_boost_round=rounds)
        stop = [lgb.early_stopping(self.early_stopping_rounds, first_metric_only=True, verbose=False)]
        return lgb.train(params, train, num_boost_round=rounds, valid_sets=[dataset(valid, train)], callbacks=stop)

    def _validate(self, booster: lgb.Booster, valid: pl.DataFrame, keys: list[str], rounds: int) -> dict[str, Any]:
        """NDCG@10 on the held-out lists: the ranker's, and each generator's own order of the same candidates."""
        groups = valid.group_by(keys, maintain_order=True).len()["len"].to_numpy()
        labels = valid["label"].to_numpy()
        ranker = list_ndcg(labels, booster.predict(valid.select(self.features).to_numpy(), num_iteration=rounds), groups, 10)
        generators = {
            name: list_ndcg(labels, _rank_order(valid[f"{name}_rank"].cast(pl.Float64).fill_null(np.nan).to_numpy()), groups, 10)
            for name in generator_names(self.features)
        }
        best = max(generators, key=generators.get) if generators else None
        return {
            "lists": int(groups.size),
            "trees": rounds,
            "ranker_ndcg@10": round(ranker, 6),
            "generators_ndcg@10": {name: round(v, 6) for name, v in generators.items()},
            "best_generator": best,
            "best_generator_ndcg@10": round(generators[best], 6) if best else None,
        }

    def score(self, features: pl.DataFrame) -> np.ndarray:
        if self.booster is None:
            raise RuntimeError("the ranker has not been fitted")
        missing = [c for c in self.features if c not in features.columns]
        if missing:
            raise ValueError(f"ranking features missing: {', '.join(missing)}")
        return self.booster.predict(features.select(self.features).to_numpy())

    def rank(self, features: pl.DataFrame, N: int) -> pl.DataFrame:
        """Top-N per user: user_id, item_id, rank (1 = best), score (the gate's generator's order when it fell back)."""
        N = list_length(N)
        if self.fallback is not None:
            column = f"{self.fallback}_rank"
            if column not in features.columns:
                raise ValueError(f"ranking features missing: {column} (the ranker keeps {self.fallback}'s list)")
            scores = _rank_order(features[column].cast(pl.Float64).fill_null(np.nan).to_numpy())
        else:
            scores = self.score(features)
        scored = features.select("user_id", "item_id").with_columns(pl.Series("score", scores))
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
            "fallback": self.fallback,
            "validation": self.validation,
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
        ranker.fallback = document.get("fallback")  # rankers saved before the gate have none
        ranker.validation = document.get("validation", {})
        ranker.booster = lgb.Booster(model_str=document["lightgbm_model"])
        return ranker
