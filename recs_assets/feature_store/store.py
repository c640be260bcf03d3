"""A Feast feature store built in code over the home folder: feature views, the history, the online copy.

Layout (all under ``HomeLayout.feature_store``): ``registry.db`` (Feast's registry of entities and views),
``offline/<view>/as_of=<UTC stamp>.parquet`` (one file per table written as of a moment: the file offline
store), ``online.sqlite`` (the SQLite online store). The views mirror the feature SQL's output columns
exactly (`FEATURE_VIEWS`); a table whose columns differ is refused with the names that differ, so a
change to the SQL cannot silently drop a feature from the store.

Time: a table written ``as_of=T`` is what the SQL computed at cut-off T (events strictly before T).
Its rows carry the timestamp T, so a point-in-time question "at T" sees it and one before T does not.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from recs_assets.layout import HomeLayout

PROJECT = "recs"
# The timestamp every stored row carries (the moment its table describes) and when it was written:
# Feast breaks a tie between two rows of one id at one `as_of` by the later `written_at`.
AS_OF = "as_of"
WRITTEN_AT = "written_at"
_ENTITY_TIMESTAMP = "event_timestamp"  # the column Feast looks for in an entity frame
_ROW = "__row"
# A history row stays valid until a newer one replaces it: features are recomputed on every run, so no
# age limit is wanted; ten years keeps Feast's `ttl` from ever hiding a row.
_TTL = timedelta(days=3650)

ENTITY_KEYS = {"user": "user_id", "item": "item_id", "category": "category"}

_UTC_US = pl.Datetime("us", "UTC")


@dataclass(frozen=True)
class FeatureView:
    """One feature table in the store: its entities, join keys and every column the SQL produces."""

    name: str
    entities: tuple[str, ...]
    schema: Mapping[str, pl.DataType]
    description: str

    @property
    def keys(self) -> list[str]:
        return [ENTITY_KEYS[entity] for entity in self.entities]

    @property
    def features(self) -> list[str]:
        return [column for column in self.schema if column not in self.keys]


_I, _F, _S, _B = pl.Int64, pl.Float64, pl.String, pl.Boolean

# The columns of sql/user_features.sql, sql/item_features.sql and sql/user_category_affinity.sql, in order.
FEATURE_VIEWS: dict[str, FeatureView] = {
    view.name: view
    for view in (
        FeatureView(
            "user_features",
            ("user",),
            {
                "user_id": _S, "n_events": _I, "n_sessions": _I, "n_active_days": _I, "n_interactions": _I,
                "n_views": _I, "n_add_to_carts": _I, "n_purchases": _I, "recency_days": _F, "frequency": _F,
                "monetary": _F, "price_level": _F, "top_category": _S, "top_category_share": _F,
                "avg_session_events": _F, "avg_session_seconds": _F, "signup_age_days": _F, "segment": _S,
                "country": _S,
            },
            "One profile per user (activity, spend, taste, tenure), as known at the moment (sql/user_features.sql).",
        ),
        FeatureView(
            "item_features",
            ("item",),
            {
                "item_id": _S, "n_users": _I, "n_views": _I, "n_add_to_carts": _I, "n_purchases": _I,
                "n_ratings": _I, "n_plays": _I, "popularity_rank": _I, "view_to_cart_rate": _F,
                "cart_to_purchase_rate": _F, "view_to_purchase_rate": _F, "price": _F, "category": _S,
                "brand": _S, "condition": _S, "title": _S, "listed_at": _UTC_US, "listing_age_days": _F,
                "is_listed": _B, "is_available": _B, "is_listed_later": _B,
            },
            "One profile per item (demand, conversion, catalogue facts, availability) (sql/item_features.sql).",
        ),
        FeatureView(
            "user_category_affinity",
            ("user", "category"),
            {"user_id": _S, "category": _S, "strength": _F, "n_interactions": _I, "share": _F, "category_rank": _I},
            "A user's share of interest per category (sql/user_category_affinity.sql).",
        ),
    )
}


def _view(name: str) -> FeatureView:
    try:
        return FEATURE_VIEWS[name]
    except KeyError:
        raise KeyError(f"no feature view named {name!r}; the store holds {sorted(FEATURE_VIEWS)}") from None


def _utc(moment: datetime, what: str) -> datetime:
    if not isinstance(moment, datetime):
        raise TypeError(f"{what} must be a datetime; got {type(moment).__name__}")
    if moment.tzinfo is None:
        raise ValueError(f"{what} must carry a time zone (UTC); got the naive {moment.isoformat()}")
    return moment.astimezone(UTC)


# --- Feast, imported late ------------------------------------------------------------------------------

_IMPORT_LOCK = threading.Lock()
_feast: Any = None


def _import_feast():
    """Feast's modules, imported once per process.

    Feast decorates its classes with typeguard's `@typechecked`, which re-parses and instruments their
    source at import: about 6 of the import's 7 seconds here. The decorator is made a no-op while Feast
    imports (restored afterwards, for everyone else), so Feast's own argument checks are skipped; the
    arguments come from this module, whose tests exercise every one.
    """
    global _feast
    with _IMPORT_LOCK:
        if _feast is None:
            import typeguard

            real = typeguard.typechecked
            typeguard.typechecked = lambda target=None, **_: target if target is not None else (lambda t: t)
            try:
                import feast
                import feast.types
                from feast.infra.offline_stores.dask import DaskOfflineStoreConfig
                from feast.infra.online_stores.sqlite import SqliteOnlineStoreConfig
                from feast.repo_config import RegistryConfig, RepoConfig
            finally:
                typeguard.typechecked = real
            feast.DaskOfflineStoreConfig = DaskOfflineStoreConfig
            feast.SqliteOnlineStoreConfig = SqliteOnlineStoreConfig
            feast.RegistryConfig, feast.RepoConfig = RegistryConfig, RepoConfig
            _feast = feast
    return _feast


def _feast_type(dtype: pl.DataType):
    types = _import_feast().types
    if dtype == pl.Int64:
        return types.Int64
    if dtype == pl.Float64:
        return types.Float64
    if dtype == pl.String:
        return types.String
    if dtype == pl.Boolean:
        return types.Bool
    if isinstance(dtype, pl.Datetime):
        return types.UnixTimestamp
    raise TypeError(f"no Feast type for the polars type {dtype}")


def _definitions(layout: HomeLayout) -> list:
    feast = _import_feast()
    entities = {
        name: feast.Entity(name=name, join_keys=[key], value_type=feast.ValueType.STRING, description=f"keyed by {key}")
        for name, key in ENTITY_KEYS.items()
    }
    objects: list = list(entities.values())
    for view in FEATURE_VIEWS.values():
        source = feast.FileSource(
            name=f"{view.name}_history",
            path=str(layout.offline_view(view.name)),
            timestamp_field=AS_OF,
            created_timestamp_column=WRITTEN_AT,
        )
        objects.append(
            feast.FeatureView(
                name=view.name,
                entities=[entities[entity] for entity in view.entities],
                schema=[feast.Field(name=column, dtype=_feast_type(view.schema[column])) for column in view.features],
                source=source,
                ttl=_TTL,
                online=True,
                description=view.description,
            )
        )
    return objects


@contextlib.contextmanager
def _locked(layout: HomeLayout) -> Iterator[None]:
    """One writer at a time (a Dagster run may write as-of tables from two processes at once)."""
    layout.feature_store.mkdir(parents=True, exist_ok=True)
    with open(layout.feature_store / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class Store:
    """A home's Feast FeatureStore (`feast`) and the home it lives in."""

    feast: Any
    layout: HomeLayout


def open_store(layout: HomeLayout, *, apply: bool = True) -> Store:
    """The home's Feast FeatureStore (file offline store, SQLite online store), its definitions applied.

    `apply=False` opens it read-only (the API): the registry must exist already.
    """
    feast = _import_feast()
    config = feast.RepoConfig(
        project=PROJECT,
        provider="local",
        registry=feast.RegistryConfig(path=str(layout.feature_registry), cache_ttl_seconds=60),
        offline_store=feast.DaskOfflineStoreConfig(),
        online_store=feast.SqliteOnlineStoreConfig(path=str(layout.online_store)),
        entity_key_serialization_version=3,
        repo_path=str(layout.feature_store),
    )
    if not apply:
        if not layout.feature_registry.exists():
            raise FileNotFoundError(
                f"no feature store at {layout.feature_store} yet: materialise the online_feature_store asset"
            )
        return Store(feast.FeatureStore(config=config), layout)
    with _locked(layout):
        for view in FEATURE_VIEWS.values():
            layout.offline_view(view.name).mkdir(parents=True, exist_ok=True)
        store = feast.FeatureStore(config=config)
        store.apply(_definitions(layout))
    return Store(store, layout)


# --- the history (offline store) -----------------------------------------------------------------------


def _checked(name: str, table: pl.DataFrame) -> pl.DataFrame:
    view = _view(name)
    missing = [c for c in view.schema if c not in table.columns]
    extra = [c for c in table.columns if c not in view.schema]
    if missing or extra:
        raise ValueError(
            f"the {name} table does not match its feature view: missing column(s) {missing}, unknown column(s) "
            f"{extra} (the view mirrors sql/{name}.sql; change FEATURE_VIEWS with the SQL)"
        )
    try:
        table = table.select(pl.col(c).cast(t, strict=True) for c, t in view.schema.items())
    except pl.exceptions.PolarsError as error:
        raise ValueError(f"the {name} table has a column of the wrong type: {error}") from error
    nulls = [k for k in view.keys if table[k].null_count()]
    if nulls:
        raise ValueError(f"the {name} table has rows without a key ({nulls}): every row needs its {view.keys}")
    duplicated = table.select(view.keys).is_duplicated()
    if duplicated.any():
        example = table.filter(duplicated).select(view.keys).row(0, named=True)
        raise ValueError(f"the {name} table has more than one row per {view.keys}, e.g. {example}")
    return table


def offline_file(layout: HomeLayout, name: str, as_of: datetime) -> Path:
    """Where the table written as of this moment lives (one file per view and moment)."""
    stamp = _utc(as_of, "as_of").strftime("%Y%m%dT%H%M%S%fZ")
    return layout.offline_view(_view(name).name) / f"{AS_OF}={stamp}.parquet"


def write_offline(layout: HomeLayout, name: str, table: pl.DataFrame, as_of: datetime) -> Path:
    """Store a feature table as known at `as_of` in the history; writing one moment again replaces it.

    Returns the file written. The table must have exactly its view's columns, one row per key.
    """
    as_of = _utc(as_of, "as_of")
    table = _checked(name, table).with_columns(
        pl.lit(as_of).cast(_UTC_US).alias(AS_OF), pl.lit(datetime.now(UTC)).cast(_UTC_US).alias(WRITTEN_AT)
    )
    path = offline_file(layout, name, as_of)
    with _locked(layout):
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        table.write_parquet(partial)
        os.replace(partial, path)  # readers see the old file or the whole new one, never half of one
    return path


def written_moments(layout: HomeLayout, name: str) -> list[datetime]:
    """The moments the history holds a table for, oldest first."""
    folder = layout.offline_view(_view(name).name)
    moments = []
    for path in folder.glob(f"{AS_OF}=*.parquet"):
        moments.append(datetime.strptime(path.stem.split("=", 1)[1], "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC))
    return sorted(moments)


def materialize_online(store: Store, as_of: datetime, names: Iterable[str] | None = None) -> None:
    """Copy the tables written as of `as_of` from the history into the online store (their rows replace
    any older row of the same id)."""
    as_of = _utc(as_of, "as_of")
    names = list(FEATURE_VIEWS) if names is None else [_view(n).name for n in names]
    absent = [n for n in names if as_of not in written_moments(store.layout, n)]
    if absent:
        raise FileNotFoundError(f"nothing written as of {as_of.isoformat()} for {absent}: write_offline first")
    with _locked(store.layout):
        # Write-ahead logging, so the API reading the online store never waits for a materialisation
        # (nor one for the API): a setting of the file, kept once made.
        with contextlib.closing(sqlite3.connect(store.layout.online_store)) as conn:
            conn.execute("pragma journal_mode=wal")
        # Both ends inclusive in the file offline store: exactly the rows of this moment.
        store.feast.materialize(start_date=as_of, end_date=as_of, feature_views=names)


# --- reading -------------------------------------------------------------------------------------------


def _typed(name: str, frame, columns: Sequence[str]) -> pl.DataFrame:
    """Feast's pandas answer with the SQL's types back (Feast widens integer columns with gaps to floats)."""
    view = _view(name)
    table = pl.from_pandas(frame, nan_to_null=True)
    out = []
    for column in columns:
        dtype = view.schema[column]
        if column not in table.columns:
            out.append(pl.lit(None, dtype=dtype).alias(column))
        elif isinstance(dtype, pl.Datetime):
            series = table[column]
            if isinstance(series.dtype, pl.Datetime):
                series = series.dt.replace_time_zone("UTC") if series.dtype.time_zone is None else series
                out.append(series.dt.convert_time_zone("UTC").cast(dtype))
            else:
                out.append(series.cast(dtype))
        else:
            out.append(table[column].cast(dtype))
    return pl.DataFrame(out) if out else pl.DataFrame()


def _entity_rows(name: str, entities: pl.DataFrame) -> pl.DataFrame:
    view = _view(name)
    missing = [k for k in view.keys if k not in entities.columns]
    if missing:
        raise ValueError(f"the {name} ids lack key column(s) {missing} (the view is keyed by {view.keys})")
    nulls = [k for k in view.keys if entities[k].null_count()]
    if nulls:
        raise ValueError(f"the {name} ids hold empty keys in {nulls}")
    return entities.select(pl.col(k).cast(pl.String) for k in view.keys)


def online_features(store: Store, name: str, entities: pl.DataFrame | Sequence[Mapping[str, str]],
                    features: Sequence[str] | None = None) -> pl.DataFrame:
    """The online store's newest features for these ids, one row per id in the order given.

    An id the store does not know gets nulls in every feature column (not an error): a shopper new
    since the last materialisation has no features yet.
    """
    view = _view(name)
    rows = pl.DataFrame(list(entities)) if not isinstance(entities, pl.DataFrame) else entities
    rows = _entity_rows(name, rows)
    wanted = list(view.features if features is None else features)
    unknown = [f for f in wanted if f not in view.features]
    if unknown:
        raise KeyError(f"{name} has no feature(s) {unknown}; it has {view.features}")
    if rows.height == 0:
        return pl.DataFrame(schema={**{k: pl.String for k in view.keys}, **{f: view.schema[f] for f in wanted}})
    answer = store.feast.get_online_features(features=[f"{name}:{f}" for f in wanted], entity_rows=rows.to_dicts())
    values = answer.to_dict()
    columns = [pl.Series(k, rows[k]) for k in view.keys]
    for feature in wanted:
        columns.append(_series(feature, values[feature], view.schema[feature]))
    return pl.DataFrame(columns)


def _series(name: str, values: list, dtype: pl.DataType) -> pl.Series:
    if isinstance(dtype, pl.Datetime):
        values = [None if v is None else (v if isinstance(v, datetime) else datetime.fromtimestamp(v, UTC)) for v in values]
        series = pl.Series(name, values)
        if series.dtype == pl.Null:
            return series.cast(dtype)
        if series.dtype.time_zone is None:
            series = series.dt.replace_time_zone("UTC")
        return series.dt.convert_time_zone("UTC").cast(dtype)
    return pl.Series(name, values, dtype=dtype, strict=False)


def historical_features(store: Store, name: str, entities: pl.DataFrame, features: Sequence[str] | None = None) -> pl.DataFrame:
    """Point-in-time features: for each (ids, `as_of`) row, the newest stored row of those ids at or before
    `as_of`; never one from after it. Rows come back in the order given; an id unknown then gets nulls."""
    view = _view(name)
    if AS_OF not in entities.columns:
        raise ValueError(f"the {name} ids need an {AS_OF!r} column: the moment each row asks about")
    rows = _entity_rows(name, entities).with_columns(
        entities[AS_OF].cast(_UTC_US).alias(_ENTITY_TIMESTAMP), pl.int_range(entities.height).alias(_ROW)
    )
    if rows[_ENTITY_TIMESTAMP].null_count():
        raise ValueError(f"the {name} ids hold rows without an {AS_OF} moment")
    wanted = list(view.features if features is None else features)
    if not written_moments(store.layout, name):
        raise FileNotFoundError(f"the history holds no {name} table yet: write_offline first")
    if rows.height == 0:
        return pl.DataFrame(schema={**{k: pl.String for k in view.keys}, AS_OF: _UTC_US, **{f: view.schema[f] for f in wanted}})
    # Feast's file store fails (a dask sort over null timestamps) on an id the history has never held, so
    # only ids it holds are asked; the others get nulls below.
    seen = rows.join(_seen_keys(store.layout, name), on=view.keys, how="semi")
    if seen.height:
        job = store.feast.get_historical_features(entity_df=seen.to_pandas(), features=[f"{name}:{f}" for f in wanted])
        answer = job.to_df()
        typed = _typed(name, answer, wanted).with_columns(pl.Series(_ROW, answer[_ROW].to_numpy()).cast(pl.Int64))
    else:
        typed = pl.DataFrame(schema={**{f: view.schema[f] for f in wanted}, _ROW: pl.Int64})
    # It also drops an entity row whose only stored rows are later than its moment (it filters after the
    # join): joined back here, so such a row is kept, with nulls, like an id never seen.
    return (
        rows.select(*view.keys, pl.col(_ENTITY_TIMESTAMP).alias(AS_OF), pl.col(_ROW).cast(pl.Int64))
        .join(typed, on=_ROW, how="left")
        .sort(_ROW)
        .drop(_ROW)
    )


def features_as_of(store: Store, name: str, ids: pl.DataFrame, as_of: datetime) -> pl.DataFrame:
    """The feature table as it was known at `as_of` for these ids (the view's key columns), in the SQL's
    column order: the point-in-time join with every row asking about one moment. Ids unknown at
    `as_of` are left out, as the SQL would leave them out."""
    view = _view(name)
    as_of = _utc(as_of, "as_of")
    asked = _entity_rows(name, ids).unique(maintain_order=True).with_columns(pl.lit(as_of).cast(_UTC_US).alias(AS_OF))
    found = historical_features(store, name, asked)
    known = _known_at(store, name, as_of)
    if known is not None:
        found = found.join(known, on=view.keys, how="semi", maintain_order="left")
    return found.select(list(view.schema))


def _seen_keys(layout: HomeLayout, name: str) -> pl.DataFrame:
    """Every id the history of this view holds, at any moment."""
    keys = _view(name).keys
    return pl.scan_parquet(layout.offline_view(name) / f"{AS_OF}=*.parquet").select(keys).unique().collect()


def _known_at(store: Store, name: str, as_of: datetime) -> pl.DataFrame | None:
    """The ids the newest table at or before `as_of` holds (None when no table is that old)."""
    layout = store.layout
    moments = [m for m in written_moments(layout, name) if m <= as_of]
    if not moments:
        return None
    return pl.read_parquet(offline_file(layout, name, moments[-1]), columns=_view(name).keys)


def table_as_of(store: Store, name: str, as_of: datetime) -> pl.DataFrame:
    """The whole feature table as it was known at `as_of`, through the point-in-time join: every id of the
    newest table written at or before `as_of`. Raises when nothing that old was written."""
    as_of = _utc(as_of, "as_of")
    known = _known_at(store, name, as_of)
    if known is None:
        raise FileNotFoundError(f"the history holds no {name} table written at or before {as_of.isoformat()}")
    return features_as_of(store, name, known, as_of)


# --- what the pipeline calls ---------------------------------------------------------------------------


def newest_moment(events: pl.DataFrame) -> datetime | None:
    """The newest event time (what today's tables describe), None for undated events."""
    if "event_at" not in events.columns or events["event_at"].drop_nulls().len() == 0:
        return None
    return _utc(events["event_at"].max(), "the newest event time")


def publish(layout: HomeLayout, tables: Mapping[str, pl.DataFrame], as_of: datetime) -> pl.DataFrame:
    """Write today's feature tables into the history as of `as_of` and materialise them online.

    Returns one row per view: rows written, the moment, the files (for metadata and for readers).
    """
    store = open_store(layout)
    written = {name: write_offline(layout, name, table, as_of) for name, table in tables.items()}
    materialize_online(store, as_of, list(tables))
    return pl.DataFrame(
        {
            "view": list(tables),
            "rows": [tables[name].height for name in tables],
            AS_OF: [_utc(as_of, "as_of")] * len(tables),
            "offline_file": [str(written[name]) for name in tables],
            "online_store": [str(layout.online_store)] * len(tables),
        },
        schema_overrides={AS_OF: _UTC_US},
    )


def through_history(layout: HomeLayout, tables: Mapping[str, pl.DataFrame], as_of: datetime) -> dict[str, pl.DataFrame]:
    """Write feature tables into the history as of `as_of` and read them back with the point-in-time join
    (every id of each table, at `as_of`): what a training set asks the store for."""
    store = open_store(layout)
    for name, table in tables.items():
        write_offline(layout, name, table, as_of)
    return {name: features_as_of(store, name, table.select(_view(name).keys), as_of) for name, table in tables.items()}


def tables_as_of(layout: HomeLayout, as_of: datetime, names: Iterable[str] | None = None) -> dict[str, pl.DataFrame]:
    """Every feature table as known at `as_of` (see `table_as_of`), read with the point-in-time join."""
    store = open_store(layout, apply=False)
    return {name: table_as_of(store, name, as_of) for name in (FEATURE_VIEWS if names is None else names)}


# --- the API's read: one shopper's features, online ----------------------------------------------------


@dataclass(frozen=True)
class ShopperFeatures:
    """What the online store knows about one shopper: usual price level, activity and category shares."""

    user_id: str
    price_level: float | None
    n_events: int
    category_shares: Mapping[str, float]


ONLINE_MMAP_BYTES = 1 << 30  # address space only: pages are read from the file as they are touched


class OnlineShoppers:
    """Reads shoppers' features from the online store by id: the API's per-request read.

    `categories` are the catalogue's categories: the user x category view is keyed by both, so a
    shopper's shares are read for every category the catalogue has (absent ones are left out).

    It reads through Feast's own online-store interface (`SqliteOnlineStore.online_read`, which encodes
    the keys with Feast's entity-key serialisation), not `FeatureStore.get_online_features`: measured on
    10k users x 10 categories, the same answer in 0.16 ms (median) instead of 0.45 ms, the rest of
    get_online_features being registry look-ups and conversions to and from Python per value.
    """

    USER_FEATURES = ("price_level", "n_events")

    def __init__(self, store: Store, categories: Iterable[str]) -> None:
        _import_feast()
        from feast.infra.online_stores.sqlite import SqliteOnlineStore
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        self.store = store
        self.categories = tuple(sorted({c for c in categories if c is not None}))
        self._key, self._value = EntityKey, Value
        self._online = SqliteOnlineStore()
        self._config = store.feast.config
        self._users = store.feast.get_feature_view("user_features")
        self._shares = store.feast.get_feature_view("user_category_affinity")
        self._category_values = [Value(string_val=c) for c in self.categories]
        # The online file is read through memory mapping rather than SQLite's small page cache: measured
        # here, a read's p99 drops from 3.4 ms to 0.3 ms (median unchanged, 0.17 ms). Feast opens the
        # connection lazily in `_get_conn` (feast is pinned, so this hook is stable).
        connection = self._online._get_conn(self._config)
        connection.execute(f"pragma mmap_size={ONLINE_MMAP_BYTES}")

    def read(self, user_id: str) -> ShopperFeatures | None:
        """The shopper's features, or None when the online store does not know them (new, anonymous)."""
        user = self._value(string_val=user_id)
        ((_, found),) = self._online.online_read(
            self._config, self._users, [self._key(join_keys=["user_id"], entity_values=[user])], list(self.USER_FEATURES)
        )
        if found is None:
            return None
        shares = {}
        if self.categories:
            keys = [self._key(join_keys=["user_id", "category"], entity_values=[user, c]) for c in self._category_values]
            for category, (_, values) in zip(self.categories, self._online.online_read(self._config, self._shares, keys, ["share"])):
                if values is not None and values["share"].HasField("double_val"):
                    shares[category] = values["share"].double_val
        price = found.get("price_level")
        events = found.get("n_events")
        return ShopperFeatures(
            user_id,
            price.double_val if price is not None and price.HasField("double_val") else None,
            int(events.int64_val) if events is not None and events.HasField("int64_val") else 0,
            shares,
        )
