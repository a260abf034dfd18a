"""A stuck async test fails with the stacks of its tasks, instead of hanging the run.

pytest-timeout's signal method cannot interrupt uvloop while it sleeps in epoll (the Python
signal handler never gets to run), and its thread method only shows thread stacks and ends
the whole run. So each async test gets a soft deadline here: when it passes, the stacks of
every task on the test's loop are logged (they land in the failed test's report) and the
test's own task is cancelled, so the test fails where it was waiting and the run goes on.
pytest-timeout (thread method, ``timeout`` in pyproject.toml) stays as the hard backstop.
"""

from __future__ import annotations

import asyncio
import io
import logging
import threading
from collections.abc import Callable, Iterator

import pytest

log = logging.getLogger("tests.watchdog")

SOFT_TIMEOUT_S = 60.0  # a test's @pytest.mark.timeout(N) moves it to 0.8 N

_current: list[asyncio.AbstractEventLoop] = []  # the loop the running test was given


def recording(factory: Callable[[], asyncio.AbstractEventLoop]) -> Callable[[], asyncio.AbstractEventLoop]:
    """Wrap a loop factory so the watchdog knows the test's loop."""

    def make() -> asyncio.AbstractEventLoop:
        loop = factory()
        _current[:] = [loop]
        return loop

    return make


def _task_stacks(loop: asyncio.AbstractEventLoop) -> str:
    out = io.StringIO()
    for task in asyncio.all_tasks(loop):
        task.print_stack(limit=20, file=out)
    return out.getvalue()


def _cancel_stuck(name: str, after_s: float, loop: asyncio.AbstractEventLoop) -> None:
    """(On the test's loop.) Log every task's stack, then cancel the test's task."""
    tasks = asyncio.all_tasks(loop)
    log.error("test still running after %.0f s; its tasks:\n%s", after_s, _task_stacks(loop))
    own = [t for t in tasks if getattr(t.get_coro(), "__name__", "") == name]
    for task in own or tasks:
        task.cancel(f"stuck: still running after {after_s:.0f} s (tests/watchdog.py)")


@pytest.fixture(autouse=True)
def soft_deadline(request: pytest.FixtureRequest) -> Iterator[None]:
    if not asyncio.iscoroutinefunction(getattr(request.node, "function", None)):
        yield
        return
    _current.clear()
    name = request.node.originalname
    marker = request.node.get_closest_marker("timeout")
    soft = 0.8 * float(marker.args[0]) if marker is not None and marker.args else SOFT_TIMEOUT_S

    def fire() -> None:
        loop = _current[0] if _current else None
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(_cancel_stuck, name, soft, loop)

    timer = threading.Timer(soft, fire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
