"""Helpers for driver tests: a Store with one driver's component, and bounded waits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from gateway.core.components import Component
from gateway.core.store import Store
from gateway.sources.drivers import DRIVERS
from gateway.sources.registry import SourceContext, parse_devices
from registers import CompiledMap


def build(store: Store, cmap: CompiledMap, *tables: dict[str, Any]) -> Component:
    devices = parse_devices(list(tables), DRIVERS)
    spec = DRIVERS[devices[0].driver]
    return spec.build(store, devices, SourceContext(cmap))


async def until(check: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Wait (bounded) until ``check()`` holds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not check():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
