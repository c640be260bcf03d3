"""The lake IO manager: every asset a Parquet table, read back whole or only the columns an input names."""

import dagster as dg
import polars as pl

from resources.lake_io_manager import LakeIOManager


@dg.asset
def wide() -> pl.DataFrame:
    return pl.DataFrame({"protocol": ["temporal"] * 3, "user_id": ["u1", "u2", "u3"], "payload": [1.0, 2.0, 3.0]})


@dg.asset(ins={"wide": dg.AssetIn(metadata={"columns": ["protocol"]})})
def narrow_reader(wide: pl.DataFrame) -> pl.DataFrame:
    return pl.DataFrame({"columns": [",".join(wide.columns)], "rows": [wide.height]})


@dg.asset
def whole_reader(wide: pl.DataFrame) -> pl.DataFrame:
    return pl.DataFrame({"columns": [",".join(wide.columns)], "rows": [wide.height]})


def test_an_input_that_names_columns_reads_only_those_and_every_row(tmp_path):
    result = dg.materialize([wide, narrow_reader, whole_reader], resources={"io_manager": LakeIOManager(home=str(tmp_path))})
    assert result.success
    assert result.output_for_node("narrow_reader").row(0) == ("protocol", 3)
    assert result.output_for_node("whole_reader").row(0) == ("protocol,user_id,payload", 3)
    assert (tmp_path / "lake" / "wide.parquet").exists()


@dg.asset(ins={"wide": dg.AssetIn(input_manager_key="scanner")})
def lazy_reader(wide: pl.LazyFrame) -> pl.DataFrame:
    return pl.DataFrame({"lazy": [isinstance(wide, pl.LazyFrame)], "rows": [wide.select(pl.len()).collect().item()]})


def test_a_lazy_manager_gives_a_scan_of_the_whole_table(tmp_path):
    result = dg.materialize([wide, lazy_reader], resources={
        "io_manager": LakeIOManager(home=str(tmp_path)), "scanner": LakeIOManager(home=str(tmp_path), lazy=True),
    })
    assert result.success
    assert result.output_for_node("lazy_reader").row(0) == (True, 3)
