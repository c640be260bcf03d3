"""Asset checks called directly: each passes on good data and fails, naming what is wrong, on bad data."""

import polars as pl
import pytest

from recs_assets.definitions import build_definitions
from recs_assets.defs.staging import (
    EVENT_IDS_READER,
    LAKE_SCANNER,
    InvalidShareConfig,
    events_invalid_share_within_limit,
    events_match_schema,
    events_reconcile_with_raw,
)
from recs_assets.defs.ingest import items_match_schema, users_match_schema
from recs_assets.settings import Settings
from recs_assets.validation.quarantine import split_events
from recs_assets.validation.schemas import events_schema
from resources.marketplace_source import MarketplaceSource
from tests.validation.test_quarantine import raw_batch

ITEMS = pl.DataFrame(
    {"item_id": ["i1", "i2"], "title": ["A", "B"], "category": ["rpg", "rpg"], "brand": [None, None],
     "price": [5.0, 7.0], "condition": [None, None], "listed_at": [None, None], "is_active": [True, True]},
    schema_overrides={"brand": pl.String, "condition": pl.String, "listed_at": pl.Datetime("us", "UTC")},
)
USERS = pl.DataFrame({"user_id": ["u1", "u2"], "signup_at": [None, None], "country": ["FR", "DE"], "segment": ["new", "new"]},
                     schema_overrides={"signup_at": pl.Datetime("us", "UTC")})
SOURCE = MarketplaceSource()


@pytest.fixture
def staged():
    raw = raw_batch({}, {"item_id": "i2"}, {"price": "-3"}, {"item_id": "i404"})
    split = split_events(raw, events_schema(item_ids=ITEMS["item_id"], user_ids=USERS["user_id"]))
    return raw, split


def test_schema_check_passes_on_clean_events(staged):
    _, split = staged
    result = events_match_schema(source=SOURCE, events=split.clean, items=ITEMS, users=USERS)
    assert result.passed


def test_schema_check_fails_naming_column_rule_and_rows(staged):
    _, split = staged
    broken = split.clean.with_columns(pl.when(pl.col("event_id") == "e2").then(-1.0).otherwise(pl.col("price")).alias("price"))
    result = events_match_schema(source=SOURCE, events=broken, items=ITEMS, users=USERS)
    assert not result.passed
    assert "price is negative" in result.description and "1 row(s)" in result.description
    assert "e2" in result.metadata["sample_rows"].value


def test_dimension_checks_catch_duplicate_ids_and_negative_prices():
    assert items_match_schema(items=ITEMS).passed and users_match_schema(users=USERS).passed
    bad_items = pl.concat([ITEMS, ITEMS.head(1).with_columns(pl.lit(-1.0).alias("price"))])
    result = items_match_schema(items=bad_items)
    assert not result.passed
    assert "item_id is not unique" in result.metadata["failures_by_rule"].value
    assert "price is negative" in result.metadata["failures_by_rule"].value
    assert not users_match_schema(users=pl.concat([USERS, USERS])).passed


def _one(results):
    (result,) = list(results)
    return result


def test_reconciliation_reads_only_the_ids_of_clean_and_quarantined_events(tmp_path):
    # The balance needs their ids and counts only; reading whole tables beside the raw batch was the 10M peak.
    readers = {d.name: d.input_manager_key for d in events_reconcile_with_raw.node_def.input_defs}
    assert readers["events"] == readers["events_quarantine"] == EVENT_IDS_READER
    assert readers["raw_events"] == LAKE_SCANNER
    resources = build_definitions(Settings(home=tmp_path)).resources
    assert resources[EVENT_IDS_READER].columns == ["event_id"]
    assert resources[LAKE_SCANNER].lazy and resources[LAKE_SCANNER].columns is None
    # The invalid share needs only the clean events' count.
    readers = {d.name: d.input_manager_key for d in events_invalid_share_within_limit.node_def.input_defs}
    assert readers["events"] == EVENT_IDS_READER and readers["events_quarantine"] is None


def test_the_feature_drift_check_reads_only_the_event_columns_its_window_features_use(tmp_path):
    from recs_assets.defs.monitoring import DRIFT_EVENTS_READER, feature_drift_check
    from recs_assets.monitoring.window_features import window_event_columns

    readers = {d.name: d.input_manager_key for d in feature_drift_check.node_def.input_defs}
    assert readers["events"] == DRIFT_EVENTS_READER and readers["items"] is None
    reader = build_definitions(Settings(home=tmp_path)).resources[DRIFT_EVENTS_READER]
    assert reader.columns == window_event_columns()
    assert {"user_id", "event_at", "event_type", "item_id"} <= set(reader.columns) and "event_id" not in reader.columns


def test_steps_that_need_a_few_event_columns_load_only_those():
    from recs_assets.defs.features import online_feature_store
    from recs_assets.defs.serving import recommendation_snapshot, recommendation_snapshot_is_servable
    from recs_assets.serving.snapshots import ACTIVE_USER_COLUMNS

    def columns(step):
        return {d.name: d.metadata for d in step.node_def.input_defs}["events"].get("columns")

    assert columns(online_feature_store) == ["event_at"]  # newest_moment
    assert columns(recommendation_snapshot) == list(ACTIVE_USER_COLUMNS)
    assert set(columns(recommendation_snapshot_is_servable)) == {*ACTIVE_USER_COLUMNS, "item_id"}


def test_reconciliation_passes_and_fails_when_a_row_goes_missing(staged):
    raw, split = staged
    source = MarketplaceSource(kind="simulator")
    # As the run gives them: a lazy scan of the raw batch, only the ids of the rest.
    ids = lambda frame: frame.select("event_id")  # noqa: E731
    check = lambda clean: _one(events_reconcile_with_raw(  # noqa: E731
        source=source, raw_events=raw.lazy(), events=ids(clean), events_quarantine=ids(split.quarantine)))
    result = check(split.clean)
    assert result.passed and result.description.startswith("raw 4 = clean 2 + quarantined 2 + duplicates 0")
    lost = check(split.clean.head(1))
    assert not lost.passed and "e2" in lost.description and lost.metadata["lost_event_ids"].value == ["e2"]


def test_invalid_share_fails_above_the_configured_limit(staged):
    _, split = staged
    ids = split.clean.select("event_id")  # what the run reads of the clean events
    strict = _one(events_invalid_share_within_limit(
        config=InvalidShareConfig(max_invalid_share=0.4), events=ids, events_quarantine=split.quarantine
    ))
    assert not strict.passed and "50.00% of 4 distinct raw events" in strict.description
    lenient = _one(events_invalid_share_within_limit(
        config=InvalidShareConfig(max_invalid_share=0.5), events=ids, events_quarantine=split.quarantine
    ))
    assert lenient.passed


def test_a_champion_worse_than_the_baseline_or_not_significantly_better_is_stopped_before_serving():
    from recs_assets.defs.evaluation import champion_check_result

    row = {"champion": "als", "registered_model": "als_model", "version": 3, "promoted": True, "graded": True,
           "primary_metric": "ndcg@10", "score": 0.10, "baseline_score": 0.12, "p_vs_baseline": 0.001,
           "alpha": 0.05, "reason": "test"}
    check = lambda **changes: champion_check_result(pl.DataFrame([{**row, **changes}]))  # noqa: E731
    assert not check().passed  # worse than popularity
    assert check(score=0.13).passed  # better, significantly
    assert not check(score=0.13, p_vs_baseline=0.4).passed  # better, but noise
    zero = check(champion="popularity", registered_model="popularity_model", score=0.0, baseline_score=0.0, p_vs_baseline=None)
    assert not zero.passed  # 0.0 against 0.0 never passes
    assert check(graded=False, reason="no leaderboard") is None  # nothing graded: no result, so SKIPPED
