"""The embedded demo installation: simulated devices in the Store, laid out like a Cerbo GX.

The installation owns every device it adds, so writes from any frontend reach ``write``: they
are validated (a path the device takes, a value in its enum or range), applied all or none,
published before ``write`` returns, and the physics is re-solved at once (no time passes), so
a read right after a write sees its effect (e.g. /Mode 4: AC out 0 W, /State 0).

Settings are read from ``("settings", 0)`` before every step: the ESS grid setpoint
(/Settings/CGwacs/AcPowerSetPoint, default 50 W), the minimum SOC (.../BatteryLife/
MinimumSocLimit, default 20 %), and /Settings/CGwacs/Hub4Mode: 3 (external control) makes
the vebus /Hub4/L1/AcPowerSetpoint the setpoint; otherwise the installation writes the
setpoint it regulates to into that path, as the GX's hub4control does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Final

from gateway.sim.devices import (
    Battery,
    BilgeAlarm,
    Rule,
    SimDevice,
    SolarCharger,
    Tank,
    Temperature,
    Values,
    Vebus,
)
from gateway.sim.physics import Controls, Flows, Plant
from gateway.store import Device, Store, WriteRejected
from registers.values import Scalar, as_number

START_HOUR: Final = 10.0  # start in the sun
START_SOC: Final = 55.0
# (kind, instance, custom name): unit ids per unit_ids.csv: vebus 276 -> 227, battery 512 -> 225,
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
# The n-th device of a kind gets the n-th variant (cycling).
ARRAYS: Final = ((1500.0, 100.0, "SmartSolar MPPT 150/35"), (900.0, 70.0, "SmartSolar MPPT 100/20"))  # Wp, Vmp
TANKS: Final = ((1, 0.2, 80.0, 1.5), (0, 0.3, 60.0, 0.4))  # fluid type, m3, start %, use %/h
TEMPERATURE_KINDS: Final = (0, 2)  # battery, generic (engine room)
KINDS: Final = ("vebus", "battery", "solarcharger", "tank", "temperature", "digitalinput")


class DemoInstallation:
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
    ) -> None:
        """``layout``: (kind, instance, custom name or None) per device; None = DEFAULT_LAYOUT.

        There is one physical plant: at most one vebus and one battery (ValueError otherwise);
        without a vebus there are no AC loads; the bank exists even when no monitor shows it.
        """
        self.store = store
        self.time_scale = time_scale
        self.devices: dict[tuple[str, int], SimDevice] = {}
        counts: dict[str, int] = {}
        for kind, instance, name in DEFAULT_LAYOUT if layout is None else layout:
            if kind not in KINDS:
                raise ValueError(f"the demo installation has no device kind {kind!r} (kinds: {', '.join(KINDS)})")
            n = counts.get(kind, 0)
            if kind in ("vebus", "battery") and n:
                raise ValueError(f"the demo installation models one {kind}; instance {instance} would be a second")
            if (kind, instance) in self.devices:
                raise ValueError(f"{kind} instance {instance} appears twice")
            counts[kind] = n + 1
            self.devices[(kind, instance)] = _make(kind, instance, name or f"Simulated {kind} {instance}", n)
        self.vebus = next((d for d in self.devices.values() if isinstance(d, Vebus)), None)
        mppts = [d for d in self.devices.values() if isinstance(d, SolarCharger)]
        peaks = {d.instance: ARRAYS[i % len(ARRAYS)][0] for i, d in enumerate(mppts)}
        self.plant = Plant(peaks, has_inverter=self.vebus is not None, soc=soc, hour=hour, seed=seed)
        self.controls = Controls()

    @property
    def flows(self) -> Flows:
        return self.plant.flows

    # --- life cycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Add every device (owned by this installation) and publish its first values."""
        self._read_controls()
        self.plant.advance(0.0, self.controls)
        for d in self.devices.values():
            self.store.add_device(d.service, d.instance, owner=self, values={**d.static(), **self._values(d, 0.0)})

    def stop(self) -> None:
        for service, instance in self.devices:
            self.store.remove_device(service, instance)

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
        self._read_controls()
        self.plant.advance(dt, self.controls)
        for d in self.devices.values():
            self.store.publish(d.service, d.instance, self._values(d, dt))

    def _values(self, d: SimDevice, dt: float) -> Values:
        return d.update(self.plant, self.plant.flows, dt)

    def _read_controls(self) -> None:
        c = self.controls
        get = self.store.get
        external = _number(get("settings", 0, "/Settings/CGwacs/Hub4Mode"), 1.0) == 3
        if self.vebus is not None:
            v = self.vebus.settings
            c.mode = int(_number(v["/Mode"], 3.0))
            c.disable_charge = v["/Hub4/DisableCharge"] == 1
            c.disable_feed_in = v["/Hub4/DisableFeedIn"] == 1
            c.current_limit_a = _number(v["/Ac/ActiveIn/CurrentLimit"], 32.0)
            if external:
                c.setpoint_w = _number(v["/Hub4/L1/AcPowerSetpoint"], 0.0)
            else:
                c.setpoint_w = _number(get("settings", 0, "/Settings/CGwacs/AcPowerSetPoint"), 50.0)
                v["/Hub4/L1/AcPowerSetpoint"] = round(c.setpoint_w)
        c.min_soc = _number(get("settings", 0, "/Settings/CGwacs/BatteryLife/MinimumSocLimit"), 20.0)
        c.mppt_on = {d.instance: d.on for d in self.devices.values() if isinstance(d, SolarCharger)}

    # --- Owner -----------------------------------------------------------------------------
    async def write(self, device: Device, changes: Mapping[str, Scalar]) -> None:
        """Validate every change, then apply all, publish them, and re-solve the physics now."""
        sim = self.devices.get(device.key)
        if sim is None:
            raise WriteRejected(f"{device.service} instance {device.instance} is not simulated here")
        clean: Values = {}
        for path, value in changes.items():
            rule = sim.writable.get(path)
            if rule is None:
                raise WriteRejected(f"{path} of the simulated {device.service} is read-only")
            clean[path] = _check(path, value, rule)
        sim.apply(clean)
        self.store.publish(device.service, device.instance, clean)
        self.step(0.0)  # react at once; no simulated time passes


def _make(kind: str, instance: int, name: str, n: int) -> SimDevice:
    if kind == "vebus":
        return Vebus(kind, instance, name)
    if kind == "battery":
        return Battery(kind, instance, name)
    if kind == "solarcharger":
        _, mpp_v, product = ARRAYS[n % len(ARRAYS)]
        return SolarCharger(kind, instance, name, product=product, mpp_v=mpp_v)
    if kind == "tank":
        fluid, capacity, level, use = TANKS[n % len(TANKS)]
        return Tank(kind, instance, name, fluid=fluid, capacity_m3=capacity, level=level, use_per_h=use)
    if kind == "temperature":
        return Temperature(kind, instance, name, kind=TEMPERATURE_KINDS[n % len(TEMPERATURE_KINDS)])
    return BilgeAlarm(kind, instance, name)


def _check(path: str, value: Scalar, rule: Rule) -> Scalar:
    """The value to store (enums as int), or WriteRejected saying why not."""
    if rule is str:
        if not isinstance(value, str):
            raise WriteRejected(f"{path} takes text, not {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise WriteRejected(f"{path} takes a number, not {value!r}")
    if isinstance(rule, frozenset):
        if not float(value).is_integer() or int(value) not in rule:
            raise WriteRejected(f"{path}: {value!r} is not one of {', '.join(map(str, sorted(rule)))}")
        return int(value)
    assert isinstance(rule, tuple)
    low, high = rule
    if not low <= value <= high:
        raise WriteRejected(f"{path}: {value!r} is outside {low:g}..{high:g}")
    return value


def _number(v: Scalar, default: float) -> float:
    n = as_number(v)
    return default if n is None else n
