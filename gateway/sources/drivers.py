"""The drivers a ``[[device]]`` can name: one ``DriverSpec`` per module, listed once here.

Adding a driver = one module declaring a ``DriverSpec`` and one entry below; its keys are then
accepted in ``[[device]]`` tables and listed in docs/config.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from gateway.sources import ble_drivers, canbms, fronius, meter, simulated, sma, sunspec, vedirect_port
from gateway.sources.registry import DriverSpec

DRIVERS: Final[Mapping[str, DriverSpec]] = {
    spec.name: spec
    for spec in (
        simulated.SPEC,
        sunspec.SPEC,
        meter.SPEC,
        fronius.SPEC,
        sma.SPEC,
        ble_drivers.VICTRON_SPEC,
        ble_drivers.MOPEKA_SPEC,
        ble_drivers.RUUVI_SPEC,
        vedirect_port.SPEC,
        canbms.SPEC,
    )
}
