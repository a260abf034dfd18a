"""The setpoint watchdog: volatile EMS setpoints revert to a safe value when not refreshed.

An EMS that steers the system (grid setpoint, inverter setpoints, PV power limit, charge and
feed-in switches) writes these again and again. When it stops, crashed or cut off, the last
value must not stay forever: after ``timeout_s`` without a write the watchdog writes the safe
value through the one write gate (so it is audited like any write), logs it, and keeps a
record the health page (``/healthz``) shows. Writing the safe value ends the watch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from gateway.core.components import cancel_and_wait
from gateway.core.store import Device, Store
from gateway.core.writes import AuditRecord, WriteGate, Writer, WriteRefused
from registers.values import Scalar

log = logging.getLogger(__name__)

WATCHDOG: Final = Writer("internal", "setpoint watchdog")
SafeValue = Callable[[Device], Scalar]


def _const(v: Scalar) -> SafeValue:
    return lambda _device: v


# (service, path) -> its safe value. PV power limit: the inverter's full power (no curtailment).
# Persistent settings (the ESS grid setpoint /Settings/CGwacs/AcPowerSetPoint among them) are
# not volatile: a GX keeps them until they are written again, and so does this gateway.
VOLATILE: Final[Mapping[tuple[str, str], SafeValue]] = {
    ("vebus", "/Hub4/L1/AcPowerSetpoint"): _const(0),
    ("vebus", "/Hub4/L2/AcPowerSetpoint"): _const(0),
    ("vebus", "/Hub4/L3/AcPowerSetpoint"): _const(0),
    ("vebus", "/Hub4/DisableCharge"): _const(0),
    ("vebus", "/Hub4/DisableFeedIn"): _const(0),
    ("pvinverter", "/Ac/PowerLimit"): lambda d: d.get("/Ac/MaxPower"),
}


@dataclass(frozen=True, slots=True)
class Revert:
    at: float  # wall-clock time
    service: str
    instance: int
    path: str
    old: Scalar
    new: Scalar


class SetpointWatchdog:
    """A component: hears accepted writes (an audit hook), reverts stale setpoints."""

    def __init__(self, store: Store, gate: WriteGate, timeout_s: float) -> None:
        self.store = store
        self.gate = gate
        self.timeout_s = timeout_s
        self.watched: dict[tuple[str, int, str], float] = {}  # -> monotonic time of the last write
        self.reverts: list[Revert] = []  # the newest 100
        self._task: asyncio.Task[None] | None = None

    def heard(self, r: AuditRecord) -> None:
        if r.refusal is not None:
            return
        device = self.store.device(r.service, r.instance)
        for path, value in r.changes.items():
            safe = VOLATILE.get((r.service, path))
            if safe is None or device is None:
                continue
            key = (r.service, r.instance, path)
            if value == safe(device):
                self.watched.pop(key, None)
            else:
                self.watched[key] = time.monotonic()

    async def start(self) -> None:
        if self.timeout_s > 0:
            self.gate.record_hooks.append(self.heard)
            self._task = asyncio.create_task(self._run(), name="setpoint watchdog")

    async def stop(self) -> None:
        if self.heard in self.gate.record_hooks:
            self.gate.record_hooks.remove(self.heard)
        if self._task is not None:
            await cancel_and_wait(self._task)

    async def _run(self) -> None:
        period = min(1.0, self.timeout_s / 4)
        while True:
            await asyncio.sleep(period)
            await self.check(time.monotonic())

    async def check(self, now: float) -> None:
        for key, last in list(self.watched.items()):
            if now - last <= self.timeout_s:
                continue
            service, instance, path = key
            del self.watched[key]
            device = self.store.device(service, instance)
            safe = VOLATILE[(service, path)](device) if device is not None else None
            if device is None or safe is None:
                continue
            old = device.get(path)
            try:
                await self.gate.write(service, instance, {path: safe}, WATCHDOG)
            except WriteRefused as e:
                log.error("setpoint %s/%d %s not refreshed; reverting it failed: %s", service, instance, path, e)
                continue
            log.warning(
                "setpoint %s/%d %s not refreshed within %g s: reverted from %s to %s",
                *(service, instance, path, self.timeout_s, old, safe),
            )
            self.reverts = [*self.reverts[-99:], Revert(time.time(), service, instance, path, old, safe)]

    def status(self) -> dict[str, object]:
        now = time.monotonic()
        return {
            "timeout_s": self.timeout_s,
            "watched": [
                {"service": s, "instance": i, "path": p, "revert_in_s": round(max(0.0, self.timeout_s - (now - t)), 1)}
                for (s, i, p), t in sorted(self.watched.items())
            ],
            "reverts": [
                {"at": round(r.at, 3), "service": r.service, "instance": r.instance, "path": r.path, "old": r.old}
                | {"new": r.new}
                for r in self.reverts
            ],
        }
