"""What session and sequence models share: ordered item sequences, and "what comes next after these items?".

A sequence model learns from visits in order (`session_sequences`: each visit's items as they were
looked at) instead of an unordered bag of who-had-what. Besides `recommend` for known users, it
answers `recommend_for_sequence`: the next items after any list of items, so a shopper who is not
logged in (or just arrived) gets a personal list from what they looked at in the last minutes.

Rules shared by every sequence model (on top of `Recommender`'s):
- `fit(..., sequences=frame)` takes rows with `user_id` and `item_ids` (a list, in the order they
  were looked at); with `started_at` (and `session_id`) the rows are ordered in time, else by
  `session_id`, else as given. `session_sequences` and `user_sequences` both have this shape.
  Items the interactions do not know are dropped (nothing can be learnt or recommended about
  them), and an item repeated back to back (a view, then the cart, then the purchase of the same
  listing) counts once: the question is which *other* item comes next.
- Without `sequences` (a source with no order, e.g. Steam without timestamps), each user's items
  form one visit, in the model's item order (most popular first): sets still teach co-occurrence.
- A known user's "recent sequence" is the tail of their visits in time order (the last
  `max_history` items); `recommend` answers from it, so a user is recommended what follows what
  they did last, not the average of everything they ever did.
- `recommend_for_sequence` leaves the sequence's own items out (like `exclude_seen`), never shows
  unavailable items, and gives an empty (or wholly unknown) sequence the popularity fallback.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl
import scipy.sparse as sp

from recs_assets.models.base import Recommender
from recs_assets.models.inputs import empty_result, list_length


@dataclass(frozen=True)
class Sequences:
    """Ragged sequences of item indices: sequence s is items[indptr[s]:indptr[s + 1]], owned by users[s]."""

    indptr: np.ndarray  # int64, len n + 1
    items: np.ndarray  # int64 item indices (the model's internal order)
    users: np.ndarray  # int64 user index per sequence, -1 for a user the model does not know

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def select(self, rows: np.ndarray) -> Sequences:
        """The sequences at `rows`, in that order."""
        starts, stops = self.indptr[rows], self.indptr[rows + 1]
        lengths = stops - starts
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        positions = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1])
        return Sequences(indptr, self.items[positions], self.users[rows])

    def tails(self, length: int) -> Sequences:
        """Each sequence cut to its last `length` items."""
        keep = np.minimum(self.lengths, length)
        starts = self.indptr[1:] - keep
        indptr = np.concatenate([[0], np.cumsum(keep)]).astype(np.int64)
        positions = np.repeat(starts - indptr[:-1], keep) + np.arange(indptr[-1])
        return Sequences(indptr, self.items[positions], self.users)

    def positions_from_end(self) -> np.ndarray:
        """For every stored item, how many items follow it in its sequence (0 = the newest)."""
        lengths = self.lengths
        return np.repeat(self.indptr[1:], lengths) - 1 - np.arange(self.indptr[-1])

    @staticmethod
    def from_lists(lists: Sequence[Sequence[int]], users: np.ndarray | None = None) -> Sequences:
        lengths = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        items = np.fromiter((i for x in lists for i in x), dtype=np.int64, count=int(indptr[-1]))
        owners = np.full(len(lists), -1, dtype=np.int64) if users is None else np.asarray(users, dtype=np.int64)
        return Sequences(indptr, items, owners)


class SequenceRecommender(Recommender):
    """A `Recommender` that learns from ordered sequences and predicts the next items after any sequence."""

    # Read by training.ranking_set.fit_generator: this model wants the ordered sequences too.
    uses_sequences: ClassVar[bool] = True

    def __init__(self, max_history: int = 20) -> None:
        from recs_assets.arguments import positive_int

        max_history = positive_int(max_history, "max_history (items of a user's recent sequence)")
        super().__init__()
        self.max_history = max_history
        self._given_sequences: pl.DataFrame | None = None
        self._history: Sequences | None = None  # per model user (row = user index): their recent items
        # False while fitting without `sequences`: the visits are sets, their order means nothing.
        self._ordered = True

    def fit(
        self,
        interactions: pl.DataFrame,
        available_item_ids: Iterable[str] | None = None,
        item_categories: pl.DataFrame | None = None,
        sequences: pl.DataFrame | None = None,
    ) -> Self:
        """As `Recommender.fit`, plus `sequences` (user_id, item_ids list, optionally started_at, session_id)."""
        if sequences is not None:
            _check_sequences(sequences)
        self._given_sequences = sequences
        try:
            return super().fit(interactions, available_item_ids, item_categories)
        finally:
            self._given_sequences = None  # the model keeps what it learnt, not the caller's table

    def recommend_for_sequence(
        self, sequences: Sequence[Sequence[str]], N: int, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-N next items after each sequence of item ids (oldest first): (ids, scores) like `recommend`.

        The sequence's own items are left out when `exclude_seen`; unavailable items always. Items the
        model does not know are ignored; a sequence with none it knows gets the popularity fallback.
        """
        N = list_length(N)
        self._require_fitted()
        if isinstance(sequences, (str, bytes)):
            raise TypeError("sequences must be a list of item-id lists, not a single string: use [[...]]")
        prefixes = self._encode(sequences)
        return self._recommend_sequences(prefixes, N, exclude_seen)

    def score_sequence(self, item_ids: Sequence[str]) -> np.ndarray | None:
        """Scores of every training item (the `item_ids` order) as the next item after this sequence; None
        when the model knows none of its items. For callers that merge scores themselves (the API)."""
        self._require_fitted()
        prefix = self._encode([item_ids])
        if prefix.lengths[0] == 0:
            return None
        return self._score_sequences(prefix.tails(self.max_history))[0]

    def recent_items(self, user_id: str) -> list[str]:
        """A known user's recent sequence (oldest first) as the model remembers it; [] for anyone else."""
        self._require_fitted()
        index = self._users_index().get(str(user_id))
        if index is None or self._history is None:
            return []
        h = self._history
        return [str(i) for i in self._item_ids[h.items[h.indptr[index] : h.indptr[index + 1]]]]  # type: ignore[index]

    # --- for subclasses ---------------------------------------------------------------------------

    @abc.abstractmethod
    def _fit_sequences(self, user_items: sp.csr_matrix, sequences: Sequences) -> None:
        """Learn from the training sequences (item indices, consecutive repeats removed, none empty)."""

    @abc.abstractmethod
    def _score_sequences(self, prefixes: Sequences) -> np.ndarray:
        """A fresh dense (len(prefixes), n_items) float block: how likely each item comes next.

        `prefixes.users` holds the owner's user index (-1: anonymous or unknown), so a model can
        leave the user's own past visits out of what it compares them with.
        """

    def _sequence_state(self) -> dict[str, np.ndarray]:
        return {}

    def _restore_sequence_state(self, state: dict[str, np.ndarray]) -> None:
        pass

    # --- Recommender hooks ------------------------------------------------------------------------

    def _fit(self, user_items: sp.csr_matrix) -> None:
        self._ordered = self._given_sequences is not None
        sequences = self._training_sequences(user_items)
        self._history = self._histories(sequences)
        self._fit_sequences(user_items, sequences)

    def _score_users(self, user_idx: np.ndarray) -> np.ndarray:
        assert self._history is not None
        prefixes = self._history.select(np.asarray(user_idx, dtype=np.int64))
        scores = self._score_sequences(prefixes)
        empty = prefixes.lengths == 0
        if empty.any():
            # A user with interactions but no item sequence (only plays, say): popularity, as for cold users.
            scores[empty] = self._fallback_scores()
        return scores

    def _model_state(self) -> dict[str, np.ndarray]:
        assert self._history is not None
        h = self._history
        state = {"history.indptr": h.indptr, "history.items": h.items}
        state.update({f"seq.{k}": v for k, v in self._sequence_state().items()})
        return state

    def _restore_model(self, state: dict[str, np.ndarray]) -> None:
        self._history = Sequences(
            state["history.indptr"].astype(np.int64), state["history.items"].astype(np.int64),
            np.arange(self.n_users, dtype=np.int64),
        )
        self._restore_sequence_state({k.removeprefix("seq."): v for k, v in state.items() if k.startswith("seq.")})

    # --- machinery --------------------------------------------------------------------------------

    def _recommend_sequences(self, prefixes: Sequences, N: int, exclude_seen: bool) -> tuple[np.ndarray, np.ndarray]:
        out_ids, out_scores = empty_result(len(prefixes), N)
        assert self._available is not None
        columns = None if self._available.all() else np.flatnonzero(self._available)
        known = np.flatnonzero(prefixes.lengths > 0)
        for rows in self._batches(known):
            block = prefixes.select(rows)
            scores = self._score_sequences(block.tails(self.max_history))
            if exclude_seen:
                scores[np.repeat(np.arange(len(rows)), block.lengths), block.items] = -np.inf
            self._write_top_n(scores, N, rows, out_ids, out_scores, columns)
        cold = np.flatnonzero(prefixes.lengths == 0)
        if len(cold):
            top_ids, top_scores = self._top_items(self._fallback_scores()[None, :], N, columns)
            out_ids[cold], out_scores[cold] = top_ids, top_scores
        return out_ids, out_scores

    def _encode(self, sequences: Sequence[Sequence[str]]) -> Sequences:
        """Item-id lists -> item indices (unknown items dropped, back-to-back repeats counted once)."""
        index = self._items_index()
        lists = []
        for seq in sequences:
            if isinstance(seq, (str, bytes)):
                raise TypeError(f"each sequence must be a list of item ids, not the single string {seq!r}")
            encoded: list[int] = []
            for item in seq:
                i = index.get(str(item))
                if i is not None and (not encoded or encoded[-1] != i):
                    encoded.append(i)
            lists.append(encoded)
        return Sequences.from_lists(lists)

    def _training_sequences(self, user_items: sp.csr_matrix) -> Sequences:
        """The sequences to learn from, as item indices in time order (see the module docstring)."""
        assert self._item_ids is not None and self._user_ids is not None
        given = self._given_sequences
        if given is None:
            # No order known: each user's items are one visit, most popular first (the model's item order).
            matrix = sp.csr_matrix(user_items)
            matrix.sort_indices()
            users = np.flatnonzero(np.diff(matrix.indptr) > 0)
            lengths = np.diff(matrix.indptr)[users]
            return Sequences(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
                             matrix.indices.astype(np.int64), users.astype(np.int64))
        order = [c for c in ("started_at", "session_id") if c in given.columns]
        frame = given.select("user_id", "item_ids", *order).with_row_index("_row")
        if order:
            frame = frame.sort([*order, "_row"], nulls_last=True)
        frame = frame.with_row_index("_seq")
        items = pl.DataFrame({"item_id": self._item_ids.tolist(), "_item": np.arange(self.n_items, dtype=np.int64)})
        users = pl.DataFrame({"user_id": self._user_ids.tolist(), "_user": np.arange(self.n_users, dtype=np.int64)})
        long = (
            frame.select("_seq", "user_id", pl.col("item_ids").alias("item_id"))
            .explode("item_id")
            .with_row_index("_pos")
            .join(items, on="item_id", how="inner")
            .sort("_pos")
            # A repeat right after itself adds nothing to "what comes next" (view, cart, buy of one listing).
            .filter((pl.col("_item") != pl.col("_item").shift(1).over("_seq")).fill_null(True))
            .join(users, on="user_id", how="left")
            .sort("_pos")
        )
        seq = long["_seq"].to_numpy()
        boundaries = np.flatnonzero(np.diff(seq)) + 1
        starts = np.concatenate([[0], boundaries]) if len(seq) else np.zeros(0, dtype=np.int64)
        indptr = np.concatenate([starts, [len(seq)]]).astype(np.int64)
        owners = long["_user"].fill_null(-1).to_numpy().astype(np.int64)
        return Sequences(indptr, long["_item"].to_numpy().astype(np.int64), owners[starts] if len(seq) else owners[:0])

    def _histories(self, sequences: Sequences) -> Sequences:
        """Each model user's recent items: their sequences joined in time order, the last `max_history`."""
        n_users = self.n_users
        owned = np.flatnonzero(sequences.users >= 0)
        # Stable sort by owner keeps each user's visits in time order.
        owned = owned[np.argsort(sequences.users[owned], kind="stable")]
        picked = sequences.select(owned)
        per_user = np.bincount(picked.users, weights=picked.lengths, minlength=n_users).astype(np.int64)
        joined = Sequences(np.concatenate([[0], np.cumsum(per_user)]).astype(np.int64), picked.items,
                           np.arange(n_users, dtype=np.int64))
        tails = joined.tails(self.max_history)
        # Joining visits may put one item back to back again (end of one visit, start of the next).
        keep = np.ones(len(tails.items), dtype=bool)
        same_user = np.repeat(np.arange(n_users), tails.lengths)
        keep[1:] = ~((tails.items[1:] == tails.items[:-1]) & (same_user[1:] == same_user[:-1]))
        lengths = np.bincount(same_user[keep], minlength=n_users).astype(np.int64)
        return Sequences(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64), tails.items[keep],
                         np.arange(n_users, dtype=np.int64))


def _check_sequences(sequences: Any) -> None:
    if not isinstance(sequences, pl.DataFrame):
        raise TypeError(f"sequences must be a polars DataFrame (user_id, item_ids), got {type(sequences).__name__}")
    missing = [c for c in ("user_id", "item_ids") if c not in sequences.columns]
    if missing:
        raise ValueError(f"sequences is missing column(s) {missing}; it has {sequences.columns}")
    if not isinstance(sequences.schema["item_ids"], pl.List):
        raise ValueError(f"sequences.item_ids must be a list of item ids per row, got {sequences.schema['item_ids']}")
