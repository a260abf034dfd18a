"""Device drivers: the registry (``DRIVERS``) and one module per driver.

Adding a driver = one module declaring a ``DriverSpec`` and one line below; its keys are then
accepted in ``[[device]]`` tables and listed in docs/config.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from gateway.sources import fronius, meter, simulated, sma, sunspec
from gateway.sources.registry import (
    COMMON_KEYS,
    DeviceConfig,
    DriverSpec,
    SourceContext,
    build_sources,
    common,
    parse_devices,
)

DRIVERS: Final[Mapping[str, DriverSpec]] = {
    spec.name: spec for spec in (simulated.SPEC, sunspec.SPEC, meter.SPEC, fronius.SPEC, sma.SPEC)
}

__all__ = [
    "COMMON_KEYS",
    "DRIVERS",
    "DeviceConfig",
    "DriverSpec",
    "SourceContext",
    "build_sources",
    "common",
    "parse_devices",
]
