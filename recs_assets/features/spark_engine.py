"""Run the feature store's DuckDB SQL (`sql/*.sql`) on Spark SQL, unchanged: transpiled by sqlglot.

The `sql/` files stay the one definition of every feature. For Spark (local mode here, a cluster or
Databricks in production) each file is parsed as DuckDB, rewritten where the two engines would
otherwise disagree, and printed as Spark SQL; `$name` parameters become Spark's `:name` markers and are
bound with `spark.sql(query, args=...)`, never pasted into the text.

Where plain `sqlglot.transpile` is not enough (each measured: the engines gave different answers):
- `list(x order by y)`: sqlglot prints `collect_list(x)` and silently drops the order. Every list
  aggregate becomes `transform(array_sort(collect_list(named_struct(keys..., 'v', x)), cmp), s -> s.v)`,
  with a comparator that follows the ORDER BY exactly (asc/desc, DuckDB's NULLS LAST default). The
  struct also keeps NULL elements, which `collect_list` alone would drop and DuckDB keeps.
- `list[i]`: DuckDB counts from 1; sqlglot shifts literal indexes to Spark's 0 but leaves an expression
  such as `item_ids[n_items]` as it is, which reads one past the end. Every subscript becomes
  `try_element_at(list, i)` (1-based in both, negative from the end, NULL when out of range as in DuckDB,
  where Spark's ANSI `[i]` would fail the query).
- `epoch(ts)` is a DOUBLE with microseconds in DuckDB; sqlglot's `unix_timestamp` drops the fraction.
  It becomes DuckDB's own arithmetic on `unix_micros(ts)` (see `_epoch`).
- `rank()`, `row_number()`, `dense_rank()` are BIGINT in DuckDB and INT in Spark: cast to BIGINT, so
  both engines hand back the same column types.

Spark runs with its session time zone set to UTC (see `spark_conf`), as `run_sql` does for DuckDB, so
"which day" answers agree.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
from collections.abc import Mapping

import polars as pl
import pyarrow as pa

try:
    import sqlglot
    from sqlglot import exp
except ImportError:  # the optional `spark` extra; spark_unavailable() says so
    sqlglot = exp = None

# What a local session needs here; a cluster's own settings (master, executors) come from its config.
LOCAL_SPARK_CONF: Mapping[str, str] = {
    "spark.master": "local[1]",
    "spark.app.name": "recs_assets",
    # Loopback only: the machine's own hostname may not resolve, and nothing should listen outside.
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.ui.enabled": "false",
    # The default 200 shuffle partitions cost seconds of scheduling on small tables and one core.
    "spark.sql.shuffle.partitions": "4",
    "spark.ui.showConsoleProgress": "false",
}


def spark_conf(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The settings every session running the feature SQL needs (UTC, Arrow transfer) over `extra`."""
    return {
        **LOCAL_SPARK_CONF,
        **dict(extra or {}),
        # Not overridable: the SQL's day boundaries and timestamp labels are UTC on every engine.
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
    }


def local_spark_session(extra: Mapping[str, str] | None = None):
    """A Spark session for this machine (local mode, loopback); an already running one is reused."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    for key, value in spark_conf(extra).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    # Spark warns on every window without a partition (popularity_rank ranks all items, on purpose).
    session.sparkContext.setLogLevel("ERROR")
    return session


@functools.lru_cache(maxsize=64)
def to_spark_sql(duckdb_sql: str) -> str:
    """The Spark SQL text of one DuckDB query, with the rewrites listed in this module's docstring."""
    if sqlglot is None:
        raise RuntimeError("the Spark engine needs sqlglot: pip install -e '.[spark]'")
    statements = sqlglot.parse(duckdb_sql, read="duckdb")
    if len(statements) != 1 or statements[0] is None:
        raise ValueError(f"expected exactly one SQL statement, found {len(statements)}")
    tree = statements[0]
    # Children first, so a rewritten list aggregate is printed from already rewritten parts.
    for node in reversed(list(tree.dfs())):
        new = _rewrite(node)
        if new is not node:
            node.replace(new)
    return tree.sql(dialect="spark")


def _rewrite(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.TimeToUnix):
        return _epoch(node.this)
    if isinstance(node, exp.Window) and isinstance(node.this, (exp.Rank, exp.RowNumber, exp.DenseRank)):
        return exp.Cast(this=node.copy(), to=exp.DataType.build("BIGINT"))
    if isinstance(node, exp.Bracket):
        return _subscript(node)
    if isinstance(node, exp.ArrayAgg) and not isinstance(node.parent, exp.Filter):
        return _ordered_list(node, where=None)
    if isinstance(node, exp.Filter) and isinstance(node.this, exp.ArrayAgg):
        return _ordered_list(node.this, where=node.expression)
    return node


def _epoch(timestamp: exp.Expression) -> exp.Expression:
    """DuckDB's epoch() of a TIMESTAMPTZ, to the last bit: whole milliseconds / 1e3 + the rest / 1e6.

    (DuckDB's ICU extension computes it so; `unix_micros / 1e6` differs in the last bit for about a
    quarter of timestamps, enough to make recency_days disagree at 1e-12.) Every timestamp of the
    project is a TIMESTAMPTZ (contract.UTC_TIMESTAMP).
    """
    us = f"unix_micros({timestamp.sql(dialect='spark')})"
    text = f"((({us} - pmod({us}, 1000)) div 1000) / 1e3 + pmod({us}, 1000) / 1e6)"
    return sqlglot.parse_one(text, read="spark")


def _subscript(node: exp.Bracket) -> exp.Expression:
    if len(node.expressions) != 1:
        raise NotImplementedError(f"no Spark translation for the subscript {node.sql(dialect='duckdb')}")
    index = node.expressions[0]
    if isinstance(index, exp.Literal) and index.is_string:
        return node  # a struct field or map key, not a list position
    # sqlglot stored a literal DuckDB index shifted to 0-based (-1 as -2); undo that to get DuckDB's own.
    if index.is_int:
        index = exp.Literal.number(int(index.to_py()) + 1)
    else:
        # Spark takes an INT position; a count such as n_items is a BIGINT.
        index = exp.Cast(this=index, to=exp.DataType.build("INT"))
    return exp.Anonymous(this="try_element_at", expressions=[node.this, index])


def _ordered_list(agg: exp.ArrayAgg, where: exp.Where | None) -> exp.Expression:
    """`list(x [order by k...]) [filter (where c)]` as an ordered Spark array that keeps NULLs."""
    value = agg.this
    keys: list[exp.Ordered] = []
    if isinstance(value, exp.Order):
        keys = list(value.expressions)
        value = value.this
    if agg.args.get("distinct") or isinstance(value, exp.Distinct):
        raise NotImplementedError(f"no Spark translation for {agg.sql(dialect='duckdb')}")

    def spark(e: exp.Expression) -> str:
        return e.sql(dialect="spark")

    fields = [f"'k{n}', {spark(key.this)}" for n, key in enumerate(keys)]
    fields.append(f"'v', {spark(value)}")
    struct = f"named_struct({', '.join(fields)})"
    collected = f"collect_list({struct})"
    if where is not None:
        collected += f" filter ({spark(where)})"
    if keys:
        collected = f"array_sort({collected}, (l, r) -> {_comparator(keys)})"
    return sqlglot.parse_one(f"transform({collected}, s -> s.v)", read="spark")


def _comparator(keys: list[exp.Ordered]) -> str:
    """A comparator for array_sort that orders like `ORDER BY keys` in DuckDB (ties: 0)."""
    result = "0"
    for n in reversed(range(len(keys))):
        key = keys[n]
        descending = bool(key.args.get("desc"))
        # DuckDB puts NULLs last in either direction unless told otherwise.
        nulls_first = bool(key.args.get("nulls_first"))
        before, after = ("-1", "1") if nulls_first else ("1", "-1")
        lower, higher = ("1", "-1") if descending else ("-1", "1")
        left, right = f"l.k{n}", f"r.k{n}"
        result = (
            f"case when {left} is null and {right} is null then {result} "
            f"when {left} is null then {before} when {right} is null then {after} "
            f"when {left} < {right} then {lower} when {left} > {right} then {higher} else {result} end"
        )
    return result


def _spark_frame(spark, frame: pl.DataFrame):
    """A Spark DataFrame with the frame's rows and types (through Arrow, no pandas in between)."""
    table = frame.to_arrow(compat_level=pl.CompatLevel.oldest())
    # Spark reads the plain Arrow types; polars hands over large strings and lists.
    table = table.cast(pa.schema([pa.field(f.name, _plain_type(f.type), f.nullable) for f in table.schema]))
    if frame.width == 0:
        raise ValueError("a table with no columns cannot be sent to Spark")
    return spark.createDataFrame(table)


def _plain_type(t: pa.DataType) -> pa.DataType:
    if pa.types.is_large_string(t):
        return pa.string()
    if pa.types.is_null(t):
        # An all-NULL column (e.g. session_id of a source without sessions) has no type of its own.
        return pa.string()
    if pa.types.is_large_list(t):
        return pa.list_(_plain_type(t.value_type))
    return t


def run_spark_sql(spark, sql: str, tables: Mapping[str, pl.DataFrame], params: Mapping[str, object]) -> pl.DataFrame:
    """Run one DuckDB query on Spark with `tables` as temporary views and `params` bound by name."""
    query = to_spark_sql(sql)
    views = []
    try:
        for name, frame in tables.items():
            _spark_frame(spark, frame).createOrReplaceTempView(name)
            views.append(name)
        result = spark.sql(query, args=dict(params)) if params else spark.sql(query)
        table = result.toArrow()
    finally:
        for name in views:
            spark.catalog.dropTempView(name)
    return pl.from_arrow(table)


def spark_unavailable() -> str | None:
    """Why a local Spark session cannot start here (no PySpark, no Java), or None when it can."""
    if importlib.util.find_spec("pyspark") is None or importlib.util.find_spec("sqlglot") is None:
        return "PySpark and sqlglot are not installed (pip install -e '.[spark]')"
    java_home = os.environ.get("JAVA_HOME")
    if not (java_home and os.path.exists(os.path.join(java_home, "bin", "java"))) and shutil.which("java") is None:
        return "no Java runtime (java on PATH or JAVA_HOME): Spark needs Java 17"
    return None
