"""Freshness: the served model's age and the live-events consumer's lag, against their limits."""

import datetime as dt

import pytest

from recs_assets.monitoring.freshness import measure_freshness

NOW = dt.datetime(2026, 12, 2, 12, tzinfo=dt.UTC)


def test_a_model_refitted_this_morning_with_no_broker_passes_and_says_what_it_measured():
    result = measure_freshness(NOW - dt.timedelta(hours=6), NOW, trained_through=dt.datetime(2026, 9, 30, tzinfo=dt.UTC))
    assert result.passed
    assert result.values["model_age_hours"] == pytest.approx(6.0) and result.values["consumer_waiting"] is None
    assert "refitted 6.0 h ago (limit 48 h)" in result.description and "no live-events broker" in result.description
    assert "2026-09-30" in result.description  # reported, not judged: a public dataset's last event is old


def test_a_missed_refit_fails():
    result = measure_freshness(NOW - dt.timedelta(hours=49), NOW)
    assert result.failed and "the served model is 49.0 h old (limit 48 h)" in result.description


def test_a_consumer_falling_behind_fails_counting_delivered_but_unacknowledged_events():
    assert measure_freshness(NOW, NOW, consumer_lag=9_000, consumer_pending=999).passed
    result = measure_freshness(NOW, NOW, consumer_lag=9_000, consumer_pending=1_001)
    assert result.failed and "10,001 live events wait for the consumer (limit 10,000)" in result.description


def test_nothing_served_yet_is_skipped_and_bad_arguments_are_named():
    assert measure_freshness(None, NOW).skipped
    with pytest.raises(ValueError, match="max_model_age_hours"):
        measure_freshness(NOW, NOW, max_model_age_hours=0)
    with pytest.raises(ValueError, match="timezone-aware"):
        measure_freshness(dt.datetime(2026, 12, 1), NOW)
