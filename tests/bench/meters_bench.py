"""Sources benchmark: 50 meters + 50 SunSpec inverters polled every second, and a /24 scan of
silent loopback addresses. The simulators run in a child process, so the CPU measured is the
gateway side's alone (process_time of this process over the window).

    .venv/bin/python tests/bench/meters_bench.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time

from gateway.core.store import Store
from gateway.sources.drivers import DRIVERS
from gateway.sources.network_scan import expand_hosts, scan
from gateway.sources.registry import SourceContext, parse_devices
from registers import load_default
from registers.meters import meter_models

CHILD = """
import asyncio, json, sys
from gateway.sim.protocols.meter_sim import MeterSimulator
from gateway.sim.protocols.sunspec_sim import SunSpecSim
from registers import load_default
from registers.meters import meter_models

async def main():
    models = meter_models(load_default())
    meters = [MeterSimulator(models["em24"]) for _ in range(50)]
    inverters = [SunSpecSim("fronius") for _ in range(50)]
    for s in meters + inverters:
        await s.start()
    print(json.dumps({"meters": [s.port for s in meters], "inverters": [s.address[1] for s in inverters]}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main())
"""


async def polling(seconds: float, ports: dict[str, list[int]]) -> dict[str, float]:
    cmap = load_default()
    tables = [
        {"driver": "meter", "host": "127.0.0.1", "port": p, "instance": 100 + i} for i, p in enumerate(ports["meters"])
    ]
    tables += [
        {"driver": "sunspec", "host": "127.0.0.1", "port": p, "unit": 1, "instance": 200 + i}
        for i, p in enumerate(ports["inverters"])
    ]
    devices = parse_devices(tables, DRIVERS)
    store = Store()
    sources = [
        DRIVERS[name].build(store, [d for d in devices if d.driver == name], SourceContext(cmap))
        for name in ("meter", "sunspec")
    ]
    for s in sources:
        await s.start()
    try:
        await asyncio.sleep(5)  # probes done, steady state
        pollers = [p for s in sources for p in s.pollers]  # type: ignore[attr-defined]
        online = sum(1 for p in pollers if store.get(p.service, p.instance, "/Connected") == 1)
        for p in pollers:
            p.latencies.clear()
        cpu0, t0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
        lat = sorted(x for p in pollers for x in p.latencies)
    finally:
        for s in sources:
            await s.stop()
    return {
        "devices online": online,
        "polls/s": len(lat) / wall,
        "cpu %": 100 * cpu / wall,
        "poll latency median ms": 1000 * statistics.median(lat),
        "poll latency p99 ms": 1000 * lat[int(0.99 * (len(lat) - 1))],
    }


async def scanning() -> dict[str, float]:
    hosts = expand_hosts(None, "127.0.2.0/24")
    cpu0, t0 = time.process_time(), time.perf_counter()
    found = await scan(hosts, [502, 1502, 80], meter_models(load_default()), timeout=0.5)
    return {
        "addresses x ports": len(hosts) * 3,
        "found": len(found),
        "seconds": time.perf_counter() - t0,
        "cpu s": time.process_time() - cpu0,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdin is not None
    try:
        poll = runner(polling(args.seconds, json.loads(child.stdout.readline())))
    finally:
        child.stdin.close()
        child.wait(10)
    sc = runner(scanning())
    print(
        f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, python {platform.python_version()}"
    )
    print(f"50 EM24 meters + 50 SunSpec inverters at 1 s, {args.seconds:g} s window:")
    for k, v in poll.items():
        print(f"  {k}: {v:.1f}")
    print("scan of 127.0.2.0/24 (silent) x ports 502,1502,80, timeout 0.5 s, concurrency 64:")
    for k, v in sc.items():
        print(f"  {k}: {v:.2f}")


if __name__ == "__main__":
    main()
