"""The home folder's storage: atomic Parquet writes and DuckDB views named as the assets."""

import duckdb
import polars as pl
import pytest

from recs_assets.storage import read_table, register_view, scan_table, table_path, write_parquet_atomic


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
    for read in (read_table, scan_table):
        with pytest.raises(FileNotFoundError, match="2026-09-09"):
            read(tmp_path, "raw_events", ["2026-09-09"])
        with pytest.raises(FileNotFoundError, match="items has not been materialised"):
            read(tmp_path, "items")


def test_a_scan_is_the_table_read_whole_even_where_partitions_differ_in_type(tmp_path):
    # One day's prices were whole numbers (Int64), the next day's not: both reads widen to Float64 alike.
    write_parquet_atomic(pl.DataFrame({"id": ["a", "b"], "price": [1, 2]}), table_path(tmp_path, "raw_events", "2026-09-01"))
    write_parquet_atomic(pl.DataFrame({"id": ["c"], "price": [2.5]}), table_path(tmp_path, "raw_events", "2026-09-02"))
    days = ["2026-09-01", "2026-09-02"]
    scanned = scan_table(tmp_path, "raw_events", days)
    assert isinstance(scanned, pl.LazyFrame)
    assert scanned.collect().equals(read_table(tmp_path, "raw_events", days))
    assert scanned.collect()["price"].to_list() == [1.0, 2.0, 2.5]
    assert scan_table(tmp_path, "raw_events", days[1:]).select("id").collect()["id"].to_list() == ["c"]


def test_a_view_name_must_be_a_plain_identifier(tmp_path):
    with pytest.raises(ValueError, match="not a valid warehouse table name"):
        register_view(tmp_path / "w.duckdb", "items; drop table x", tmp_path, partitioned=False)


ODD_FOLDER_NAMES = ["it's", "two words", "br[1]ack", "st*ar", "back\\slash", "uni—é", "cu{r}ly", 'dq"uote', "semi;colon", "%s"]


@pytest.mark.parametrize("folder", ODD_FOLDER_NAMES)
def test_views_work_whatever_characters_the_home_path_holds(tmp_path, folder):
    home = tmp_path / folder
    lake, warehouse = home / "lake", home / "warehouse.duckdb"
    write_parquet_atomic(pl.DataFrame({"a": [1, 2]}), table_path(lake, "items"))
    for day in ("2026-09-01", "2026-09-02"):
        write_parquet_atomic(pl.DataFrame({"x": [1]}), table_path(lake, "raw_events", day))
    register_view(warehouse, "items", lake, partitioned=False)
    register_view(warehouse, "raw_events", lake, partitioned=True)
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        assert conn.sql("select count(*) from items").fetchone() == (2,)
        assert conn.sql("select count(*) from raw_events").fetchone() == (2,)


def test_a_glob_character_in_the_home_path_never_reads_a_neighbours_files(tmp_path):
    # "h*" would match both homes as a pattern; each view must see only its own home's table.
    for home, rows in [("h*", 1), ("hx", 5)]:
        write_parquet_atomic(pl.DataFrame({"a": list(range(rows))}), table_path(tmp_path / home / "lake", "items"))
        write_parquet_atomic(pl.DataFrame({"a": list(range(rows))}), table_path(tmp_path / home / "lake", "raw_events", "2026-09-01"))
    lake, warehouse = tmp_path / "h*" / "lake", tmp_path / "w.duckdb"
    register_view(warehouse, "items", lake, partitioned=False)
    register_view(warehouse, "raw_events", lake, partitioned=True)
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        assert conn.sql("select count(*) from items").fetchone() == (1,)
        assert conn.sql("select count(*) from raw_events").fetchone() == (1,)


def test_paths_duckdb_cannot_handle_are_refused_with_the_reason(tmp_path):
    with pytest.raises(ValueError, match=r"q\?mark.*cannot use a database path holding '\?'"):
        register_view(tmp_path / "q?mark" / "w.duckdb", "items", tmp_path, partitioned=False)
    with pytest.raises(ValueError, match="both a backslash and one of"):
        register_view(tmp_path / "w.duckdb", "items", tmp_path / "a\\b*", partitioned=False)
