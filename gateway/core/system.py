"""The derived ``com.victronenergy.system`` service (``("system", 0)``, unit id 100).

Like a GX device's systemcalc, it reads the other services in the Store and publishes the
aggregate paths of ``mappings/modbus/system.csv``: PV on AC input/output, grid, genset,
consumption, battery and DC totals. Anything that cannot be derived is published as None
(invalid), never as a stale or made-up number. ``/DateAndTime`` and ``/FirmwareVersion`` are
computed by the register map itself (derive column) and are not published here.

Recomputing is batched: a change marks the service dirty and schedules ONE recompute with
``loop.call_soon`` per event-loop iteration, so a driver publishing fifty paths costs one
recompute, not fifty; past a budget (``BURST``, then ``RATE`` per second) the next recompute
waits for its turn instead of running once per change. Without a running loop (plain unit tests) it recomputes at once.
Changes of the system device itself are ignored (no feedback loop).

Sign conventions (as on a GX): DC power and current are positive into the battery;
``/Dc/0/Current`` of an inverter/charger is positive while it charges; grid and genset power
are positive when importing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping

from gateway.core.store import Device, Store, WriteRejected
from registers.values import Scalar, as_number

SERVICE = "system"
INSTANCE = 0
PHASES = ("L1", "L2", "L3")
RELAYS = ("/Relay/0/State", "/Relay/1/State")

# /Settings/SystemSetup/AcInputN (lookup ac_input_type) and /Ac/ActiveIn/Source (system_source).
UNUSED, GRID, GENSET, SHORE = 0, 1, 2, 3
NOT_CONNECTED = 240  # /Ac/ActiveIn/ActiveInput "Disconnected", /Ac/ActiveIn/Source "Not connected"
# Recomputes in the same loop turn as the change while within budget (a burst of BURST, then
# RATE per second): 100 polled inverters publishing at their own moments would otherwise cost
# one full recompute each (measured in tests/bench/sources_bench.py); past the budget the next
# one waits for a token, so the latest change is always derived, at most 1 / RATE s late.
BURST = 5.0
RATE = 10.0
IDLE_BAND_W = 30.0  # |battery power| at or below this is "idle" (/Dc/Battery/State 0)
# Battery monitors heard over the air or the bus (their /Mgmt/ProcessName): second choice for /Dc/Battery.
REMOTE_PROCESSES = ("ble-", "n2k-in")

# Services whose changes can change a derived path; others (tanks, temperatures) are ignored.
INPUTS = frozenset(
    {"vebus", "multi", "inverter", "battery", "solarcharger", "charger", "pvinverter", "grid", "genset", "settings"}
)
DYNAMIC_ESS = {
    "/DynamicEss/Available": 0,  # no dynamic ESS in this gateway
    "/DynamicEss/Active": 0,
    "/DynamicEss/AllowGridFeedIn": None,
    "/DynamicEss/ChargeRate": None,
    "/DynamicEss/ErrorCode": None,
    "/DynamicEss/Restrictions": None,
    "/DynamicEss/Strategy": None,
    "/DynamicEss/TargetSoc": None,
}

Phases = dict[str, float | None]


class RecomputeBudget:
    """A token bucket: ``wait(now)`` says how long the next recompute must wait (0 = now)."""

    def __init__(self) -> None:
        self.tokens = BURST
        self.at = -1e18

    def _refill(self, now: float) -> None:
        self.tokens = min(BURST, self.tokens + (now - self.at) * RATE)
        self.at = now

    def wait(self, now: float) -> float:
        self._refill(now)
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / RATE

    def spend(self, now: float) -> None:
        self._refill(now)
        self.tokens = max(0.0, self.tokens - 1.0)


class SystemService:
    """Derives the system paths from the Store; owns the writable /Relay/0|1/State."""

    def __init__(self, store: Store, serial: str = "000000000000") -> None:
        self.store = store
        self.serial = serial
        self.relays: dict[str, int] = dict.fromkeys(RELAYS, 0)
        self.recomputes = 0  # how many times recompute() ran (diagnostics, tests)
        self._running = False
        self._pending: asyncio.Handle | asyncio.TimerHandle | None = None
        self._budget = RecomputeBudget()
        self._unsubscribe: Callable[[], None] | None = None

    def start(self) -> Device:
        """Add ("system", 0), subscribe to the Store and derive everything once."""
        device = self.store.add_device(SERVICE, INSTANCE, owner=self, values={"/Serial": self.serial, **self.relays})
        self._unsubscribe = self.store.subscribe(self)  # existing devices are announced: ignored until running
        self._running = True
        self.recompute()
        return device

    def stop(self) -> None:
        self._running = False
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.store.remove_device(SERVICE, INSTANCE)

    # --- Owner ---------------------------------------------------------------------------
    async def write(self, device: Device, changes: Mapping[str, Scalar]) -> None:
        """The relays (values 0/1 checked by the write gate); every other path is derived."""
        for path in changes:
            if path not in RELAYS:
                raise WriteRejected(f"{path} is derived by the system service and cannot be written")
        new = {path: int(value) for path, value in changes.items() if isinstance(value, (int, float))}
        self.relays.update(new)
        self.store.publish(SERVICE, INSTANCE, new)

    # --- Listener ------------------------------------------------------------------------
    def device_added(self, device: Device) -> None:
        self._changed(device)

    def device_removed(self, device: Device) -> None:
        self._changed(device)

    def values_changed(self, device: Device, paths: Iterable[str]) -> None:
        self._changed(device)

    def _changed(self, device: Device) -> None:
        if not self._running or device.service not in INPUTS or self._pending is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.recompute()
            return
        wait = self._budget.wait(loop.time())
        self._pending = loop.call_soon(self._scheduled) if wait <= 0 else loop.call_later(wait, self._scheduled)

    def _scheduled(self) -> None:
        self._pending = None
        self._budget.spend(asyncio.get_running_loop().time())
        if self._running:
            self.recompute()

    # --- derivation ----------------------------------------------------------------------
    def recompute(self) -> None:
        """Derive every path from the Store as it is now and publish (only changes notify)."""
        if self.store.device(SERVICE, INSTANCE) is None:
            return
        self.recomputes += 1
        self.store.publish(SERVICE, INSTANCE, self.derive())

    def derive(self) -> dict[str, Scalar]:
        values: dict[str, Scalar] = {}
        values.update(self._ac())
        values.update(self._dc())
        values.update(DYNAMIC_ESS)
        return values

    def _first(self, *services: str) -> Device | None:
        """The device with the lowest instance among the first service type that has any."""
        for service in services:
            devices = self.store.devices(service)
            if devices:
                return min(devices, key=lambda d: d.instance)
        return None

    def _battery(self) -> Device | None:
        batteries = self.store.devices("battery")
        own = [d for d in batteries if not str(d.get("/Mgmt/ProcessName") or "").startswith(REMOTE_PROCESSES)]
        return min(own or batteries, key=lambda d: d.instance) if batteries else None

    def _setting(self, path: str, default: int) -> int:
        v = as_number(self.store.get("settings", 0, path))
        return int(v) if v is not None else default

    def _inverter_charger(self) -> tuple[Device | None, int | None, Phases, Phases]:
        """The vebus (lowest instance; a "multi" if there is no vebus): active input, AC-in, AC-out.

        A Multi RS publishes AC-in per input (/Ac/In/<n>/Lx/P), so its active input's paths are
        used; an "acsystem" is not used (it has no /Ac/ActiveIn/ActiveInput nor DC values).
        """
        dev = self._first("vebus", "multi")
        if dev is None:
            return None, None, dict.fromkeys(PHASES), dict.fromkeys(PHASES)
        active = as_number(dev.get("/Ac/ActiveIn/ActiveInput"))
        active_in = int(active) if active is not None else None
        if dev.service == "vebus":
            ac_in = {ph: as_number(dev.get(f"/Ac/ActiveIn/{ph}/P")) for ph in PHASES}
        elif active_in in (0, 1):
            ac_in = {ph: as_number(dev.get(f"/Ac/In/{active_in + 1}/{ph}/P")) for ph in PHASES}
        else:
            ac_in = dict.fromkeys(PHASES)
        ac_out = {ph: as_number(dev.get(f"/Ac/Out/{ph}/P")) for ph in PHASES}
        return dev, active_in, ac_in, ac_out

    def _ac(self) -> dict[str, Scalar]:
        """AC paths.

        - Source: the active input's type from settings (AcInput1 default grid, AcInput2 default
          unused); 240 while the inverter/charger is disconnected; None without one.
        - PV inverters by /Position: 1 -> PvOnOutput; 0/2 (AC input 1/2) -> PvOnGenset when that
          input is a genset, PvOnGrid when grid or shore, and when unused the GX's historic rule
          (0 grid, 2 genset). A phase that some PV inverter reports is the sum per position (0
          where none is); a phase none reports is None (so a one-phase install leaves L2/L3 None).
        - Grid/Genset: a grid (genset) meter's /Ac/Lx/Power if there is one, else the
          inverter/charger's AC-in while its active input is grid or shore (a genset); else None.
        - ConsumptionOnOutput = AC-out + PvOnOutput (either alone on a phase where the other is
          unknown, as a GX adds; None without an inverter/charger); ConsumptionOnInput = meter + PV on that input
          - inverter/charger AC-in (when it is on that input); without a meter 0 for the phases
          the inverter/charger has. Consumption = input + output. All clamped at >= 0.
        """
        inputs = {0: self._setting("/Settings/SystemSetup/AcInput1", GRID)}
        inputs[1] = self._setting("/Settings/SystemSetup/AcInput2", UNUSED)
        dev, active_in, ac_in, ac_out = self._inverter_charger()
        if dev is None or active_in is None:
            source: int | None = None
        elif active_in == NOT_CONNECTED:
            source = NOT_CONNECTED
        else:
            source = inputs.get(active_in)

        pv: dict[str, Phases] = {b: dict.fromkeys(PHASES) for b in ("PvOnGrid", "PvOnGenset", "PvOnOutput")}
        pv_on_output = False
        for inv in self.store.devices("pvinverter"):
            bucket = _pv_bucket(as_number(inv.get("/Position")), inputs[0], inputs[1])
            pv_on_output = pv_on_output or bucket == "PvOnOutput"
            for ph in PHASES:
                watts = as_number(inv.get(f"/Ac/{ph}/Power"))
                if watts is not None:  # a phase some PV inverter reports is a number in every bucket
                    for b in pv:
                        pv[b][ph] = (pv[b][ph] or 0.0) + (watts if b == bucket else 0.0)

        on_grid = source in (GRID, SHORE)
        grid, genset = self._meter("grid"), self._meter("genset")
        grid_p = grid if grid is not None else (ac_in if on_grid else dict.fromkeys(PHASES))
        genset_p = genset if genset is not None else (ac_in if source == GENSET else dict.fromkeys(PHASES))

        values: dict[str, Scalar] = {"/Ac/ActiveIn/Source": source}
        for ph in PHASES:
            for bucket, phases in pv.items():
                values[f"/Ac/{bucket}/{ph}/Power"] = phases[ph]
            values[f"/Ac/Grid/{ph}/Power"] = grid_p[ph]
            values[f"/Ac/Genset/{ph}/Power"] = genset_p[ph]
            out = ac_out[ph]
            # PV on output counts even on a phase the Multi has no AC-out for (not without a Multi)
            on_output = _add(out, pv["PvOnOutput"][ph] if pv_on_output and dev is not None else None)
            on_output = _clamp(on_output) if on_output is not None else None
            if grid is not None:
                on_input = _input_loads(grid[ph], pv["PvOnGrid"][ph], ac_in[ph] if on_grid else 0.0)
            elif genset is not None and source == GENSET:
                on_input = _input_loads(genset[ph], pv["PvOnGenset"][ph], ac_in[ph])
            else:
                on_input = 0.0 if out is not None or ac_in[ph] is not None else None
            values[f"/Ac/ConsumptionOnOutput/{ph}/Power"] = on_output
            values[f"/Ac/ConsumptionOnInput/{ph}/Power"] = on_input
            values[f"/Ac/Consumption/{ph}/Power"] = _add(on_input, on_output)
        return values

    def _meter(self, service: str) -> Phases | None:
        dev = self._first(service)
        return {ph: as_number(dev.get(f"/Ac/{ph}/Power")) for ph in PHASES} if dev is not None else None

    def _dc(self) -> dict[str, Scalar]:
        """Battery and DC paths.

        - Battery: the "battery" service with the lowest instance (/Dc/0/Power, or V*I when it
          has none), preferring one the gateway reads itself over one heard over Bluetooth or
          NMEA 2000 (often a start or service battery's monitor: ``REMOTE_PROCESSES``). Without
          one, the vebus's own /Dc/0 voltage and current (power V*I) and /Soc; consumed Ah
          and time-to-go are then unknown. State: charging above +30 W, discharging
          below -30 W, else idle.
        - Pv: sums of solarcharger /Yield/Power and /Dc/0/Current. Charger: sum of V*I.
        - Vebus: the vebus /Dc/0 current and V*I; InverterCharger: the same over every vebus,
          inverter and multi.
        - System (DC loads) = Pv + Charger + InverterCharger - Battery power: what enters the DC
          bus and does not go into the battery. Only with a battery monitor (else None).
        """
        battery = self._battery()
        vebus = self._first("vebus")
        solar = self.store.devices("solarcharger")
        chargers = self.store.devices("charger")
        pv_power = _sum(as_number(d.get("/Yield/Power")) for d in solar)
        pv_current = _sum(as_number(d.get("/Dc/0/Current")) for d in solar)
        charger_power = _sum(_dc_power(d) for d in chargers)
        inverter_chargers = [d for s in ("vebus", "inverter", "multi") for d in self.store.devices(s)]
        ic_current = _sum(as_number(d.get("/Dc/0/Current")) for d in inverter_chargers)
        ic_power = _sum(_dc_power(d) for d in inverter_chargers)

        volts = amps = watts = soc = consumed = ttg = None
        if battery is not None:
            volts, amps = as_number(battery.get("/Dc/0/Voltage")), as_number(battery.get("/Dc/0/Current"))
            watts = as_number(battery.get("/Dc/0/Power"))
            if watts is None and volts is not None and amps is not None:
                watts = volts * amps
            soc = as_number(battery.get("/Soc"))
            consumed = as_number(battery.get("/ConsumedAmphours"))
            ttg = as_number(battery.get("/TimeToGo"))
        elif vebus is not None:
            volts, amps = as_number(vebus.get("/Dc/0/Voltage")), as_number(vebus.get("/Dc/0/Current"))
            watts = volts * amps if volts is not None and amps is not None else None
            soc = as_number(vebus.get("/Soc"))
        if watts is None:
            state = None
        else:
            state = 1 if watts > IDLE_BAND_W else 2 if watts < -IDLE_BAND_W else 0
        dc_system = None
        if battery is not None and watts is not None:
            dc_system = (pv_power or 0.0) + (charger_power or 0.0) + (ic_power or 0.0) - watts
        return {
            "/Dc/Battery/Voltage": volts,
            "/Dc/Battery/Current": amps,
            "/Dc/Battery/Power": watts,
            "/Dc/Battery/Soc": soc,
            "/Dc/Battery/ConsumedAmphours": consumed,
            "/Dc/Battery/TimeToGo": ttg,
            "/Dc/Battery/State": state,
            "/Dc/Pv/Power": pv_power,
            "/Dc/Pv/Current": pv_current,
            "/Dc/Charger/Power": charger_power,
            "/Dc/Vebus/Current": as_number(vebus.get("/Dc/0/Current")) if vebus is not None else None,
            "/Dc/Vebus/Power": _dc_power(vebus) if vebus is not None else None,
            "/Dc/InverterCharger/Current": ic_current,
            "/Dc/InverterCharger/Power": ic_power,
            "/Dc/System/Power": dc_system,
        }


def _add(a: float | None, b: float | None) -> float | None:
    """a + b where an unknown term is left out; None only when both are unknown."""
    if a is None:
        return b
    return a if b is None else a + b


def _sum(values: Iterable[float | None]) -> float | None:
    total: float | None = None
    for v in values:
        total = _add(total, v)
    return total


def _clamp(v: float) -> float:
    return max(0.0, v)


def _dc_power(device: Device) -> float | None:
    volts, amps = as_number(device.get("/Dc/0/Voltage")), as_number(device.get("/Dc/0/Current"))
    return volts * amps if volts is not None and amps is not None else None


def _input_loads(meter: float | None, pv: float | None, inverter_in: float | None) -> float | None:
    """AC-input loads = what the meter imports + PV on that input - what the Multi takes."""
    if meter is None:
        return None
    return _clamp(meter + (pv or 0.0) - (inverter_in or 0.0))


def _pv_bucket(position: float | None, input1: int, input2: int) -> str | None:
    if position == 1:
        return "PvOnOutput"
    if position == 0:
        kind, historic = input1, "PvOnGrid"
    elif position == 2:
        kind, historic = input2, "PvOnGenset"
    else:
        return None
    if kind == GENSET:
        return "PvOnGenset"
    if kind in (GRID, SHORE):
        return "PvOnGrid"
    return historic
