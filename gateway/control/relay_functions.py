"""Relay functions other than genset (gateway/control/generator.py) and manual (clients write
the relay): tank pump and temperature, each a relay with a start and a stop level, holding its
state in between, so it never chatters around one level.

- tank pump: closes when the chosen tank's /Level falls to ``start_level`` and opens once it
  has risen to ``stop_level`` (a pump that fills the tank);
- temperature: closes when the chosen sensor's /Temperature rises to ``on_above`` and opens
  once it is back at ``off_below`` (a fan, a heater's inverse is the same with levels swapped).

A tank or sensor that does not exist (or stopped answering) changes nothing and says so in
the status. Every change is a write through the gate, so the audit log has it.
"""

from __future__ import annotations

from typing import ClassVar

from gateway.control.rule import PathRef, Rule, Values
from registers.values import as_number


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
