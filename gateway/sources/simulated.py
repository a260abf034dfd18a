"""The ``simulated`` driver: devices of the demo installation, all sharing one physical plant.

Its devices are built together (one ``VictronSimulation``) because they are one system: the
MPPTs charge the bank the inverter/charger draws from. The installation itself lives in
gateway/sim; this module only declares the driver's keys and runs the installation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Final

from gateway.core.components import cancel_and_wait
from gateway.core.endpoints import Endpoints
from gateway.core.keys import ConfigError, Key, choice
from gateway.core.store import Store
from gateway.sim.native_links import NativeLinks, parse_via
from gateway.sim.victron import VictronSimulation
from gateway.sources.registry import DeviceConfig, DriverSpec, SourceContext
from registers.vedirect import VeDirectMap

SERVICES: Final = ("vebus", "battery", "solarcharger", "tank", "temperature", "digitalinput")
ONE_EACH: Final = ("vebus", "battery")  # the plant has one inverter/charger and one bank


class SimulatedSource:
    """Adds the devices, steps the physics every second, removes the devices at stop."""

    def __init__(self, store: Store, devices: Sequence[DeviceConfig], context: SourceContext | None = None) -> None:
        layout = [(plant_service(d), d.instance, d.name) for d in devices]
        self.links: NativeLinks | None = None
        native = [d for d in devices if d.options.get("via")]
        if native:
            vmap = context.cmap.devices.get("vedirect") if context is not None else None
            endpoints = context.endpoints if context is not None else Endpoints()
            self.links = NativeLinks(vmap if isinstance(vmap, VeDirectMap) else None, endpoints)
            for d in native:
                self.links.add(plant_service(d), d.instance, d.option("via"))
        sinks = self.links.sinks if self.links is not None else None
        self.installation = VictronSimulation(store, layout=layout, sinks=sinks)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.installation.start()
        if self.links is not None:
            await self.links.start()
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
        if self.links is not None:
            await self.links.stop()


def plant_service(device: DeviceConfig) -> str:
    return str(device.option("service"))


def service_of(device: DeviceConfig) -> str:
    """What it is served as here: its service, or (``via`` a real driver) nothing of its own."""
    service = plant_service(device)
    return f"{service} via {', '.join(device.option('via'))}" if device.options.get("via") else service


def via_list(where: str, v: Any) -> tuple[str, ...]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ConfigError(f'{where}: expected a list like ["vedirect:mppt-roof"], got {v!r}')
    for x in v:
        try:
            parse_via(x)
        except ValueError as e:
            raise ConfigError(f"{where}: {e}") from None
    return tuple(v)


def one_each(devices: Sequence[DeviceConfig]) -> None:
    for service in ONE_EACH:
        same = [d for d in devices if plant_service(d) == service]
        if len(same) > 1:
            raise ConfigError(f"{same[1].where}.service: the simulator models one {service} ({same[0].where} is one)")


SPEC: Final = DriverSpec(
    name="simulated",
    doc="devices of the built-in simulated installation (one plant: at most one vebus and one battery)",
    keys=(
        Key("service", None, choice(*SERVICES), f"the service type: {', '.join(SERVICES)}", required=True),
        Key(
            "via",
            (),
            via_list,
            "reach the gateway through a real driver instead of the Store: vedirect:NAME (a pty), "
            "canbms:NAME (a CAN bus); a vedirect/canbms [[device]] with simulator = NAME reads it",
        ),
    ),
    service=service_of,
    build=SimulatedSource,
    rules=one_each,
)
