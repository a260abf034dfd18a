"""The simulated Victron side of the demo: in-process stand-ins for a GX's D-Bus services.

A MultiPlus, a battery monitor, MPPTs, tanks and temperatures, laid out like a Cerbo GX,
all driven by one plant (``plant.py``). They stand for what a real GX reads over VE.Bus,
VE.Direct and CAN inside the box, so they own their Store devices directly rather than
speak a network protocol (the network-device simulators live in ``gateway/sim/protocols``).

The simulation owns every device it adds, so writes reach ``write`` after the write gate
has validated them against the map: it applies them all or none (a path the device does
not implement refuses the whole write), publishes them before returning, and re-solves the
physics at once (no time passes), so a read right after a write sees its effect (e.g.
/Mode 4: AC out 0 W, /State 0).

The MultiPlus holds its AC input at its vebus /Hub4/L1/AcPowerSetpoint, as a real one in ESS
does: whoever writes it (the gateway's ESS loop, gateway/control/ess.py, in Hub4Mode 1/2; an
EMS in mode 3) steers it. It follows a new setpoint with a ramp of ``RAMP_W_PER_S`` (real
seconds), not at once. PV inverters the Store shows on AC out (/Position 1) feed its output: its
AC out is the loads less their power, and what they make beyond that charges the battery or flows
back to AC in, as on a real installation. The fresh-water tanks fill while system relay ``PUMP_RELAY`` is closed
(a pump the control room's tank-pump function drives). The minimum SOC (/Settings/CGwacs/BatteryLife/MinimumSocLimit,
default 20 %) is read from ``("settings", 0)`` before every step.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from gateway.core.store import Device, Store, WriteRejected
from gateway.sim.plant import Controls, Flows, Plant
from gateway.sim.victron_devices import (
    Battery,
    BilgeAlarm,
    SimDevice,
    SolarCharger,
    Tank,
    Temperature,
    Values,
    Vebus,
)
from registers.values import Scalar, as_number

START_HOUR: Final = 10.0  # start in the sun
START_SOC: Final = 55.0
PUMP_RELAY: Final = 1  # the fresh-water tank's fill pump hangs on this relay (the demo's tank-pump relay)
RAMP_W_PER_S: Final = 1000.0  # how fast the MultiPlus moves its AC input to a new setpoint
# (service type, instance, custom name): unit ids per unit_ids.csv: vebus 276 -> 227, battery 512 -> 225,
# MPPTs 278 -> 224 and 279 -> 226; the others are their own unit ids.
DEFAULT_LAYOUT: Final[tuple[tuple[str, int, str], ...]] = (
    ("vebus", 276, "MultiPlus-II"),
    ("battery", 512, "House bank"),
    ("solarcharger", 278, "MPPT roof"),
    ("solarcharger", 279, "MPPT bimini"),
    ("tank", 20, "Fresh water"),
    ("tank", 21, "Fuel"),
    ("temperature", 24, "Battery locker"),
    ("temperature", 25, "Engine room"),
    ("digitalinput", 30, "Bilge alarm"),
)
# The n-th device of a service type gets the n-th variant (cycling).
ARRAYS: Final = ((1500.0, 100.0, "SmartSolar MPPT 150/35"), (900.0, 70.0, "SmartSolar MPPT 100/20"))  # Wp, Vmp
TANKS: Final = ((1, 0.2, 80.0, 1.5), (0, 0.3, 60.0, 0.4))  # fluid type, m3, start %, use %/h
TEMPERATURE_TYPES: Final = (0, 2)  # battery, generic (engine room)
SERVICES: Final = ("vebus", "battery", "solarcharger", "tank", "temperature", "digitalinput")


class VictronSimulation:
    """A MultiPlus-II, a battery bank, two MPPTs, two tanks, two temperatures, a bilge alarm."""

    def __init__(
        self,
        store: Store,
        time_scale: float = 60.0,
        seed: int | None = None,
        *,
        layout: Sequence[tuple[str, int, str | None]] | None = None,
        soc: float = START_SOC,
        hour: float = START_HOUR,
        sinks: Mapping[tuple[str, int], Callable[[Values], None]] | None = None,
    ) -> None:
        """``layout``: (service type, instance, custom name or None) per device; None = DEFAULT_LAYOUT.

        ``sinks``: devices that reach the gateway through a real driver (a VE.Direct or CAN-bus
        simulator): they are not added to the Store; their values, all of them, go to the sink
        at every step instead, and the simulator of that protocol sends them.

        There is one physical plant: at most one vebus and one battery (ValueError otherwise);
        without a vebus there are no AC loads; the bank exists even when no monitor shows it.
        """
        self.store = store
        self.time_scale = time_scale
        self.sinks = dict(sinks or {})
        self._latest: dict[tuple[str, int], Values] = {}
        self.devices: dict[tuple[str, int], SimDevice] = {}
        counts: dict[str, int] = {}
        for service, instance, name in DEFAULT_LAYOUT if layout is None else layout:
            if service not in SERVICES:
                raise ValueError(f"the simulation has no {service!r} device (it has: {', '.join(SERVICES)})")
            n = counts.get(service, 0)
            if service in ("vebus", "battery") and n:
                raise ValueError(f"the simulation models one {service}; instance {instance} would be a second")
            if (service, instance) in self.devices:
                raise ValueError(f"{service} instance {instance} appears twice")
            counts[service] = n + 1
            self.devices[(service, instance)] = _make(service, instance, name or f"Simulated {service} {instance}", n)
        self.vebus = next((d for d in self.devices.values() if isinstance(d, Vebus)), None)
        mppts = [d for d in self.devices.values() if isinstance(d, SolarCharger)]
        peaks = {d.instance: ARRAYS[i % len(ARRAYS)][0] for i, d in enumerate(mppts)}
        self.plant = Plant(peaks, has_inverter=self.vebus is not None, soc=soc, hour=hour, seed=seed)
        self.controls = Controls()
        self.ramped_w: float | None = None  # the AC-input setpoint reached so far

    @property
    def flows(self) -> Flows:
        return self.plant.flows

    # --- life cycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Add every device (owned by this installation) and publish its first values."""
        self._read_controls()
        self.plant.advance(0.0, self.controls)
        for d in self.devices.values():
            values = {**d.static(), **self._values(d, 0.0)}
            if d.key in self.sinks:
                self._latest[d.key] = values
                self.sinks[d.key](values)
            else:
                self.store.add_device(d.service, d.instance, owner=self, values=values)

    def stop(self) -> None:
        for key in self.devices:
            if key not in self.sinks:
                self.store.remove_device(*key)

    async def run(self, tick_s: float = 1.0) -> None:
        """Step and publish every ``tick_s`` real seconds (by the loop clock) until cancelled."""
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(tick_s)
            now = loop.time()
            self.step(now - last)
            last = now

    def step(self, dt_real_s: float) -> None:
        """Advance the physics by ``dt_real_s * time_scale`` simulated seconds and publish."""
        dt = max(0.0, dt_real_s) * self.time_scale
        self._read_controls(max(0.0, dt_real_s))
        self.plant.advance(dt, self.controls)
        for d in self.devices.values():
            values = self._values(d, dt)
            if d.key in self.sinks:
                latest = self._latest.setdefault(d.key, {})
                latest.update(values)
                self.sinks[d.key](latest)
            else:
                self.store.publish(d.service, d.instance, values)

    def _values(self, d: SimDevice, dt: float) -> Values:
        return d.update(self.plant, self.plant.flows, dt)

    def _read_controls(self, dt_real_s: float = 0.0) -> None:
        c = self.controls
        get = self.store.get
        if self.vebus is not None:
            v = self.vebus.held
            c.mode = int(_number(v["/Mode"], 3.0))
            c.disable_charge = v["/Hub4/DisableCharge"] == 1
            c.disable_feed_in = v["/Hub4/DisableFeedIn"] == 1
            c.current_limit_a = _number(v["/Ac/ActiveIn/CurrentLimit"], 32.0)
            wanted = _number(v["/Hub4/L1/AcPowerSetpoint"], 0.0)
            if self.ramped_w is None:
                self.ramped_w = wanted
            step = RAMP_W_PER_S * dt_real_s
            self.ramped_w = (
                min(wanted, self.ramped_w + step) if wanted > self.ramped_w else max(wanted, self.ramped_w - step)
            )
            c.setpoint_w = self.ramped_w
        c.min_soc = _number(get("settings", 0, "/Settings/CGwacs/BatteryLife/MinimumSocLimit"), 20.0)
        c.mppt_on = {d.instance: d.on for d in self.devices.values() if isinstance(d, SolarCharger)}
        c.pv_out_w = sum(
            as_number(d.get("/Ac/Power")) or 0.0
            for d in self.store.devices("pvinverter")
            if as_number(d.get("/Position")) == 1.0
        )
        pump = get("system", 0, f"/Relay/{PUMP_RELAY}/State") == 1
        for d in self.devices.values():
            if isinstance(d, Tank) and d.fluid == 1:
                d.pumping = pump

    # --- Owner -----------------------------------------------------------------------------
    async def write(self, device: Device, changes: Mapping[str, Scalar]) -> None:
        """Apply all changes (already validated by the write gate), publish them, re-solve now."""
        sim = self.devices.get(device.key)
        if sim is None:
            raise WriteRejected(f"{device.service} instance {device.instance} is not simulated here")
        missing = [p for p in changes if p not in sim.takes]
        if missing:
            raise WriteRejected(f"the simulated {device.service} does not implement {', '.join(missing)}")
        clean: Values = dict(changes)
        sim.apply(clean)
        self.store.publish(device.service, device.instance, clean)
        self.step(0.0)  # react at once; no simulated time passes


def _make(service: str, instance: int, name: str, n: int) -> SimDevice:
    if service == "vebus":
        return Vebus(service, instance, name)
    if service == "battery":
        return Battery(service, instance, name)
    if service == "solarcharger":
        _, mpp_v, product = ARRAYS[n % len(ARRAYS)]
        return SolarCharger(service, instance, name, product=product, mpp_v=mpp_v)
    if service == "tank":
        fluid, capacity, level, use = TANKS[n % len(TANKS)]
        return Tank(service, instance, name, fluid=fluid, capacity_m3=capacity, level=level, use_per_h=use)
    if service == "temperature":
        temperature_type = TEMPERATURE_TYPES[n % len(TEMPERATURE_TYPES)]
        return Temperature(service, instance, name, temperature_type=temperature_type)
    return BilgeAlarm(service, instance, name)


def _number(v: Scalar, default: float) -> float:
    n = as_number(v)
    return default if n is None else n
