"""Live sessions: what each shopper viewed, carted and bought recently, rebuilt from the live event log on start.

Memory is bounded: the last 50 events and 200 purchases per user, at most 100,000 users (least recently
active dropped first), so a flood of new users cannot exhaust the process.

A shopper's current visit (`SessionState.items`) is what the session model reads: the items of their
events that share the latest event's `session_id` (all their recent events when the front end sends
no session ids), oldest first, a back-to-back repeat counted once, as the models were trained.

After a restart the sessions are rebuilt by replaying the accepted events of the last
`REPLAY_WINDOW` (the file log's JSON lines, or the broker's stream: the same records), so a shopper
does not lose their visit when the API is redeployed.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import NamedTuple

SESSION_EVENTS_PER_USER = 50
PURCHASES_PER_USER = 200
MAX_SESSION_USERS = 100_000
SESSION_ANCHORS = 3
# Events that say "show me more like this"; a purchase ends the interest in that item.
ANCHOR_EVENT_TYPES = ("view", "add_to_cart")
# How far back a restart replays accepted events: longer than any visit, short enough to start fast.
REPLAY_WINDOW = timedelta(days=2)


class SessionState(NamedTuple):
    """One user's live session as the re-ranking reads it."""

    anchors: list[str]  # last distinct viewed/carted items, newest first, not bought
    seen: set[str]  # every item in the recent events
    bought: set[str]  # items purchased in this process's lifetime (bounded)
    items: tuple[str, ...] = ()  # the current visit's items, oldest first (what the session model reads)


class Sessions:
    """Bounded per-user live state: recent events (item, type, session) and purchased items."""

    def __init__(self, max_users: int = MAX_SESSION_USERS) -> None:
        self.max_users = max_users
        self._users: OrderedDict[str, tuple[deque, deque]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, user_id: str, item_id: str, event_type: str, session_id: str | None = None) -> None:
        with self._lock:
            state = self._users.get(user_id)
            if state is None:
                state = (deque(maxlen=SESSION_EVENTS_PER_USER), deque(maxlen=PURCHASES_PER_USER))
                self._users[user_id] = state
                if len(self._users) > self.max_users:
                    self._users.popitem(last=False)
            else:
                self._users.move_to_end(user_id)
            recent, bought = state
            recent.append((item_id, event_type, session_id))
            if event_type == "purchase":
                bought.append(item_id)

    def get(self, user_id: str) -> SessionState:
        """The user's session: anchors newest first, seen items, purchased items, the current visit."""
        with self._lock:
            state = self._users.get(user_id)
            if state is None:
                return SessionState([], set(), set())
            recent, bought = list(state[0]), set(state[1])
        anchors: list[str] = []
        for item, kind, _ in reversed(recent):
            if kind in ANCHOR_EVENT_TYPES and item not in anchors and item not in bought:
                anchors.append(item)
                if len(anchors) == SESSION_ANCHORS:
                    break
        current = recent[-1][2] if recent else None
        visit: list[str] = []
        for item, _, session in recent:
            if session == current and (not visit or visit[-1] != item):
                visit.append(item)
        seen = {item for item, _, _ in recent}
        return SessionState(anchors, seen, bought, tuple(visit))

    def __len__(self) -> int:
        return len(self._users)


def file_log_records(directory: Path, since: datetime | None = None) -> Iterator[dict]:
    """The JSON-lines log's records (`events-YYYY-MM-DD.jsonl`, oldest file first), from the day of `since`.

    A line that cannot be read (a crash cut it short) is skipped: it was never acknowledged as stored.
    """
    first: date | None = since.astimezone(timezone.utc).date() if since is not None else None
    for path in sorted(Path(directory).glob("events-*.jsonl")):
        try:
            day = date.fromisoformat(path.stem.removeprefix("events-"))
        except ValueError:
            continue
        if first is not None and day < first:
            continue
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(record, dict):
                    yield record


def rebuild_sessions(sessions: Sessions, records: Iterable[Mapping], since: datetime | None = None) -> int:
    """Replay accepted event records (oldest first) into `sessions`; returns how many were replayed.

    Records received before `since` (by `received_at`, else `event_at`) and incomplete ones are skipped.
    """
    count = 0
    for record in records:
        user, item, kind = record.get("user_id"), record.get("item_id"), record.get("event_type")
        if not (user and item and kind):
            continue
        if since is not None:
            stamp = record.get("received_at") or record.get("event_at")
            try:
                at = datetime.fromisoformat(str(stamp))
            except ValueError:
                continue
            if (at if at.tzinfo else at.replace(tzinfo=timezone.utc)) < since:
                continue
        sessions.add(str(user), str(item), str(kind), record.get("session_id"))
        count += 1
    return count
