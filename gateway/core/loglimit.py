"""Log rate limiting: a flood of bad clients writes a bounded amount of log per minute.

Two tools, one rule ("the first few, then a count"):

- ``Throttle``: for code that knows its causes (the Modbus connection policy). One line per
  cause per window; the repeats are counted and summarised as ``... 532 more in the last
  60 s`` when the window ends (``flush``, called from a periodic task) or with the next line.
- ``RepeatFilter``: a ``logging.Filter`` for everything else, installed on the handlers at
  start (``install``). Records are keyed by logger and message template (not the arguments,
  which carry the peer address), so 1000 "peer X: malformed header" lines are one key.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Final

WINDOW_S: Final = 60.0
BURST: Final = 5  # lines of one kind let through per window by RepeatFilter

Clock = Callable[[], float]


class Throttle:
    """At most one line per key per window on ``logger``; repeats counted, then summarised."""

    def __init__(self, logger: logging.Logger, window_s: float = WINDOW_S, clock: Clock = time.monotonic) -> None:
        self.logger = logger
        self.window_s = window_s
        self.clock = clock
        self._until: dict[str, float] = {}  # key -> end of its window
        self._level: dict[str, int] = {}
        self.suppressed: Counter[str] = Counter()

    def log(self, key: str, level: int, msg: str, *args: object) -> None:
        now = self.clock()
        if now < self._until.get(key, 0.0):
            self.suppressed[key] += 1
            return
        more = self.suppressed.pop(key, 0)
        if more:
            msg += f" (... {more} more in the last {self.window_s:g} s)"
        self.logger.log(level, msg, *args)
        self._until[key] = now + self.window_s
        self._level[key] = level

    def flush(self) -> None:
        """Summarise the keys whose window has ended with repeats still untold."""
        now = self.clock()
        for key in [k for k, n in self.suppressed.items() if n and now >= self._until.get(k, 0.0)]:
            more = self.suppressed.pop(key)
            self.logger.log(
                self._level.get(key, logging.INFO), "%s: ... %d more in the last %g s", key, more, self.window_s
            )
            self._until.pop(key, None)


class RepeatFilter(logging.Filter):
    """Lets ``burst`` records of one kind through per window; the next one that passes after
    the window carries the count of those dropped."""

    def __init__(self, window_s: float = WINDOW_S, burst: int = BURST, clock: Clock = time.monotonic) -> None:
        super().__init__()
        self.window_s = window_s
        self.burst = burst
        self.clock = clock
        self._windows: dict[tuple[str, object], tuple[float, int]] = {}  # key -> (window start, seen)
        self.dropped: Counter[tuple[str, object]] = Counter()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.CRITICAL or getattr(record, "no_limit", False):
            return True
        key = (record.name, record.msg)
        now = self.clock()
        start, seen = self._windows.get(key, (now, 0))
        if now - start >= self.window_s:
            start, seen = now, 0
        seen += 1
        self._windows[key] = (start, seen)
        if seen > self.burst:
            self.dropped[key] += 1
            return False
        more = self.dropped.pop(key, 0)
        if more:
            record.msg = f"{record.msg} (... {more} more in the last {self.window_s:g} s)"
        if len(self._windows) > 4096:  # many distinct templates: forget the oldest windows
            for old in sorted(self._windows, key=lambda k: self._windows[k][0])[:2048]:
                del self._windows[old]
        return True


def install(root: logging.Logger | None = None, window_s: float = WINDOW_S, burst: int = BURST) -> RepeatFilter:
    """Put one RepeatFilter on every handler of ``root`` (the root logger by default)."""
    target = root if root is not None else logging.getLogger()
    flt = RepeatFilter(window_s, burst)
    for handler in target.handlers:
        handler.addFilter(flt)
    return flt
