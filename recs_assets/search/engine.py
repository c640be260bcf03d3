"""Answer one query: retrieve the sellable matches, rank them for the shopper, say why.

`SearchEngine` joins the featurizer (catalogue + shopper signals) and the search ranker; the API keeps
one in memory, and the popular-query snapshot is built with the same object, so both answer alike.

- Retrieval: the `n_candidates` sellable items with the best BM25 + a small popularity prior (BM25
  alone ties every item of a searched category); an item in `exclude` (e.g. sold since the snapshot)
  never comes back.
- Ranking: the search ranker over those candidates when there is one; a shopper without signals
  (anonymous, new, unknown id) gets the same ranker without personal features, i.e. the
  non-personalised ranking. Without a trained ranker: BM25 + popularity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from recs_assets.arguments import positive_int
from recs_assets.search.evaluation import POPULARITY_WEIGHT
from recs_assets.search.features import SearchFeaturizer
from recs_assets.search.ranker import score_matrix
from recs_assets.search.text import query_terms

DEFAULT_CANDIDATES = 100  # re-ranked per request: LightGBM over 100 rows is ~0.3 ms
# Why a list is in this order, as the API reports it.
PERSONALISED = "personalised"
NOT_PERSONALISED = "ranked"
LEXICAL = "lexical"
REASONS = {
    PERSONALISED: "matches the query, ordered by the search ranker using this shopper's history",
    NOT_PERSONALISED: "matches the query, ordered by the search ranker without personal history (shopper unknown)",
    LEXICAL: "matches the query, ordered by text match (BM25) and popularity (no search ranker trained)",
}


@dataclass(frozen=True)
class SearchResult:
    """A ranked answer: item ids with scores, how it was ranked (a REASONS key), and how many items matched."""

    item_ids: list[str]
    scores: list[float]
    ranking: str
    n_matches: int

    @property
    def reason(self) -> str:
        return REASONS[self.ranking]


class SearchEngine:
    """The featurizer and (optionally) the search ranker, answering queries in memory."""

    def __init__(self, featurizer: SearchFeaturizer, ranker=None, *, n_candidates: int = DEFAULT_CANDIDATES,
                 popularity_weight: float = POPULARITY_WEIGHT) -> None:
        self.featurizer = featurizer
        self.ranker = ranker
        self.n_candidates = positive_int(n_candidates, "n_candidates")
        self.popularity_weight = popularity_weight
        self._boost = popularity_weight * featurizer.popularity

    def search(self, query: str, user_id: str | None, n: int, *, hour: float = 12.0,
               exclude: np.ndarray | None = None) -> SearchResult:
        """The top-n sellable items for the query, for this shopper (None or unknown: not personalised)."""
        n = positive_int(n, "n")
        if not query_terms(query):
            raise ValueError("the query holds no searchable word (letters or digits)")
        index = self.featurizer.index
        items, bm25, n_matches = index.retrieve(query, max(n, self.n_candidates), boost=self._boost, exclude=exclude)
        user = self.featurizer.users([user_id])[0] if user_id is not None else -1
        if self.ranker is None or len(items) == 0:
            scores = bm25 + self._boost[items]
            ranking = LEXICAL
        else:
            matrix = self.featurizer.features(query, np.full(len(items), user), items, np.full(len(items), hour),
                                              bm25=bm25, result_count=n_matches)
            scores = score_matrix(self.ranker, matrix)
            ranking = PERSONALISED if user >= 0 else NOT_PERSONALISED
        order = np.lexsort((items, -scores))[:n]
        return SearchResult(item_ids=[str(index.item_ids[i]) for i in items[order]],
                            scores=[float(s) for s in scores[order]], ranking=ranking, n_matches=n_matches)

    def exclusion(self, item_ids) -> np.ndarray:
        """A bool per catalogue item: True for the given ids (e.g. listings sold since the catalogue was built)."""
        mask = np.zeros(len(self.featurizer.index), dtype=bool)
        rows = self.featurizer.items(list(item_ids))
        mask[rows[rows >= 0]] = True
        return mask


POPULAR_SCHEMA = {"query": pl.String, "searches": pl.Int64, "rank": pl.Int32, "item_id": pl.String,
                  "score": pl.Float64, "ranking": pl.String, "n_matches": pl.Int64}


def popular_query_results(engine: SearchEngine, query_counts: pl.DataFrame, *, n: int = 10, top_queries: int = 100) -> pl.DataFrame:
    """The non-personalised top-n for the `top_queries` most frequent queries (query_counts: query, searches)."""
    top_queries = positive_int(top_queries, "top_queries")
    rows = []
    for query, searches in query_counts.sort(["searches", "query"], descending=[True, False]).head(top_queries).iter_rows():
        if not query_terms(query):
            continue
        result = engine.search(query, None, n)
        for rank, (item, score) in enumerate(zip(result.item_ids, result.scores), start=1):
            rows.append({"query": query, "searches": searches, "rank": rank, "item_id": item, "score": score,
                         "ranking": result.ranking, "n_matches": result.n_matches})
    return pl.DataFrame(rows, schema=POPULAR_SCHEMA)
