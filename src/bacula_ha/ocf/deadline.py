"""The action's deadline: every wait and every subprocess is bounded by what is left of it."""

from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass
else:
    from .record import dataclass

# Kept back from every bound so that the agent still has time to clean up, write its
# exit reason and exit before Pacemaker's own timer fires and declares the action failed.
SAFETY_MARGIN = 0.5


@dataclass(frozen=True)
class Deadline:
    """An absolute point on the monotonic clock."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.at - time.monotonic())

    def expired(self) -> bool:
        return self.remaining() <= SAFETY_MARGIN

    def bound(self, seconds: float | None = None) -> float:
        """The smaller of `seconds` and what is left minus the safety margin (at least 0.05 s)."""
        left = self.remaining() - SAFETY_MARGIN
        if seconds is not None:
            left = min(left, seconds)
        return max(0.05, left)

    def sooner(self, seconds: float) -> Deadline:
        """A deadline `seconds` from now, or this one if it comes first."""
        return Deadline(min(self.at, time.monotonic() + seconds))
