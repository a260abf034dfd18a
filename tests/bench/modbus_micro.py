"""The Python part of a Modbus read: one FC3 request through ``Connection.data_received``.

No sockets: a transport that only counts what it is handed, so what is timed is our framing,
the request handler and the reply's bytes — what is left of the server's cost once the
kernel's send/recv and the event loop are taken out (docs/BENCHMARKS.md, "Where the time
goes"). Best of 5 runs of 300,000 requests, process CPU time::

    .venv/bin/python tests/bench/modbus_micro.py
"""

from __future__ import annotations

import struct
import time
from collections.abc import Mapping

from gateway.core.store import Device, Store
from gateway.frontends.modbus.server import Connection, ModbusServer
from registers import load_default
from registers.values import Scalar

REQUESTS = 300_000
RUNS = 5


class CountingTransport:
    """Stands in for the socket: counts replies, never closes."""

    def __init__(self) -> None:
        self.replies = 0

    def write(self, data: bytes) -> None:
        self.replies += 1

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str) -> object:
        return ("127.0.0.1", 50000)

    def set_write_buffer_limits(self, high: int, low: int) -> None:
        pass


class Owner:
    async def write(self, device: Device, changes: Mapping[str, Scalar]) -> None:
        pass


def main() -> None:
    store = Store()
    server = ModbusServer(load_default(), store)
    store.subscribe(server.images)
    store.add_device("vebus", 276, Owner(), {"/Dc/0/Voltage": 12.5})
    conn = Connection(server)
    transport = CountingTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    for count in (10, 125):
        request = struct.pack(">HHHBBHH", 1, 0, 6, 227, 3, 3, count)
        best = float("inf")
        for _ in range(RUNS):
            started = time.process_time()
            for _ in range(REQUESTS):
                conn.data_received(request)
            best = min(best, (time.process_time() - started) / REQUESTS * 1e6)
        print(f"FC3 of {count:3d} registers: {best:.2f} µs of Python per request")
    assert transport.replies == 2 * RUNS * REQUESTS


if __name__ == "__main__":
    main()
