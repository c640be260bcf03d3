"""Where everything lives inside the home folder: the one place that spells out its paths.

```
$RECS_HOME/
  lake/<asset>.parquet, lake/<asset>/partition_key=<key>/data.parquet   the Parquet lake
  warehouse.duckdb          one DuckDB view per asset over the lake
  models/<asset>/           saved models (the model IO manager)
  mlflow.db, mlflow/artifacts/   MLflow tracking and registry
  dagster/                  the Dagster instance
  reports/                  HTML reports (drift, stakeholder)
  serving/request_log.jsonl, serving/history/   API request log, superseded snapshots
  live_events/              events posted to the API when no broker is configured (JSON lines)
  live_landing/             live events landed from the broker (Parquet, one file per batch)
  broker/                   the embedded broker's append-only file (`make serve` without RECS_BROKER_URL)
  feature_store/            the Feast feature store: registry.db, offline/<view>/as_of=<UTC>.parquet (the
                            history of each feature table as known when), online.sqlite (the online store)
  run.lock                  held by the one pipeline run writing this home
```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class HomeLayout:
    """The home folder's layout; every path the pipeline, the API and the tools use comes from here."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def run_lock(self) -> Path:
        return self.root / "run.lock"

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def models(self) -> Path:
        return self.root / "models"

    def model_dir(self, name: str) -> Path:
        return self.models / name

    @property
    def mlflow_db(self) -> Path:
        return self.root / "mlflow.db"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.root / "mlflow" / "artifacts"

    @property
    def dagster(self) -> Path:
        return self.root / "dagster"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def serving(self) -> Path:
        return self.root / "serving"

    @property
    def request_log(self) -> Path:
        return self.serving / "request_log.jsonl"

    @property
    def snapshot_history(self) -> Path:
        return self.serving / "history"

    @property
    def live_events(self) -> Path:
        return self.root / "live_events"

    @property
    def live_landing(self) -> Path:
        """Live events landed from the broker, one Parquet file per batch (the `live_events` asset reads them)."""
        return self.root / "live_landing"

    @property
    def broker(self) -> Path:
        """The embedded broker's folder: its append-only file, lock and where it listens."""
        return self.root / "broker"

    @property
    def feature_store(self) -> Path:
        """The Feast feature store's folder (recs_assets.feature_store)."""
        return self.root / "feature_store"

    @property
    def feature_registry(self) -> Path:
        """Feast's registry of the store's entities and feature views."""
        return self.feature_store / "registry.db"

    @property
    def online_store(self) -> Path:
        """The SQLite online store: the newest features per id, what the API reads."""
        return self.feature_store / "online.sqlite"

    @property
    def offline_store(self) -> Path:
        """The file offline store: every feature table as written as of a moment, one Parquet file each."""
        return self.feature_store / "offline"

    def offline_view(self, name: str) -> Path:
        """One feature view's history (`as_of=<UTC stamp>.parquet` files)."""
        return self.offline_store / name
