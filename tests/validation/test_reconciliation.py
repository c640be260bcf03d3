"""Reconciliation against the source's own count: a reader that merges or drops lines cannot pass."""

import polars as pl
import pytest

from recs_assets.contract import EVENTS_SCHEMA, RAW_PROVENANCE_SCHEMA
from recs_assets.validation.quarantine import split_events
from recs_assets.validation.reconciliation import reconcile_with_source, source_lines_per_row
from recs_assets.validation.schemas import events_schema

RAW_SCHEMA = {**{c: pl.String for c in EVENTS_SCHEMA}, **RAW_PROVENANCE_SCHEMA}


def raw_rows(n: int, *, skip: tuple[int, ...] = ()) -> list[dict]:
    return [
        {"event_id": f"e{i}", "event_at": "2026-09-01T10:00:00Z", "user_id": "u1", "item_id": "i1",
         "event_type": "view", "_source": "files:events.csv", "_line": i}
        for i in range(1, n + 1) if i not in skip
    ]


def frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=RAW_SCHEMA)


def check(raw: pl.DataFrame, source_records: int | None):
    split = split_events(raw, events_schema())
    return reconcile_with_source(raw, split.clean, split.quarantine, source_records)


def swallowed(n: int, at: int, keep_lines: int | None = None) -> pl.DataFrame:
    """What a quote-blind reader produces: rows after an unclosed quote merged into one unreadable row."""
    lines = [f"e{i},2026-09-01T10:00:00Z,u1,i1,view" for i in range(at, n + 1)]
    lines[0] = lines[0].replace(",u1,", ',"u1,')
    text = "\n".join(lines if keep_lines is None else lines[:keep_lines])
    bad = {"_source": "files:events.csv", "_line": at, "_raw_line": text,
           "_parse_error": f"line {at + 1}: a quoted value is not closed properly"}
    return frame(raw_rows(at - 1) + [bad])


def test_a_complete_batch_passes_and_says_what_it_compared():
    passed, description, problems = check(frame(raw_rows(5)), 5)
    assert passed and problems == []
    assert description == "raw 5 = clean 5 + quarantined 0 + duplicates 0; source records 5, raw rows account for 5."


def test_an_unclosed_quote_that_swallowed_the_rest_fails_with_the_line_number():
    raw = swallowed(2000, at=1000)
    passed, description, problems = check(raw, 2000)
    assert not passed  # although raw = clean + quarantined + duplicates holds
    assert problems == [
        "files:events.csv, line 1001: one unreadable row holds 1,001 lines of the source; a quote that is "
        "never closed probably swallowed the rows after it"
    ]
    assert description.startswith(problems[0])


def test_a_swallowed_and_truncated_row_fails_on_the_count():
    passed, _, problems = check(swallowed(2000, at=1000, keep_lines=1), 2000)
    assert not passed
    assert problems == [
        "the source holds 2,000 record(s) but raw_events accounts for 1,000 (1,000 missing); "
        "the last row starts at _line 1,000, look after it"
    ]


def test_a_dropped_line_fails_and_says_where_the_gap_is():
    passed, _, problems = check(frame(raw_rows(10, skip=(4, 5))), 10)
    assert not passed
    assert problems == [
        "the source holds 10 record(s) but raw_events accounts for 8 (2 missing); "
        "the largest stretch with no row is 2 line(s) after _line 3"
    ]


def test_more_rows_than_the_source_holds_fails():
    passed, _, problems = check(frame(raw_rows(4)), 3)
    assert not passed and problems == ["the source holds 3 record(s) but raw_events accounts for 4 (1 more than the source holds)"]


def test_a_line_claimed_by_two_rows_fails():
    rows = raw_rows(3)
    rows[2]["_line"] = 2
    passed, _, problems = check(frame(rows), None)
    assert not passed and problems == ["1 raw row(s) claim source lines another row already holds (e.g. files:events.csv _line 2)"]


def test_a_multiline_value_counts_its_lines_blank_ones_apart():
    rows = raw_rows(3)
    rows[0]["_raw_line"] = 'e1,t,u1,i1,"two\r\n\r\nlines"'  # three lines, one of them blank
    rows[1]["_line"], rows[2]["_line"] = 4, 5
    raw = frame(rows)
    assert source_lines_per_row(raw).to_list() == [2, 1, 1]
    passed, _, problems = check(raw, 4)
    assert passed, problems


def test_without_an_independent_count_only_the_balance_is_checked():
    passed, description, _ = check(frame(raw_rows(3)), None)
    assert passed and "no independent count" in description


@pytest.mark.parametrize("drop", ["clean", "quarantine"])
def test_a_row_lost_between_raw_and_staging_fails(drop):
    raw = frame(raw_rows(3) + [{**raw_rows(1)[0], "event_id": "bad", "event_type": "teleport", "_line": 4}])
    split = split_events(raw, events_schema())
    clean = split.clean.head(split.clean.height - 1) if drop == "clean" else split.clean
    quarantine = split.quarantine.head(0) if drop == "quarantine" else split.quarantine
    passed, _, problems = reconcile_with_source(raw, clean, quarantine, 4)
    assert not passed
    assert problems[0].startswith("1 raw row(s) unaccounted for")
    assert "event ids in raw_events that landed nowhere" in problems[1]
