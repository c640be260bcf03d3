"""The home folder's storage: Parquet files written atomically, and DuckDB views over them.

Each asset is one Parquet file (or one file per partition) in the lake and one view of the same name in
`warehouse.duckdb`, so analysts can query any asset with SQL while the data itself lives once, in Parquet.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from pathlib import Path

import duckdb
import polars as pl

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
PARTITION_COLUMN = "partition_key"


def write_parquet_atomic(df: pl.DataFrame, path: Path) -> None:
    """Write to a temporary file beside `path`, then rename: a crash never leaves half a table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        df.write_parquet(tmp, compression="zstd", statistics=True)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def table_path(lake: Path, name: str, partition_key: str | None = None) -> Path:
    """Where an asset (or one partition of it) lives in the lake."""
    if partition_key is None:
        return lake / f"{name}.parquet"
    return lake / name / f"{PARTITION_COLUMN}={partition_key}" / "data.parquet"


def register_view(warehouse: Path, name: str, lake: Path, partitioned: bool, timeout_s: float = 60.0) -> None:
    """(Re)create the DuckDB view `name` over the asset's Parquet file(s).

    DuckDB allows one writing process at a time; when steps run in parallel processes another may hold
    the file for a moment, so a lock conflict is retried rather than failing the run.
    """
    if not _IDENTIFIER.match(name):
        raise ValueError(f"asset name {name!r} is not a valid warehouse table name")
    if "?" in str(warehouse):
        # DuckDB reads "?" in a database path as the start of options and then cannot find its WAL file.
        raise ValueError(f"{warehouse}: DuckDB cannot use a database path holding '?'; choose a RECS_HOME without it.")
    statement = f"create or replace view {name} as select * from {_parquet_source(lake, name, partitioned)}"
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    while True:
        try:
            with duckdb.connect(str(warehouse)) as conn:
                conn.execute(statement)
            return
        except duckdb.IOException as error:
            if "lock" not in str(error).lower() or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


def _sql_text(text: str) -> str:
    """A SQL string literal: paths may hold any character, quotes included."""
    return "'" + text.replace("'", "''") + "'"


def _glob_literal(text: str) -> str:
    """`text` as a DuckDB path that matches only itself: [, ], * and ? each in a character class.

    DuckDB treats every path it reads as a pattern, so "h*" would also read a neighbouring "hx".
    """
    return _GLOB_SPECIAL.sub(r"[\1]", text)


_GLOB_SPECIAL = re.compile(r"([\[\]*?])")


def _parquet_source(lake: Path, name: str, partitioned: bool) -> str:
    folder = lake / name
    if "\\" in str(folder) and _GLOB_SPECIAL.search(str(folder)):
        raise ValueError(
            f"{folder}: DuckDB cannot read a path holding both a backslash and one of [ ] * ?; "
            "choose a RECS_HOME without them."
        )
    if not partitioned:
        return f"read_parquet({_sql_text(_glob_literal(str(table_path(lake, name))))})"
    options = "hive_partitioning = true, union_by_name = true"
    if "\\" not in str(folder):
        # A glob, not a list of today's files, so partitions written later by other processes show up.
        return f"read_parquet({_sql_text(_glob_literal(str(folder)) + '/*/data.parquet')}, {options})"
    # DuckDB's glob cannot match a backslash in a folder name: list the partition files instead.
    files = sorted(str(path) for path in folder.glob("*/data.parquet"))
    return f"read_parquet([{', '.join(_sql_text(f) for f in files)}], {options})"


def _table_files(lake: Path, name: str, partition_keys: list[str] | None) -> list[Path]:
    """The Parquet files of an asset (of the given partitions, in order), each checked to exist."""
    if partition_keys is None:
        path = table_path(lake, name)
        if not path.exists():
            raise FileNotFoundError(f"{name} has not been materialised yet (no {path})")
        return [path]
    paths = [table_path(lake, name, key) for key in partition_keys]
    missing = [key for key, path in zip(partition_keys, paths) if not path.exists()]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise FileNotFoundError(f"{name}: {len(missing)} partition(s) not materialised yet: {shown}")
    if not paths:
        raise ValueError(f"{name}: no partitions requested")
    return paths


def read_table(lake: Path, name: str, partition_keys: list[str] | None = None,
               columns: list[str] | None = None) -> pl.DataFrame:
    """Read an asset back from the lake (all of the given partitions, in order; only `columns` when given)."""
    return pl.concat([pl.read_parquet(p, columns=columns) for p in _table_files(lake, name, partition_keys)],
                     how="vertical_relaxed")


def scan_table(lake: Path, name: str, partition_keys: list[str] | None = None) -> pl.LazyFrame:
    """The same table as `read_table`, as a lazy scan: only what a query selects is ever read."""
    return pl.concat([pl.scan_parquet(p) for p in _table_files(lake, name, partition_keys)], how="vertical_relaxed")
