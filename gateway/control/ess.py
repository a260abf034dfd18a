"""ESS (Hub4Mode 1 and 2): move the inverter/charger's AC-input setpoint so the grid meter reads
the grid setpoint, as a GX's hub4control does about once a second.

The grid setpoint is hub4 /Overrides/Setpoint while a scheduler refreshes it (2716), else
/Settings/CGwacs/AcPowerSetPoint (2700), never below -MaxFeedInPower. Each step the new AC-input
setpoint is the inverter/charger's *measured* AC input plus ``GAIN`` times the grid's error:
built on what the device does rather than on what it was told, the loop cannot wind up when
the device cannot follow (battery full, at min SOC), and a gain below one keeps it from
overshooting on a meter read a poll behind. Mode 1 regulates the sum of the phases (spread over
the inverter/charger's phases), mode 2 each phase on its own. The inverter power (AC in less AC
out: positive charging) is held between:

- discharge: the inverter's nominal power, MaxDischargePower (2704, -1 none), the BMS's
  /Info/MaxDischargeCurrent x battery voltage, and 0 at or below the minimum SOC (2901);
- charge: DVCC MaxChargeCurrent (2705, -1 none), the BMS's /Info/MaxChargeCurrent and the
  inverter/charger's own charger limit (vebus /Dc/0/MaxChargeCurrent), in watts at the battery
  voltage; with none of them known, the most it was seen to take while it could not follow its
  setpoint (``SATURATED_STEPS`` steps without progress), for ``LEARNED_S``.

While the feed-in limiter curtails PV (``pv_spare_w``), an import above the target is left to
it (it releases PV) rather than met by charging less: the battery charges at its limit and the
PV makes up the rest, and the two loops never correct the same error twice.

After each step ``absorb_w`` says how much more power the inverter/charger could take from AC
(None while the loop does not regulate): the feed-in limiter (feed_in.py) throttles PV only for
what the battery cannot take, as a GX charges before it curtails.

Mode 3 (external control) and no grid reading: it writes nothing (an EMS, and the setpoint
watchdog, own the vebus setpoints then).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Final

from gateway.control.rule import PathRef, Rule, Values
from registers.values import Scalar, as_number

GAIN: Final = 0.6
DEADBAND_W: Final = 10.0  # a smaller change is not worth a write
PHASES: Final = ("L1", "L2", "L3")
UNLIMITED: Final = 1e9
SATURATED_W: Final = 150.0  # the setpoint this far above what it takes, and no progress: at its limit
SATURATED_STEPS: Final = 3
LEARNED_S: Final = 300.0  # a learned charge ceiling is forgotten after this (it may be able to take more)


def setting(path: str) -> PathRef:
    return PathRef("settings", 0, path)


MODE = setting("/Settings/CGwacs/Hub4Mode")
SETPOINT = setting("/Settings/CGwacs/AcPowerSetPoint")
MAX_DISCHARGE = setting("/Settings/CGwacs/MaxDischargePower")
MAX_FEED_IN = setting("/Settings/CGwacs/MaxFeedInPower")
MIN_SOC = setting("/Settings/CGwacs/BatteryLife/MinimumSocLimit")
MAX_CHARGE_A = setting("/Settings/SystemSetup/MaxChargeCurrent")
OVERRIDE = PathRef("hub4", 0, "/Overrides/Setpoint")
SOC = PathRef("system", 0, "/Dc/Battery/Soc")
VOLTS = PathRef("system", 0, "/Dc/Battery/Voltage")
GRID = tuple(PathRef("system", 0, f"/Ac/Grid/{ph}/Power") for ph in PHASES)
FIXED: Final = (MODE, SETPOINT, MAX_DISCHARGE, MAX_FEED_IN, MIN_SOC, MAX_CHARGE_A, OVERRIDE, SOC, VOLTS, *GRID)


def _n(values: Values, ref: PathRef) -> float | None:
    return as_number(values.get(ref))


class Ess(Rule):
    name: ClassVar[str] = "ess"
    period_s: ClassVar[float] = 1.0
    refresh_s: ClassVar[float | None] = 10.0  # well inside the setpoint watchdog's timeout
    routine: ClassVar[bool] = True
    services: ClassVar[tuple[str, ...]] = ("vebus", "battery")

    def __init__(self) -> None:
        super().__init__(inputs=FIXED, outputs=())
        self.vebus: int | None = None
        self.bms: int | None = None
        self.target_w: float | None = None  # the grid power aimed at (read by the feed-in limiter)
        self.absorb_w: float | None = None  # how much more it could take from AC now; None: not regulating
        # PV the feed-in limiter holds back now (it sets this after its step): import above the
        # target is met by releasing it before charging less, so the two loops do not both move.
        self.pv_spare_w = 0.0
        self._stuck = 0  # steps the inverter/charger made no progress towards a higher setpoint
        self._last_in: float | None = None
        self.learned: tuple[float, float] | None = None  # (charge ceiling in W, learned at)

    def wire(self, instances: Mapping[str, tuple[int, ...]]) -> None:
        vebus, bms = instances.get("vebus", ()), instances.get("battery", ())
        self.vebus = vebus[0] if vebus else None
        self.bms = bms[0] if bms else None
        extra: list[PathRef] = []
        outputs: list[PathRef] = []
        if self.vebus is not None:
            v = self.vebus
            names = ("/Ac/NumberOfPhases", "/Ac/Out/NominalInverterPower", "/Dc/0/MaxChargeCurrent")
            extra += [PathRef("vebus", v, p) for p in names]
            for ph in PHASES:
                extra += [PathRef("vebus", v, f"/Ac/ActiveIn/{ph}/P"), PathRef("vebus", v, f"/Ac/Out/{ph}/P")]
                outputs.append(PathRef("vebus", v, f"/Hub4/{ph}/AcPowerSetpoint"))
            extra += outputs
        if self.bms is not None:
            extra += [PathRef("battery", self.bms, p) for p in ("/Info/MaxChargeCurrent", "/Info/MaxDischargeCurrent")]
        self.inputs, self.outputs = (*FIXED, *extra), tuple(outputs)

    def grid_target(self, values: Values) -> float:
        override = _n(values, OVERRIDE)
        target = override if override is not None else (_n(values, SETPOINT) or 0.0)
        feed_in = _n(values, MAX_FEED_IN)
        return max(target, -feed_in) if feed_in is not None and feed_in >= 0 else target

    def power_window(self, values: Values) -> tuple[float, float]:
        """(most the inverter may feed from the battery, most it may charge), in W, total."""
        v = self.vebus
        nominal = _n(values, PathRef("vebus", v, "/Ac/Out/NominalInverterPower")) if v is not None else None
        discharge = nominal if nominal else UNLIMITED
        charge = UNLIMITED
        limit = _n(values, MAX_DISCHARGE)
        if limit is not None and limit >= 0:
            discharge = min(discharge, limit)
        volts = _n(values, VOLTS)
        charge_a = _n(values, MAX_CHARGE_A)
        bms = self.bms
        bms_charge = _n(values, PathRef("battery", bms, "/Info/MaxChargeCurrent")) if bms is not None else None
        bms_discharge = _n(values, PathRef("battery", bms, "/Info/MaxDischargeCurrent")) if bms is not None else None
        charger = _n(values, PathRef("vebus", v, "/Dc/0/MaxChargeCurrent")) if v is not None else None
        if volts:
            for amps in (charge_a if charge_a is not None and charge_a >= 0 else None, bms_charge, charger):
                if amps is not None:
                    charge = min(charge, amps * volts)
            if bms_discharge is not None:
                discharge = min(discharge, bms_discharge * volts)
        soc, floor = _n(values, SOC), _n(values, MIN_SOC)
        if soc is not None and floor is not None and soc <= floor:
            discharge = 0.0
        return discharge, charge

    def step(self, now: float, values: Values) -> Values:
        self.absorb_w = None
        mode = _n(values, MODE)
        v = self.vebus
        if v is None:
            self.status = "no inverter/charger"
            return {}
        if mode not in (1.0, 2.0):
            self.status = "external control (Hub4Mode 3)" if mode == 3.0 else "ESS off"
            return {}
        phases = PHASES[: int(_n(values, PathRef("vebus", v, "/Ac/NumberOfPhases")) or 1)]
        grid = [_n(values, ref) for ref in GRID]
        ac_in = {ph: _n(values, PathRef("vebus", v, f"/Ac/ActiveIn/{ph}/P")) for ph in phases}
        ac_out = {ph: _n(values, PathRef("vebus", v, f"/Ac/Out/{ph}/P")) or 0.0 for ph in phases}
        if all(g is None for g in grid) or any(a is None for a in ac_in.values()):
            self.status = "no grid reading: holding the setpoint"
            return {}
        target = self.target_w = self.grid_target(values)
        measured = {ph: a or 0.0 for ph, a in ac_in.items()}
        spare = self.pv_spare_w / len(phases)  # import the curtailed PV covers first (per phase)

        def charge_less(error: float) -> float:  # a negative error (import too high) PV takes first
            return min(0.0, error + spare) if error < 0 else error

        if mode == 1.0:  # phase compensation: only the sum counts
            error = (target - sum(g or 0.0 for g in grid)) / len(phases)
            wanted = {ph: measured[ph] + GAIN * charge_less(error) for ph in phases}
        else:
            share = target / len(phases)
            wanted = {ph: measured[ph] + GAIN * charge_less(share - (grid[i] or 0.0)) for i, ph in enumerate(phases)}
        discharge, charge = self.power_window(values)
        charge = self._ceiling(now, values, phases, measured, ac_out, charge)
        out: dict[PathRef, Scalar] = {}
        absorb = 0.0
        for ph in phases:
            lo, hi = ac_out[ph] - discharge / len(phases), ac_out[ph] + charge / len(phases)
            absorb += max(0.0, min(hi, 32700.0) - measured[ph])
            w = round(min(max(wanted[ph], lo), hi, 32700.0), 0)
            ref = PathRef("vebus", v, f"/Hub4/{ph}/AcPowerSetpoint")
            current = _n(values, ref)
            keep = current is not None and abs(w - current) < DEADBAND_W
            out[ref] = values.get(ref) if keep else int(max(w, -32700.0))
        self.absorb_w = absorb
        self.status = f"mode {int(mode)}: grid aimed at {target:g} W"
        return out

    def _ceiling(
        self,
        now: float,
        values: Values,
        phases: tuple[str, ...],
        measured: Mapping[str, float],
        ac_out: Mapping[str, float],
        charge: float,
    ) -> float:
        """The charge window, narrowed to what the inverter/charger was seen to take at most when
        no limit is known (its own charger limit is not published, say)."""
        v = self.vebus if self.vebus is not None else 0
        taken = sum(measured.values())
        setpoints = (_n(values, PathRef("vebus", v, f"/Hub4/{ph}/AcPowerSetpoint")) for ph in phases)
        asked = sum(w if w is not None else 0.0 for w in setpoints)
        progress = self._last_in is None or taken - self._last_in > SATURATED_W / 3
        self._last_in = taken
        self._stuck = self._stuck + 1 if asked - taken > SATURATED_W and not progress else 0
        if self.learned is not None and now - self.learned[1] > LEARNED_S:
            self.learned = None
        if charge >= UNLIMITED and self._stuck >= SATURATED_STEPS:
            self.learned = (max(0.0, taken - sum(ac_out.values())), now)
        return min(charge, self.learned[0]) if self.learned is not None and charge >= UNLIMITED else charge
