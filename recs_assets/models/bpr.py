"""BPR: learns taste profiles by asking "did the user prefer the item they chose over a random one?".

Bayesian Personalised Ranking (Rendle et al., 2009) gives each user and item a list of numbers, like
ALS, but trains them directly for ranking: for many (user, chosen item, random other item) triples it
nudges the numbers so the chosen item scores higher. It only uses whether an interaction happened,
not how strong it was. Runs on the `implicit` library's CPU implementation.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from implicit.cpu.bpr import BayesianPersonalizedRanking
from threadpoolctl import threadpool_limits

from recs_assets.arguments import positive_int, whole_number
from recs_assets.models.inputs import binarized, non_negative
from recs_assets.models.matrix_factorization import MatrixFactorizationRecommender


class BPRRecommender(MatrixFactorizationRecommender):
    """Implicit BPR trained by SGD on the binarised matrix (implicit ignores strengths anyway).

    implicit adds one column to the factors it is asked for: an item bias (users hold a constant 1
    there). Scores use it; `similar_items` compares items without it, so that "similar" means
    similar taste rather than similar popularity. implicit reports no loss, so `training_loss` is
    None; `training_accuracy` is its share of sampled (chosen, random) pairs ranked correctly in
    the last epoch (implicit's "train_auc").

    Defaults were tuned on the simulator (2k to 30k users, last 7 days held out) and MovieLens
    100k. BPR needs small steps on sparse shop data: larger learning rates reach a high training
    accuracy and a test score below popularity. What matters is learning_rate x iterations of
    about 1, and the fit time is the iterations: each one samples as many triples as there are
    pairs, at random, so at 100k users every sample waits on memory. 0.002 x 500 scores as
    0.001 x 1000 did (NDCG@10 0.3384 vs 0.3374 on MovieLens 100k, 0.0644 vs 0.0645 on 30k simulated
    users, 0.0971 vs 0.0985 on 10k) in half the time; 0.003 x 300 loses up to 4% on the simulator
    (2k and 30k users) and 0.005 x 200 7-14%. At 100k simulated users (586k pairs) none of them
    beats popularity (0.0569): 300 iterations do best there (0.0558; 0.0520 with the default), as
    every item gets ten times more updates per iteration than at 10k. Even tuned, BPR beat
    popularity on the simulator by only 10-20% (ALS, EASE and item_knn by 20-40%).

    Deterministic only with one thread: with more, implicit's SGD threads update shared factors
    without locks (Hogwild), so two fits differ slightly. Hence `num_threads=1` by default.
    """

    name = "bpr"
    diagnostics = ("training_accuracy",)

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.002,
        regularization: float = 0.03,
        iterations: int = 500,
        seed: int = 42,
        num_threads: int = 1,
    ) -> None:
        factors = positive_int(factors, "factors")
        iterations = positive_int(iterations, "iterations")
        learning_rate = non_negative(learning_rate, "learning_rate")
        regularization = non_negative(regularization, "regularization")
        seed = whole_number(seed, "seed", minimum=0)
        num_threads = whole_number(num_threads, "num_threads (0 = every core)", minimum=0)
        super().__init__()
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.seed = seed
        self.num_threads = num_threads
        self.training_accuracy: float | None = None

    def _fit(self, user_items: sp.csr_matrix) -> None:
        training = binarized(user_items, np.float32)
        progress: list[tuple[int, int]] = []
        with threadpool_limits(1, "blas"):
            model = BayesianPersonalizedRanking(
                factors=self.factors,
                learning_rate=self.learning_rate,
                regularization=self.regularization,
                iterations=self.iterations,
                num_threads=self.num_threads,
                verify_negative_samples=True,
                random_state=self.seed,
            )
            model.fit(
                training,
                show_progress=False,
                callback=lambda _it, _secs, correct, skipped: progress.append((correct, skipped)),
            )
        self._set_factors(model.user_factors, model.item_factors)
        self.training_accuracy = None
        if progress:
            correct, skipped = progress[-1]
            sampled = training.nnz - skipped  # skipped: the "random" item turned out to be liked too
            self.training_accuracy = correct / sampled if sampled > 0 else None

    def _similarity_factors(self) -> np.ndarray:
        assert self._item_factors is not None
        return self._item_factors[:, :-1]

