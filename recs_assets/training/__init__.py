"""Training: how events are divided into what a model learns from and what it is graded on."""

from recs_assets.training.splits import (
    INTERACTION_TYPES,
    PROTOCOLS,
    Split,
    interaction_events,
    leave_last_out,
    random_split,
    temporal_split,
)

__all__ = [
    "INTERACTION_TYPES",
    "PROTOCOLS",
    "Split",
    "interaction_events",
    "leave_last_out",
    "random_split",
    "temporal_split",
]
