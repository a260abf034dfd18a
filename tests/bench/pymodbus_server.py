"""A bare pymodbus 3.16 Modbus-TCP server: the baseline for tests/bench/modbus_bench.py.

One device (unit 227) with 256 registers in a shared block, so FC3 and FC4 read the same
values, served by ``StartAsyncTcpServer`` on the default asyncio loop, as pymodbus documents.
Uses SimDevice/SimData: the 3.16 API that the deprecated ModbusDeviceContext wraps.

usage: pymodbus_server.py PORT [--unit 227]   (listens on 127.0.0.1 only)
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from pymodbus.server import StartAsyncTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

REGISTERS = 256


async def main(port: int, unit: int) -> None:
    device = SimDevice(
        id=unit,
        simdata=[SimData(0, values=[1000 + i for i in range(REGISTERS)], datatype=DataType.REGISTERS)],
    )
    print(f"listening on 127.0.0.1:{port}", flush=True)
    await StartAsyncTcpServer(device, address=("127.0.0.1", port))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--unit", type=int, default=227)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(args.port, args.unit))
