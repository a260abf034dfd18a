"""``[[simulator]]`` kinds beyond SunSpec: the meters of mappings/devices (``kind = "em24"``
...) and a Fronius datamanager's Solar API (``kind = "fronius-solar-api"``).

A meter simulator with ``site = true`` measures the gateway's simulated site (the
inverter/charger's AC input plus loads on the AC input, less PV on the input), refreshed every
half second, so the system overview's grid and consumption add up as on a real installation;
without it, it serves its model's first sample dump. The Solar API simulator follows a
compressed day (``day_s``, from ``start_hour``): PAC on a sine between 06:00 and 20:00, the
night answers (no PAC/IAC/UAC, "starting up") outside.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Protocol

from gateway.core.components import cancel_and_wait
from gateway.core.store import Store
from gateway.sim.protocols.meter_sim import MeterSimulator, site_grid_values
from registers import load_default
from registers.meters import meter_models

if TYPE_CHECKING:  # imported by SolarApiSim: aiohttp's web server, for that simulator only
    from gateway.sim.protocols.fronius_sim import FroniusSimulator

METER_KINDS: Final = ("em24", "em540", "et340", "sdm630", "abb-b21", "abb-b23", "sma-native")
SOLAR_API: Final = "fronius-solar-api"
KINDS: Final = (*METER_KINDS, SOLAR_API)
SUNRISE_H, SUNSET_H = 6.0, 20.0
SITE_COUNTERS: Final = {
    "/Ac/Energy/Forward": 1234.5,
    "/Ac/Energy/Reverse": 210.8,
    "/Ac/L1/Energy/Forward": 412.3,
    "/Ac/L2/Energy/Forward": 401.7,
    "/Ac/L3/Energy/Forward": 420.5,
}


class _Server(Protocol):
    host: str
    port: int

    async def start(self, host: str = ..., port: int = ...) -> None: ...
    async def stop(self) -> None: ...


class _Ticking:
    """A protocol simulator (``sim``) that runs ``tick`` every ``period_s`` while started."""

    period_s = 0.5
    sim: _Server

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        await self.sim.start(host, port)
        self.start_ticking()

    async def stop(self) -> None:
        await self.stop_ticking()
        await self.sim.stop()

    @property
    def address(self) -> tuple[str, int]:
        return self.sim.host, self.sim.port

    def tick(self) -> None:
        raise NotImplementedError

    async def _run(self) -> None:
        while True:
            self.tick()
            await asyncio.sleep(self.period_s)

    def start_ticking(self) -> None:
        self.tick()
        self._task = asyncio.create_task(self._run())

    async def stop_ticking(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None


class MeterDeviceSim(_Ticking):
    sim: MeterSimulator

    def __init__(self, kind: str, store: Store, site: bool, loads_w: tuple[float, float, float]) -> None:
        super().__init__()
        model = meter_models(load_default(defer_n2k=True))[kind]
        self.sim = MeterSimulator(model, unit=3 if kind == "sma-native" else 1)
        self.store, self.site, self.loads_w = store, site, loads_w
        if site:  # a meter installed this year: its counters fit the GX's 16-bit per-phase registers too
            self.sim.set({p: v for p, v in SITE_COUNTERS.items() if any(f.path == p for f in model.fields)})

    def tick(self) -> None:
        if self.site:
            self.sim.set(site_grid_values(self.store, self.loads_w))


class SolarApiSim(_Ticking):
    sim: FroniusSimulator

    def __init__(
        self,
        max_power_w: float,
        day_s: float,
        start_hour: float,
        clock: Callable[[], float] = time.monotonic,
        phases: int = 3,
    ) -> None:
        from gateway.sim.protocols.fronius_sim import FroniusSimulator, InverterState

        super().__init__()
        self.sim = FroniusSimulator(state=InverterState(phases=phases))
        self.max_w, self.day_s, self.start_hour, self.clock = max_power_w, day_s, start_hour, clock
        self.t0 = clock()

    def hour(self) -> float:
        return (self.start_hour + 24.0 * (self.clock() - self.t0) / self.day_s) % 24.0

    def tick(self) -> None:
        h = self.hour()
        s = self.sim.state
        s.night = not SUNRISE_H <= h < SUNSET_H
        if not s.night:
            s.pac_w = round(self.max_w * math.sin(math.pi * (h - SUNRISE_H) / (SUNSET_H - SUNRISE_H)), 1)
            s.total_wh += s.pac_w * self.period_s * 24.0 * 3600.0 / self.day_s / 3600.0
