"""Dagster IO manager that stores every asset in the home folder's Parquet lake and DuckDB warehouse."""

from __future__ import annotations

from pathlib import Path

from recs_assets.layout import HomeLayout
import dagster as dg
import polars as pl

from recs_assets.storage import read_table, register_view, scan_table, table_path, write_parquet_atomic


class LakeIOManager(dg.ConfigurableIOManager):
    """Parquet per asset (per partition for partitioned ones) plus a DuckDB view named as the asset.

    A partitioned asset returns `{partition_key: DataFrame}` so one run can write a whole range of days
    (a single-run backfill); re-materialising a partition replaces its file.
    """

    home: str
    # Columns every input read through this manager gets (None: all), for a second instance that a
    # check names by `input_manager_key` where an input's own metadata cannot be set (a check's own asset).
    columns: list[str] | None = None
    # True: inputs are lazy scans (`pl.LazyFrame`), for a step that streams a table too large to hold
    # beside the rest (the reconcile check's raw batch), reading only the columns its queries select.
    lazy: bool = False

    @property
    def lake(self) -> Path:
        return HomeLayout(self.home).lake

    @property
    def warehouse(self) -> Path:
        return HomeLayout(self.home).warehouse

    @staticmethod
    def _name(key: dg.AssetKey) -> str:
        return key.to_python_identifier()

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame | dict[str, pl.DataFrame]) -> None:
        name = self._name(context.asset_key)
        if context.has_asset_partitions:
            expected = list(context.asset_partition_keys)
            if not isinstance(obj, dict):
                if len(expected) != 1:
                    raise TypeError(f"{name}: a run over several partitions must return {{partition_key: frame}}")
                obj = {expected[0]: obj}
            if sorted(obj) != sorted(expected):
                raise ValueError(f"{name}: returned partitions {sorted(obj)[:3]}... but the run targets {expected[:3]}...")
            for key, frame in obj.items():
                write_parquet_atomic(frame, table_path(self.lake, name, key))
            location = self.lake / name
        else:
            if not isinstance(obj, pl.DataFrame):
                raise TypeError(f"{name}: expected a polars DataFrame, got {type(obj).__name__}")
            location = table_path(self.lake, name)
            write_parquet_atomic(obj, location)
        self.warehouse.parent.mkdir(parents=True, exist_ok=True)
        register_view(self.warehouse, name, self.lake, partitioned=context.has_asset_partitions)
        context.add_output_metadata(
            {
                "lake_path": dg.MetadataValue.path(str(location)),
                "warehouse_table": dg.MetadataValue.text(f"{self.warehouse}::{name}"),
            }
        )

    def load_input(self, context: dg.InputContext) -> pl.DataFrame | pl.LazyFrame:
        """The asset's table; only the columns an input names (`AssetIn(metadata={"columns": [...]})`), else this manager's."""
        name = self._name(context.asset_key)
        keys = list(context.asset_partition_keys) if context.has_asset_partitions else None
        if self.lazy:
            return scan_table(self.lake, name, keys)
        columns = (context.definition_metadata or {}).get("columns", self.columns)
        return read_table(self.lake, name, keys, list(columns) if columns is not None else None)
