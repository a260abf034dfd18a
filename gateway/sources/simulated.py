"""The ``simulated`` driver: devices of the demo installation, all sharing one physical plant.

Its devices are built together (one ``VictronSimulation``) because they are one system: the
MPPTs charge the bank the inverter/charger draws from. The installation itself lives in
gateway/sim; this module only declares the driver's keys and runs the installation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Final

from gateway.core.components import cancel_and_wait
from gateway.core.keys import ConfigError, Key, choice
from gateway.core.store import Store
from gateway.sim.victron import VictronSimulation
from gateway.sources.registry import DeviceConfig, DriverSpec, SourceContext

SERVICES: Final = ("vebus", "battery", "solarcharger", "tank", "temperature", "digitalinput")
ONE_EACH: Final = ("vebus", "battery")  # the plant has one inverter/charger and one bank


class SimulatedSource:
    """Adds the devices, steps the physics every second, removes the devices at stop."""

    def __init__(self, store: Store, devices: Sequence[DeviceConfig], context: SourceContext | None = None) -> None:
        layout = [(service_of(d), d.instance, d.name) for d in devices]
        self.installation = VictronSimulation(store, layout=layout)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.installation.start()
        self._task = asyncio.create_task(self.installation.run())

    def health(self) -> str | None:
        """None while the simulation runs (asked by /healthz), else why not."""
        if self._task is None:
            return "not started"
        if self._task.done():
            error = None if self._task.cancelled() else self._task.exception()
            return f"the simulation stopped: {error!r}" if error else "the simulation stopped"
        return None

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
        self.installation.stop()


def service_of(device: DeviceConfig) -> str:
    return str(device.option("service"))


def one_each(devices: Sequence[DeviceConfig]) -> None:
    for service in ONE_EACH:
        same = [d for d in devices if service_of(d) == service]
        if len(same) > 1:
            raise ConfigError(f"{same[1].where}.service: the simulator models one {service} ({same[0].where} is one)")


SPEC: Final = DriverSpec(
    name="simulated",
    doc="devices of the built-in simulated installation (one plant: at most one vebus and one battery)",
    keys=(Key("service", None, choice(*SERVICES), f"the service type: {', '.join(SERVICES)}", required=True),),
    service=service_of,
    build=SimulatedSource,
    rules=one_each,
)
