"""The physics of the demo installation: sun, AC loads, an ESS inverter/charger, a LiFePO4 bank.

Time is simulated seconds since midnight of day 0. Each step is cut into sub-steps of at most
``MAX_SUBSTEP_S``; every sub-step solves one energy balance and keeps it exact:

    battery_w = pv_w (MPPT DC output, summed) + inverter_dc_w
    ac_in_w   = loads_w + inverter_ac_w                (0 while the AC input is disconnected)

Signs: ``inverter_ac_w`` flows from the AC side into the inverter/charger and
``inverter_dc_w`` from it into the DC bus, both positive while charging; ``ac_in_w`` is drawn
from the grid (negative = feed-in); ``battery_w`` is positive while charging. The
inverter/charger converts with ``EFFICIENCY`` each way and draws ``IDLE_W`` while on.

Modes (vebus /Mode): 3 on = ESS: AC-in is held at the setpoint and the battery takes the
balance; at the minimum SOC it stops discharging (the grid carries the loads), when full it
stops charging (the excess is fed in, or the MPPTs are curtailed when feed-in is disabled).
1 charger only: the grid carries the loads and charges. 2 inverter only: AC-in disconnected,
loads from the battery down to ``LOW_SOC`` (then it shuts down until ``RESTART_SOC``).
4 off: nothing on AC out. The battery: V = OCV(SOC) + I*R, P = V*I, SOC integrates I.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

DAY_S: Final = 86400.0
MAX_SUBSTEP_S: Final = 60.0
EFFICIENCY: Final = 0.94  # inverter/charger, each way
IDLE_W: Final = 20.0  # its own consumption while on, from the DC side
INVERTER_MAX_W: Final = 4000.0  # MultiPlus-II 48/5000: 4000 W continuous
CHARGER_MAX_W: Final = 3000.0  # AC power it draws at most to charge
GRID_V: Final = 230.0
GRID_HZ: Final = 50.0
CAPACITY_AH: Final = 280.0
R_OHM: Final = 0.012  # bank + cabling internal resistance
BMS_MAX_A: Final = 200.0
LOW_SOC: Final = 5.0  # inverter only: low-battery shutdown ...
RESTART_SOC: Final = 10.0  # ... until the bank is back to this
SUNRISE_H: Final = 6.0
SUNSET_H: Final = 20.0
EPS: Final = 1e-9
# Open-circuit voltage of a 16-cell LiFePO4 bank (SOC %, V): flat in the middle, steep at the ends.
OCV_TABLE: Final = ((0.0, 44.8), (5.0, 50.4), (10.0, 51.2), (30.0, 52.2), (60.0, 52.8), (90.0, 53.3), (99.0, 54.0))
OCV_FULL: Final = (100.0, 55.2)
# Appliance events on AC out: (W, simulated seconds): kettle, microwave, oven, washing machine, TV.
APPLIANCES: Final = ((2000.0, 180.0), (1100.0, 300.0), (1800.0, 1800.0), (600.0, 2700.0), (150.0, 3600.0))


@dataclass
class Controls:
    """What the user, the settings and the EMS ask for (read before every step)."""

    mode: int = 3  # vebus /Mode: 1 charger only, 2 inverter only, 3 on (ESS), 4 off
    setpoint_w: float = 50.0  # ESS: the AC-in (grid) power to hold
    min_soc: float = 20.0  # ESS: no discharge at or below
    disable_charge: bool = False  # ESS: /Hub4/DisableCharge
    disable_feed_in: bool = False  # ESS: /Hub4/DisableFeedIn
    current_limit_a: float = 32.0  # AC-in current limit: caps what charging may draw
    mppt_on: dict[int, bool] = field(default_factory=dict)  # solar charger /Mode per instance
    pv_out_w: float = 0.0  # AC-coupled PV on AC out: it feeds the loads there first, the rest flows back


@dataclass(frozen=True)
class Flows:
    """One sub-step's result. ``soc`` is after it; V and I are during it."""

    pv_available_w: float
    pv_w: Mapping[int, float]  # per solar charger instance, DC output
    curtailed: bool
    demand_w: float  # what the AC loads want
    loads_w: float  # what AC out delivers (0 while off)
    ac_in_w: float
    ac_in_connected: bool
    inverter_on: bool
    inverter_ac_w: float
    inverter_dc_w: float
    battery_w: float
    battery_v: float
    battery_a: float
    soc: float
    floor_soc: float  # the SOC below which the battery is not discharged now


def ocv(soc: float) -> float:
    s = min(max(soc, 0.0), 100.0)
    points = (*OCV_TABLE, OCV_FULL)
    k = max(1, min(len(points) - 1, bisect.bisect_right([p[0] for p in points], s)))
    (s0, v0), (s1, v1) = points[k - 1], points[k]
    return v0 + (v1 - v0) * (s - s0) / (s1 - s0)


def to_dc(ac_w: float, idle_w: float) -> float:
    """DC power into the bus for AC power ``ac_w`` into the inverter/charger."""
    return (ac_w * EFFICIENCY if ac_w >= 0 else ac_w / EFFICIENCY) - idle_w


def to_ac(dc_w: float, idle_w: float) -> float:
    """The inverse of ``to_dc``."""
    d = dc_w + idle_w
    return d / EFFICIENCY if d >= 0 else d * EFFICIENCY


class Plant:
    """The physical installation; ``advance`` moves it on and returns the last sub-step."""

    def __init__(
        self,
        mppt_peaks_w: Mapping[int, float],
        *,
        has_inverter: bool = True,
        soc: float = 65.0,
        hour: float = 10.0,
        seed: int | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.peaks = dict(mppt_peaks_w)
        self.has_inverter = has_inverter
        self.capacity_ah = CAPACITY_AH
        self.soc = soc
        self.clock_s = hour * 3600.0
        self.clouds = 0.1  # fraction of the sun blocked
        self.demand_w = 0.0
        self.shutdown = False  # inverter only: low-battery shutdown
        self.battery_temp_c = self.ambient_c()
        self._appliance_w = 0.0
        self._appliance_until = 0.0
        self._update_loads(0.0)
        self.flows = self.solve(0.0, Controls())

    @property
    def hour(self) -> float:
        return (self.clock_s % DAY_S) / 3600.0

    def clear_sky(self) -> float:
        """0..1: a bell between sunrise and sunset, 0 at night."""
        if not SUNRISE_H < self.hour < SUNSET_H:
            return 0.0
        return float(math.sin(math.pi * (self.hour - SUNRISE_H) / (SUNSET_H - SUNRISE_H)) ** 1.5)

    def irradiance(self) -> float:
        return self.clear_sky() * (1.0 - self.clouds)

    def ambient_c(self) -> float:
        return 20.0 + 4.0 * math.sin(2 * math.pi * (self.hour - 9.0) / 24.0)  # warmest at 15:00

    # --- time ------------------------------------------------------------------------------
    def advance(self, dt_s: float, c: Controls) -> Flows:
        """Move ``dt_s`` simulated seconds on (0 = re-solve now, e.g. after a write)."""
        n = max(1, math.ceil(dt_s / MAX_SUBSTEP_S)) if dt_s > 0 else 0
        if n == 0:
            self._update_shutdown(c)
            self.flows = self.solve(0.0, c)
        for _ in range(n):
            h = dt_s / n
            self._update_weather(h)
            self._update_loads(h)
            self._update_shutdown(c)
            self.flows = self.solve(h, c)
            self.soc = self.flows.soc
            target = self.ambient_c() + 0.02 * abs(self.flows.battery_a)
            self.battery_temp_c += (target - self.battery_temp_c) * (1 - math.exp(-h / 3600))
            self.clock_s += h
        return self.flows

    def _update_weather(self, h: float) -> None:
        a = math.exp(-h / 1800)
        noise = self.rng.gauss(0.0, 0.08 * math.sqrt(1 - a * a))
        self.clouds = min(0.7, max(0.0, a * self.clouds + (1 - a) * 0.15 + noise))

    def _update_loads(self, h: float) -> None:
        hour = self.hour
        base = 180.0 + (250.0 if 18 <= hour < 23 else 0.0) + (150.0 if 7 <= hour < 9 else 0.0)
        fridge = 90.0 if (self.clock_s // 1200) % 2 == 0 else 0.0  # compressor: 20 min on, 20 off
        if self.clock_s >= self._appliance_until:
            self._appliance_w = 0.0
            if h > 0 and 7 <= hour < 23 and self.rng.random() < 1 - math.exp(-h / 2400):
                self._appliance_w, duration = self.rng.choice(APPLIANCES)
                self._appliance_until = self.clock_s + duration
        noise = self.rng.gauss(0.0, 8.0) if h > 0 else 0.0
        self.demand_w = max(0.0, base + fridge + self._appliance_w + noise)

    def _update_shutdown(self, c: Controls) -> None:
        if c.mode != 2:
            self.shutdown = False
        elif self.soc <= LOW_SOC + EPS:
            self.shutdown = True
        elif self.soc >= RESTART_SOC:
            self.shutdown = False

    # --- the balance -----------------------------------------------------------------------
    def solve(self, h: float, c: Controls) -> Flows:
        """The flows of one sub-step of ``h`` seconds from the current state (no side effects)."""
        mode = c.mode if self.has_inverter else 4
        avail = {i: (peak * self.irradiance() if c.mppt_on.get(i, True) else 0.0) for i, peak in self.peaks.items()}
        a = sum(avail.values())
        v0 = ocv(self.soc)
        span = max(h, 1.0) / 3600 / self.capacity_ah * 100  # SOC % per ampere over the sub-step
        ess = mode == 3
        floor = c.min_soc if ess else LOW_SOC if mode == 2 else 0.0
        full = self.soc >= 100.0 - EPS or (ess and c.disable_charge)
        i_max = 0.0 if full else min(BMS_MAX_A, (100.0 - self.soc) / span)
        i_min = -min(BMS_MAX_A, max(0.0, self.soc - floor) / span)
        p_max, p_min = (v0 + i_max * R_OHM) * i_max, (v0 + i_min * R_OHM) * i_min

        # What AC out draws from the inverter/charger: the loads less the PV on AC out (negative when
        # the PV makes more, which then charges the battery or flows back to AC in). Off, no PV.
        load = self.demand_w - (c.pv_out_w if mode in (1, 2, 3) else 0.0)
        grid_room = max(0.0, c.current_limit_a * GRID_V - load)  # what charging may add to AC-in
        idle = IDLE_W if mode in (1, 2, 3) else 0.0
        served = load
        if mode == 3:
            target = max(c.setpoint_w, 0.0) if c.disable_feed_in else c.setpoint_w
            hi = min(CHARGER_MAX_W, grid_room)
            lo = min(hi, target - load if c.disable_feed_in else -INVERTER_MAX_W)
            conv = min(hi, max(lo, target - load))
        elif mode == 1:
            lo = 0.0
            hi = conv = min(CHARGER_MAX_W, grid_room)
        elif mode == 2:
            if self.shutdown:
                served = idle = 0.0
            served = min(served, INVERTER_MAX_W)
            lo = hi = conv = -served
        else:
            served = lo = hi = conv = 0.0

        dc = to_dc(conv, idle)
        pv = a
        if pv + dc > p_max:  # too much for the battery: more to AC first, then curtail the MPPTs
            conv = max(lo, to_ac(p_max - pv, idle))
            dc = to_dc(conv, idle)
            pv = min(a, max(0.0, p_max - dc))
            if pv + dc > p_max:  # no PV left and the charger alone overfills: it gives way
                conv = to_ac(p_max - pv, idle)
                dc = to_dc(conv, idle)
        elif pv + dc < p_min:  # discharging past the floor: the grid takes over, or loads are shed
            conv = to_ac(p_min - pv, idle)
            if mode == 2:
                conv = min(0.0, conv)
                served = -conv
            else:
                conv = min(hi, conv)
            dc = to_dc(conv, idle)

        battery = pv + dc
        amps = 2 * battery / (v0 + math.sqrt(max(0.0, v0 * v0 + 4 * R_OHM * battery)))
        soc = self.soc + amps * (h / 3600 / self.capacity_ah * 100)
        if abs(soc - floor) < 1e-7 or abs(soc - 100.0) < 1e-7:
            soc = round(soc, 6)  # land exactly on the limit the sub-step was cut to
        scale = pv / a if a > 0 else 0.0
        connected = mode in (1, 3)
        return Flows(
            pv_available_w=a,
            pv_w={i: p * scale for i, p in avail.items()},
            curtailed=pv < a - EPS,
            demand_w=load,
            loads_w=served,
            ac_in_w=served + conv if connected else 0.0,
            ac_in_connected=connected,
            inverter_on=mode in (1, 2, 3) and not (mode == 2 and self.shutdown),
            inverter_ac_w=conv,
            inverter_dc_w=dc,
            battery_w=battery,
            battery_v=v0 + amps * R_OHM,
            battery_a=amps,
            soc=min(100.0, max(0.0, soc)),
            floor_soc=floor,
        )
