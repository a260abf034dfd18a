"""What a rule is: a name, a period, the paths it reads and the paths it may write, and a pure
``step`` from the values it read (and the time) to the values it wants.

A rule keeps no reference to the Store or the gate: the runner reads its inputs, calls
``step`` and writes what differs from the Store, so a rule is tested by calling ``step``
with the values and times of a scenario (an injected clock), and in the gateway by the runner.

A rule over devices that come and go (every PV inverter, the inverter/charger) names their
service types in ``services``; before each step the runner calls ``wire`` with the instances
the Store has now, and the rule rebuilds its inputs and outputs. What a rule shows rather
than writes (a status such as hub4 /PvPowerLimiterActive, read-only in the map) it puts in
``shown``; the runner publishes it on the devices the control room owns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from registers.values import Scalar


@dataclass(frozen=True, slots=True, order=True)
class PathRef:
    """One path of one device: ``system/0:/Relay/1/State``."""

    service: str
    instance: int
    path: str

    def __str__(self) -> str:
        return f"{self.service}/{self.instance}:{self.path}"


Values = Mapping[PathRef, Scalar]


class Rule:
    """Subclasses set ``name`` and ``period_s`` and fill ``inputs`` and ``outputs`` (in
    ``__init__``, from their settings); ``step`` may only return paths of ``outputs``."""

    name: ClassVar[str]
    period_s: ClassVar[float] = 1.0
    # Outputs it wants are written again at least this often even when unchanged: a setpoint
    # or PV limit the device (or the setpoint watchdog) reverts when it is not refreshed.
    refresh_s: ClassVar[float | None] = None
    services: ClassVar[tuple[str, ...]] = ()  # service types whose instances ``wire`` hears
    # Its writes are a loop's routine (a setpoint moved every second): audited at DEBUG only.
    routine: ClassVar[bool] = False

    def __init__(self, inputs: tuple[PathRef, ...], outputs: tuple[PathRef, ...]) -> None:
        self.inputs = inputs
        self.outputs = outputs
        self.shown: dict[PathRef, Scalar] = {}
        self.status = "idle"  # one line for the health page

    @property
    def writer_name(self) -> str:
        """The writer identity the audit log and metrics show: ``control:<name>``."""
        return f"control:{self.name}"

    def wire(self, instances: Mapping[str, tuple[int, ...]]) -> None:
        """The instances of ``services`` the Store has now (sorted); rebuild inputs/outputs."""

    def step(self, now: float, values: Values) -> Values:
        """The outputs wanted now (a subset of ``outputs``); ``values`` holds every input,
        None where it is not available. ``now`` is the runner's monotonic clock, in seconds."""
        raise NotImplementedError
