"""The Open Bandit Dataset adapter: its own folder layout, impressions with position and propensity, clicks as views."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from recs_assets.contract import EVENTS_SCHEMA, ITEMS_SCHEMA, RAW_PROVENANCE_SCHEMA
from recs_assets.sources import open_bandit
from tests.conftest import datasets_dir

HEADER = ",timestamp,item_id,position,click,propensity_score,user_feature_0,user_feature_1,user_feature_2,user_feature_3\n"
ITEMS = ",item_id,item_feature_0,item_feature_1,item_feature_2,item_feature_3\n0,0,-0.5,catA,brandA,x\n1,1,0.2,catB,brandB,y\n"


def write_campaign(root: Path, policy: str, campaign: str, rows: list[str]) -> None:
    folder = root / policy / campaign
    folder.mkdir(parents=True)
    (folder / f"{campaign}.csv").write_text(HEADER + "".join(rows))
    (folder / "item_context.csv").write_text(ITEMS)


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    write_campaign(tmp_path, "random", "men", [
        "0,2019-11-24 00:01:03.979311+00:00,1,2,0,0.5,a,b,c,d\n",
        "1,2019-11-24 10:00:00+00:00,0,1,1,0.5,a,b,c,d\n",
        "2,2019-11-25 09:00:00+00:00,0,3,0,0.5,e,b,c,d\n",
    ])
    write_campaign(tmp_path, "bts", "men", ["0,2019-11-26 00:00:00+00:00,1,1,1,0.9,a,b,c,d\n"])
    return tmp_path


def test_rows_become_impressions_with_position_propensity_and_policy_and_clicks_become_views(tiny):
    raw = open_bandit.load_raw_events(tiny)
    assert set(raw.columns) == set(EVENTS_SCHEMA) | set(RAW_PROVENANCE_SCHEMA)
    impressions = raw.filter(pl.col("event_type") == "impression")
    views = raw.filter(pl.col("event_type") == "view")
    assert impressions.height == 4 and views.height == 2
    first = impressions.filter(pl.col("event_id") == "random:men:0").row(0, named=True)
    assert (first["item_id"], first["position"], first["propensity"], first["variant"]) == ("men-01", 2, 0.5, "random")
    assert str(first["event_at"]) == "2019-11-24 00:01:03.979311+00:00"
    click = views.filter(pl.col("variant") == "random").row(0, named=True)
    assert click["session_id"] == "random:men:1" and click["item_id"] == "men-00" and click["propensity"] is None
    # One kind of visitor per combination of the four hashed features.
    assert impressions.filter(pl.col("variant") == "random")["user_id"].n_unique() == 2
    assert raw["_parse_error"].null_count() == raw.height


def test_items_users_and_days_follow_the_folder(tiny):
    items = open_bandit.load_items(tiny)
    assert items.columns == list(ITEMS_SCHEMA)
    assert items["item_id"].to_list() == ["men-00", "men-01"] and items["category"].to_list() == ["catA", "catB"]
    assert open_bandit.load_users(tiny).height == 2
    assert [d.isoformat() for d in open_bandit.event_date_range(tiny)] == ["2019-11-24", "2019-11-26"]


def test_an_unreadable_row_is_kept_with_its_reason(tmp_path):
    write_campaign(tmp_path, "random", "all", ["0,not a time,1,2,0,0.5,a,b,c,d\n", "1,2019-11-24 10:00:00+00:00,0,1,0,0.5,a,b,c,d\n"])
    raw = open_bandit.load_raw_events(tmp_path)
    bad = raw.filter(pl.col("_parse_error").is_not_null())
    assert bad.height == 1 and "line 2" in bad["_parse_error"][0] and bad["event_id"][0] is None


def test_the_layout_is_checked_with_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no Open Bandit logs"):
        open_bandit.load_raw_events(tmp_path)
    write_campaign(tmp_path, "random", "men", [])
    write_campaign(tmp_path, "random", "women", [])
    with pytest.raises(ValueError, match="several campaigns"):
        open_bandit.load_raw_events(tmp_path)


@pytest.mark.slow
def test_the_real_men_campaign_off_policy_check():
    from recs_assets.experiments.off_policy import open_bandit_check

    folder = datasets_dir() / "open-bandit-dataset"
    if not folder.is_dir():
        pytest.skip(f"{folder} not present")
    raw = open_bandit.load_raw_events(folder)
    assert raw.filter(pl.col("event_type") == "impression").height == 20_000
    assert raw.filter(pl.col("event_type") == "view").height == 46 + 69
    table = open_bandit_check(raw)
    assert table["truth"][0] == pytest.approx(0.0069)
    dr = table.filter(pl.col("estimator") == "DR").row(0, named=True)
    assert dr["covers_truth"] and dr["relative_error"] < 0.5
