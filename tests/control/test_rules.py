"""The control room: a rule's step on its own (an injected clock), and the runner on a real
Store, write gate and system service (the owner of the relays)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from gateway.control.rule import PathRef, Rule, Values
from gateway.control.runner import RuleRunner
from gateway.control.soc_relay import SOC, SocRelay
from gateway.core.store import Store
from gateway.core.system import SystemService
from gateway.core.writes import WriteGate
from registers import load_default

RELAY1 = PathRef("system", 0, "/Relay/1/State")


def test_soc_relay_closes_low_opens_high_and_holds_between() -> None:
    rule = SocRelay(relay=1, close_below=20, open_above=30)
    assert rule.step(0.0, {SOC: 50.0}) == {RELAY1: 0}
    assert rule.step(1.0, {SOC: 20.0}) == {RELAY1: 1}  # at the level: closes
    assert rule.step(2.0, {SOC: 25.0}) == {}  # in the band: whatever it was
    assert rule.step(3.0, {SOC: 30.0}) == {RELAY1: 0}
    assert rule.step(4.0, {SOC: None}) == {}  # no reading: no change
    assert rule.writer_name == "control:soc-relay"


def test_soc_relay_refuses_contradicting_levels() -> None:
    with pytest.raises(ValueError, match="close_below 40 must be below open_above 30"):
        SocRelay(close_below=40, open_above=30)


def installation(soc: float) -> tuple[Store, WriteGate, SystemService]:
    store = Store()
    store.add_device("battery", 512, None, {"/Soc": soc, "/Dc/0/Voltage": 51.0, "/Dc/0/Current": -3.0})
    system = SystemService(store, serial="c0ffee000001")
    system.start()
    return store, WriteGate(store, load_default(defer_n2k=True)), system


async def settle(system: SystemService) -> None:
    for _ in range(5):  # the system service recomputes in call_soon batches
        await asyncio.sleep(0)


async def test_the_runner_writes_through_the_gate_as_control_and_only_what_differs() -> None:
    store, gate, system = installation(soc=15.0)
    await settle(system)
    audited: list[str] = []
    gate.audit_hooks.append(lambda w, s, i, changes, refused: audited.append(f"{w} {s}/{i} {dict(changes)}"))
    runner = RuleRunner(store, gate, [SocRelay(relay=1)], clock=lambda: 0.0)
    await runner.run_due(0.0)
    assert store.get("system", 0, "/Relay/1/State") == 1
    assert audited == ["control:soc-relay system/0 {'/Relay/1/State': 1}"]
    await runner.run_due(0.5)  # not due yet (period 1 s)
    await runner.run_due(1.0)  # due, but the relay is already closed: nothing written
    assert runner.steps["soc-relay"] == 2 and runner.writes["soc-relay"] == 1 and len(audited) == 1
    store.publish("battery", 512, {"/Soc": 35.0})
    await settle(system)
    await runner.run_due(2.0)
    assert store.get("system", 0, "/Relay/1/State") == 0
    assert runner.status() == {"soc-relay": {"steps": 3, "writes": 2, "refused": 0}}


class Broken(Rule):
    name = "broken"

    def __init__(self, mode: str) -> None:
        self.mode = mode
        super().__init__(inputs=(SOC,), outputs=(PathRef("system", 0, "/Relay/0/State"),))

    def step(self, now: float, values: Values) -> Values:
        if self.mode == "raise":
            raise RuntimeError("division by zero in the model")
        if self.mode == "undeclared":
            return {RELAY1: 1}
        return {PathRef("system", 0, "/Relay/0/State"): 7}  # out of the enum's range


@pytest.mark.parametrize("mode", ["raise", "undeclared", "bad-value"])
async def test_a_failing_rule_changes_nothing_and_is_logged_once(mode: str, caplog: pytest.LogCaptureFixture) -> None:
    store, gate, system = installation(soc=50.0)
    await settle(system)
    before = dict(store.device("system", 0).values)  # type: ignore[union-attr]
    runner = RuleRunner(store, gate, [Broken(mode), SocRelay(relay=1)], clock=lambda: 0.0)
    with caplog.at_level(logging.WARNING, logger="gateway.control.runner"):
        for t in range(5):
            await runner.run_due(float(t))
    assert store.get("system", 0, "/Relay/0/State") == before["/Relay/0/State"].value
    lines = [r.getMessage() for r in caplog.records if "control broken" in r.getMessage()]
    assert len(lines) == 1, lines  # rate-limited: one line per rule and reason a minute
    assert runner.steps["soc-relay"] == 5  # the others run on
    if mode == "bad-value":
        assert runner.refused["broken"] == 5 and "write refused" in lines[0]
    else:
        assert runner.failed["broken"] == 5


async def test_the_runner_task_runs_rules_at_their_period_and_stops() -> None:
    store, gate, _system = installation(soc=10.0)
    runner = RuleRunner(store, gate, [SocRelay(relay=1)])
    await runner.start()
    try:
        for _ in range(100):
            if store.get("system", 0, "/Relay/1/State") == 1:
                break
            await asyncio.sleep(0.02)
        assert store.get("system", 0, "/Relay/1/State") == 1
    finally:
        await runner.stop()
    assert runner._task is None
