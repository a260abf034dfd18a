"""What the gateway runs: components with ``async start()`` and ``async stop()``.

Device drivers build one (gateway/sources); the gateway starts them in order and stops them
in reverse.
"""

from __future__ import annotations

from typing import Protocol


class StartupError(Exception):
    """An expected start-up failure, reported as one line (no traceback)."""


class Component(Protocol):
    async def start(self) -> None:
        """Start, or raise (StartupError for an expected failure) having cleaned up after itself."""

    async def stop(self) -> None:
        """Stop what ``start`` started; called once, only after ``start`` returned."""
