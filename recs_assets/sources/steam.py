"""Steam 200k: which games 12,393 Steam users bought and how many hours they played, as shared tables.

The folder must hold `steam-200k.csv.gz` (or the uncompressed `steam-200k.csv`): no header, one row per
`user-id,"game-title",behavior-name,value,0`. Titles may contain commas inside the quotes, so each line
is read as real CSV.

Mapping decisions:
- Each row becomes one event whose `event_type` is the behaviour as written (`purchase` or `play`) and
  whose `value` is the number as written (hours for `play`, always 1.0 for `purchase`). The file has no
  times, so `event_at` is null and `HAS_TIMESTAMPS` is False: time-based splits and daily partitions do
  not apply to this source.
- Games have no ids, only titles, so `item_id` = "g" + the first 10 hex characters of the title's SHA-1
  (UTF-8). It is stable across loads and machines; `load_items` refuses to run if two titles ever share
  an id. Titles are kept exactly as written, so "Duke Nukem Forever" and "Duke Nukem Forever " (trailing
  space) are two games, as in the file.
- `event_id` = "{user_id}:{item_id}:{behavior}:{value}", with the value as written in the file. It is
  derived from the content, so the file's 707 exact duplicate rows share an id with their original and
  are counted as duplicates downstream (200,000 raw = 199,293 clean + 707 duplicates). The value is part
  of the id because (user, game, behaviour) alone is NOT unique after removing exact duplicates: 12 users
  have two different `play` rows for the same title (e.g. 1.9 h and 0.2 h of "Grand Theft Auto San
  Andreas", probably two store editions with one name). Without the value those distinct rows would
  share an id and one of them would be thrown away as a "duplicate".
- `users` has one row per user id (first appearance order); Steam gives nothing else about them.
- Raw events are not cleaned: a line that cannot be read (wrong number of fields, broken quotes, a user
  id or value that is not a number, bytes that are not UTF-8) becomes a row with every contract column
  null, `_parse_error` saying why and `_raw_line` holding the text. Blank lines hold no data and produce
  no row, but they are counted, so `_line` is always the line number in the file.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import os
from datetime import date
from pathlib import Path

import polars as pl

from recs_assets import contract

HAS_TIMESTAMPS = False

SOURCE_NAME = "steam_200k"

# The compressed file is what ../shared/datasets holds; the plain CSV is what Kaggle hands out.
FILE_NAMES = ("steam-200k.csv.gz", "steam-200k.csv")

N_FIELDS = 5

_RAW_SCHEMA = {**contract.EVENTS_SCHEMA, **contract.RAW_PROVENANCE_SCHEMA}


def item_id_for_title(title: str) -> str:
    """The stable game id for a title: "g" + first 10 hex characters of its SHA-1."""
    return "g" + hashlib.sha1(title.encode("utf-8")).hexdigest()[:10]


def load_raw_events(data_dir: str | os.PathLike[str]) -> pl.DataFrame:
    """Every purchase and play row of the file as one raw event, in file order, nothing dropped or fixed."""
    path = find_data_file(data_dir)
    columns: dict[str, list] = {
        name: []
        for name in ("event_id", "user_id", "item_id", "event_type", "value", "_line", "_parse_error", "_raw_line")
    }
    item_ids: dict[str, str] = {}
    for line_no, line, decode_error in _lines(path):
        fields, error = _parse_line(line, line_no, decode_error)
        columns["_line"].append(line_no)
        if error is not None:
            for name in ("event_id", "user_id", "item_id", "event_type", "value"):
                columns[name].append(None)
            columns["_parse_error"].append(error)
            columns["_raw_line"].append(line)
            continue
        user_id, title, behavior, value_text, value = fields
        item_id = item_ids.get(title)
        if item_id is None:
            item_id = item_ids[title] = item_id_for_title(title)
        columns["event_id"].append(f"{user_id}:{item_id}:{behavior}:{value_text}")
        columns["user_id"].append(user_id)
        columns["item_id"].append(item_id)
        columns["event_type"].append(behavior)
        columns["value"].append(value)
        columns["_parse_error"].append(None)
        columns["_raw_line"].append(None)
    df = pl.DataFrame(
        columns,
        schema={
            "event_id": pl.String(),
            "user_id": pl.String(),
            "item_id": pl.String(),
            "event_type": pl.String(),
            "value": pl.Float64(),
            "_line": pl.Int64(),
            "_parse_error": pl.String(),
            "_raw_line": pl.String(),
        },
    ).with_columns(pl.lit(f"{SOURCE_NAME}:{path.name}").alias("_source"))
    return contract.conform(df, _RAW_SCHEMA)


def load_items(data_dir: str | os.PathLike[str]) -> pl.DataFrame:
    """One row per game title seen in the file (first appearance order), with its stable id."""
    path = find_data_file(data_dir)
    titles: dict[str, None] = {}
    for line_no, line, decode_error in _lines(path):
        fields, error = _parse_line(line, line_no, decode_error)
        if error is None:
            titles.setdefault(fields[1], None)
    df = pl.DataFrame({"title": list(titles)}, schema={"title": pl.String()}).with_columns(
        pl.col("title").map_elements(item_id_for_title, return_dtype=pl.String).alias("item_id"),
        pl.lit(True).alias("is_active"),
    )
    clashes = df.filter(pl.col("item_id").is_duplicated())
    if not clashes.is_empty():
        # Ten hex characters make a clash very unlikely; if one happens, ids would merge two games.
        raise ValueError(
            f"{path}: different titles map to the same item_id, lengthen the hash: "
            f"{clashes.sort('item_id').rows()[:5]}"
        )
    return contract.conform(df, contract.ITEMS_SCHEMA)


def load_users(data_dir: str | os.PathLike[str]) -> pl.DataFrame:
    """One row per Steam user id in the file (first appearance order); nothing else is known about them."""
    user_ids = load_raw_events(data_dir).get_column("user_id").drop_nulls().unique(maintain_order=True)
    return contract.conform(user_ids.to_frame("user_id"), contract.USERS_SCHEMA)


def event_date_range(data_dir: str | os.PathLike[str]) -> tuple[date, date] | None:
    """Always None: Steam 200k says what people bought and played, never when."""
    find_data_file(data_dir)
    return None


def find_data_file(data_dir: str | os.PathLike[str]) -> Path:
    """The Steam 200k file in the folder, or a FileNotFoundError saying what was expected and where."""
    folder = Path(data_dir)
    for name in FILE_NAMES:
        if (folder / name).is_file():
            return folder / name
    where = "does not exist" if not folder.is_dir() else "does not contain it"
    raise FileNotFoundError(
        f"Steam 200k file {FILE_NAMES[0]!r} (or {FILE_NAMES[1]!r}) not found: folder {folder} {where}. "
        f"Set RECS_DATA_DIR to the folder holding it."
    )


def _lines(path: Path):
    """(1-based line number, text, decode error or None) for every non-blank line."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for line_no, raw in enumerate(lines, start=1):
        raw = raw.removesuffix(b"\r")
        if not raw.strip():
            continue
        try:
            yield line_no, raw.decode("utf-8"), None
        except UnicodeDecodeError as exc:
            # Keep the line readable in _raw_line; the replacement characters mark the bad bytes.
            yield line_no, raw.decode("utf-8", errors="replace"), f"bytes {exc.start}-{exc.end} are not UTF-8"


def _parse_line(line: str, line_no: int, decode_error: str | None):
    """((user_id, title, behavior, value_text, value), None) or (None, error message)."""
    prefix = f"line {line_no}: "
    if decode_error is not None:
        return None, prefix + decode_error
    try:
        # One reader per line keeps one event per line: a broken quote cannot swallow the next lines.
        fields = next(csv.reader((line,), strict=True))
    except csv.Error as exc:
        return None, prefix + f"not valid CSV ({exc})"
    if len(fields) != N_FIELDS:
        return None, prefix + f"expected {N_FIELDS} comma-separated fields, found {len(fields)}"
    user_id, title, behavior, value_text = fields[0].strip(), fields[1], fields[2].strip(), fields[3].strip()
    if not user_id.isascii() or not user_id.isdigit():
        return None, prefix + f"user id {fields[0]!r} is not a whole number"
    try:
        value = float(value_text)
    except ValueError:
        return None, prefix + f"value {fields[3]!r} is not a number"
    return (user_id, title, behavior, value_text, value), None
