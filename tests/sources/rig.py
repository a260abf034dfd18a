"""A SunSpec rig: simulators on loopback and the real sunspec driver polling them into a Store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from gateway.core.store import Store
from gateway.sim.protocols.sunspec_sim import SunSpecSim
from gateway.sources.registry import DeviceConfig, SourceContext
from gateway.sources.sunspec import SunSpecSource
from registers import load_default

CMAP = load_default()
POLL_S = 0.2


def device(index: int, instance: int, port: int, unit: int, **options: Any) -> DeviceConfig:
    opts = {
        "host": "127.0.0.1",
        "port": port,
        "unit": unit,
        "role": "pvinverter",
        "position": "ac-in-1",
        "poll_interval_s": POLL_S,
        "meter": 1,
        "limit_revert_s": 120.0,
        "simulator": None,
    }
    opts.update(options)
    return DeviceConfig(index, "sunspec", instance, options.pop("name", None), opts)


@asynccontextmanager
async def polled(store: Store, *devices: DeviceConfig) -> AsyncIterator[SunSpecSource]:
    source = SunSpecSource(store, devices, SourceContext(CMAP))
    await source.start()
    try:
        yield source
    finally:
        await source.stop()


@asynccontextmanager
async def simulator(kind: str, **options: Any) -> AsyncIterator[SunSpecSim]:
    sim = SunSpecSim(kind, seed=7, **options)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


async def until(condition: Callable[[], object], timeout: float = 5.0, what: str = "condition") -> None:
    """Wait (bounded) until ``condition()`` is true."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)
