"""Where the pipeline keeps its outputs and which data it reads, taken from environment variables.

Everything is optional: with no variable set, the pipeline runs on the built-in simulator and writes
into `.recs_home/` inside the checkout.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import unquote, urlsplit

from recs_assets.layout import HomeLayout

SOURCES = ("simulator", "movielens_100k", "steam_200k", "files", "open_bandit")
# Where the feature store's SQL runs (RECS_ENGINE): DuckDB in-process, or Spark SQL (local or a cluster).
ENGINES = ("duckdb", "spark")
_CHECKOUT = Path(__file__).resolve().parents[1]


def default_home() -> Path:
    """`.recs_home/` in the checkout (git-ignored); outside a checkout, in the working directory."""
    root = _CHECKOUT if (_CHECKOUT / "pyproject.toml").exists() else Path.cwd()
    return root / ".recs_home"


def _int(environ: Mapping[str, str], name: str, default: int | None, minimum: int = 0) -> int | None:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {text!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(environ: Mapping[str, str], name: str, default: float) -> float:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {text!r}") from None


API_LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


@dataclass(frozen=True)
class Settings:
    """The run's configuration: home folder, source, and the simulator's scale knobs."""

    home: Path
    source: str = "simulator"
    data_dir: Path | None = None
    sim_preset: str = "games"
    sim_seed: int = 42
    # 10k users: enough behaviour for the re-ranker to learn from (on 2k its lessons are mostly noise),
    # and `make run` still takes under two minutes on 2 cores.
    sim_users: int = 10_000
    sim_items: int = 5_000
    sim_days: int = 30
    sim_start_date: date = date(2026, 9, 1)
    sim_shift_day: int | None = None
    # The evaluation protocol for `make run` (train_test_split's run config); None = chosen from the data.
    protocol: str | None = None
    # The `files` source's CSV delimiter; None = detected from each file's header.
    csv_delimiter: str | None = None
    # The recommendation API (`python -m recs_assets.serving`): loopback port, how often it looks for
    # new snapshots and flushes its request log (seconds), and uvicorn's log level.
    api_port: int = 8000
    api_reload_interval: float = 2.0
    api_log_flush_interval: float = 1.0
    api_log_level: str = "warning"
    # Where live events go (redis://host:port/db, rediss://, unix://). None: `make serve` starts the
    # embedded broker in the home (recs_assets.streaming.embedded), and the pipeline lands what it holds.
    broker_url: str | None = None
    # The feature SQL's engine; with spark, Spark MLlib's ALS also implements the `als` generator.
    engine: str = "duckdb"
    # PostgreSQL for the Dagster instance (postgresql://user@host:port/db; a password is best left to
    # PGPASSWORD). None: SQLite files in the home.
    postgres_url: str | None = None
    # MLflow's tracking store: postgresql://... (its own database: MLflow and Dagster both have a `runs`
    # table), or a remote server (http(s)://, databricks). None: SQLite in the home.
    mlflow_tracking_uri: str | None = None

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"RECS_SOURCE must be one of {', '.join(SOURCES)}; got {self.source!r}")
        protocols = ("auto", "temporal", "temporal_quantile", "leave_last_out", "random", "none")
        if self.protocol is not None and self.protocol not in protocols:
            raise ValueError(f"RECS_PROTOCOL must be one of {', '.join(protocols)}; got {self.protocol!r}")
        if self.csv_delimiter is not None and self.csv_delimiter not in (",", ";", "\t", "|"):
            raise ValueError(f"RECS_CSV_DELIMITER must be one of , ; tab |; got {self.csv_delimiter!r}")
        if self.data_dir is not None and not self.data_dir.is_dir():
            what = "is a file, not a folder" if self.data_dir.exists() else "does not exist"
            raise ValueError(f"RECS_DATA_DIR {self.data_dir} {what}: set it to the folder holding the {self.source} files")
        if self.home.exists() and not self.home.is_dir():
            raise ValueError(f"RECS_HOME must be a folder; {self.home} is a file")
        if self.sim_preset not in ("games", "fashion"):
            raise ValueError(f"RECS_SIM_PRESET must be games or fashion; got {self.sim_preset!r}")
        if self.source != "simulator" and self.data_dir is None:
            raise ValueError(f"RECS_SOURCE={self.source} needs RECS_DATA_DIR: the folder holding its files")
        if not 1 <= self.api_port <= 65535:
            raise ValueError(f"RECS_API_PORT must be between 1 and 65535; got {self.api_port}")
        for env_name, value in (("RECS_API_RELOAD_INTERVAL", self.api_reload_interval),
                                ("RECS_API_LOG_FLUSH_INTERVAL", self.api_log_flush_interval)):
            if not 0 < value < float("inf"):
                raise ValueError(f"{env_name} must be a positive number of seconds; got {value}")
        if self.broker_url is not None and not self.broker_url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(
                "RECS_BROKER_URL must be a Redis URL (redis://host:port/0, rediss://..., unix:///path.sock), "
                "or unset to use the embedded broker"
            )
        if self.engine not in ENGINES:
            raise ValueError(f"RECS_ENGINE must be one of {', '.join(ENGINES)}; got {self.engine!r}")
        if self.postgres_url is not None:
            postgres_parts(self.postgres_url)
        if self.mlflow_tracking_uri is not None:
            check_mlflow_uri(self.mlflow_tracking_uri)
        if self.api_log_level not in API_LOG_LEVELS:
            raise ValueError(f"RECS_API_LOG_LEVEL must be one of {', '.join(API_LOG_LEVELS)}; got {self.api_log_level!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        data_dir = env.get("RECS_DATA_DIR", "").strip()
        start = env.get("RECS_SIM_START_DATE", "").strip()
        try:
            start_date = date.fromisoformat(start) if start else cls.sim_start_date
        except ValueError:
            raise ValueError(f"RECS_SIM_START_DATE must be a date like 2026-09-01, got {start!r}") from None
        return cls(
            home=Path(env.get("RECS_HOME", "").strip() or default_home()).resolve(),
            source=env.get("RECS_SOURCE", "").strip() or "simulator",
            data_dir=Path(data_dir).resolve() if data_dir else None,
            sim_preset=env.get("RECS_SIM_PRESET", "").strip() or cls.sim_preset,
            sim_seed=_int(env, "RECS_SIM_SEED", cls.sim_seed),
            sim_users=_int(env, "RECS_SIM_USERS", cls.sim_users, minimum=1),
            sim_items=_int(env, "RECS_SIM_ITEMS", cls.sim_items, minimum=1),
            sim_days=_int(env, "RECS_SIM_DAYS", cls.sim_days, minimum=1),
            sim_start_date=start_date,
            sim_shift_day=_int(env, "RECS_SIM_SHIFT_DAY", None),
            protocol=env.get("RECS_PROTOCOL", "").strip() or None,
            csv_delimiter={"tab": "\t", "\\t": "\t"}.get(env.get("RECS_CSV_DELIMITER", ""), env.get("RECS_CSV_DELIMITER", "")) or None,
            api_port=_int(env, "RECS_API_PORT", cls.api_port, minimum=1),
            api_reload_interval=_float(env, "RECS_API_RELOAD_INTERVAL", cls.api_reload_interval),
            api_log_flush_interval=_float(env, "RECS_API_LOG_FLUSH_INTERVAL", cls.api_log_flush_interval),
            api_log_level=env.get("RECS_API_LOG_LEVEL", "").strip().lower() or cls.api_log_level,
            broker_url=env.get("RECS_BROKER_URL", "").strip() or None,
            engine=env.get("RECS_ENGINE", "").strip().lower() or cls.engine,
            postgres_url=postgres_url(env),
            mlflow_tracking_uri=mlflow_tracking_uri(env),
        )

    @property
    def warehouse_path(self) -> Path:
        return HomeLayout(self.home).warehouse

    @property
    def lake_dir(self) -> Path:
        return HomeLayout(self.home).lake

    @property
    def dagster_home(self) -> Path:
        return HomeLayout(self.home).dagster


def postgres_url(environ: Mapping[str, str] | None = None) -> str | None:
    """RECS_POSTGRES_URL (checked), or None when the home's SQLite files are used."""
    env = os.environ if environ is None else environ
    url = env.get("RECS_POSTGRES_URL", "").strip() or None
    if url is not None:
        postgres_parts(url)
    return url


MLFLOW_SCHEMES = ("sqlite", "postgresql", "postgres", "postgresql+psycopg2", "http", "https", "databricks")


def mlflow_tracking_uri(environ: Mapping[str, str] | None = None) -> str | None:
    """RECS_MLFLOW_TRACKING_URI (checked), or None when MLflow uses the home's SQLite database."""
    env = os.environ if environ is None else environ
    uri = env.get("RECS_MLFLOW_TRACKING_URI", "").strip() or None
    return check_mlflow_uri(uri) if uri is not None else None


def check_mlflow_uri(uri: str) -> str:
    scheme = uri.split("://", 1)[0] if "://" in uri else uri
    if scheme not in MLFLOW_SCHEMES:
        raise ValueError(
            f"RECS_MLFLOW_TRACKING_URI must start with one of {', '.join(s + '://' for s in MLFLOW_SCHEMES)}; got {uri.split('://')[0]!r}"
        )
    return uri


def postgres_parts(url: str) -> dict[str, str | int]:
    """username, password, hostname, port and db_name of a postgresql:// URL; ValueError naming what is wrong."""
    parsed = urlsplit(url)
    if parsed.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"RECS_POSTGRES_URL must start with postgresql://; got scheme {parsed.scheme!r}")
    try:
        port = parsed.port or 5432
    except ValueError:
        raise ValueError("RECS_POSTGRES_URL has a port that is not a number") from None
    db_name = parsed.path.lstrip("/")
    missing = [what for what, value in (("user", parsed.username), ("host", parsed.hostname), ("database", db_name))
               if not value]
    if missing or "/" in db_name:
        raise ValueError(
            f"RECS_POSTGRES_URL must look like postgresql://user@host:5432/database; missing {', '.join(missing) or 'a plain database name'}"
        )
    return {
        "username": unquote(parsed.username),
        "password": unquote(parsed.password or ""),
        "hostname": parsed.hostname,
        "port": port,
        "db_name": db_name,
    }
