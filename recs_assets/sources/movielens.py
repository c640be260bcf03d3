"""MovieLens 100k: 100,000 film ratings by 943 people, mapped onto the shared events/items/users tables.

The folder must hold the GroupLens files `u.data`, `u.item`, `u.user` and `u.genre` (as distributed).

Mapping decisions:
- Each line of `u.data` (user, item, rating, unix time; tab-separated) becomes one `rating` event with
  `value` = the rating, `event_at` = the unix time in UTC, and `event_id` = "{user}-{item}-{timestamp}".
  The id is derived from the content, so a line that appears twice would share an id and show up as a
  duplicate downstream instead of being silently counted twice. Sessions, surfaces, prices: none (null).
- A film's `category` is its first genre in `u.genre` order, skipping "unknown": a film flagged both
  "unknown" and "Comedy" is a Comedy. "unknown" is used only when it is the film's only genre, and the
  category is null when no genre is flagged. One category per film keeps `items` one row per item; the
  order is the dataset's own, so the choice is reproducible rather than a judgement about each film.
- `listed_at` is the release date (UTC midnight), null where the file has none. `u.item` is latin-1.
- A user's `segment` is an age band; `country` is "US" when the zip code has exactly 5 digits, else null
  (a few zips are Canadian or odd, and we would rather say "unknown" than guess). There is no sign-up date.
- Raw events are not cleaned: a line that cannot be read becomes a row with every contract column null,
  `_parse_error` saying why and `_raw_line` holding the text. Blank lines hold no data and produce no row,
  but they are counted, so `_line` is always the line number in `u.data`.
"""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path

import polars as pl

from recs_assets import contract

HAS_TIMESTAMPS = True

SOURCE_NAME = "movielens_100k"

REQUIRED_FILES = ("u.data", "u.item", "u.user", "u.genre")

AGE_BANDS: tuple[tuple[int, str], ...] = (
    # (upper bound exclusive, label); the bands are the ones GroupLens uses for MovieLens 1M.
    (18, "under_18"),
    (25, "18_24"),
    (35, "25_34"),
    (45, "35_44"),
    (50, "45_49"),
    (56, "50_55"),
)
OLDEST_BAND = "56_plus"

# GroupLens wrote the files in latin-1 (film titles such as "Misérables, Les"); it also reads any byte.
ENCODING = "latin-1"

_US_ZIP = re.compile(r"^\d{5}$")
_RAW_SCHEMA = {**contract.EVENTS_SCHEMA, **contract.RAW_PROVENANCE_SCHEMA}


def load_raw_events(data_dir: str | os.PathLike[str]) -> pl.DataFrame:
    """Every rating in `u.data` as one raw event row, in file order, nothing dropped or fixed."""
    path = _require_file(data_dir, "u.data")
    lines = _read_lines(path)
    df = (
        pl.DataFrame({"_raw_line": lines}, schema={"_raw_line": pl.String()})
        .with_row_index("_line", offset=1)
        .with_columns(pl.col("_line").cast(pl.Int64))
        .filter(pl.col("_raw_line").str.strip_chars() != "")
        .with_columns(pl.col("_raw_line").str.strip_suffix("\r").str.split("\t").alias("_fields"))
    )
    df = df.with_columns(
        pl.col("_fields").list.len().alias("_n_fields"),
        *(
            pl.col("_fields").list.get(i, null_on_oob=True).str.strip_chars().cast(pl.Int64, strict=False).alias(name)
            for i, name in enumerate(("_user", "_item", "_rating", "_ts"))
        ),
    )
    line_text = pl.col("_line").cast(pl.String)
    parse_error = (
        pl.when(pl.col("_n_fields") != 4)
        .then(
            pl.concat_str(
                pl.lit("line "),
                line_text,
                pl.lit(": expected 4 tab-separated fields (user, item, rating, timestamp), found "),
                pl.col("_n_fields").cast(pl.String),
            )
        )
        .when(pl.any_horizontal(pl.col("_user", "_item", "_rating", "_ts").is_null()))
        .then(
            pl.concat_str(
                pl.lit("line "),
                line_text,
                pl.lit(": user, item, rating and timestamp must all be whole numbers"),
            )
        )
    )
    df = df.with_columns(parse_error.alias("_parse_error"))
    ok = pl.col("_parse_error").is_null()
    user_id = pl.col("_user").cast(pl.String)
    item_id = pl.col("_item").cast(pl.String)
    events = df.select(
        pl.when(ok)
        .then(pl.concat_str(user_id, item_id, pl.col("_ts").cast(pl.String), separator="-"))
        .alias("event_id"),
        pl.when(ok)
        .then(pl.from_epoch("_ts", time_unit="s").dt.replace_time_zone("UTC"))
        .alias("event_at"),
        pl.when(ok).then(user_id).alias("user_id"),
        pl.when(ok).then(item_id).alias("item_id"),
        pl.when(ok).then(pl.lit("rating")).alias("event_type"),
        pl.when(ok).then(pl.col("_rating").cast(pl.Float64)).alias("value"),
        pl.lit(f"{SOURCE_NAME}:u.data").alias("_source"),
        "_line",
        "_parse_error",
        pl.when(~ok).then(pl.col("_raw_line")).alias("_raw_line"),
    )
    return contract.conform(events, _RAW_SCHEMA)


def load_items(data_dir: str | os.PathLike[str]) -> pl.DataFrame:
    """The 1,682 films: title, main genre as category, and release date as listing date."""
    genres = _read_genres(_require_file(data_dir, "u.genre"))
    path = _require_file(data_dir, "u.item")
    rows = []
    for line_no, line in _numbered_lines(path):
        fields = line.split("|")
        if len(fields) != 5 + len(genres):
            raise ValueError(
                f"{path} line {line_no}: expected {5 + len(genres)} '|'-separated fields "
                f"(id, title, release date, video date, URL, {len(genres)} genre flags), "
                f"found {len(fields)}"
            )
        rows.append(
            {
                "item_id": fields[0].strip(),
                "title": fields[1],
                "category": _main_genre(fields[5:], genres),
                "release_date": fields[2].strip() or None,
            }
        )
    df = pl.DataFrame(
        rows, schema={name: pl.String() for name in ("item_id", "title", "category", "release_date")}
    )
    df = df.with_columns(
        pl.col("release_date")
        .str.strptime(pl.Date, "%d-%b-%Y", strict=True)
        .cast(pl.Datetime("us"))
        .dt.replace_time_zone("UTC")
        .alias("listed_at"),
        pl.lit(True).alias("is_active"),
    )
    return contract.conform(df, contract.ITEMS_SCHEMA)


def load_users(data_dir: str | os.PathLike[str]) -> pl.DataFrame:
    """The 943 people who rated: an age band as segment, and "US" where the zip code is a US one."""
    path = _require_file(data_dir, "u.user")
    rows = []
    for line_no, line in _numbered_lines(path):
        fields = line.split("|")
        if len(fields) != 5 or not fields[1].strip().isdigit():
            raise ValueError(
                f"{path} line {line_no}: expected 'id|age|gender|occupation|zip' with a whole-number age, "
                f"got {line!r}"
            )
        zip_code = fields[4].strip()
        rows.append(
            {
                "user_id": fields[0].strip(),
                "segment": age_band(int(fields[1])),
                "country": "US" if _US_ZIP.match(zip_code) else None,
            }
        )
    df = pl.DataFrame(rows, schema={"user_id": pl.String(), "segment": pl.String(), "country": pl.String()})
    return contract.conform(df, contract.USERS_SCHEMA)


def event_date_range(data_dir: str | os.PathLike[str]) -> tuple[date, date] | None:
    """First and last day (UTC, inclusive) on which ratings were made; None if there are none."""
    event_at = load_raw_events(data_dir).get_column("event_at").drop_nulls()
    if event_at.is_empty():
        return None
    return event_at.min().date(), event_at.max().date()  # type: ignore[union-attr]


def age_band(age: int) -> str:
    """The age band label for an age in years, e.g. 30 -> "25_34"."""
    for upper, label in AGE_BANDS:
        if age < upper:
            return label
    return OLDEST_BAND


def _main_genre(flags: list[str], genres: list[str]) -> str | None:
    flagged = [name for flag, name in zip(flags, genres) if flag.strip() == "1"]
    known = [name for name in flagged if name != "unknown"]
    if known:
        return known[0]
    return "unknown" if flagged else None


def _read_genres(path: Path) -> list[str]:
    by_id: dict[int, str] = {}
    for line_no, line in _numbered_lines(path):
        name, sep, genre_id = line.rpartition("|")
        if not sep or not genre_id.strip().isdigit():
            raise ValueError(f"{path} line {line_no}: expected 'name|id', got {line!r}")
        by_id[int(genre_id)] = name
    if sorted(by_id) != list(range(len(by_id))):
        raise ValueError(f"{path}: genre ids must run 0..n-1 without gaps, got {sorted(by_id)}")
    return [by_id[i] for i in range(len(by_id))]


def _read_lines(path: Path) -> list[str]:
    # split("\n") rather than splitlines(): the latter also breaks on \x1c, \x85 etc., which would
    # shift line numbers away from what a text editor shows.
    text = path.read_text(encoding=ENCODING)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _numbered_lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank lines with their 1-based line numbers, trailing CR removed."""
    return [
        (i, line.rstrip("\r"))
        for i, line in enumerate(_read_lines(path), start=1)
        if line.strip()
    ]


def _require_file(data_dir: str | os.PathLike[str], name: str) -> Path:
    folder = Path(data_dir)
    path = folder / name
    if not path.is_file():
        where = "does not exist" if not folder.is_dir() else "does not contain it"
        raise FileNotFoundError(
            f"MovieLens 100k file {name!r} not found: folder {folder} {where}. "
            f"Set RECS_DATA_DIR to the folder holding {', '.join(REQUIRED_FILES)}."
        )
    return path
