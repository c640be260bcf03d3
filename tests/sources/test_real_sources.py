"""MovieLens 100k and Steam 200k adapters: exact counts on the real files, and edge cases on tiny copies.

The real datasets are read in place from ../shared/datasets beside the checkout (never copied into the
project: their licences forbid it). Set RECS_DATASETS_DIR to read them from elsewhere.
"""

from __future__ import annotations

import gzip
import os
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from recs_assets import contract
from recs_assets.sources import movielens, steam

from tests.conftest import datasets_dir  # noqa: E402

RAW_SCHEMA = {**contract.EVENTS_SCHEMA, **contract.RAW_PROVENANCE_SCHEMA}
EVENT_COLUMNS = list(contract.EVENTS_SCHEMA)


def _dataset(name: str) -> Path:
    folder = datasets_dir() / name
    if not folder.is_dir():
        pytest.skip(f"real dataset folder {folder} not found; set RECS_DATASETS_DIR to the folder holding {name}/")
    return folder


@pytest.fixture(scope="module")
def movielens_dir() -> Path:
    return _dataset("ml-100k")


@pytest.fixture(scope="module")
def steam_dir() -> Path:
    return _dataset("steam-200k")


@pytest.fixture(scope="module")
def ml_events(movielens_dir: Path) -> pl.DataFrame:
    return movielens.load_raw_events(movielens_dir)


@pytest.fixture(scope="module")
def steam_events(steam_dir: Path) -> pl.DataFrame:
    return steam.load_raw_events(steam_dir)


# --- MovieLens 100k, real files ----------------------------------------------------------------------


@pytest.mark.slow
def test_movielens_events_are_100k_ratings_in_contract_types(ml_events: pl.DataFrame) -> None:
    assert ml_events.schema == pl.Schema(RAW_SCHEMA)
    assert ml_events.height == 100_000
    assert ml_events.get_column("_parse_error").null_count() == 100_000
    assert ml_events.get_column("_raw_line").null_count() == 100_000
    assert ml_events.get_column("event_type").unique().to_list() == ["rating"]
    assert ml_events.get_column("_source").unique().to_list() == ["movielens_100k:u.data"]
    assert ml_events.get_column("_line").to_list() == list(range(1, 100_001))
    assert ml_events.get_column("event_id").n_unique() == 100_000
    assert ml_events.get_column("user_id").n_unique() == 943
    assert ml_events.get_column("item_id").n_unique() == 1682
    ratings = dict(ml_events.get_column("value").value_counts().iter_rows())
    assert ratings == {1.0: 6110, 2.0: 11370, 3.0: 27145, 4.0: 34174, 5.0: 21201}
    assert ml_events.get_column("session_id").null_count() == 100_000


@pytest.mark.slow
def test_movielens_first_line_maps_exactly(ml_events: pl.DataFrame) -> None:
    # u.data line 1 is "196\t242\t3\t881250949".
    first = ml_events.row(0, named=True)
    assert first["event_id"] == "196-242-881250949"
    assert first["user_id"] == "196" and first["item_id"] == "242"
    assert first["value"] == 3.0
    assert first["event_at"] == datetime.fromtimestamp(881250949, tz=UTC)


@pytest.mark.slow
def test_movielens_timestamps_span_the_documented_range(movielens_dir: Path, ml_events: pl.DataFrame) -> None:
    epoch = ml_events.get_column("event_at").dt.epoch("s")
    assert (epoch.min(), epoch.max()) == (874724710, 893286638)
    assert movielens.HAS_TIMESTAMPS is True
    assert movielens.event_date_range(movielens_dir) == (date(1997, 9, 20), date(1998, 4, 22))


@pytest.mark.slow
def test_movielens_items(movielens_dir: Path) -> None:
    items = movielens.load_items(movielens_dir)
    assert items.schema == pl.Schema(contract.ITEMS_SCHEMA)
    assert items.height == 1682
    assert items.get_column("item_id").n_unique() == 1682
    assert items.get_column("is_active").all()
    by_id = {row["item_id"]: row for row in items.iter_rows(named=True)}
    # Animation, Children's and Comedy are flagged: the first in u.genre order wins.
    assert by_id["1"]["title"] == "Toy Story (1995)"
    assert by_id["1"]["category"] == "Animation"
    assert by_id["1"]["listed_at"] == datetime(1995, 1, 1, tzinfo=UTC)
    # The only film without a release date, and one whose only genre is "unknown".
    assert by_id["267"]["listed_at"] is None
    assert by_id["267"]["category"] == "unknown"
    # u.item is latin-1: read as UTF-8 this title would be garbled or fail.
    assert "Misérables, Les (1995)" in items.get_column("title").to_list()
    assert items.get_column("category").null_count() == 0


@pytest.mark.slow
def test_movielens_users(movielens_dir: Path) -> None:
    users = movielens.load_users(movielens_dir)
    assert users.schema == pl.Schema(contract.USERS_SCHEMA)
    assert users.height == 943
    assert users.get_column("user_id").n_unique() == 943
    assert set(users.get_column("segment")) <= {"under_18", "18_24", "25_34", "35_44", "45_49", "50_55", "56_plus"}
    assert users.get_column("segment").null_count() == 0
    # 18 zip codes are not 5 digits (Canadian ones such as "T8H1N", and a few odd ones).
    assert users.get_column("country").value_counts().sort("country").rows() == [(None, 18), ("US", 925)]
    assert users.get_column("signup_at").null_count() == 943


def test_age_bands_edges() -> None:
    cases = {7: "under_18", 17: "under_18", 18: "18_24", 24: "18_24", 25: "25_34", 34: "25_34", 35: "35_44",
             44: "35_44", 45: "45_49", 49: "45_49", 50: "50_55", 55: "50_55", 56: "56_plus", 73: "56_plus"}
    assert {age: movielens.age_band(age) for age in cases} == cases


# --- Steam 200k, real file -------------------------------------------------------------------------


@pytest.mark.slow
def test_steam_events_are_200k_rows_in_contract_types(steam_events: pl.DataFrame) -> None:
    assert steam_events.schema == pl.Schema(RAW_SCHEMA)
    assert steam_events.height == 200_000
    assert steam_events.get_column("_parse_error").null_count() == 200_000
    assert steam_events.get_column("_line").to_list() == list(range(1, 200_001))
    mix = dict(steam_events.get_column("event_type").value_counts().iter_rows())
    assert mix == {"purchase": 129_511, "play": 70_489}
    assert steam_events.get_column("user_id").n_unique() == 12_393
    assert steam_events.get_column("item_id").n_unique() == 5_155
    assert steam_events.filter(pl.col("event_type") == "purchase").get_column("value").unique().to_list() == [1.0]
    plays = steam_events.filter(pl.col("event_type") == "play").get_column("value")
    assert (plays.min(), plays.max()) == (0.1, 11754.0)


@pytest.mark.slow
def test_steam_has_no_time(steam_dir: Path, steam_events: pl.DataFrame) -> None:
    assert steam.HAS_TIMESTAMPS is False
    assert steam_events.get_column("event_at").null_count() == 200_000
    assert steam.event_date_range(steam_dir) is None


@pytest.mark.slow
def test_steam_707_exact_duplicates_share_their_event_id(steam_events: pl.DataFrame) -> None:
    content = steam_events.select(EVENT_COLUMNS)
    assert content.height - content.unique().height == 707
    # Same id <=> same content: downstream counts 200,000 = 199,293 clean + 707 duplicates.
    assert steam_events.height - steam_events.get_column("event_id").n_unique() == 707
    deduplicated = content.unique()
    assert deduplicated.height == 199_293
    assert deduplicated.get_column("event_id").is_unique().all()


@pytest.mark.slow
def test_steam_user_game_behaviour_is_not_unique_so_the_id_includes_the_value(steam_events: pl.DataFrame) -> None:
    # A finding, not a wish: after removing exact duplicates, 12 (user, game, "play") pairs still have
    # two rows with different hours. The id therefore carries the value; with the value it is unique.
    deduplicated = steam_events.select(EVENT_COLUMNS).unique()
    keys = ["user_id", "item_id", "event_type"]
    repeated = deduplicated.filter(pl.struct(keys).is_duplicated())
    assert repeated.select(keys).unique().height == 12
    assert repeated.get_column("event_type").unique().to_list() == ["play"]
    assert deduplicated.select(keys + ["value"]).is_unique().all()


@pytest.mark.slow
def test_steam_title_ids_are_stable_and_never_collide(steam_dir: Path, steam_events: pl.DataFrame) -> None:
    items = steam.load_items(steam_dir)
    assert items.schema == pl.Schema(contract.ITEMS_SCHEMA)
    assert items.height == 5_155
    assert items.get_column("title").n_unique() == 5_155
    assert items.get_column("item_id").n_unique() == 5_155
    assert items.get_column("item_id").str.contains(r"^g[0-9a-f]{10}$").all()
    assert items.get_column("is_active").all()
    skyrim = items.filter(pl.col("title") == "The Elder Scrolls V Skyrim").get_column("item_id").to_list()
    assert skyrim == ["g11d42bf584"]  # sha1("The Elder Scrolls V Skyrim")[:10], fixed forever
    assert set(steam_events.get_column("item_id")) == set(items.get_column("item_id"))
    # Titles with commas inside the quotes survive whole.
    assert "Warhammer 40,000 Armageddon - Vulkan's Wrath" in items.get_column("title").to_list()


@pytest.mark.slow
def test_steam_users(steam_dir: Path) -> None:
    users = steam.load_users(steam_dir)
    assert users.schema == pl.Schema(contract.USERS_SCHEMA)
    assert users.height == 12_393
    assert users.get_column("user_id").is_unique().all()
    assert users.select(["signup_at", "country", "segment"]).null_count().row(0) == (12_393, 12_393, 12_393)


# --- missing folders and files (no real data needed) ----------------------------------------------


@pytest.mark.parametrize("loader", ["load_raw_events", "load_items", "load_users", "event_date_range"])
def test_movielens_missing_folder_names_the_file_and_the_env_var(tmp_path: Path, loader: str) -> None:
    missing = tmp_path / "no-such-folder"
    with pytest.raises(FileNotFoundError) as error:
        getattr(movielens, loader)(missing)
    message = str(error.value)
    assert "u." in message and str(missing) in message and "RECS_DATA_DIR" in message


def test_movielens_missing_file_in_existing_folder(tmp_path: Path) -> None:
    (tmp_path / "u.genre").write_text("unknown|0\n")
    with pytest.raises(FileNotFoundError, match=r"'u\.item'.*does not contain it"):
        movielens.load_items(tmp_path)


@pytest.mark.parametrize("loader", ["load_raw_events", "load_items", "load_users", "event_date_range"])
def test_steam_missing_folder_names_the_file_and_the_env_var(tmp_path: Path, loader: str) -> None:
    with pytest.raises(FileNotFoundError) as error:
        getattr(steam, loader)(tmp_path)
    message = str(error.value)
    assert "steam-200k.csv.gz" in message and str(tmp_path) in message and "RECS_DATA_DIR" in message


# --- tiny hand-made copies: raw means nothing dropped ----------------------------------------------


def test_movielens_unreadable_lines_are_kept_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "u.data").write_text("1\t10\t4\t881250949\n1\t10\n\n2\tx\t3\t881250950\n1\t10\t4\t881250949\n")
    events = movielens.load_raw_events(tmp_path)
    assert events.get_column("_line").to_list() == [1, 2, 4, 5]  # the blank line 3 holds no data
    errors = events.get_column("_parse_error").to_list()
    assert errors[0] is None and errors[3] is None
    assert errors[1] == "line 2: expected 4 tab-separated fields (user, item, rating, timestamp), found 2"
    assert errors[2].startswith("line 4: ")
    assert events.get_column("_raw_line").to_list() == [None, "1\t10", "2\tx\t3\t881250950", None]
    assert events.row(1, named=True)["event_id"] is None and events.row(1, named=True)["user_id"] is None
    # A repeated line keeps its content-derived id, so staging sees a duplicate rather than a new rating.
    assert events.get_column("event_id").to_list()[0] == events.get_column("event_id").to_list()[3] == "1-10-881250949"


def test_steam_unreadable_lines_are_kept_and_duplicates_share_an_id(tmp_path: Path) -> None:
    text = (
        '5,"Cook, Serve, Delicious!",purchase,1.0,0\n'
        '5,"Cook, Serve, Delicious!",play,2.5,0\n'
        '5,"Cook, Serve, Delicious!",play,2.5,0\n'
        '5,"Cook, Serve, Delicious!",play,0.5,0\n'
        '5,"Broken quote,play,1.0,0\n'
        "x,Game,play,1.0,0\n"
        "6,Game,play\n"
    )
    with gzip.open(tmp_path / "steam-200k.csv.gz", "wt", encoding="utf-8") as f:
        f.write(text)
    events = steam.load_raw_events(tmp_path)
    assert events.height == 7
    ids = events.get_column("event_id").to_list()
    game = steam.item_id_for_title("Cook, Serve, Delicious!")
    assert ids[:4] == [f"5:{game}:purchase:1.0", f"5:{game}:play:2.5", f"5:{game}:play:2.5", f"5:{game}:play:0.5"]
    assert events.get_column("_parse_error").to_list()[:4] == [None] * 4
    errors = events.get_column("_parse_error").to_list()[4:]
    assert errors[0].startswith("line 5: not valid CSV")
    assert errors[1] == "line 6: user id 'x' is not a whole number"
    assert errors[2] == "line 7: expected 5 comma-separated fields, found 3"
    raw = events.get_column("_raw_line").to_list()
    assert raw[4:] == ['5,"Broken quote,play,1.0,0', "x,Game,play,1.0,0", "6,Game,play"]
    items = steam.load_items(tmp_path)
    assert items.get_column("title").to_list() == ["Cook, Serve, Delicious!"]
    assert steam.load_users(tmp_path).get_column("user_id").to_list() == ["5"]
