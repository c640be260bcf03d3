"""The request log: one record type, written by the API and read back by monitoring."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from recs_assets.layout import HomeLayout
from recs_assets.serving.request_log import RequestLog, RequestRecord, read_request_log

UTC = dt.timezone.utc


def _record(status: int = 200, ts: str | None = "2026-09-20T10:00:00.000+00:00", **kw) -> RequestRecord:
    return RequestRecord(ts=ts, method="GET", path="/recommendations/u1", status=status, latency_ms=1.5,
                         model_version=kw.get("model_version", 2), source=kw.get("source", "snapshot"))


def test_a_record_survives_the_round_trip_as_one_compact_line() -> None:
    rec = _record()
    line = rec.to_json()
    assert "\n" not in line and " " not in line
    assert json.loads(line) == {"ts": rec.ts, "method": "GET", "path": "/recommendations/u1", "status": 200,
                                "latency_ms": 1.5, "model_version": 2, "source": "snapshot"}
    assert RequestRecord.from_json(line) == rec
    assert rec.at == dt.datetime(2026, 9, 20, 10, tzinfo=UTC)


def test_older_lines_with_time_and_without_optional_fields_still_read() -> None:
    rec = RequestRecord.from_json('{"time": "2026-09-20T10:00:00Z", "status": "404", "latency_ms": 3}')
    assert (rec.status, rec.latency_ms, rec.path, rec.model_version) == (404, 3.0, None, None)
    assert rec.at == dt.datetime(2026, 9, 20, 10, tzinfo=UTC)
    assert RequestRecord.from_json('{"ts": "2026-09-20T10:00:00", "status": 200, "latency_ms": 1}').at.tzinfo == UTC
    assert RequestRecord.from_json('{"ts": "yesterday", "status": 200, "latency_ms": 1}').at is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"latency_ms": 1}', "no 'status'"),
        ('{"status": 200}', "no 'latency_ms'"),
        ('{"status": "ok", "latency_ms": 1}', "non-numeric status or latency_ms"),
    ],
)
def test_a_line_that_is_not_a_record_is_named(line: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RequestRecord.from_json(line)


def test_reader_counts_malformed_lines_and_filters_by_time(tmp_path: Path) -> None:
    path = tmp_path / "any.jsonl"
    lines = [_record(ts="2026-09-19T10:00:00.000+00:00").to_json(), "garbage", "", _record(500).to_json(),
             _record(ts=None).to_json()]
    path.write_text("\n".join(lines) + "\n")
    everything = read_request_log(path)
    assert len(everything.records) == 3 and everything.malformed == 1
    later = read_request_log(path, since=dt.datetime(2026, 9, 20))  # naive = UTC
    assert [r.status for r in later.records] == [500] and later.malformed == 1
    assert read_request_log(tmp_path / "missing.jsonl") == ([], 0)


def test_the_writer_buffers_until_flushed_and_flushes_on_stop(tmp_path: Path) -> None:
    path = HomeLayout(tmp_path).request_log  # its folder does not exist yet
    log = RequestLog(path, flush_interval=3600)
    log.start()
    log.append(_record(200))
    log.append(_record(422, source=None))
    assert not path.exists()
    log.stop()
    assert [r.status for r in read_request_log(path).records] == [200, 422]
    log.append(_record(404))
    log.flush()
    assert [r.status for r in read_request_log(path).records] == [200, 422, 404]


def test_the_log_rotates_by_size_and_every_kept_record_stays_readable(tmp_path: Path) -> None:
    from recs_assets.monitoring.health import serving_health_from_log
    from recs_assets.serving.request_log import request_log_files, rotated_path

    path = HomeLayout(tmp_path).request_log
    line = len(_record().to_json()) + 1
    log = RequestLog(path, flush_interval=3600, max_bytes=3 * line, backups=2)
    for batch in range(5):  # five flushes of two records: each flush fills most of a file
        log.append(_record(200, model_version=2 * batch))
        log.append(_record(200, model_version=2 * batch + 1))
        log.flush()
    assert request_log_files(path) == [rotated_path(path, 2), rotated_path(path, 1), path]
    assert not rotated_path(path, 3).exists()  # the oldest beyond the two kept was dropped
    # A flush never splits across files; each file stays within max_bytes.
    assert all(p.stat().st_size <= 3 * line for p in request_log_files(path))
    read = read_request_log(path)
    assert [r.model_version for r in read.records] == [4, 5, 6, 7, 8, 9] and read.malformed == 0
    # Monitoring reads them through the same record type, rotated files included.
    health = serving_health_from_log(path)
    assert health.values["requests"] == 6  # the live file alone holds 2


def test_a_bigger_batch_than_the_limit_still_lands_whole(tmp_path: Path) -> None:
    path = tmp_path / "request_log.jsonl"
    log = RequestLog(path, flush_interval=3600, max_bytes=10, backups=1)
    for status in (200, 201, 202):
        log.append(_record(status))
    log.flush()
    log.append(_record(203))
    log.flush()
    assert [r.status for r in read_request_log(path).records] == [200, 201, 202, 203]
    with pytest.raises(ValueError, match="at least 1"):
        RequestLog(path, flush_interval=1, max_bytes=0)
