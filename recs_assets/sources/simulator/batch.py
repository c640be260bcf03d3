"""Events in integer-coded columns, as the simulator builds them before any string is made.

Codes index into the contract's EVENT_TYPES and into SURFACES; -1, 0 or NaN mark an empty field.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recs_assets.contract import EVENT_TYPES

EVENT_CODE = {name: code for code, name in enumerate(EVENT_TYPES)}
# A session's kind (a personalised home feed, a category page the user picked, or a search) is also
# the surface code of everything shown in it; plays happen in the library.
SURFACES: tuple[str, ...] = ("home", "category", "search", "library")
HOME, CATEGORY, SEARCH, LIBRARY = 0, 1, 2, 3


@dataclass
class EventBatch:
    """Events in columnar, integer-coded form; strings are only made once, at the very end."""

    at: np.ndarray  # int64 microseconds
    user: np.ndarray
    session: np.ndarray
    item: np.ndarray  # -1 = none
    event_type: np.ndarray
    surface: np.ndarray
    query: np.ndarray  # index into the query vocabulary, -1 = none
    position: np.ndarray  # 0 = none
    propensity: np.ndarray  # NaN = none
    value: np.ndarray  # NaN = none

    @classmethod
    def build(cls, n: int, **columns: np.ndarray | int | float) -> EventBatch:
        defaults = dict(item=-1, query=-1, position=0, propensity=np.nan, value=np.nan)
        dtypes = dict(at=np.int64, user=np.int32, session=np.int64, item=np.int32, event_type=np.int8,
                      surface=np.int8, query=np.int16, position=np.int32, propensity=np.float64,
                      value=np.float64)
        values = {**defaults, **columns}
        return cls(**{name: np.broadcast_to(np.asarray(values[name], dtype=dtype), (n,)).copy()
                      for name, dtype in dtypes.items()})

    @classmethod
    def concat(cls, batches: list[EventBatch]) -> EventBatch:
        names = cls.__dataclass_fields__
        if not batches:
            return cls.build(0)
        return cls(**{name: np.concatenate([getattr(b, name) for b in batches]) for name in names})

    def reorder_in_place(self, order: np.ndarray) -> None:
        # Column by column, so at most one extra column is alive at a time (matters at 10M rows).
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name)[order])

    def take(self, mask: np.ndarray) -> EventBatch:
        return EventBatch(**{name: getattr(self, name)[mask] for name in self.__dataclass_fields__})
