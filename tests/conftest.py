"""Fixtures shared by the protocol and interop tests (defined in tests/modbus_rig.py).

Every async test runs twice: on asyncio's own event loop and on uvloop, which the gateway
uses in production (their transports differ).
"""

import asyncio
from collections.abc import Callable, Mapping

import pytest
import uvloop

from tests.modbus_rig import cmap, make_rig, rig
from tests.watchdog import recording, soft_deadline

__all__ = ["cmap", "make_rig", "rig", "soft_deadline"]


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    return {"asyncio": recording(asyncio.new_event_loop), "uvloop": recording(uvloop.new_event_loop)}
