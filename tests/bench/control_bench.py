"""The control loop's cost: the ESS loop, the feed-in limiter (50 PV inverters under a limit),
the generator and a tank pump, run by the RuleRunner on a real Store and write gate, stepped
once per simulated second with an injected clock; the loads step at half time. Prints the CPU time per step (= % of one
core at the rules' 1 s period) and the limiter's settling time and overshoot for a step in
consumption.

    .venv/bin/python -m tests.bench.control_bench [--inverters 50] [--steps 200]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from gateway.control.ess import Ess
from gateway.control.feed_in import FeedInLimiter
from gateway.control.generator import Generator, generator_values
from gateway.control.owned import OwnedDevice
from gateway.control.relay_functions import TankPump
from gateway.control.runner import RuleRunner
from gateway.core.settings import DEFAULTS
from gateway.core.store import Store
from gateway.core.system import SystemService
from gateway.core.writes import WriteGate
from registers import load_default


async def bench(inverters: int, steps: int) -> None:
    store = Store()
    settings = {**DEFAULTS, "/Settings/CGwacs/MaxFeedInPower": 1000}
    OwnedDevice(store, "settings", 0, settings, frozenset()).start()
    size = 10000.0
    pv = [
        OwnedDevice(
            store,
            "pvinverter",
            i,
            {"/Ac/Power": 6000.0, "/Ac/MaxPower": size, "/Ac/PowerLimit": size, "/Connected": 1, "/Position": 0},
            frozenset({"/Ac/PowerLimit"}),
        )
        for i in range(inverters)
    ]
    for d in pv:
        d.start()
    ac_in = 0.0
    vebus = OwnedDevice(
        store,
        "vebus",
        276,
        {"/Ac/ActiveIn/L1/P": 0.0, "/Ac/Out/L1/P": 300.0, "/Ac/NumberOfPhases": 1, "/Hub4/L1/AcPowerSetpoint": 0},
        frozenset({"/Hub4/L1/AcPowerSetpoint", "/Hub4/L2/AcPowerSetpoint", "/Hub4/L3/AcPowerSetpoint"}),
    )
    vebus.start()
    store.add_device("grid", 34, None, {"/Ac/Power": 0.0, "/Connected": 1})
    store.add_device("battery", 512, None, {"/Soc": 60.0, "/Dc/0/Voltage": 52.0, "/Dc/0/Current": 10.0})
    store.add_device("tank", 20, None, {"/Level": 50.0})
    OwnedDevice(store, "generator", 0, generator_values(), frozenset({"/ManualStart"})).start()
    system = SystemService(store, serial="c0ffee000001")
    system.start()
    gate = WriteGate(store, load_default(defer_n2k=True))
    ess = Ess()
    rules = [ess, FeedInLimiter(ess=ess), Generator(), TankPump(1, 20, 30.0, 80.0)]
    runner = RuleRunner(store, gate, rules, clock=lambda: 0.0)
    loads = 500.0
    cpu = 0.0
    grid_log: list[float] = []
    for t in range(steps):
        if t == steps // 2:
            loads = 20000.0  # a step in consumption: the limiter must let PV back up
        limits = [store.get("pvinverter", i, "/Ac/PowerLimit") or size for i in range(inverters)]
        setpoint = float(store.get("vebus", 276, "/Hub4/L1/AcPowerSetpoint") or 0)
        ac_in += max(-1000.0, min(1000.0, min(setpoint, 3000.0) - ac_in))
        produced = [min(6000.0, float(limit)) for limit in limits]
        for d, w in zip(pv, produced, strict=True):
            d.publish({"/Ac/Power": w})
        grid = loads + ac_in - sum(produced)
        grid_log.append(grid)
        store.publish("grid", 34, {"/Ac/Power": grid, "/Ac/L1/Power": grid, "/Ac/L2/Power": 0.0, "/Ac/L3/Power": 0.0})
        vebus.publish({"/Ac/ActiveIn/L1/P": ac_in})
        for _ in range(3):
            await asyncio.sleep(0)  # the system service recomputes
        start = time.process_time()
        await runner.run_due(float(t))
        cpu += time.process_time() - start
    per_step_ms = cpu / steps * 1000
    half = steps // 2
    first = grid_log[:half]
    settled = next((i for i, w in enumerate(first) if w > -1100), None)
    after_step = grid_log[half:]
    print(
        f"{inverters} PV inverters, {steps} steps: {per_step_ms:.2f} ms CPU per step = {per_step_ms / 10:.2f} % of a core at 1 s"
    )
    print(
        f"limit 1000 W from {-first[0]:.0f} W export: under 1100 W after {settled} s; worst after that {min(first[settled or 0 :]):.0f} W"
    )
    back = next((i for i, w in enumerate(after_step) if abs(w + 950) <= 100), None)
    print(
        f"loads step 0.5 -> 20 kW: grid {after_step[0]:.0f} W, back within 100 W of -950 W after {back} s,"
        f" lowest {min(after_step[back or 0 :]):.0f} W; limiter: {rules[1].status}"
    )
    print(runner.status())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inverters", type=int, default=50)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(bench(args.inverters, args.steps))


if __name__ == "__main__":
    main()
