"""GRU4Rec: a recurrent network that reads a visit item by item and predicts the next item.

A gated recurrent unit (GRU) keeps a running summary of the visit so far; after each item the summary
is compared with every item's output vector, and the best matches are what the shopper most likely
looks at next. Unlike session-kNN it knows order ("B after A" differs from "A after B") and it
generalises across visits that share no item, through the learnt item vectors (Hidasi et al.,
"Session-based recommendations with recurrent neural networks", ICLR 2016; the cross-entropy loss
over in-batch and sampled negatives of Hidasi & Karatzoglou, 2018).

Trained with PyTorch on CPU; predictions run in numpy from the saved weights (the same equations as
`torch.nn.GRU`, tested to agree), so scoring, loading and serving never need PyTorch, and the model is
stored as plain arrays (no pickle).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from recs_assets.arguments import non_negative_int, positive_int
from recs_assets.models.inputs import non_negative, positive
from recs_assets.models.sequences import SequenceRecommender, Sequences

_WEIGHTS = ("embedding", "w_ih", "w_hh", "b_ih", "b_hh", "out_w", "out_b")


class GRU4RecRecommender(SequenceRecommender):
    """One-layer GRU4Rec with sampled-softmax cross-entropy.

    Each training visit is cut into windows of at most `max_length` + 1 items; at every position the
    loss is the cross-entropy of the true next item against the other next items of the batch and
    `n_negatives` items drawn in proportion to popularity^0.75 (one shared draw per batch). Adam,
    `epochs` passes, windows batched by length (less padding) in a seeded order. When the training
    visits hold more than `max_train_items` items, the most recent ones are used (a time budget:
    the latest behaviour is what the model must predict). `threads` PyTorch threads during the fit;
    `seed` makes two fits identical. `categories`: item vectors include their category's (see `_GRU4Rec`);
    `logq`: how much of log popularity is subtracted from the training logits. Defaults chosen on the
    simulator's session protocol (games and fashion, 3k users): 32 factors, 4 epochs and logq 1 gave
    HR@20 0.204 / 0.054 against popularity's 0.122 / 0.021; without categories or logq the GRU fell
    to popularity's level or below, more epochs overfitted, and fewer (3) fell below popularity on a
    smaller shop's anonymous visits. A fit takes about 1.5 s on 3k users (`make run` fits it four times). Fitted without an order (each user's items as one set), every
    epoch shows each set in a fresh seeded order, since any item of a set may come "next".
    """

    name = "gru4rec"

    def __init__(
        self,
        factors: int = 32,
        epochs: int = 4,
        batch_size: int = 256,
        learning_rate: float = 0.01,
        n_negatives: int = 512,
        max_length: int = 20,
        max_history: int = 20,
        max_train_items: int = 200_000,
        categories: bool = True,
        logq: float = 1.0,
        seed: int = 42,
        threads: int = 1,
    ) -> None:
        factors = positive_int(factors, "factors")
        epochs = positive_int(epochs, "epochs")
        batch_size = positive_int(batch_size, "batch_size")
        learning_rate = positive(learning_rate, "learning_rate")
        n_negatives = non_negative_int(n_negatives, "n_negatives")
        max_length = positive_int(max_length, "max_length")
        max_train_items = positive_int(max_train_items, "max_train_items")
        seed = non_negative_int(seed, "seed")
        if not isinstance(categories, bool):
            raise ValueError(f"categories must be True or False, got {categories!r}")
        logq = non_negative(logq, "logq")
        threads = positive_int(threads, "threads")
        super().__init__(max_history=max_history)
        self.factors = factors
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.n_negatives = n_negatives
        self.max_length = max_length
        self.max_train_items = max_train_items
        self.categories = categories
        self.logq = logq
        self.seed = seed
        self.threads = threads
        self._weights: dict[str, np.ndarray] = {}  # float32, as trained and saved
        self._compute: dict[str, np.ndarray] = {}
        self._input_gates: np.ndarray | None = None  # embedding @ w_ih.T + b_ih per item (+ padding row)

    # --- training (PyTorch) -----------------------------------------------------------------------

    def _fit_sequences(self, user_items: sp.csr_matrix, sequences: Sequences) -> None:
        import torch

        windows = self._windows(sequences)
        previous_threads = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            torch.manual_seed(self.seed)
            category_of = self._category_index() if self.categories else None
            net = _GRU4Rec(self.n_items, self.factors, category_of)
            loss = self._train(net, windows, user_items) if len(windows) else math.nan
        finally:
            torch.set_num_threads(previous_threads)
        self.training_loss = None if math.isnan(loss) else float(loss)
        self.fit_notes = {"windows": len(windows), "trained_items": int(sum(len(w) for w in windows))}
        self._set_weights({name: value.detach().numpy().astype(np.float32).copy() for name, value in net.arrays().items()})

    def _category_index(self) -> np.ndarray:
        """Each training item's category as an index (items without one share the last index)."""
        assert self._item_ids is not None
        names = [self._category_of.get(i) for i in self._item_ids]
        known = sorted({c for c in names if c is not None})
        index = {c: k for k, c in enumerate(known)}
        return np.array([index.get(c, len(known)) if c is not None else len(known) for c in names], dtype=np.int64)

    def _windows(self, sequences: Sequences) -> list[np.ndarray]:
        """Training windows of 2..max_length + 1 items (consecutive windows share one item), newest kept."""
        lengths = sequences.lengths
        keep = np.flatnonzero(lengths >= 2)
        if len(keep):
            # The most recent visits within the item budget (visits are in time order).
            budget = np.cumsum(lengths[keep][::-1]) <= self.max_train_items
            budget[0] = True
            keep = keep[::-1][budget][::-1]
        windows = []
        step = self.max_length
        for s in keep:
            items = sequences.items[sequences.indptr[s] : sequences.indptr[s + 1]]
            for start in range(0, len(items) - 1, step):
                windows.append(items[start : start + step + 1])
        return windows

    def _train(self, net, windows: list[np.ndarray], user_items: sp.csr_matrix) -> float:
        import torch

        rng = np.random.default_rng(self.seed)
        pad = self.n_items
        lengths = np.array([len(w) if self._ordered else min(2 * len(w), self.max_length + 1) for w in windows])
        # Batches of similar length waste little on padding; their order is shuffled every epoch.
        by_length = np.argsort(lengths, kind="stable")
        batches = [by_length[i : i + self.batch_size] for i in range(0, len(by_length), self.batch_size)]
        popularity = np.asarray(user_items.getnnz(axis=0), dtype=np.float64) ** 0.75
        sampling = popularity / popularity.sum()
        log_popularity = np.log(np.maximum(np.asarray(user_items.getnnz(axis=0), dtype=np.float32), 1.0))
        n_neg = min(self.n_negatives, self.n_items)
        optimiser = _Adam(list(net.parameters()), self.learning_rate)
        epoch_loss = math.nan
        for _ in range(self.epochs):
            total, count = 0.0, 0
            for b in rng.permutation(len(batches)):
                rows = batches[b]
                width = int(lengths[rows].max())
                block = np.full((len(rows), width), pad, dtype=np.int64)
                for r, w in enumerate(rows):
                    block[r, : lengths[w]] = windows[w] if self._ordered else self._shuffled(windows[w], rng)
                inputs, targets = block[:, :-1], block[:, 1:]
                valid = targets != pad
                negatives = rng.choice(self.n_items, size=n_neg, replace=False, p=sampling) if n_neg else np.zeros(0, np.int64)
                # The batch's true next items and the shared draw, each once: position = the label.
                candidates, label = np.unique(np.concatenate([targets[valid], negatives]), return_inverse=True)
                label = label[: int(valid.sum())]
                hidden = net.encode(torch.from_numpy(inputs))[torch.from_numpy(valid)]
                logits = net.logits(hidden, torch.from_numpy(candidates))
                if self.logq:
                    # Popular items are drawn as negatives more often than their share of next items
                    # warrants; subtracting log popularity undoes that bias (Yi et al., RecSys 2019).
                    logits = logits - self.logq * torch.from_numpy(log_popularity[candidates])
                loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(label))
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(label)
                count += len(label)
            epoch_loss = total / max(count, 1)
        return epoch_loss

    def _shuffled(self, items: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """An unordered visit shown as two seeded shuffles in a row: every item of the set follows the others,
        including items already shown (what `exclude_seen=False` asks about)."""
        return np.concatenate([rng.permutation(items), rng.permutation(items)])[: self.max_length + 1]

    # --- scoring (numpy) --------------------------------------------------------------------------

    def _set_weights(self, weights: dict[str, np.ndarray]) -> None:
        self._weights = weights
        # Scored in float64: float32 products can differ in the last digit with the batch size.
        self._compute = {name: value.astype(np.float64) for name, value in weights.items()}
        self._input_gates = self._compute["embedding"] @ self._compute["w_ih"].T + self._compute["b_ih"]

    def hidden_states(self, prefixes: Sequences) -> np.ndarray:
        """The GRU's state after each sequence's last item: (len(prefixes), factors), float64."""
        assert self._input_gates is not None
        w_hh, b_hh = self._compute["w_hh"], self._compute["b_hh"]
        f = self.factors
        m = len(prefixes)
        lengths = prefixes.lengths
        width = int(lengths.max()) if m else 0
        # Right-aligned: every sequence ends at the last step; before its start its state stays 0.
        grid = np.full((m, width), self.n_items, dtype=np.int64)
        cols = np.arange(prefixes.indptr[-1]) - np.repeat(prefixes.indptr[:-1], lengths) + np.repeat(width - lengths, lengths)
        grid[np.repeat(np.arange(m), lengths), cols] = prefixes.items
        h = np.zeros((m, f), dtype=np.float64)
        for t in range(width):
            active = grid[:, t] != self.n_items
            if not active.any():
                continue
            x = self._input_gates[grid[active, t]]
            hh = h[active] @ w_hh.T + b_hh
            r = _sigmoid(x[:, :f] + hh[:, :f])
            z = _sigmoid(x[:, f : 2 * f] + hh[:, f : 2 * f])
            n = np.tanh(x[:, 2 * f :] + r * hh[:, 2 * f :])
            h[active] = (1.0 - z) * n + z * h[active]
        return h

    def _score_sequences(self, prefixes: Sequences) -> np.ndarray:
        h = self.hidden_states(prefixes)
        return h @ self._compute["out_w"].T + self._compute["out_b"]

    def _item_similarities(self, item_idx: np.ndarray) -> np.ndarray:
        # "More like this" = the next items the network expects after looking at just this item.
        prefixes = Sequences.from_lists([[int(i)] for i in item_idx])
        scores = self._score_sequences(prefixes)
        # Softmax over items: positive similarities, comparable between rows.
        scores -= scores.max(axis=1, keepdims=True)
        np.exp(scores, out=scores)
        return scores / scores.sum(axis=1, keepdims=True)

    def _sequence_state(self) -> dict[str, np.ndarray]:
        return {f"weights.{name}": self._weights[name] for name in _WEIGHTS}

    def _restore_sequence_state(self, state: dict[str, np.ndarray]) -> None:
        self._set_weights({name: state[f"weights.{name}"] for name in _WEIGHTS})


class _Adam:
    """Adam (Kingma & Ba 2015) in a few lines. torch.optim's first step imports torch._dynamo, about
    5 seconds on every fresh process (each `make run`), for a model that trains in one or two."""

    def __init__(self, params: list, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        import torch

        self.params, self.lr, self.betas, self.eps, self.t = params, lr, betas, eps, 0
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        import torch

        self.t += 1
        b1, b2 = self.betas
        step = self.lr * math.sqrt(1 - b2**self.t) / (1 - b1**self.t)
        with torch.no_grad():
            for p, m, v in zip(self.params, self.m, self.v, strict=True):
                if p.grad is None:
                    continue
                m.mul_(b1).add_(p.grad, alpha=1 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                p.addcdiv_(m, v.sqrt().add_(self.eps), value=-step)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _GRU4Rec(n_items: int, factors: int, category_of: np.ndarray | None):
    """The network (built lazily so that importing this module never imports PyTorch).

    With `category_of`, an item's input and output vectors are its own plus its category's, so an item
    seen a few times borrows what its category's items taught (the feature-rich GRU4Rec idea of Hidasi
    et al., RecSys 2016); `arrays` returns the sums, so scoring needs no categories.
    """
    import torch

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = torch.nn.Embedding(n_items + 1, factors, padding_idx=n_items)
            self.gru = torch.nn.GRU(factors, factors, batch_first=True)
            self.out_w = torch.nn.Embedding(n_items, factors)
            self.out_b = torch.nn.Embedding(n_items, 1)
            torch.nn.init.normal_(self.out_w.weight, std=1.0 / math.sqrt(factors))
            torch.nn.init.zeros_(self.out_b.weight)
            self.category = None
            if category_of is not None:
                n_categories = int(category_of.max()) + 1 if len(category_of) else 1
                # The padding slot gets its own category row, which stays zero.
                self.category = torch.from_numpy(np.concatenate([category_of, [n_categories]]))
                self.cat_in = torch.nn.Embedding(n_categories + 1, factors, padding_idx=n_categories)
                self.cat_out = torch.nn.Embedding(n_categories + 1, factors, padding_idx=n_categories)
                self.cat_b = torch.nn.Embedding(n_categories + 1, 1, padding_idx=n_categories)
                for table in (self.cat_in, self.cat_out, self.cat_b):
                    torch.nn.init.zeros_(table.weight)

        def _inputs(self, items):
            x = self.embedding(items)
            return x if self.category is None else x + self.cat_in(self.category[items])

        def _outputs(self, items):
            w, b = self.out_w(items), self.out_b(items).squeeze(-1)
            if self.category is not None:
                c = self.category[items]
                w, b = w + self.cat_out(c), b + self.cat_b(c).squeeze(-1)
            return w, b

        def encode(self, items):
            return self.gru(self._inputs(items))[0]

        def logits(self, hidden, candidates):
            w, b = self._outputs(candidates)
            return hidden @ w.T + b

        def arrays(self) -> dict:
            every = torch.arange(n_items)
            with torch.no_grad():
                embedding = self._inputs(torch.arange(n_items + 1))
                out_w, out_b = self._outputs(every)
            return {
                "embedding": embedding, "w_ih": self.gru.weight_ih_l0, "w_hh": self.gru.weight_hh_l0,
                "b_ih": self.gru.bias_ih_l0, "b_hh": self.gru.bias_hh_l0, "out_w": out_w, "out_b": out_b,
            }

    return Net()
