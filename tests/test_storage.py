"""The home folder's storage: atomic Parquet writes and DuckDB views named as the assets."""

import duckdb
import polars as pl
import pytest

from recs_assets.storage import read_table, register_view, table_path, write_parquet_atomic


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "lake" / "items.parquet"
    write_parquet_atomic(pl.DataFrame({"a": [1]}), path)
    write_parquet_atomic(pl.DataFrame({"a": [2, 3]}), path)
    assert pl.read_parquet(path)["a"].to_list() == [2, 3]
    assert [p.name for p in path.parent.iterdir()] == ["items.parquet"]


def test_a_failed_write_keeps_the_previous_table(tmp_path):
    path = tmp_path / "items.parquet"
    write_parquet_atomic(pl.DataFrame({"a": [1]}), path)
    with pytest.raises(Exception):
        write_parquet_atomic(pl.DataFrame({"a": [object()]}, schema={"a": pl.Object}), path)
    assert pl.read_parquet(path)["a"].to_list() == [1]
    assert [p.name for p in tmp_path.iterdir()] == ["items.parquet"]


def test_views_cover_every_partition_and_name_it(tmp_path):
    lake, warehouse = tmp_path / "lake", tmp_path / "warehouse.duckdb"
    for day, n in [("2026-09-01", 2), ("2026-09-02", 3)]:
        write_parquet_atomic(pl.DataFrame({"x": list(range(n))}), table_path(lake, "raw_events", day))
    register_view(warehouse, "raw_events", lake, partitioned=True)
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        counts = conn.sql("select cast(partition_key as varchar), count(*) from raw_events group by 1 order by 1").fetchall()
    assert counts == [("2026-09-01", 2), ("2026-09-02", 3)]
    assert read_table(lake, "raw_events", ["2026-09-02"]).height == 3


def test_reading_a_missing_partition_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="2026-09-09"):
        read_table(tmp_path, "raw_events", ["2026-09-09"])
    with pytest.raises(FileNotFoundError, match="items has not been materialised"):
        read_table(tmp_path, "items")


def test_a_view_name_must_be_a_plain_identifier(tmp_path):
    with pytest.raises(ValueError, match="not a valid warehouse table name"):
        register_view(tmp_path / "w.duckdb", "items; drop table x", tmp_path, partitioned=False)
