"""Write folders of data in the `files` format, each in a shape real shops send, to try `make run` on.

Nothing here is committed: the folders go to `--out`. Each sub-folder holds events, items and users
files (see README "Your own files") and can be used as it is:

    RECS_SOURCE=files RECS_DATA_DIR=<out>/<shape> RECS_HOME=/tmp/home_<shape> make run

Shapes:
- anonymous_sessions: the simulator's fashion shop with the user id blanked on most sessions (the
  staging layer keys those shoppers by session).
- no_timestamps: MovieLens 100k ratings with `event_at` left empty.
- large_catalogue: far more items than users (the simulator's game shop, 2,000 users, 60,000 items).
- no_prices_no_categories: MovieLens 100k without price, category and brand columns.
- quirks: a small fashion shop written the way spreadsheets and databases export: gzip, BOM, `;`,
  CRLF with stray LF lines, epoch-second times, an extra column, quoted values holding `;`, quotes and
  line breaks, one latin-1 byte and one unclosed quote (those two lines are meant to be quarantined).
- ml100k_files: MovieLens 100k as plain files (the format /work/shared/tools/served_quality.py reads).

Usage: python benchmarks/real_data_shapes.py --out /tmp/shapes [--datasets DIR] [--seed 7] [--only quirks]
"""

from __future__ import annotations

import argparse
import gzip
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from recs_assets import contract
from recs_assets.sources import movielens
from recs_assets.sources.simulator import SimulatorConfig, simulate

CHECKOUT = Path(__file__).resolve().parents[1]
ISO = "%Y-%m-%dT%H:%M:%S%.fZ"


def _as_text(df: pl.DataFrame) -> pl.DataFrame:
    """Every column as the text a CSV holds: timestamps ISO-8601 in UTC, booleans true/false."""
    exprs = []
    for name, dtype in df.schema.items():
        if isinstance(dtype, pl.Datetime):
            exprs.append(pl.col(name).dt.convert_time_zone("UTC").dt.strftime(ISO).alias(name))
        else:
            exprs.append(pl.col(name).cast(pl.String).alias(name))
    return df.select(exprs)


def _write_tables(folder: Path, events: pl.DataFrame, items: pl.DataFrame, users: pl.DataFrame) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in (("events", events), ("items", items), ("users", users)):
        _as_text(df).write_csv(folder / f"{name}.csv")


def _events(df: pl.DataFrame) -> pl.DataFrame:
    return df.select([c for c in contract.EVENTS_SCHEMA if c in df.columns])


def _movielens(datasets: Path) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    folder = datasets / "ml-100k"
    return _events(movielens.load_raw_events(folder)), movielens.load_items(folder), movielens.load_users(folder)


def _fashion(seed: int, n_users: int, n_items: int, n_days: int):
    return simulate(
        SimulatorConfig(preset="fashion", seed=seed, n_users=n_users, n_items=n_items, n_days=n_days,
                        start_date=date(2026, 9, 1))
    )


# --- the shapes --------------------------------------------------------------------------------------


def anonymous_sessions(out: Path, datasets: Path, seed: int) -> str:
    shop = _fashion(seed, n_users=2_000, n_items=1_000, n_days=30)
    sessions = shop.events["session_id"].unique().sort()
    rng = np.random.default_rng(seed)
    anonymous = sessions.filter(pl.Series(rng.random(sessions.len()) < 0.7))
    events = shop.events.with_columns(
        pl.when(pl.col("session_id").is_in(anonymous.implode())).then(None).otherwise(pl.col("user_id")).alias("user_id")
    )
    _write_tables(out, events, shop.items, shop.users)
    blank = events["user_id"].null_count()
    return f"{events.height:,} events, {blank:,} ({blank / events.height:.0%}) without user_id, {len(anonymous):,} anonymous sessions"


def no_timestamps(out: Path, datasets: Path, seed: int) -> str:
    events, items, users = _movielens(datasets)
    events = events.with_columns(pl.lit(None, dtype=contract.UTC_TIMESTAMP).alias("event_at"))
    _write_tables(out, events, items, users)
    return f"{events.height:,} ratings, event_at empty on all"


def large_catalogue(out: Path, datasets: Path, seed: int) -> str:
    shop = simulate(SimulatorConfig(preset="games", seed=seed, n_users=2_000, n_items=60_000, n_days=14))
    _write_tables(out, shop.events, shop.items, shop.users)
    touched = shop.events["item_id"].drop_nulls().n_unique()
    return f"{shop.events.height:,} events, {shop.items.height:,} items ({touched:,} ever shown), {shop.users.height:,} users"


def wide_catalogue(out: Path, datasets: Path, seed: int) -> str:
    """A catalogue wider than its traffic: 16,000 items nearly all touched by 40,000 views of 4,000 shoppers.

    The shape of a marketplace's long tail (the case where item-item costs follow the catalogue's
    square): 50 taste clusters of 320 items each, every shopper browsing one cluster over 30 days.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    n_users, n_items, n_clusters, per_user = 4_000, 16_000, 50, 10
    cluster_of_user = rng.integers(0, n_clusters, n_users)
    users = np.repeat(np.arange(n_users), per_user)
    offsets = rng.integers(0, n_items // n_clusters, users.size)
    items = cluster_of_user[users] * (n_items // n_clusters) + offsets
    start = np.datetime64("2026-09-01T00:00:00", "us")
    at = start + (rng.uniform(0, 30 * 86_400, users.size) * 1e6).astype("timedelta64[us]")
    kinds = np.where(rng.uniform(size=users.size) < 0.1, "purchase", "view")
    events = pl.DataFrame(
        {
            "event_id": [f"w{n}" for n in range(users.size)],
            "event_at": at,
            "user_id": [f"u{u:05d}" for u in users],
            "session_id": [f"s{u:05d}-{int(t) // 86_400_000_000}" for u, t in zip(users, (at - start).astype("int64"))],
            "item_id": [f"i{i:05d}" for i in items],
            "event_type": kinds,
        }
    ).with_columns(pl.col("event_at").dt.replace_time_zone("UTC")).sort("event_at")
    catalogue = pl.DataFrame(
        {
            "item_id": [f"i{i:05d}" for i in range(n_items)],
            "category": [f"c{i // (n_items // n_clusters):02d}" for i in range(n_items)],
            "is_active": [True] * n_items,
        }
    )
    people = pl.DataFrame({"user_id": [f"u{u:05d}" for u in range(n_users)]})
    _write_tables(out, events, catalogue, people)
    return f"{events.height:,} events, {n_items:,} items ({events['item_id'].n_unique():,} touched), {n_users:,} users"


def no_prices_no_categories(out: Path, datasets: Path, seed: int) -> str:
    events, items, users = _movielens(datasets)
    events = events.drop("price")
    items = items.drop("price", "category", "brand")
    _write_tables(out, events, items, users)
    return f"{events.height:,} ratings; items columns {items.columns}"


def ml100k_files(out: Path, datasets: Path, seed: int) -> str:
    events, items, users = _movielens(datasets)
    _write_tables(out, events, items, users)
    return f"{events.height:,} ratings, {items.height:,} items, {users.height:,} users"


def quirks(out: Path, datasets: Path, seed: int) -> str:
    shop = _fashion(seed, n_users=300, n_items=300, n_days=30)
    events = _as_text(shop.events).with_columns(
        # Epoch seconds, as databases export them (fractions of a second dropped).
        (shop.events["event_at"].dt.epoch("s")).cast(pl.String).alias("event_at"),
        pl.lit("web").alias("channel"),  # a column the contract does not know
    )
    searches = events.with_row_index("_n").filter(pl.col("event_type") == "search")["_n"].head(3).to_list()
    queries = ['summer dress; size "M"', "line one\r\nline two", 'coat, wool; "warm"']
    if len(searches) == len(queries):
        events = events.with_columns(events["query"].scatter(searches, queries))
    lines = _csv_lines(events, ";")
    # One latin-1 byte and one unclosed quote: each must cost its own line and nothing more.
    latin1_at, unclosed_at = len(lines) // 3, 2 * len(lines) // 3
    lines[latin1_at] = lines[latin1_at].replace(b";view;", b";vi\xe9w;", 1) if b";view;" in lines[latin1_at] else lines[latin1_at] + b"\xe9"
    lines[unclosed_at] = _unclose_quote(lines[unclosed_at])
    body = b"\xef\xbb\xbf" + lines[0] + b"\r\n"
    for n, line in enumerate(lines[1:], start=1):
        body += line + (b"\n" if n % 97 == 0 else b"\r\n")  # CRLF with stray LF lines
    out.mkdir(parents=True, exist_ok=True)
    (out / "events.csv.gz").write_bytes(gzip.compress(body, mtime=0))
    for name, df in (("items", shop.items), ("users", shop.users)):
        text = b"\xef\xbb\xbf" + b"\r\n".join(_csv_lines(_as_text(df), ";")) + b"\r\n"
        (out / f"{name}.csv").write_bytes(text)
    def file_line(record: int) -> int:  # records before it may span several lines
        return 1 + sum(line.count(b"\n") + 1 for line in lines[:record])

    return (
        f"{events.height:,} events in events.csv.gz (BOM, ';', CRLF + stray LF, epoch seconds, extra column "
        f"'channel', {len(searches)} quoted queries with ';'/quotes/line breaks); latin-1 byte on file line "
        f"{file_line(latin1_at)}, unclosed quote on file line {file_line(unclosed_at)}"
    )


def _csv_lines(df: pl.DataFrame, sep: str) -> list[bytes]:
    """The frame as CSV records (a record may hold a quoted line break), header first, no line ends."""
    text = df.write_csv(separator=sep, line_terminator="\n", quote_style="necessary")
    records, current, quotes = [], [], 0
    for line in text.split("\n")[:-1]:
        current.append(line)
        quotes += line.count('"')
        if quotes % 2 == 0:
            records.append("\n".join(current).encode("utf-8"))
            current, quotes = [], 0
    return records


def _unclose_quote(line: bytes) -> bytes:
    """Open a quote on the line's last value and never close it, as a truncated export does."""
    head, _, last = line.rpartition(b";")
    return head + b';"' + last.replace(b'"', b"")


SHAPES: dict[str, Callable[[Path, Path, int], str]] = {
    "anonymous_sessions": anonymous_sessions,
    "no_timestamps": no_timestamps,
    "large_catalogue": large_catalogue,
    "wide_catalogue": wide_catalogue,
    "no_prices_no_categories": no_prices_no_categories,
    "quirks": quirks,
    "ml100k_files": ml100k_files,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write the shapes into (one sub-folder each)")
    parser.add_argument("--datasets", type=Path, default=CHECKOUT / ".." / "shared" / "datasets",
                        help="folder holding ml-100k (default: ../shared/datasets next to the checkout)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--only", choices=sorted(SHAPES), action="append", help="write only these shapes")
    args = parser.parse_args(argv)
    datasets = args.datasets.resolve()
    if not (datasets / "ml-100k" / "u.data").is_file():
        parser.error(f"{datasets} has no ml-100k/u.data; pass --datasets")
    for name in args.only or list(SHAPES):
        started = time.perf_counter()
        folder = args.out / name
        summary = SHAPES[name](folder, datasets, args.seed)
        files = ", ".join(f"{p.name} ({p.stat().st_size / 1e6:.1f} MB)" for p in sorted(folder.iterdir()))
        print(f"{name}: {folder} [{time.perf_counter() - started:.1f} s]\n  {summary}\n  {files}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
