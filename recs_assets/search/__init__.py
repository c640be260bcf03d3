"""Search: find the listings a query asks for, then order them for the shopper who asked.

Two stages, as in production search:

- `bm25`: lexical retrieval over each item's title, category, brand and condition (BM25 per field,
  implemented on numpy arrays; `text` holds the tokenizer and the plural stemmer both sides share).
  Only sellable items are retrieved: a one-of-a-kind listing that has sold never comes back.
- `features` + `ranker`: a LightGBM LambdaRank model re-orders the retrieved items using the match
  (BM25 score, which fields matched), the item (popularity, conversion, price), the shopper
  (affinity from the recommender, category and brand shares, price level against the item's price)
  and the session (query length, result count, hour). It learns from logged search sessions
  (`sessions`): purchase > add to cart > view > shown only, positives re-weighted by the inverse of
  the examination propensity of the slot they were shown in.

`evaluation` grades rankers on held-out search sessions, `engine` answers one query (the API and the
precomputed popular-query results use it), and `checks` watch the query log (distribution, zero results).
The package is pure: no Dagster, no files, no clock.
"""
