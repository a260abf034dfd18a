"""What the gateway runs: components started in order and stopped in reverse, on one stack.

A component is anything with ``async start()`` and ``async stop()``: the settings, the system
service, one per device driver, each frontend. ``start_all`` puts each one's ``stop`` on an
``AsyncExitStack`` as soon as its ``start`` returned, so closing the stack stops exactly what
started, last first, and a start that fails unwinds what came before it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any, Protocol


class StartupError(Exception):
    """An expected start-up failure, reported as one line (no traceback)."""


class Component(Protocol):
    async def start(self) -> None:
        """Start, or raise (StartupError for an expected failure) having cleaned up after itself."""

    async def stop(self) -> None:
        """Stop what ``start`` started; called once, only after ``start`` returned."""


async def start_all(components: Iterable[Component]) -> contextlib.AsyncExitStack:
    """Start each in order; the returned stack stops them in reverse. On a failure, stop the started."""
    stack = contextlib.AsyncExitStack()
    try:
        for component in components:
            await component.start()
            stack.push_async_callback(component.stop)
    except BaseException:
        await stack.aclose()
        raise
    return stack


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` and wait until it has ended: the stop of every component that runs one.

    Only the task's own CancelledError is swallowed. If the caller is cancelled while it waits
    (a stop under ``asyncio.timeout``), that cancel propagates instead of vanishing.
    """
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
