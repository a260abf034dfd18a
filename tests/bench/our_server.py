"""gx-gateway's Modbus server alone, for tests/bench/modbus_bench.py when ``gx-gateway demo``
is not available: the full register map, one vebus device (instance 276 = unit 227), uvloop.

With --profile FILE, the run is under cProfile and the stats are written to FILE on SIGTERM
or SIGINT (inspect with ``python -m pstats FILE``).

usage: our_server.py PORT [--profile FILE]   (listens on 127.0.0.1 only)
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import signal

import uvloop

from gateway.core.store import Store
from gateway.frontends.modbus.server import ModbusServer
from registers import load_default

VEBUS = {
    "/Mode": 3,
    "/State": 9,
    "/Ac/ActiveIn/L1/V": 230.1,
    "/Ac/ActiveIn/L1/I": 4.2,
    "/Ac/ActiveIn/L1/F": 50.0,
    "/Ac/ActiveIn/L1/P": 950,
    "/Ac/Out/L1/V": 230.0,
    "/Ac/Out/L1/P": 900,
    "/Dc/0/Voltage": 52.3,
    "/Dc/0/Current": -12.5,
    "/Soc": 81.5,
}


async def serve(port: int) -> None:
    store = Store()
    store.add_device("vebus", 276, values=VEBUS)
    server = ModbusServer(load_default(), store)
    await server.start("127.0.0.1", port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"listening on 127.0.0.1:{server.port}", flush=True)
    try:
        await stop.wait()
    finally:
        await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--profile", metavar="FILE", help="run under cProfile; write stats here on exit")
    args = parser.parse_args()
    if args.profile is None:
        uvloop.run(serve(args.port))
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        uvloop.run(serve(args.port))
    finally:
        profiler.disable()
        profiler.dump_stats(args.profile)


if __name__ == "__main__":
    main()
