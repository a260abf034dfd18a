"""The control room as one gateway component: builds the rules the ``[control]`` section asks
for, serves the devices they show (hub4, and generator with a genset relay), runs them.

Starts after the sources (the rules read their devices) and before the frontends (which then
see hub4 and generator at start). hub4 /Overrides/Setpoint (2716) is volatile: not written
again within the setpoint watchdog's timeout it falls back to "no override" (invalid).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from gateway.control.control_keys import ControlConfig
from gateway.control.ess import Ess
from gateway.control.feed_in import FeedInLimiter
from gateway.control.generator import Generator, generator_values
from gateway.control.owned import OwnedDevice
from gateway.control.relay_functions import AlarmRelay, TankPump, TemperatureRelay
from gateway.control.rule import Rule
from gateway.control.runner import RuleRunner
from gateway.core.store import Store
from gateway.core.writes import WriteGate
from registers.values import Scalar

HUB4: Final[dict[str, Scalar]] = {"/PvPowerLimiterActive": 0, "/Overrides/Setpoint": None, "/Pv/Disable": 0}


def alarm_paths(gate: WriteGate) -> dict[str, tuple[str, ...]]:
    """Every service type's alarm paths in the register map (/Alarms/..., /Alarm)."""
    found = {
        service: tuple(p for p in paths if p.startswith("/Alarms/") or p == "/Alarm")
        for service, paths in gate.paths.items()
    }
    return {service: paths for service, paths in found.items() if paths}


def build_rules(c: ControlConfig, alarms: Mapping[str, tuple[str, ...]] | None = None) -> list[Rule]:
    rules: list[Rule] = []
    ess = Ess() if c.ess else None
    if ess is not None:
        rules.append(ess)
    if c.feed_in_limiter:  # after the ESS loop: it reads what the battery can still absorb
        rules.append(FeedInLimiter(c.limiter_fallback_pct, ess))
    if c.relays("genset"):
        rules.append(
            Generator(
                c.generator_soc_start,
                c.generator_soc_stop,
                c.generator_start_delay_s,
                c.generator_stop_delay_s,
                c.generator_min_run_s,
                c.generator_service_interval_h * 3600,
            )
        )
    for relay in c.relays("tank-pump"):
        rules.append(TankPump(relay, c.tank_pump_tank, c.tank_pump_start_level, c.tank_pump_stop_level))
    for relay in c.relays("alarm"):
        rules.append(AlarmRelay(relay, alarms or {}))
    for relay in c.relays("temperature"):
        rules.append(TemperatureRelay(relay, c.temperature_sensor, c.temperature_on_above, c.temperature_off_below))
    return rules


class ControlRoom:
    label = "control"

    def __init__(self, store: Store, gate: WriteGate, config: ControlConfig, override_timeout_s: float) -> None:
        self.store = store
        self.rules = build_rules(config, alarm_paths(gate))
        self.devices: dict[tuple[str, int], OwnedDevice] = {
            ("hub4", 0): OwnedDevice(
                store,
                "hub4",
                0,
                HUB4,
                frozenset({"/Overrides/Setpoint"}),
                volatile={"/Overrides/Setpoint": (override_timeout_s, None)},
            )
        }
        self.generator = next((r for r in self.rules if isinstance(r, Generator)), None)
        if self.generator is not None:
            writable = frozenset({"/ManualStart", "/AutoStartEnabled", "/ServiceCounterReset"})
            self.devices[("generator", 0)] = OwnedDevice(
                store, "generator", 0, generator_values(), writable, check=self._generator_write
            )
        self.runner = RuleRunner(store, gate, self.rules, show=self._show)
        self.gate = gate
        # A relay with a function belongs to its rule: clients' writes are refused, as on a GX
        # (only a "manual" relay takes them).
        self.reserved = {
            ("system", f"/Relay/{n}/State"): (
                rule.writer_name,
                f"relay {n} has the function {function!r} ({rule.writer_name} switches it);"
                " only a manual relay takes writes",
            )
            for n, function in enumerate((config.relay0, config.relay1))
            if function != "manual"
            for rule in self.rules
            if any(ref.path == f"/Relay/{n}/State" for ref in rule.outputs)
        }

    def _generator_write(self, changes: Mapping[str, Scalar]) -> str | None:
        if changes.get("/ServiceCounterReset") == 1 and self.generator is not None:
            self.generator.reset_service()
        return None

    def _show(self, service: str, instance: int, values: dict[str, Scalar]) -> None:
        device = self.devices.get((service, instance))
        if device is not None:
            device.publish(values)

    async def start(self) -> None:
        for device in self.devices.values():
            device.start()
        self.gate.reserved.update(self.reserved)
        await self.runner.start()

    async def stop(self) -> None:
        await self.runner.stop()
        for key in self.reserved:
            self.gate.reserved.pop(key, None)
        for device in self.devices.values():
            device.stop()

    def status(self) -> dict[str, object]:
        return {r.name: {**self.runner.status()[r.name], "status": r.status} for r in self.rules}
