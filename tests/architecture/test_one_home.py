"""Facts with one home: the SQL feature store agrees with the contract's lists of event types."""

from __future__ import annotations

import re
from pathlib import Path

from recs_assets.contract import EVENT_TYPES, INTERACTION_TYPES, LIVE_EVENT_TYPES, SEQUENCE_TYPES

SQL = Path(__file__).resolve().parents[2] / "sql"
_LIST = re.compile(r"event_type\s+in\s*\(([^)]*)\)", re.IGNORECASE)
KNOWN_LISTS = {
    frozenset(INTERACTION_TYPES): "INTERACTION_TYPES",
    frozenset(SEQUENCE_TYPES): "SEQUENCE_TYPES",
    frozenset(LIVE_EVENT_TYPES): "LIVE_EVENT_TYPES",
}


def event_type_lists(text: str) -> list[frozenset[str]]:
    return [frozenset(re.findall(r"'([^']*)'", match)) for match in _LIST.findall(text)]


def test_every_event_type_list_in_sql_is_one_of_the_contracts_lists():
    found = {}
    for path in sorted(SQL.glob("*.sql")):
        for listed in event_type_lists(path.read_text()):
            assert listed <= set(EVENT_TYPES), f"{path.name}: unknown event types {sorted(listed - set(EVENT_TYPES))}"
            assert listed in KNOWN_LISTS, (
                f"{path.name} lists event types {sorted(listed)}, which is none of the contract's lists "
                f"({', '.join(KNOWN_LISTS.values())}): add it to recs_assets/contract.py or use one of them"
            )
            found.setdefault(KNOWN_LISTS[listed], []).append(path.name)
    # The interaction list is the one most tables use; if the parsing broke, nothing would be found.
    assert len(found.get("INTERACTION_TYPES", [])) >= 4, found


def test_the_parser_sees_a_list_that_disagrees():
    assert event_type_lists("where event_type in ('view', 'purchase')") == [frozenset({"view", "purchase"})]
    assert frozenset({"view", "purchase"}) not in KNOWN_LISTS
