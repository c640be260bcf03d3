"""Run one of the project's SQL files (`sql/<name>.sql`) on in-memory tables and get a table back.

Every feature table is defined once, as plain SQL in the checkout's `sql/` folder, so an analyst can read
exactly how a number is computed and the same text can run on a bigger engine later. This module is the
small bridge between those files and Python: hand it the input tables (e.g. `events`, `items`, `users`)
and the parameters the query asks for (e.g. the point-in-time `cutoff`), and it returns the result.

Guarantees:
- A parameter the SQL uses but the caller did not give is an error that names it (a silent NULL would
  quietly change every feature). Extra parameters are allowed, so callers can pass one shared config.
- Asking for a SQL file that does not exist is an error that lists the files that do.
- DuckDB runs it by default; a Spark session runs the same file (`run_sql(..., spark=session)`).
- Timestamps come back as UTC microseconds (`Datetime("us", "UTC")`), whatever the machine's time zone,
  and "which UTC day" questions inside the SQL are answered in UTC too.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"

# One thread, so that the same events give the same features bit for bit. With two, DuckDB adds a
# group's floats in whichever order its threads finish (sum(weight * decay), avg(price)): strengths and
# price levels then differ in the last bits from run to run (every run differed, 8 of 8, at 2,000 users),
# and so can every model fitted on them. Measured at 1M events, the six feature queries take 3.7 s
# instead of 3.1 s.
DUCKDB_THREADS = 1

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_PARAMETER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
# Comments and quoted text are removed before looking for `$name`, so a parameter mentioned in a header
# comment (as every file does) is not mistaken for one the query needs.
_NOT_CODE = re.compile(r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"", re.DOTALL)
# Each file's header names its input tables ("-- inputs: events, items."). A missing input would
# otherwise surface as a puzzling DuckDB error, e.g. a "circular reference" from `items as (select * from items)`.
_INPUTS = re.compile(r"^--\s*inputs:\s*(.+?)\.?\s*$", re.MULTILINE)


class SqlParameterError(ValueError):
    """The query needs a parameter that was not given."""


def available_sql() -> list[str]:
    """Names of the SQL files that `run_sql` can run (without `.sql`), sorted."""
    return sorted(path.stem for path in SQL_DIR.glob("*.sql"))


def sql_path(name: str) -> Path:
    """The file behind `name`; FileNotFoundError listing the available files if there is none."""
    path = SQL_DIR / f"{name}.sql"
    # The name check keeps a caller from reaching outside sql/ with "../something".
    if not _NAME.match(name) or not path.is_file():
        available = ", ".join(available_sql()) or "(none)"
        raise FileNotFoundError(f"no SQL file named {name!r} in {SQL_DIR}; available: {available}")
    return path


def required_parameters(sql: str) -> list[str]:
    """The `$name` parameters a query uses, in order of first use."""
    code = _NOT_CODE.sub(" ", sql)
    return list(dict.fromkeys(_PARAMETER.findall(code)))


def required_tables(sql: str) -> list[str]:
    """The input tables a query's header declares (its "-- inputs:" line), in order."""
    match = _INPUTS.search(sql)
    if match is None:
        return []
    return [name.strip() for name in match.group(1).split(",") if name.strip()]


# Comments and quoted strings only: a double-quoted "identifier" is still a column name.
_COMMENTS_AND_STRINGS = re.compile(r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'", re.DOTALL)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def columns_named(name: str, columns: Sequence[str]) -> list[str]:
    """Those of `columns` that `sql/<name>.sql` names anywhere in its code, in the order given.

    A superset of what the query reads from a table with these columns (a name shared with another
    table counts too): what a caller may leave out of its input without changing the result, since
    `select t.*` only carries columns along and the features read each by name.
    """
    code = _COMMENTS_AND_STRINGS.sub(" ", sql_path(name).read_text(encoding="utf-8"))
    named = {token.lower() for token in _IDENTIFIER.findall(code)}
    return [column for column in columns if column.lower() in named]


def run_sql(
    name: str,
    tables: Mapping[str, pl.DataFrame],
    params: Mapping[str, object] | None = None,
    spark=None,
) -> pl.DataFrame:
    """Run `sql/<name>.sql` with each frame in `tables` visible under its key and `params` bound by name.

    On DuckDB by default; given a Spark session (`spark`), the same file runs on Spark SQL, transpiled
    (see `spark_engine`), with the same checks before and the same result types after.
    """
    path = sql_path(name)
    sql = path.read_text(encoding="utf-8")
    params = dict(params or {})
    needed = required_parameters(sql)
    missing = [key for key in needed if key not in params]
    if missing:
        given = ", ".join(sorted(params)) or "none"
        raise SqlParameterError(
            f"{path.name} needs parameter(s) {', '.join('$' + key for key in missing)} that were not given "
            f"(given: {given}); pass them in params, None where the file allows a NULL"
        )
    for key in tables:
        if not _NAME.match(key):
            raise ValueError(f"table name {key!r} is not a plain lowercase SQL identifier")
    absent = [table for table in required_tables(sql) if table not in tables]
    if absent:
        raise ValueError(
            f"{path.name} needs table(s) {', '.join(absent)} that were not given "
            f"(given: {', '.join(sorted(tables)) or 'none'})"
        )

    bound = {key: _plain(params[key]) for key in needed}
    if spark is not None:
        # Imported here: sqlglot and PySpark are the optional `spark` extra.
        from recs_assets.features.spark_engine import run_spark_sql

        return _normalise(run_spark_sql(spark, sql, tables, bound))

    conn = duckdb.connect(":memory:", config={"threads": DUCKDB_THREADS})
    try:
        # DuckDB otherwise uses the machine's zone to turn a timestamp into a day, and to label results.
        conn.execute("set TimeZone = 'UTC'")
        # No progress bar: on a busy machine a query passing 2 s draws one on stdout, inside the caller's output.
        conn.execute("set enable_progress_bar = false")
        for key, frame in tables.items():
            conn.register(key, frame)
        try:
            result = conn.execute(sql, bound).pl()
        except (duckdb.CatalogException, duckdb.BinderException) as error:
            raise type(error)(
                f"{path.name}: {error} (tables given: {', '.join(sorted(tables)) or 'none'})"
            ) from error
    finally:
        conn.close()
    return _normalise(result)


def _plain(value: object) -> object:
    """Parameters as DuckDB binds them best: numpy scalars as Python numbers, naive datetimes as UTC."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _normalise(df: pl.DataFrame) -> pl.DataFrame:
    """Every timestamp column as Datetime("us", "UTC"), so results compare equal across machines."""
    exprs = []
    for name, dtype in df.schema.items():
        if isinstance(dtype, pl.Datetime):
            col = pl.col(name)
            col = col.dt.replace_time_zone("UTC") if dtype.time_zone is None else col.dt.convert_time_zone("UTC")
            exprs.append(col.dt.cast_time_unit("us"))
    return df.with_columns(exprs) if exprs else df
