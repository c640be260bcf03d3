"""Serving health from the API's request log, read through the serving layer's one record type."""

from __future__ import annotations

import datetime as dt

import pytest

from recs_assets.monitoring.health import measure_serving_health, serving_health_from_log
from recs_assets.serving.request_log import RequestRecord

UTC = dt.timezone.utc


def _record(latency: float, status: int = 200, path: str = "/recommendations/u1", ts: str = "2026-09-20T10:00:00.000+00:00"):
    return RequestRecord(ts=ts, method="GET", path=path, status=status, latency_ms=latency, model_version=1, source="snapshot")


def _write(path, records, extra_lines=()):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(r.to_json() + "\n" for r in records) + "".join(line + "\n" for line in extra_lines))


def test_exact_percentiles_and_rates():
    # latencies 1..100 ms: numpy linear percentiles are 50.5, 95.05, 99.01
    statuses = [500, 503] + [404] * 5 + [200] * 93
    h = measure_serving_health([_record(float(ms), st) for ms, st in zip(range(1, 101), statuses)], max_error_rate=0.05)
    assert h.passed is False and h.status == "failed"  # p99 99 ms is over the 50 ms budget
    assert h.values["requests"] == 100
    assert (h.values["p50_ms"], h.values["p95_ms"], h.values["p99_ms"]) == pytest.approx((50.5, 95.05, 99.01))
    assert h.values["error_rate"] == pytest.approx(0.02) and h.values["client_error_rate"] == pytest.approx(0.05)
    assert h.description.startswith("over budget: p99 latency; p99 99.0 ms (threshold 50 ms), error rate 2.00%")


def test_within_budget_passes_and_each_budget_can_fail_on_its_own():
    assert measure_serving_health([_record(5.0)] * 200).passed
    slow = measure_serving_health([_record(5.0)] * 190 + [_record(120.0)] * 10)
    assert slow.failed and "p99 latency" in slow.description and "error rate" not in slow.description.split(";")[0]
    failing = measure_serving_health([_record(5.0)] * 196 + [_record(5.0, 500)] * 4)
    assert failing.failed and "error rate 2.00% (threshold 1.00%)" in failing.description


def test_no_traffic_is_a_skip_not_a_pass():
    quiet = measure_serving_health([])
    assert quiet.skipped and not quiet.passed and quiet.description == "no traffic yet: no requests in the request log"


def test_latency_per_endpoint_ignores_the_ids_in_the_path():
    records = [_record(10.0, path=f"/recommendations/u{k}") for k in range(9)] + [_record(1.0, 500, path="/health")]
    by = measure_serving_health(records, max_error_rate=0.5).details["by_endpoint"]
    assert by == {
        "/health": {"requests": 1, "p99_ms": 1.0, "error_rate": 1.0},
        "/recommendations": {"requests": 9, "p99_ms": 10.0, "error_rate": 0.0},
    }


def test_reading_the_log_skips_unreadable_lines_and_counts_them(tmp_path):
    log = tmp_path / "serving" / "request_log.jsonl"
    _write(log, [_record(5.0)] * 10, extra_lines=["not json", '{"status": 200}'])
    h = serving_health_from_log(log)
    assert h.passed and h.values["requests"] == 10 and h.values["malformed_lines"] == 2
    assert "2 unreadable line(s) skipped" in h.description


def test_only_requests_since_the_lookback_count(tmp_path):
    log = tmp_path / "request_log.jsonl"
    _write(log, [_record(5.0, ts="2026-09-19T10:00:00.000+00:00")] * 3 + [_record(500.0, ts="2026-09-20T10:00:00.000+00:00")])
    recent = serving_health_from_log(log, since=dt.datetime(2026, 9, 20, tzinfo=UTC))
    assert recent.values["requests"] == 1 and recent.failed
    later = serving_health_from_log(log, since=dt.datetime(2026, 9, 21, tzinfo=UTC))
    assert later.skipped and "since 2026-09-21T00:00+00:00" in later.description


def test_a_missing_log_is_a_skip(tmp_path):
    h = serving_health_from_log(tmp_path / "nope.jsonl")
    assert h.skipped and "(no log yet)" in h.description


@pytest.mark.parametrize(("kw", "name"), [({"max_p99_ms": 0}, "max_p99_ms"), ({"max_error_rate": 2}, "max_error_rate")])
def test_budgets_are_checked(kw, name):
    with pytest.raises(ValueError, match=name):
        measure_serving_health([_record(1.0)], **kw)


def test_health_probes_alone_are_no_traffic_and_the_budget_names_its_source():
    probes = [_record(1.0, path="/health")] * 20 + [_record(2.0, path="/version")]
    quiet = measure_serving_health(probes)
    assert quiet.skipped and not quiet.passed
    assert quiet.description == "no traffic yet: only 21 probe request(s) (/health, /version) in the request log"
    # one real request makes it measured, probes included
    served = measure_serving_health([*probes, _record(3.0)])
    assert served.passed and served.values["requests"] == 22


def test_the_dagster_check_uses_the_benchmarked_budget_and_says_so():
    from recs_assets.defs.monitoring import SERVING_HEALTH_DESCRIPTION, ServingHealthConfig
    from recs_assets.monitoring.health import MAX_ERROR_RATE, MAX_P99_MS

    config = ServingHealthConfig()
    assert (config.max_p99_ms, config.max_error_rate) == (MAX_P99_MS, MAX_ERROR_RATE) == (50.0, 0.01)
    assert "p99 latency 50 ms and 1% server errors, set from benchmarks/serve.py" in SERVING_HEALTH_DESCRIPTION
    assert "Skipped, with the reason, when there is no traffic" in SERVING_HEALTH_DESCRIPTION
