"""``[[simulator]]`` tables: protocol simulators the gateway starts itself, for the demo and tests.

A simulator listens on loopback (an ephemeral port by default) and is registered by name in
the gateway's ``Endpoints``; a ``[[device]]`` with ``simulator = "NAME"`` is then polled by its
real driver over a real socket, exactly as it would poll the hardware at ``host``/``port``.

``site = true`` makes a simulator's grid meter (SolarEdge's) measure this gateway's own
simulated site: per phase, the inverter/charger's AC input plus ``SITE_LOADS_W`` of loads
on the AC input, less the PV inverters the Store shows on AC input. So the system overview's
grid, PV-on-input and consumption figures add up as on a real installation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from gateway.core.endpoints import Endpoints
from gateway.core.keys import ConfigError, Key, boolean, check_table, choice, integer, parse_listen, positive, text
from gateway.core.store import Store
from gateway.sim.protocols.device_sims import KINDS as DEVICE_KINDS
from gateway.sim.protocols.device_sims import METER_KINDS, MeterDeviceSim, SolarApiSim
from gateway.sim.protocols.sunspec_sim import PROFILES, SunSpecSim
from registers.values import as_number


def hour(where: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 24:
        raise ConfigError(f"{where}: expected an hour 0..24, got {v!r}")
    return float(v)


SITE_LOADS_W: Final = (250.0, 120.0, 80.0)  # loads on the AC input, per phase
PHASES: Final = ("L1", "L2", "L3")

KEYS: Final = (
    Key("name", None, text, "the name a [[device]] uses: simulator = NAME", required=True),
    Key(
        "kind",
        None,
        choice(*PROFILES, *DEVICE_KINDS),
        f"which device: SunSpec {', '.join(PROFILES)}; meters {', '.join(DEVICE_KINDS[:-1])}; {DEVICE_KINDS[-1]}",
        required=True,
    ),
    Key("listen", ("127.0.0.1", 0), parse_listen, "HOST:PORT it listens on (port 0 = any free port)"),
    Key("max_power_w", None, positive, "nameplate power (default: the kind's)"),
    Key("day_s", 3600.0, positive, "seconds of a compressed day (sunrise 06:00, sunset 20:00)"),
    Key("start_hour", 10.0, hour, "the time of day it starts at (0..24)"),
    Key("serial", "SIM0001", text, "serial number (model 1 SN)"),
    Key("site", False, boolean, "its grid meter measures this gateway's simulated site (demo)"),
    Key("seed", 1, integer(0, 2**31), "random seed (noise on voltages and frequency)"),
    Key("phases", 3, integer(1, 3), "AC phases of a fronius-solar-api inverter (1: a Primo, 3: a Symo)"),
)


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    name: str
    kind: str
    listen: tuple[str, int]
    max_power_w: float | None
    day_s: float
    start_hour: float
    serial: str
    site: bool
    seed: int
    phases: int


def parse_simulators(raw: Any) -> tuple[SimulatorConfig, ...]:
    if not isinstance(raw, list):
        raise ConfigError("simulator: use [[simulator]] tables, one per simulator")
    out: list[SimulatorConfig] = []
    for i, table in enumerate(raw):
        where = f"simulator[{i}]"
        values = check_table(where, table, KEYS)
        for key in KEYS:
            if key.name not in values:
                if key.required:
                    raise ConfigError(f"{where}.{key.name}: missing ({key.doc})")
                values[key.name] = key.default
        if any(s.name == values["name"] for s in out):
            raise ConfigError(f"{where}.name: {values['name']!r} is already the name of another simulator")
        out.append(SimulatorConfig(**values))
    return tuple(out)


class Site:
    """The demo site as a grid meter sees it, from the Store (see the module doc)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def grid_w(self, _own_w: float) -> tuple[float, float, float]:
        out = []
        for i, ph in enumerate(PHASES):
            watts = SITE_LOADS_W[i]
            for d in self.store.devices("vebus"):
                watts += as_number(d.get(f"/Ac/ActiveIn/{ph}/P")) or 0.0
            for d in self.store.devices("pvinverter"):
                if as_number(d.get("/Position")) in (0.0, 2.0):
                    watts -= as_number(d.get(f"/Ac/{ph}/Power")) or 0.0
            out.append(watts)
        return out[0], out[1], out[2]


class Simulators:
    """The component: starts every simulator, registers its address, stops them."""

    def __init__(self, store: Store, configs: Sequence[SimulatorConfig], endpoints: Endpoints) -> None:
        self.endpoints = endpoints
        self.configs = configs
        site = Site(store)
        self.running: dict[str, SunSpecSim | MeterDeviceSim | SolarApiSim] = {}
        for c in configs:
            if c.kind in METER_KINDS:
                self.running[c.name] = MeterDeviceSim(c.kind, store, c.site, SITE_LOADS_W)
            elif c.kind in DEVICE_KINDS:
                self.running[c.name] = SolarApiSim(c.max_power_w or 5000.0, c.day_s, c.start_hour, phases=c.phases)
            else:
                self.running[c.name] = SunSpecSim(
                    c.kind,
                    serial=c.serial,
                    max_power_w=c.max_power_w,
                    day_s=c.day_s,
                    start_hour=c.start_hour,
                    site_w=site.grid_w if c.site else None,
                    seed=c.seed,
                )

    async def start(self) -> None:
        for c in self.configs:
            sim = self.running[c.name]
            await sim.start(*c.listen)
            self.endpoints.register(c.name, sim.address)

    async def stop(self) -> None:
        for name, sim in self.running.items():
            self.endpoints.forget(name)
            await sim.stop()

    @property
    def by_name(self) -> Mapping[str, SunSpecSim | MeterDeviceSim | SolarApiSim]:
        return self.running
