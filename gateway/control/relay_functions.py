"""Relay functions other than genset (gateway/control/generator.py) and manual (clients write
the relay): tank pump and temperature, each a relay with a start and a stop level, holding its
state in between, so it never chatters around one level; and the alarm relay.

- tank pump: closes when the chosen tank's /Level falls to ``start_level`` and opens once it
  has risen to ``stop_level`` (a pump that fills the tank);
- temperature: closes when the chosen sensor's /Temperature rises to ``on_above`` and opens
  once it is back at ``off_below`` (a fan, a heater's inverse is the same with levels swapped).

- alarm: closed while any device shows an alarm (an /Alarms/... path or /Alarm at 2, "alarm";
  warnings, 1, do not count), open when none does.

A tank or sensor that does not exist (or stopped answering) changes nothing and says so in
the status. Every change is a write through the gate, so the audit log has it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from gateway.control.rule import PathRef, Rule, Values
from registers.values import Scalar, as_number

ALARM: float = 2.0  # ok_warning_alarm: 0 ok, 1 warning, 2 alarm


class LevelRelay(Rule):
    """Closes at ``close_at``, opens at ``open_at``; ``falling``: it closes on a low value."""

    def __init__(self, relay: int, source: PathRef, close_at: float, open_at: float, falling: bool) -> None:
        self.relay = PathRef("system", 0, f"/Relay/{relay}/State")
        self.source, self.close_at, self.open_at, self.falling = source, close_at, open_at, falling
        super().__init__(inputs=(source, self.relay), outputs=(self.relay,))

    def step(self, now: float, values: Values) -> Values:
        v = as_number(values.get(self.source))
        if v is None:
            self.status = f"no reading from {self.source.service} {self.source.instance}: relay left as it is"
            return {}
        close = v <= self.close_at if self.falling else v >= self.close_at
        opened = v >= self.open_at if self.falling else v <= self.open_at
        self.status = f"{self.source.path} {v:.1f}"
        if close:
            return {self.relay: 1}
        if opened:
            return {self.relay: 0}
        return {}


class TankPump(LevelRelay):
    name: ClassVar[str] = "tank-pump"

    def __init__(self, relay: int, tank: int, start_level: float, stop_level: float) -> None:
        if not 0 <= start_level < stop_level <= 100:
            raise ValueError(f"tank pump: start_level {start_level:g} must be below stop_level {stop_level:g} (%)")
        super().__init__(relay, PathRef("tank", tank, "/Level"), start_level, stop_level, falling=True)


class TemperatureRelay(LevelRelay):
    name: ClassVar[str] = "temperature-relay"

    def __init__(self, relay: int, sensor: int, on_above: float, off_below: float) -> None:
        if not off_below < on_above:
            raise ValueError(f"temperature relay: off_below {off_below:g} must be below on_above {on_above:g}")
        super().__init__(relay, PathRef("temperature", sensor, "/Temperature"), on_above, off_below, falling=False)


class AlarmRelay(Rule):
    """``alarm_paths``: the alarm paths of each service type (from the register map)."""

    name: ClassVar[str] = "alarm-relay"

    def __init__(self, relay: int, alarm_paths: Mapping[str, tuple[str, ...]]) -> None:
        self.relay = PathRef("system", 0, f"/Relay/{relay}/State")
        self.alarm_paths = dict(alarm_paths)
        self.services = tuple(sorted(self.alarm_paths))  # type: ignore[misc]
        super().__init__(inputs=(self.relay,), outputs=(self.relay,))

    def wire(self, instances: Mapping[str, tuple[int, ...]]) -> None:
        watched = tuple(
            PathRef(service, i, p)
            for service in self.services
            for i in instances.get(service, ())
            for p in self.alarm_paths[service]
        )
        self.inputs = (self.relay, *watched)

    def step(self, now: float, values: Mapping[PathRef, Scalar]) -> Values:
        active = sorted(str(ref) for ref in self.inputs[1:] if (as_number(values.get(ref)) or 0.0) >= ALARM)
        self.status = f"alarm: {', '.join(active[:3])}{' ...' if len(active) > 3 else ''}" if active else "no alarm"
        return {self.relay: 1 if active else 0}
