"""The home folder as a resource, for assets that talk to stores inside it directly (the MLflow registry)."""

from pathlib import Path

import dagster as dg


class HomeFolder(dg.ConfigurableResource):
    """`RECS_HOME`: where the lake, warehouse, MLflow store and Dagster instance live."""

    path: str

    @property
    def root(self) -> Path:
        return Path(self.path)
