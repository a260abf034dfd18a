"""What every replayed recording (candump logs, BLE advertisements) shares: its unplug file.

While ``PATH.unplug`` exists next to a replayed ``PATH``, the replay keeps its pace but delivers
nothing, as a pulled cable or sensors out of range; ``rm`` it and what follows comes through
again. The demo prints the ``touch`` command for each of its replays.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

CONTROL_CHECK_S: Final = 0.25  # how often a replay looks for its file: a stat, not one per frame


def unplug_file(path: Path) -> Path:
    """The control file of a replay of ``path``."""
    return path.with_name(path.name + ".unplug")


class Pulled:
    """Whether a replay's control file exists, looked at no more than every CONTROL_CHECK_S."""

    def __init__(self, control: Path, clock: Callable[[], float] = time.monotonic) -> None:
        self.control, self.clock = control, clock
        self._next = 0.0
        self._pulled = False

    def __call__(self) -> bool:
        now = self.clock()
        if now >= self._next:
            self._next = now + CONTROL_CHECK_S
            self._pulled = self.control.exists()
        return self._pulled
