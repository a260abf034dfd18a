"""What a driver knows about one device's health: probing, online, offline, and the last error.

Kept per device by the poller, for logs now and for a status page and metrics later
(``DeviceState.as_dict``). The rule it enforces: after ``MISSES_BEFORE_OFFLINE`` polls in a
row without an answer the device is offline (its values are then invalidated by the poller).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

MISSES_BEFORE_OFFLINE: Final = 3


class Phase(enum.Enum):
    PROBING = "probing"  # not identified yet (or lost and being looked for again)
    ONLINE = "online"
    OFFLINE = "offline"


@dataclass
class DeviceState:
    """One device's state; ``changed`` (wall clock) says since when it is in ``phase``."""

    name: str  # e.g. "sunspec 192.168.1.50:502 unit 126"
    phase: Phase = Phase.PROBING
    last_error: str | None = None
    missed: int = 0  # polls in a row without an answer
    polls: int = 0
    failures: int = 0
    changed: float = field(default_factory=time.time)
    clock: Callable[[], float] = time.time

    def answered(self) -> bool:
        """A poll (or probe) succeeded; True when the device just came (back) online."""
        self.polls += 1
        self.missed = 0
        return self._enter(Phase.ONLINE)

    def missed_poll(self, error: str) -> bool:
        """A poll failed; True when this miss makes the device offline."""
        self.failures += 1
        self.missed += 1
        self.last_error = error
        if self.missed >= MISSES_BEFORE_OFFLINE:
            return self._enter(Phase.OFFLINE)
        return False

    def probing(self) -> None:
        if self.phase is not Phase.OFFLINE:
            self._enter(Phase.PROBING)

    def _enter(self, phase: Phase) -> bool:
        if self.phase is phase:
            return False
        self.phase = phase
        self.changed = self.clock()
        return True

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "state": self.phase.value,
            "since": self.changed,
            "last_error": self.last_error,
            "missed": self.missed,
            "polls": self.polls,
            "failures": self.failures,
        }
