"""Which engine computes the feature store's SQL: DuckDB in this process (default) or Spark SQL.

The same `sql/` files run on either (see recs_assets/features/spark_engine.py); only this setting
changes. For Spark the session is built by dagster-pyspark from `spark_config` (the master URL, a
cluster's executors, Databricks Connect's settings) over the settings every feature query needs (UTC).
The session starts only when the engine is Spark: a DuckDB run never starts a JVM.
"""

from typing import Any

import dagster as dg
import polars as pl
from pydantic import PrivateAttr

from recs_assets.features.sql_runner import run_sql
from recs_assets.settings import ENGINES


class FeatureEngine(dg.ConfigurableResource):
    """The SQL engine of the feature tables (`duckdb` or `spark`) and Spark's settings."""

    engine: str = "duckdb"
    # Spark settings over spark_engine.LOCAL_SPARK_CONF (local[1] on loopback), e.g. {"spark.master": "spark://host:7077"}.
    spark_config: dict[str, Any] = {}
    _spark: Any = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"feature engine must be one of {', '.join(ENGINES)}; got {self.engine!r}")
        if self.engine == "spark":
            # Imported here: PySpark is the optional `spark` extra.
            from dagster_pyspark.resources import spark_session_from_config

            from recs_assets.features.spark_engine import spark_conf, spark_unavailable

            reason = spark_unavailable()
            if reason:
                raise RuntimeError(f"RECS_ENGINE=spark, but Spark cannot start here: {reason}")
            self._spark = spark_session_from_config(spark_conf(self.spark_config))

    @property
    def spark_session(self) -> Any:
        """The Spark session (None on DuckDB): what Spark MLlib models train on."""
        return self._spark

    def run_sql(self, name: str, tables: dict[str, pl.DataFrame], params: dict[str, object]) -> pl.DataFrame:
        """`sql/<name>.sql` on this engine (see recs_assets.features.sql_runner.run_sql)."""
        return run_sql(name, tables, params, spark=self._spark)
