"""Simulated Victron devices: what each publishes from the plant's flows, which paths it takes.

They stand in for the D-Bus services of a real GX (a MultiPlus on VE.Bus, a BMS, MPPTs, tank
and temperature inputs), so they live in-process and own their Store devices directly; the
simulators of devices the gateway reads over a network (SunSpec, Fronius, meters) speak
their real protocol instead (``gateway/sim/protocols``).

Every device publishes only paths of its service's register map (``mappings/modbus/<service>.csv``)
plus ``/ProductName`` and ``/Connected``. Numbers are published unrounded so sums across
devices (the system service's) stay exact; the register encoding rounds on the wire.
Which values may be written is the write gate's business (the map's enums and ranges); a
device only says which writable paths it implements (``takes``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from gateway.sim.plant import CAPACITY_AH, DAY_S, GRID_HZ, GRID_V, INVERTER_MAX_W, Flows, Plant
from registers.values import Scalar

Values = dict[str, Scalar]

# /State of a bilge alarm input (Venus digital input states: 8 ok, 9 alarm); /Alarm 0 or 2.
INPUT_OK, INPUT_ALARM = 8, 9


def charge_state(soc: float) -> int:
    """vebus_state / solarcharger_state: 3 bulk, 4 absorption, 5 float."""
    return 3 if soc < 90 else 4 if soc < 99.9 else 5


@dataclass
class SimDevice:
    """One device in the Store; subclasses add their state and paths."""

    service: str
    instance: int
    name: str
    product: str = "Simulated device"
    held: Values = field(default_factory=dict)  # written values the device keeps (and their defaults)
    takes: frozenset[str] = frozenset()  # writable paths it implements: /CustomName and what it holds

    def __post_init__(self) -> None:
        self.takes = frozenset({"/CustomName", *self.held})

    @property
    def key(self) -> tuple[str, int]:
        return (self.service, self.instance)

    def static(self) -> Values:
        return {"/CustomName": self.name, "/ProductName": self.product, "/Connected": 1, **self.held}

    def update(self, plant: Plant, f: Flows, dt: float) -> Values:
        return {}

    def apply(self, changes: Values) -> None:
        for path, value in changes.items():
            if path == "/CustomName" and isinstance(value, str):
                self.name = value
            else:
                self.held[path] = value


@dataclass
class Vebus(SimDevice):
    """MultiPlus-II 48/5000, one phase, AC-in from the grid, ESS."""

    product: str = "MultiPlus-II 48/5000/70-50"

    held: Values = field(
        default_factory=lambda: {
            "/Mode": 3,
            "/Ac/ActiveIn/CurrentLimit": 32.0,
            "/Hub4/L1/AcPowerSetpoint": 50,
            "/Hub4/DisableCharge": 0,
            "/Hub4/DisableFeedIn": 0,
        }
    )

    def update(self, plant: Plant, f: Flows, dt: float) -> Values:
        mode = self.held["/Mode"]
        v_in = GRID_V + 2.0 * math.sin(plant.clock_s / 900) if f.ac_in_connected else 0.0
        v_out = (v_in or GRID_V) if f.inverter_on else 0.0
        if not f.inverter_on:
            state = 0  # off
        elif mode == 1 or (f.battery_w > 1 and f.inverter_ac_w > 0):  # charging from AC
            state = charge_state(f.soc)
        else:
            state = 9 if f.inverter_ac_w < -1 or not f.ac_in_connected else 8  # inverting, passthru
        return {
            "/Ac/ActiveIn/ActiveInput": 0 if f.ac_in_connected else 240,
            "/Ac/ActiveIn/L1/V": v_in,
            "/Ac/ActiveIn/L1/I": f.ac_in_w / v_in if v_in else 0.0,
            "/Ac/ActiveIn/L1/F": GRID_HZ if f.ac_in_connected else None,
            "/Ac/ActiveIn/L1/P": f.ac_in_w,
            "/Ac/Out/L1/V": v_out,
            "/Ac/Out/L1/I": f.loads_w / v_out if v_out else 0.0,
            "/Ac/Out/L1/F": GRID_HZ if v_out else None,
            "/Ac/Out/L1/P": f.loads_w,
            "/Ac/Out/NominalInverterPower": INVERTER_MAX_W,
            "/Ac/NumberOfPhases": 1,
            "/Dc/0/Voltage": f.battery_v,
            "/Dc/0/Current": f.inverter_dc_w / f.battery_v,
            "/Dc/0/Temperature": plant.battery_temp_c + 3.0,
            "/Soc": f.soc,
            "/State": state,
            "/VebusError": 0,
            "/Alarms/HighTemperature": 0,
            "/Alarms/LowBattery": 2 if plant.shutdown else 0,
            "/Alarms/Overload": 1 if f.demand_w > INVERTER_MAX_W and not f.ac_in_connected else 0,
            **self.held,
        }


@dataclass
class Battery(SimDevice):
    """A 48 V 280 Ah LiFePO4 bank's monitor (CAN-bus BMS / Lynx Shunt)."""

    product: str = "Lynx Smart BMS 500"
    charged_kwh: float = 1234.5
    discharged_kwh: float = 1100.2
    deepest_ah: float = -224.0
    min_v: float | None = None
    max_v: float | None = None

    held: Values = field(default_factory=lambda: {"/Relay/0/State": 0})

    def update(self, plant: Plant, f: Flows, dt: float) -> Values:
        volts, amps = f.battery_v, f.battery_a
        energy = volts * amps * dt / 3.6e6
        if energy > 0:
            self.charged_kwh += energy
        else:
            self.discharged_kwh -= energy
        consumed = -CAPACITY_AH * (1 - f.soc / 100)
        self.deepest_ah = min(self.deepest_ah, consumed)
        self.min_v = volts if self.min_v is None else min(self.min_v, volts)
        self.max_v = volts if self.max_v is None else max(self.max_v, volts)
        to_go = None  # seconds until the discharge floor at this current; unknown while charging
        if amps < 0:
            to_go = max(0.0, f.soc - f.floor_soc) / 100 * CAPACITY_AH / -amps * 3600
        return {
            "/Dc/0/Voltage": volts,
            "/Dc/0/Current": amps,
            "/Dc/0/Power": volts * amps,
            "/Dc/0/Temperature": plant.battery_temp_c,
            "/Soc": f.soc,
            "/ConsumedAmphours": consumed,
            "/TimeToGo": to_go,
            "/Capacity": CAPACITY_AH,
            "/History/ChargedEnergy": self.charged_kwh,
            "/History/DischargedEnergy": self.discharged_kwh,
            "/History/DeepestDischarge": self.deepest_ah,
            "/History/MinimumVoltage": self.min_v,
            "/History/MaximumVoltage": self.max_v,
            **self.held,
        }


@dataclass
class SolarCharger(SimDevice):
    """A SmartSolar MPPT on its own array; /Mode 4 switches it off (0 W)."""

    product: str = "SmartSolar MPPT 150/35"
    mpp_v: float = 100.0  # array voltage at the maximum power point
    yield_kwh: float = 0.0
    today_kwh: float = 0.0
    today_max_w: float = 0.0
    day: int = 0

    held: Values = field(default_factory=lambda: {"/Mode": 1})

    @property
    def on(self) -> bool:
        return self.held["/Mode"] == 1

    def update(self, plant: Plant, f: Flows, dt: float) -> Values:
        watts = f.pv_w.get(self.instance, 0.0)
        day = int(plant.clock_s // DAY_S)
        if day != self.day:
            self.day, self.today_kwh, self.today_max_w = day, 0.0, 0.0
        self.yield_kwh += watts * dt / 3.6e6
        self.today_kwh += watts * dt / 3.6e6
        self.today_max_w = max(self.today_max_w, watts)
        sun = plant.irradiance()
        if sun <= 0:
            pv_v = 0.0
        elif not self.on or f.curtailed:
            pv_v = self.mpp_v * 1.2  # open circuit, or pushed up towards it while curtailed
        else:
            pv_v = self.mpp_v * (0.9 + 0.1 * sun)
        if watts <= 0:
            state, mpp = 0, 0  # off
        else:
            state, mpp = (5, 1) if f.curtailed else (charge_state(f.soc), 2)
        return {
            "/Pv/V": pv_v,
            "/Yield/Power": watts,
            "/Yield/User": self.yield_kwh,
            "/History/Daily/0/Yield": self.today_kwh,
            "/History/Daily/0/MaxPower": self.today_max_w,
            "/Dc/0/Voltage": f.battery_v,
            "/Dc/0/Current": watts / f.battery_v,
            "/State": state,
            "/MppOperationMode": mpp,
            "/ErrorCode": 0,
            **self.held,
        }


@dataclass
class Tank(SimDevice):
    """A tank whose level drifts: fresh water used by day, fuel by a heater at night; refilled at 10 %."""

    product: str = "GX Tank 140"
    fluid: int = 1  # tank_fluid_type: 0 fuel, 1 fresh water
    capacity_m3: float = 0.2
    level: float = 80.0
    use_per_h: float = 1.5  # % per hour while in use
    pump_l_per_min: float = 2.0  # while ``pumping`` (a fill pump on a relay)
    pumping: bool = False

    def update(self, plant: Plant, f: Flows, dt: float) -> Values:
        in_use = 7 <= plant.hour < 22 if self.fluid == 1 else not 7 <= plant.hour < 20
        if in_use and dt > 0:
            self.level -= self.use_per_h * dt / 3600 * plant.rng.uniform(0.5, 1.5)
        if self.pumping and dt > 0:
            self.level = min(100.0, self.level + self.pump_l_per_min * dt / 60 / (self.capacity_m3 * 1000) * 100)
        if self.level < 10.0:
            self.level = 100.0  # filled up
        return {
            "/FluidType": self.fluid,
            "/Capacity": self.capacity_m3,
            "/Level": self.level,
            "/Remaining": self.capacity_m3 * self.level / 100,
            "/Status": 0,
        }


@dataclass
class Temperature(SimDevice):
    """A temperature sensor: the battery compartment (type 0 battery) or the engine room (2 generic)."""

    product: str = "Temperature sensor"
    temperature_type: int = 0  # lookup temperature_temperature_type: 0 battery, 2 generic

    def update(self, plant: Plant, f: Flows, dt: float) -> Values:
        if self.temperature_type == 0:
            celsius = plant.battery_temp_c
        else:
            celsius = plant.ambient_c() + 6.0 + 2.0 * math.sin(plant.clock_s / 5400)
        return {"/Temperature": celsius, "/TemperatureType": self.temperature_type, "/Status": 0}


@dataclass
class BilgeAlarm(SimDevice):
    """A bilge alarm input (/Type 4): now and then it trips for a few minutes and counts."""

    product: str = "Digital input"
    count: int = 0
    alarm_until: float = -1.0

    def update(self, plant: Plant, f: Flows, dt: float) -> Values:
        now = plant.clock_s
        if now >= self.alarm_until and dt > 0 and plant.rng.random() < 1 - math.exp(-dt / (2 * DAY_S)):
            self.alarm_until = now + plant.rng.uniform(60, 300)  # about once every two days
            self.count += 1
        alarm = now < self.alarm_until
        return {
            "/Type": 4,
            "/State": INPUT_ALARM if alarm else INPUT_OK,
            "/Alarm": 2 if alarm else 0,
            "/Count": self.count,
        }
