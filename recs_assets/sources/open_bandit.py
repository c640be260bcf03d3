"""Open Bandit Dataset: real recommendation logs with the logging policies' true propensities, as shared tables.

The folder is laid out as the dataset ships it: `random/<campaign>/<campaign>.csv` (a uniform-random
policy) and/or `bts/<campaign>/<campaign>.csv` (Bernoulli Thompson sampling), each with an
`item_context.csv` beside it; `<campaign>` is `all`, `men` or `women`, and the folder must hold
exactly one. Each CSV row is one impression: `timestamp, item_id, position (1-3), click (0/1),
propensity_score`, four hashed user features and the user-item affinities.

Mapping decisions:
- Each row becomes an `impression` event (its position and propensity kept, `variant` = the policy
  folder, `surface` = "recommendation_widget"); a click adds a `view` event of the same item in the
  same session at the same time, whose `_source` ends in `#click` (the line's click column, so each
  raw row still claims one source line). `event_id` = `<policy>:<campaign>:<row>` (`:click` for the view),
  `session_id` = `<policy>:<campaign>:<row>`: the logs do not group slots into page views.
- The dataset has no user ids, only four hashed user features, so `user_id` = "obd" + the first 12
  hex digits of the SHA-1 of those four values: a user here is a kind of visitor, not a person.
- `item_id` = `<campaign>-<item_id as 2 digits>`; items come from the first policy's `item_context.csv`
  (the two files hash the same items' features differently). Hashed features become `category`
  (item_feature_1) and `brand` (item_feature_2), shortened to 8 characters; there are no prices.
- Rows are read as they are; a row whose fields cannot be read becomes a raw row with `_parse_error`.
"""

from __future__ import annotations

import hashlib
import os
from datetime import date
from pathlib import Path

import polars as pl

from recs_assets import contract

HAS_TIMESTAMPS = True
SOURCE_NAME = "open_bandit"
POLICIES = ("random", "bts")
SURFACE = "recommendation_widget"
_RAW_SCHEMA = {**contract.EVENTS_SCHEMA, **contract.RAW_PROVENANCE_SCHEMA}
_USER_FEATURES = [f"user_feature_{i}" for i in range(4)]


def campaign_files(data_dir: str | os.PathLike[str]) -> tuple[str, dict[str, Path]]:
    """The campaign the folder holds and each policy's log file; a clear error if the layout is not the dataset's."""
    folder = Path(data_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"Open Bandit folder {folder} does not exist: set RECS_DATA_DIR to the dataset's folder")
    found: dict[str, dict[str, Path]] = {}
    for policy in POLICIES:
        for campaign_dir in sorted((folder / policy).glob("*")) if (folder / policy).is_dir() else []:
            log = campaign_dir / f"{campaign_dir.name}.csv"
            if log.is_file():
                found.setdefault(campaign_dir.name, {})[policy] = log
    if not found:
        raise FileNotFoundError(
            f"{folder} holds no Open Bandit logs: expected random/<campaign>/<campaign>.csv or bts/<campaign>/<campaign>.csv"
        )
    if len(found) > 1:
        raise ValueError(f"{folder} holds several campaigns ({', '.join(sorted(found))}); point RECS_DATA_DIR at a folder with one")
    campaign, logs = next(iter(found.items()))
    return campaign, logs


def _user_id(features: tuple[str, ...]) -> str:
    return "obd" + hashlib.sha1("|".join(features).encode("utf-8")).hexdigest()[:12]


def _read_log(path: Path) -> pl.DataFrame:
    try:
        frame = pl.read_csv(path, infer_schema=False)
    except pl.exceptions.ComputeError as error:
        raise ValueError(f"{path} is not a readable CSV: {error}") from None
    needed = {"timestamp", "item_id", "position", "click", "propensity_score", *_USER_FEATURES}
    missing = needed - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    return frame


def load_raw_events(data_dir: str | os.PathLike[str]) -> pl.DataFrame:
    """Every logged impression (and each click as a view), policy by policy in file order."""
    campaign, logs = campaign_files(data_dir)
    frames = []
    for policy, path in logs.items():
        raw = _read_log(path).with_row_index("_row")
        users = raw.select(_USER_FEATURES).unique()
        ids = [_user_id(row) for row in users.iter_rows()]
        raw = raw.join(users.with_columns(pl.Series("user_id", ids, dtype=pl.String)), on=_USER_FEATURES, how="left")
        at = pl.col("timestamp").str.to_datetime(time_zone="UTC", strict=False)
        item = pl.col("item_id").cast(pl.Int64, strict=False)
        position = pl.col("position").cast(pl.Int32, strict=False)
        propensity = pl.col("propensity_score").cast(pl.Float64, strict=False)
        click = pl.col("click").cast(pl.Int64, strict=False)
        base = raw.with_columns(
            _at=at, _item=item, _position=position, _propensity=propensity, _click=click,
            _key=pl.concat_str(pl.lit(f"{policy}:{campaign}:"), pl.col("_row").cast(pl.String)),
            _line=(pl.col("_row") + 2).cast(pl.Int64),  # line 1 is the header
        ).with_columns(
            _parse_error=pl.when(pl.any_horizontal(pl.col("_at", "_item", "_position", "_propensity", "_click").is_null()))
            .then(pl.concat_str(pl.lit("line "), pl.col("_line").cast(pl.String),
                                pl.lit(": timestamp, item_id, position, click or propensity_score cannot be read")))
        )
        ok = pl.col("_parse_error").is_null()
        common = dict(
            user_id=pl.when(ok).then(pl.col("user_id")), session_id=pl.when(ok).then(pl.col("_key")),
            item_id=pl.when(ok).then(pl.format(f"{campaign}-{{}}", pl.col("_item").cast(pl.String).str.zfill(2))),
            event_at=pl.when(ok).then(pl.col("_at")), surface=pl.when(ok).then(pl.lit(SURFACE)),
            position=pl.when(ok).then(pl.col("_position")), variant=pl.when(ok).then(pl.lit(policy)),
            _source=pl.lit(f"{SOURCE_NAME}:{policy}/{campaign}/{path.name}"), _line=pl.col("_line"),
            _parse_error=pl.col("_parse_error"),
            _raw_line=pl.when(~ok).then(pl.concat_str(pl.col("timestamp", "item_id", "position", "click", "propensity_score"),
                                                      separator=",", ignore_nulls=True)),
        )
        impressions = base.select(
            event_id=pl.when(ok).then(pl.col("_key")), event_type=pl.when(ok).then(pl.lit("impression")),
            propensity=pl.when(ok).then(pl.col("_propensity")), **common,
        )
        # A click is the same line's click column: its own source name keeps each (source, line) claimed once.
        clicks = base.filter(ok & (pl.col("_click") == 1)).select(
            event_id=pl.concat_str(pl.col("_key"), pl.lit(":click")), event_type=pl.lit("view"),
            propensity=pl.lit(None, dtype=pl.Float64),
            **{**common, "_source": pl.lit(f"{SOURCE_NAME}:{policy}/{campaign}/{path.name}#click")},
        )
        frames += [contract.conform(impressions, _RAW_SCHEMA), contract.conform(clicks, _RAW_SCHEMA)]
    return pl.concat(frames).sort("_source", "_line", "event_type", nulls_last=True, maintain_order=True)


def load_items(data_dir: str | os.PathLike[str]) -> pl.DataFrame:
    """The campaign's items from the first policy's item_context.csv (hashed features as category and brand)."""
    campaign, logs = campaign_files(data_dir)
    path = next(iter(logs.values())).parent / "item_context.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: each campaign folder of the Open Bandit Dataset holds an item_context.csv")
    raw = pl.read_csv(path, infer_schema=False)
    missing = {"item_id", "item_feature_1", "item_feature_2"} - set(raw.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    items = raw.select(
        item_id=pl.format(f"{campaign}-{{}}", pl.col("item_id").str.strip_chars().str.zfill(2)),
        title=pl.format(f"{campaign} item {{}}", pl.col("item_id").str.strip_chars()),
        category=pl.col("item_feature_1").str.slice(0, 8),
        brand=pl.col("item_feature_2").str.slice(0, 8),
        is_active=pl.lit(True),
    )
    return contract.conform(items, contract.ITEMS_SCHEMA)


def load_users(data_dir: str | os.PathLike[str]) -> pl.DataFrame:
    """One row per kind of visitor (hashed user features) seen in the logs."""
    user_ids = load_raw_events(data_dir).get_column("user_id").drop_nulls().unique(maintain_order=True)
    return contract.conform(user_ids.to_frame("user_id"), contract.USERS_SCHEMA)


def event_date_range(data_dir: str | os.PathLike[str]) -> tuple[date, date] | None:
    """First and last UTC day with a logged impression."""
    event_at = load_raw_events(data_dir).get_column("event_at").drop_nulls()
    if event_at.is_empty():
        return None
    return event_at.min().date(), event_at.max().date()  # type: ignore[union-attr]
