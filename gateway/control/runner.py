"""Runs the rules: each at its period, reading its inputs from the Store and writing the
outputs that differ from the Store through the one write gate, as ``control:<name>``.

One task for all rules (they are cheap and few); the clock and the sleep are injectable, so
tests drive ``run_due(now)`` with the times of a scenario. Outputs a rule wants are written
again every ``refresh_s`` even when unchanged (setpoints that revert when not refreshed);
what it ``shown`` is published on the devices the control room owns (``show``). A refused write changes nothing,
is counted per rule and logged at most once a minute per rule and reason; a rule that raises
is logged the same way and the others run on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence

from gateway.control.rule import PathRef, Rule
from gateway.core.components import cancel_and_wait
from gateway.core.loglimit import Throttle
from gateway.core.store import Store
from gateway.core.writes import WriteGate, Writer, WriteRefused
from registers.values import Scalar

log = logging.getLogger(__name__)


class RuleRunner:
    label = "control"

    def __init__(
        self,
        store: Store,
        gate: WriteGate,
        rules: Sequence[Rule],
        clock: Callable[[], float] = time.monotonic,
        show: Callable[[str, int, dict[str, Scalar]], None] | None = None,
    ) -> None:
        self.store, self.gate, self.rules = store, gate, list(rules)
        self.clock = clock
        self.show = show
        self.written: dict[tuple[str, PathRef], float] = {}  # (rule, output) -> when last written
        self.writers = {rule.name: Writer(rule.writer_name, routine=rule.routine) for rule in self.rules}
        self.due = {rule.name: 0.0 for rule in self.rules}
        self.steps: dict[str, int] = defaultdict(int)
        self.writes: dict[str, int] = defaultdict(int)
        self.refused: dict[str, int] = defaultdict(int)
        self.failed: dict[str, int] = defaultdict(int)
        self._throttle = Throttle(log)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.rules:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="control rules")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            now = self.clock()
            await self.run_due(now)
            await asyncio.sleep(max(0.01, min(self.due.values()) - self.clock()))

    async def run_due(self, now: float) -> None:
        """Step every rule whose time has come, and write what it wants that differs."""
        for rule in self.rules:
            if now < self.due[rule.name]:
                continue
            self.due[rule.name] = now + rule.period_s
            await self._step(rule, now)

    async def _step(self, rule: Rule, now: float) -> None:
        if rule.services:
            rule.wire({s: tuple(sorted(d.instance for d in self.store.devices(s))) for s in rule.services})
        values = {ref: self.store.get(ref.service, ref.instance, ref.path) for ref in rule.inputs}
        try:
            wanted = rule.step(now, values)
            stray = [str(ref) for ref in wanted if ref not in rule.outputs]
            if stray:
                raise ValueError(f"wrote undeclared outputs {', '.join(stray)}")
        except Exception as e:
            self.failed[rule.name] += 1
            self._throttle.log(f"{rule.name} failed", logging.ERROR, "control %s: %s", rule.name, e)
            return
        self.steps[rule.name] += 1
        self._show(rule)
        by_device: dict[tuple[str, int], dict[str, Scalar]] = defaultdict(dict)
        refresh = rule.refresh_s
        for ref, value in sorted(wanted.items()):
            stale = refresh is not None and now - self.written.get((rule.name, ref), -1e18) >= refresh
            if stale or self.store.get(ref.service, ref.instance, ref.path) != value:
                by_device[(ref.service, ref.instance)][ref.path] = value
        for (service, instance), changes in by_device.items():
            try:
                await self.gate.write(service, instance, changes, self.writers[rule.name])
            except WriteRefused as e:
                self.refused[rule.name] += 1
                key = f"{rule.name} {e.refusal.value}"
                self._throttle.log(key, logging.WARNING, "control %s: write refused: %s", rule.name, e.reason)
            else:
                self.writes[rule.name] += 1
                self.written.update(((rule.name, PathRef(service, instance, p)), now) for p in changes)

    def _show(self, rule: Rule) -> None:
        if self.show is None or not rule.shown:
            return
        by_device: dict[tuple[str, int], dict[str, Scalar]] = defaultdict(dict)
        for ref, value in rule.shown.items():
            by_device[(ref.service, ref.instance)][ref.path] = value
        for (service, instance), values in by_device.items():
            self.show(service, instance, values)

    def status(self) -> dict[str, dict[str, int]]:
        return {
            r.name: {"steps": self.steps[r.name], "writes": self.writes[r.name], "refused": self.refused[r.name]}
            for r in self.rules
        }
