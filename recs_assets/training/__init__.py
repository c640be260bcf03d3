"""Training: how events are divided into what a model learns from and what it is graded on."""

from recs_assets.training.protocol import ProtocolChoice, choose_protocol, required_users
from recs_assets.training.splits import (
    GLOBAL_CUT_PROTOCOLS,
    INTERACTION_TYPES,
    NO_PROTOCOL,
    PROTOCOLS,
    Split,
    holdout_truth,
    interaction_events,
    leave_last_out,
    make_split,
    no_split,
    quantile_split,
    random_split,
    temporal_split,
)

__all__ = [
    "GLOBAL_CUT_PROTOCOLS",
    "INTERACTION_TYPES",
    "NO_PROTOCOL",
    "PROTOCOLS",
    "ProtocolChoice",
    "Split",
    "choose_protocol",
    "holdout_truth",
    "interaction_events",
    "leave_last_out",
    "make_split",
    "no_split",
    "quantile_split",
    "random_split",
    "required_users",
    "temporal_split",
]
