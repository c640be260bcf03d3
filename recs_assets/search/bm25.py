"""Lexical retrieval: BM25 over each item's title, category, brand and condition.

Why not DuckDB's full-text search extension: it is not bundled with the pinned DuckDB wheel, `INSTALL
fts` downloads it from the internet (which neither this machine nor CI reaches), and the only packaged
build on PyPI targets another DuckDB release and is not in the lock. And the API must answer a query in
well under a millisecond, while one DuckDB query costs about a millisecond of fixed overhead. So the
index is a few numpy arrays, built from the catalogue in milliseconds (the API builds it at start-up).

Scoring is BM25 summed over fields (a simple BM25F): for each field f with weight w_f,
    w_f * sum over query terms t of idf_f(t) * tf (k1 + 1) / (tf + k1 (1 - b + b len / avg_len_f))
with Lucene's idf, log(1 + (N - df + 0.5) / (df + 0.5)), which is never negative. The title weighs
most: an exact title match beats an item that matches the same words spread over brand and category.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from recs_assets.arguments import positive_int
from recs_assets.search.text import analyze, query_terms

SEARCH_FIELDS: tuple[str, ...] = ("title", "category", "brand", "condition")
FIELD_WEIGHTS: Mapping[str, float] = {"title": 2.0, "category": 1.0, "brand": 1.0, "condition": 0.5}
K1 = 1.2
B = 0.75


@dataclass(frozen=True)
class Postings:
    """One field's inverted index: for term t, items[starts[t]:starts[t + 1]] and their BM25 weights."""

    starts: np.ndarray  # int64, len(vocabulary) + 1
    items: np.ndarray  # int32 item indices, sorted within each term
    weights: np.ndarray  # float64 BM25 weight of the term in that item's field (field weight included)

    def of(self, term: int) -> tuple[np.ndarray, np.ndarray]:
        start, end = self.starts[term], self.starts[term + 1]
        return self.items[start:end], self.weights[start:end]


class BM25Index:
    """An inverted index over a catalogue's text fields; items are addressed by row number.

    `sellable` marks the items retrieval may return; scoring (`scores`, `field_matches`) covers every
    item, so the features of an item shown in the past can be computed after it sold.
    """

    def __init__(self, item_ids: Sequence[str], fields: Mapping[str, Sequence[str | None]], sellable: np.ndarray,
                 *, field_weights: Mapping[str, float] = FIELD_WEIGHTS, k1: float = K1, b: float = B) -> None:
        self.item_ids = np.asarray(list(item_ids), dtype=object)
        n = len(self.item_ids)
        self.sellable = np.asarray(sellable, dtype=bool)
        if self.sellable.shape != (n,):
            raise ValueError(f"sellable must hold one flag per item ({n}); got shape {self.sellable.shape}")
        self.fields = tuple(name for name in SEARCH_FIELDS if name in fields)
        unknown = sorted(set(fields) - set(SEARCH_FIELDS))
        if unknown:
            raise ValueError(f"unknown search field(s) {unknown}; the fields are {', '.join(SEARCH_FIELDS)}")
        self.vocabulary: dict[str, int] = {}
        tokens = {name: [analyze(text) for text in fields[name]] for name in self.fields}
        for name in self.fields:
            if len(tokens[name]) != n:
                raise ValueError(f"field {name!r} holds {len(tokens[name])} values for {n} items")
            for terms in tokens[name]:
                for term in terms:
                    self.vocabulary.setdefault(term, len(self.vocabulary))
        self.postings = {name: _postings(tokens[name], self.vocabulary, field_weights.get(name, 1.0), k1, b)
                         for name in self.fields}

    @classmethod
    def from_catalogue(cls, catalogue: pl.DataFrame, **options) -> BM25Index:
        """From a frame with item_id, the search fields present (title, category, brand, condition) and is_sellable."""
        if "item_id" not in catalogue.columns:
            raise ValueError(f"the catalogue needs an item_id column; it has {catalogue.columns}")
        fields = {name: catalogue[name].cast(pl.String).to_list() for name in SEARCH_FIELDS if name in catalogue.columns}
        sellable = (catalogue["is_sellable"].fill_null(False).to_numpy() if "is_sellable" in catalogue.columns
                    else np.ones(catalogue.height, dtype=bool))
        return cls(catalogue["item_id"].cast(pl.String).to_list(), fields, sellable, **options)

    def __len__(self) -> int:
        return len(self.item_ids)

    def term_ids(self, query: str) -> list[int]:
        """The query's distinct terms that occur somewhere in the catalogue."""
        return [self.vocabulary[t] for t in query_terms(query) if t in self.vocabulary]

    def scores(self, query: str) -> np.ndarray:
        """BM25 of every item for the query (0 where nothing matches)."""
        out = np.zeros(len(self), dtype=np.float64)
        for term in self.term_ids(query):
            for postings in self.postings.values():
                items, weights = postings.of(term)
                out[items] += weights  # an item appears once per term and field
        return out

    def field_matches(self, query: str, items: np.ndarray) -> dict[str, np.ndarray]:
        """Per field, the share of the query's terms found in that field of each item (0..1)."""
        n_terms = len(query_terms(query))
        known = self.term_ids(query)
        out = {}
        mask = np.zeros(len(self), dtype=bool)  # reused: cheaper than a set test per candidate
        for name in SEARCH_FIELDS:
            found = np.zeros(len(items), dtype=np.float64)
            if name in self.postings and n_terms:
                for term in known:
                    posted, _ = self.postings[name].of(term)
                    mask[posted] = True
                    found += mask[items]
                    mask[posted] = False
                found /= n_terms
            out[name] = found
        return out

    def retrieve(self, query: str, k: int, *, boost: np.ndarray | None = None,
                 exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, int]:
        """The top-k sellable items matching the query: (item indices, BM25 scores, number of matches).

        Items are ordered by BM25 + `boost` (e.g. a popularity prior that breaks BM25's many ties), then
        by row; only items with a positive BM25 are candidates, and `exclude` (bool per item) removes more.
        """
        k = positive_int(k, "k (candidates)")
        scores = self.scores(query)
        allowed = (scores > 0) & self.sellable
        if exclude is not None:
            allowed &= ~exclude
        candidates = np.flatnonzero(allowed)
        n_matches = len(candidates)
        if n_matches == 0:
            return candidates.astype(np.int64), np.zeros(0), 0
        order_key = scores[candidates] + (boost[candidates] if boost is not None else 0.0)
        if n_matches > k:
            top = np.argpartition(-order_key, k - 1)[:k]
            candidates, order_key = candidates[top], order_key[top]
        order = np.lexsort((candidates, -order_key))
        chosen = candidates[order]
        return chosen.astype(np.int64), scores[chosen], n_matches


def _postings(documents: list[list[str]], vocabulary: Mapping[str, int], field_weight: float,
              k1: float, b: float) -> Postings:
    """BM25 weights of each (term, item) of one field, grouped by term."""
    n_docs = len(documents)
    lengths = np.array([len(terms) for terms in documents], dtype=np.float64)
    average = lengths.mean() if n_docs and lengths.sum() > 0 else 1.0
    term_list, item_list, tf_list = [], [], []
    for item, terms in enumerate(documents):
        counts: dict[int, int] = {}
        for term in terms:
            index = vocabulary[term]
            counts[index] = counts.get(index, 0) + 1
        term_list.extend(counts)
        item_list.extend([item] * len(counts))
        tf_list.extend(counts.values())
    term = np.asarray(term_list, dtype=np.int64)
    item = np.asarray(item_list, dtype=np.int32)
    tf = np.asarray(tf_list, dtype=np.float64)
    df = np.bincount(term, minlength=len(vocabulary)).astype(np.float64)
    idf = np.log1p((n_docs - df + 0.5) / (df + 0.5))
    norm = k1 * (1.0 - b + b * lengths[item] / average) if len(item) else np.zeros(0)
    weight = field_weight * idf[term] * tf * (k1 + 1.0) / (tf + norm)
    order = np.lexsort((item, term))
    starts = np.concatenate([[0], np.cumsum(np.bincount(term, minlength=len(vocabulary)))]).astype(np.int64)
    return Postings(starts=starts, items=item[order], weights=weight[order])
