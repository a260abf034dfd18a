"""``gx-gateway simulate KIND``: SunSpec inverter simulators as a process of their own.

For trying ``gx-gateway run --config`` against "hardware" (a ``[[device]]`` with
``host``/``port``), for watching a device vanish (stop this process) and come back (start it
again on the same port), and for the sources benchmark (``--count 100``: one simulator per
port, consecutive ports from ``--listen``'s; port 0 = any free ports, printed).
"""

from __future__ import annotations

import asyncio
import signal

from gateway.sim.protocols.sunspec_sim import SunSpecSim


async def serve(kind: str, host: str, port: int, count: int, day_s: float, start_hour: float) -> None:
    sims = [
        SunSpecSim(kind, serial=f"SIM{i + 1:04d}", day_s=day_s, start_hour=start_hour, seed=i) for i in range(count)
    ]
    for i, sim in enumerate(sims):
        await sim.start(host, port + i if port else 0)
        h, p = sim.address
        serial = sim.image.raw(sim.image.slots[0], "SN")
        print(f"{kind} SunSpec simulator on {h}:{p} unit {sim.profile.unit} (serial {serial})")
    print(f"{count} simulator(s) running; Ctrl-C stops.", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sim in sims:
            await sim.stop()
