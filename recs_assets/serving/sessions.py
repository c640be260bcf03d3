"""Live sessions: what each shopper viewed, carted and bought since this API process started.

Memory is bounded: the last 50 events and 200 purchases per user, at most 100,000 users (least recently
active dropped first), so a flood of new users cannot exhaust the process.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from typing import NamedTuple

SESSION_EVENTS_PER_USER = 50
PURCHASES_PER_USER = 200
MAX_SESSION_USERS = 100_000
SESSION_ANCHORS = 3
# Events that say "show me more like this"; a purchase ends the interest in that item.
ANCHOR_EVENT_TYPES = ("view", "add_to_cart")


class SessionState(NamedTuple):
    """One user's live session as the re-ranking rule reads it."""

    anchors: list[str]  # last distinct viewed/carted items, newest first, not bought
    seen: set[str]  # every item in the recent events
    bought: set[str]  # items purchased in this process's lifetime (bounded)


class Sessions:
    """Bounded per-user live state: recent view/cart events and purchased items."""

    def __init__(self, max_users: int = MAX_SESSION_USERS) -> None:
        self.max_users = max_users
        self._users: OrderedDict[str, tuple[deque, deque]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, user_id: str, item_id: str, event_type: str) -> None:
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
            recent.append((item_id, event_type))
            if event_type == "purchase":
                bought.append(item_id)

    def get(self, user_id: str) -> SessionState:
        """The user's session: anchors newest first, seen items, purchased items."""
        with self._lock:
            state = self._users.get(user_id)
            if state is None:
                return SessionState([], set(), set())
            recent, bought = list(state[0]), set(state[1])
        anchors: list[str] = []
        for item, kind in reversed(recent):
            if kind in ANCHOR_EVENT_TYPES and item not in anchors and item not in bought:
                anchors.append(item)
                if len(anchors) == SESSION_ANCHORS:
                    break
        seen = {item for item, _ in recent}
        return SessionState(anchors, seen, bought)

    def __len__(self) -> int:
        return len(self._users)
