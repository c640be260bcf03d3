"""ALS: learns a short "taste profile" per user and per item from implicit feedback (views, buys, plays).

Each user and each item becomes a list of numbers (factors); a user's predicted interest in an item
is how well the two lists line up. Alternating least squares (Hu, Koren & Volinsky, 2008) fits them
by treating every interaction as a "yes" we are confident about in proportion to its strength, and
everything else as a weak "probably not". It scales to millions of users and is the workhorse of
implicit-feedback recommenders. Runs on the `implicit` library's CPU implementation.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from recs_assets.arguments import positive_int, whole_number
from recs_assets.models.inputs import non_negative
from recs_assets.models.matrix_factorization import MatrixFactorizationRecommender, finite_or_none


class ALSRecommender(MatrixFactorizationRecommender):
    """Implicit ALS with confidence c_ui = 1 + alpha * strength_ui (Hu et al.).

    implicit treats the stored value as the confidence itself, so the matrix passed to it holds
    1 + alpha * strength and implicit's own alpha stays 1. `training_loss` is implicit's weighted
    squared-error loss after the last iteration. Results do not depend on `num_threads` (each
    user's / item's solve is independent); it defaults to 1 because on the 2-core target machine two
    threads were slower (10k-user simulator: 1.1 s vs 0.5 s; 2M synthetic interactions: 5.6 s vs
    4.9 s). Raise it (0 = every core) on bigger machines.

    Defaults were tuned on the simulator (2k and 10k users, last 7 days held out) and MovieLens 100k:
    sparse shop data needs strong regularisation. `regularization` is absolute (implicit does not
    scale it by activity), so the best value grows with the data and with the scale of `strength`;
    quality falls off steeply outside regularization / alpha of about 30-100. Re-tune when the data
    grows by an order of magnitude.
    """

    name = "als"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 50.0,
        alpha: float = 1.0,
        iterations: int = 15,
        seed: int = 42,
        num_threads: int = 1,
    ) -> None:
        factors = positive_int(factors, "factors")
        iterations = positive_int(iterations, "iterations")
        regularization = non_negative(regularization, "regularization")
        alpha = non_negative(alpha, "alpha")
        seed = whole_number(seed, "seed", minimum=0)
        num_threads = whole_number(num_threads, "num_threads (0 = every core)", minimum=0)
        super().__init__()
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.seed = seed
        self.num_threads = num_threads

    def _fit(self, user_items: sp.csr_matrix) -> None:
        confidence = user_items.astype(np.float32)
        confidence.data = 1.0 + np.float32(self.alpha) * confidence.data
        losses: list[float | None] = []
        # OpenBLAS's own thread pool fights implicit's threads (10x slower on 2 cores).
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=1.0,
                iterations=self.iterations,
                calculate_training_loss=True,
                random_state=self.seed,
                num_threads=self.num_threads,
            )
            model.fit(confidence, show_progress=False, callback=lambda _it, _secs, loss: losses.append(loss))
        self._set_factors(model.user_factors, model.item_factors)
        self.training_loss = finite_or_none(losses[-1] if losses else None)

