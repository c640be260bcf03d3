"""The online feature store: the user, item and user x category features kept as a history and served by id.

The feature SQL (`sql/*.sql`, run by :mod:`recs_assets.features`) says how a feature is computed; this
package keeps what it computed, and when. It is a Feast feature store built in code (no feature repo):

- the *offline store* is the history: every feature table written as of a moment (today's, or a
  training cut-off) becomes one time-stamped Parquet file, so it records what was known when;
- the *point-in-time join* (`historical_features`) answers "what did we know about these ids at these
  moments" from that history, never with a row from after the moment asked about;
- the *online store* (SQLite) holds the newest row per id, materialised from the history, and
  `online_features` reads it by id, as the API does.

Feast costs seconds to import, so it is imported inside the functions that need it.
"""

from recs_assets.feature_store.store import (
    AS_OF,
    FEATURE_VIEWS,
    FeatureView,
    OnlineShoppers,
    ShopperFeatures,
    Store,
    features_as_of,
    historical_features,
    materialize_online,
    newest_moment,
    online_features,
    open_store,
    publish,
    table_as_of,
    tables_as_of,
    through_history,
    write_offline,
    written_moments,
)

__all__ = [
    "AS_OF",
    "FEATURE_VIEWS",
    "FeatureView",
    "OnlineShoppers",
    "ShopperFeatures",
    "Store",
    "features_as_of",
    "historical_features",
    "materialize_online",
    "newest_moment",
    "online_features",
    "open_store",
    "publish",
    "table_as_of",
    "tables_as_of",
    "through_history",
    "write_offline",
    "written_moments",
]
