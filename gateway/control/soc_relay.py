"""The smallest useful rule: a relay that closes while the battery is low, with hysteresis.

A GX's relay "functions" (alarm, genset, tank pump, temperature) are rules of this shape:
read one value, compare it with a start and a stop level, hold the state in between. The
relay closes when ``/Dc/Battery/Soc`` falls to ``close_below`` and opens again once it
reaches ``open_above``; with no SOC (no battery monitor, a stale value) it keeps its state,
so a relay never chatters on a missing reading.
"""

from __future__ import annotations

from typing import ClassVar

from gateway.control.rule import PathRef, Rule, Values
from registers.values import as_number

SOC = PathRef("system", 0, "/Dc/Battery/Soc")
RELAY_PATH = "/Relay/{}/State"
CLOSED, OPEN = 1, 0


class SocRelay(Rule):
    name: ClassVar[str] = "soc-relay"
    period_s: ClassVar[float] = 1.0

    def __init__(self, relay: int = 1, close_below: float = 20.0, open_above: float = 30.0) -> None:
        if not 0 <= close_below < open_above <= 100:
            raise ValueError(
                f"soc-relay: close_below {close_below:g} must be below open_above {open_above:g} (0..100 %)"
            )
        self.relay = PathRef("system", 0, RELAY_PATH.format(relay))
        self.close_below, self.open_above = close_below, open_above
        super().__init__(inputs=(SOC, self.relay), outputs=(self.relay,))

    def step(self, now: float, values: Values) -> Values:
        soc = as_number(values.get(SOC))
        if soc is None:
            return {}
        if soc <= self.close_below:
            return {self.relay: CLOSED}
        if soc >= self.open_above:
            return {self.relay: OPEN}
        return {}
