"""Search for the API: the search snapshot held in memory, and the answer to ``GET /search``.

The pipeline writes `search_catalogue`, `search_user_signals` and `popular_query_results` to the lake and
the search ranker to `models/search_ranker_model/`. :func:`load_search` builds one immutable
:class:`SearchSnapshot` from them (BM25 index, shopper signals, ranker, the precomputed results of the
most frequent queries, the ranker's registered version); a :class:`SearchHolder` rebuilds it when any of
those files changes and swaps one reference, as the recommendation store does, so a request sees one
consistent snapshot and never touches disk.

Answering: the non-personalised answer to a frequent query is the precomputed one (minus anything
sold since); anything else is computed by the :class:`~recs_assets.search.engine.SearchEngine`.
An unknown shopper gets the non-personalised ranking. Items the recommendation store marks inactive
(sold since the catalogue was built) are never returned.

Online features: once the pipeline has built the feature store (`recs_assets.feature_store`), each
personalised request reads the shopper's price level, activity and category shares from its online store
(one Feast read) in place of the snapshot's copies, so a shopper new since the search snapshot is
personalised as soon as the store knows them. Brand shares and the recommender's item affinity are not
in the store and still come from the snapshot. A failed read falls back to the snapshot's signals.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl

from recs_assets.feature_store import OnlineShoppers, ShopperFeatures, open_store
from recs_assets.layout import HomeLayout
from recs_assets.models.ranker import LightGBMRanker
from recs_assets.search.checks import normalised_query
from recs_assets.search.engine import LEXICAL, NOT_PERSONALISED, REASONS, SearchEngine
from recs_assets.search.features import SIGNALS_SCHEMA, SearchFeaturizer
from recs_assets.search.text import query_terms

log = logging.getLogger("recs_assets.serving")

SEARCH_FILES = {
    "catalogue": "search_catalogue.parquet",
    "signals": "search_user_signals.parquet",
    "popular": "popular_query_results.parquet",
}
RANKER_ASSET = "search_ranker_model"
PRECOMPUTED = "precomputed"


class EmptyQuery(ValueError):
    """The query holds nothing to search for."""


@dataclass(frozen=True)
class SearchSnapshot:
    """Everything a search request needs, immutable once built (engine None: nothing to search yet)."""

    engine: SearchEngine | None = None
    model: str | None = None
    model_version: int | None = None
    popular: dict[str, tuple[tuple[str, float], ...]] = field(default_factory=dict)
    loaded_at: str | None = None
    signature: tuple = ()
    # The last exclusion mask, keyed by the inactive set it was built from: the store swaps that set whole,
    # so one entry saves rebuilding the mask (a dict lookup per inactive item) on every request.
    _excluded: list = field(default_factory=lambda: [None, None], repr=False, compare=False)

    def exclusion(self, inactive: frozenset[str]):
        """Bool per catalogue item: sold since the catalogue was built (None when nothing is)."""
        if not inactive or self.engine is None:
            return None
        key, mask = self._excluded
        if key is not inactive:
            mask = self.engine.exclusion(inactive)
            self._excluded[:] = [inactive, mask]
        return mask


def _files(layout: HomeLayout) -> list[Path]:
    return [*(layout.lake / name for name in SEARCH_FILES.values()), layout.model_dir(RANKER_ASSET) / "model.bin"]


def search_signature(layout: HomeLayout) -> tuple:
    """(path, inode, size, mtime_ns) per input file; None for a missing one."""
    sig = []
    for path in _files(layout):
        try:
            st = os.stat(path)
            sig.append((path.name, st.st_ino, st.st_size, st.st_mtime_ns))
        except FileNotFoundError:
            sig.append((path.name, None))
    return tuple(sig)


def load_search(layout: HomeLayout) -> SearchSnapshot:
    """Build a complete search snapshot from the home folder (raises on a malformed file)."""
    signature = search_signature(layout)
    catalogue_path = layout.lake / SEARCH_FILES["catalogue"]
    if not catalogue_path.exists():
        return SearchSnapshot(signature=signature)
    signals_path = layout.lake / SEARCH_FILES["signals"]
    signals = pl.read_parquet(signals_path) if signals_path.exists() else pl.DataFrame(schema=SIGNALS_SCHEMA)
    model_file = layout.model_dir(RANKER_ASSET) / "model.bin"
    ranker = LightGBMRanker.load(model_file) if model_file.exists() else None
    engine = SearchEngine(SearchFeaturizer(pl.read_parquet(catalogue_path), signals), ranker)
    model = version = None
    popular: dict[str, tuple[tuple[str, float], ...]] = {}
    popular_path = layout.lake / SEARCH_FILES["popular"]
    if popular_path.exists():
        frame = pl.read_parquet(popular_path)
        if frame.height and {"query", "rank", "item_id", "score"} <= set(frame.columns):
            if ranker is not None and "model_version" in frame.columns and frame["model_version"].drop_nulls().len():
                model, version = RANKER_ASSET, int(frame["model_version"].drop_nulls()[0])
            for (query,), group in frame.sort("query", "rank").group_by("query", maintain_order=True):
                popular[query] = tuple(zip(group["item_id"].to_list(), group["score"].cast(pl.Float64).to_list()))
    return SearchSnapshot(engine=engine, model=model, model_version=version, popular=popular,
                          loaded_at=datetime.now(timezone.utc).isoformat(timespec="milliseconds"), signature=signature)


class SearchHolder:
    """Holds the current search snapshot; a background thread rebuilds and swaps it when the files change."""

    def __init__(self, layout: HomeLayout, reload_interval: float) -> None:
        self.layout = layout
        self.reload_interval = reload_interval
        self.snapshot = SearchSnapshot()
        self.last_error: str | None = None
        self.shoppers: OnlineShoppers | None = None  # the online store's reader, once the store exists
        self._online = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> bool:
        if self.snapshot.signature and search_signature(self.layout) == self.snapshot.signature:
            return False
        try:
            new = load_search(self.layout)
        except Exception as exc:  # a half-written or malformed file: keep serving the old snapshot
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("search snapshot reload failed, keeping the previous one: %s", self.last_error)
            return False
        self.snapshot = new  # the single atomic swap
        self.last_error = None
        return True

    def start(self) -> None:
        self.refresh()
        self._thread = threading.Thread(target=self._run, name="search-watcher", daemon=True)
        self._thread.start()

    def connect_online(self) -> bool:
        """Open the feature store's online side once the pipeline has built it (Feast takes seconds to import,
        so this runs on the watcher thread, never on a request); True when a reader is in place."""
        engine = self.snapshot.engine
        if engine is None:
            return False
        categories = tuple(engine.featurizer.category_index)
        if self.shoppers is not None and self.shoppers.categories == tuple(sorted(categories)):
            return True
        if self._online is None:
            if not self.layout.feature_registry.exists():
                return False
            try:
                self._online = open_store(self.layout, apply=False)
            except Exception as exc:  # a store being rebuilt: try again on the next tick
                log.warning("feature store not readable yet: %s: %s", type(exc).__name__, exc)
                return False
        self.shoppers = OnlineShoppers(self._online, categories)
        return True

    def _run(self) -> None:
        self.connect_online()
        while not self._stop.wait(self.reload_interval):
            self.refresh()
            self.connect_online()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def search_response(snapshot: SearchSnapshot, inactive: frozenset[str], q: str, user_id: str | None, n: int,
                    hour: float | None = None, shoppers: OnlineShoppers | None = None) -> dict:
    """The body of ``GET /search``: ranked items with scores, the ranker's version and why they are in this order.

    `shoppers` (the online feature store's reader) supplies the shopper's features when given.
    Raises EmptyQuery for a query without a searchable word; LookupError when no search snapshot is loaded.
    """
    if not query_terms(q):
        raise EmptyQuery(f"q must hold at least one letter or digit to search for; got {q!r}")
    engine = snapshot.engine
    if engine is None:
        raise LookupError("the search catalogue is not built yet (materialise the search assets)")
    if shoppers is not None and user_id is not None:
        try:
            online = shoppers.read(user_id)
        except Exception as exc:  # the store mid-rewrite or gone: this request uses the snapshot's signals
            log.warning("online features unreadable for a search, using the snapshot's: %s: %s", type(exc).__name__, exc)
            online = None
        if online is not None:
            engine = with_online_shopper(engine, online)
    known = user_id is not None and engine.featurizer.users([user_id])[0] >= 0
    cached = None if known else snapshot.popular.get(normalised_query(q))
    if cached is not None:
        kept = [(item, score) for item, score in cached if item not in inactive]
        if len(kept) >= n:  # else the live engine finds more (or what was sold since left too few)
            ranking = NOT_PERSONALISED if engine.ranker is not None else LEXICAL
            return _body(q, user_id, n, kept[:n], ranking, PRECOMPUTED, snapshot, engine, None)
    exclude = snapshot.exclusion(inactive)
    hour = float(datetime.now(timezone.utc).hour) if hour is None else hour
    result = engine.search(q, user_id, n, hour=hour, exclude=exclude)
    return _body(q, user_id, n, list(zip(result.item_ids, result.scores)), result.ranking, "live", snapshot, engine,
                 result.n_matches)


class _OneRow:
    """A per-user array with one row's value replaced (or appended), without copying the array."""

    def __init__(self, base: np.ndarray, row: int, value: float) -> None:
        self.base, self.row, self.value = base, row, value

    def __len__(self) -> int:
        return max(len(self.base), self.row + 1)

    def __getitem__(self, rows):
        rows = np.asarray(rows, dtype=np.int64)
        inside = rows < len(self.base)
        out = np.full(rows.shape, np.nan)
        out[inside] = self.base[rows[inside]]
        out[rows == self.row] = self.value
        return out


class _OneShopperShares:
    """The category-share table with one shopper's row taken from the online store."""

    def __init__(self, base, row: int, shares_by_code: dict[int, float]) -> None:
        self.base, self.row, self.shares = base, row, shares_by_code

    def get(self, rows: np.ndarray, cols: np.ndarray, missing: float = np.nan) -> np.ndarray:
        out = self.base.get(rows, cols, missing)
        mine = rows == self.row
        if mine.any():
            out[mine] = [self.shares.get(int(c), missing) for c in cols[mine]]
        return out


class _WithShopper:
    """The featurizer's user index plus one shopper (a lookup falls through to the snapshot's)."""

    def __init__(self, base: dict, user_id: str, row: int) -> None:
        self.base, self.user_id, self.row = base, user_id, row

    def get(self, key, default=None):
        return self.row if key == self.user_id else self.base.get(key, default)


def with_online_shopper(engine: SearchEngine, online: ShopperFeatures) -> SearchEngine:
    """The engine for one request, its shopper's price level, activity and category shares the online store's.

    A shallow copy: the index, catalogue and every other shopper are shared with the snapshot; a shopper
    the snapshot does not know gets a new row (no brand or item affinity: those come from the snapshot).
    """
    featurizer = engine.featurizer
    row = featurizer.user_index.get(online.user_id)
    if row is None:
        row = len(featurizer.user_price_level)
    view = copy.copy(featurizer)
    view.user_index = _WithShopper(featurizer.user_index, online.user_id, row)
    view.user_price_level = _OneRow(featurizer.user_price_level, row, np.nan if online.price_level is None else online.price_level)
    view.user_log_events = _OneRow(featurizer.user_log_events, row, float(np.log1p(online.n_events)))
    codes = {featurizer.category_index[c]: share for c, share in online.category_shares.items() if c in featurizer.category_index}
    view.category_share = _OneShopperShares(featurizer.category_share, row, codes)
    personal = copy.copy(engine)
    personal.featurizer = view
    return personal


def _body(q, user_id, n, ranked, ranking, source, snapshot, engine, n_matches) -> dict:
    rows = engine.featurizer.items([item for item, _ in ranked])
    matches = engine.featurizer.index.field_matches(q, rows) if len(rows) else {}
    items = []
    for rank, (item, score) in enumerate(ranked, start=1):
        matched = [name for name, share in matches.items() if share[rank - 1] > 0]
        items.append({"item_id": item, "score": float(score), "rank": rank, "matched": matched})
    return {
        "query": q,
        "user_id": user_id,
        "n": n,
        "items": items,
        "n_matches": n_matches,
        "ranking": ranking,
        "reason": REASONS[ranking],
        "source": source,
        "model": snapshot.model if ranking != LEXICAL else None,
        "model_version": snapshot.model_version if ranking != LEXICAL else None,
    }


__all__ = ["EmptyQuery", "SearchHolder", "SearchSnapshot", "load_search", "search_response"]
