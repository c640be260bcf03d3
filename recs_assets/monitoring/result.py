"""What a monitoring check found: passed, failed, or skipped because there was nothing to compare.

A skipped check is not a passed one: a drift check on a dataset without timestamps, or a serving-health
check before any traffic, has measured nothing, and saying "passed" would hide that. Every result carries
a one-line description (what was measured against which threshold) and plain, JSON-ready numbers, so the
Dagster layer only translates it into its own result type.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["passed", "failed", "skipped"]
STATUSES: tuple[str, ...] = ("passed", "failed", "skipped")


@dataclass(frozen=True)
class MonitorResult:
    """The outcome of one monitoring measurement.

    - status: "passed", "failed" or "skipped";
    - description: one sentence for the UI; for a skip it is the reason;
    - values: the measured numbers (NaN is stored as None, so the dict is JSON-ready);
    - details: anything else a person may want (per-column scores, dropped columns and why, windows);
    - report_path: the HTML report written, if any.
    """

    status: Status
    description: str
    values: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    report_path: str | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}; got {self.status!r}")
        if not self.description:
            raise ValueError("a monitoring result needs a description (for a skip: the reason)")
        object.__setattr__(self, "values", {key: _plain(value) for key, value in self.values.items()})

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    @property
    def skipped(self) -> bool:
        return self.status == "skipped"

    @classmethod
    def skip(cls, reason: str, **details: Any) -> MonitorResult:
        """Nothing to compare: the reason says what is missing."""
        return cls(status="skipped", description=reason, details=details)


def _plain(value: Any) -> Any:
    """NaN as None: a missing measurement, not a number (and JSON has no NaN)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
