"""The result every monitoring measurement returns: passed, failed, or skipped with a reason."""

from __future__ import annotations

import math

import pytest

from recs_assets.monitoring.result import MonitorResult


def test_a_skip_is_neither_passed_nor_failed_and_says_why():
    skip = MonitorResult.skip("no previous snapshot to compare with", history="serving/history")
    assert (skip.passed, skip.failed, skip.skipped) == (False, False, True)
    assert skip.description == "no previous snapshot to compare with" and skip.details == {"history": "serving/history"}


def test_nan_measurements_are_stored_as_none_so_metadata_is_json_ready():
    result = MonitorResult("passed", "ok", values={"ks": math.nan, "tvd": 0.1, "n": 3})
    assert result.values == {"ks": None, "tvd": 0.1, "n": 3}


@pytest.mark.parametrize(("status", "description", "match"), [("ok", "fine", "status"), ("passed", "", "description")])
def test_bad_results_are_refused(status, description, match):
    with pytest.raises(ValueError, match=match):
        MonitorResult(status, description)
