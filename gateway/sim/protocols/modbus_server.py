"""A small Modbus-TCP server for the device simulators (not the gateway's server).

Kept apart from gateway/frontends/modbus on purpose: a simulator must be able to misbehave the way real
devices do, which the gateway's server never should. A ``Handler`` answers FC 3/4 reads and
FC 6/16 writes for a unit id (returning an exception code to refuse); the server adds the
device-level behaviour:

- ``max_clients``: SolarEdge accepts one client; a further connection is closed at once;
- ``go_offline()`` / ``come_back()``: stop listening and drop every connection, then listen
  again on the same port (an inverter that vanishes at night);
- ``silent``: accept connections, read requests, never answer (a hung device).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from typing import Final, Protocol

log = logging.getLogger(__name__)

MBAP: Final = struct.Struct(">HHHB")
READ: Final = struct.Struct(">HH")
WRITE16: Final = struct.Struct(">HHB")


class Handler(Protocol):
    def read(self, unit: int, address: int, count: int) -> bytes | int:
        """Register bytes (possibly fewer than asked), or an exception code."""

    def write(self, unit: int, address: int, data: bytes) -> int | None:
        """None when written, else an exception code."""


class SimModbusServer:
    def __init__(self, handler: Handler, *, max_clients: int | None = None) -> None:
        self.handler = handler
        self.max_clients = max_clients
        self.silent = False
        self.host = "127.0.0.1"
        self.port = 0
        self.refused = 0  # connections closed because of max_clients
        self.requests = 0
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def online(self) -> bool:
        return self._server is not None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = await asyncio.start_server(self._serve, host, port)
        self.host, self.port = self._server.sockets[0].getsockname()[:2]

    async def go_offline(self) -> None:
        """Stop listening and drop every client (connections are then refused)."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._clients):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        if server is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await server.wait_closed()

    async def come_back(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, self.host, self.port, reuse_address=True)

    async def stop(self) -> None:
        await self.go_offline()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.max_clients is not None and len(self._clients) >= self.max_clients:
            self.refused += 1
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(writer)
        self._tasks.add(task)
        try:
            while True:
                header = await reader.readexactly(MBAP.size)
                tid, protocol, length, unit = MBAP.unpack(header)
                if protocol != 0 or not 2 <= length <= 254:
                    return
                pdu = await reader.readexactly(length - 1)
                self.requests += 1
                if self.silent:
                    continue
                answer = self._answer(unit, pdu)
                writer.write(MBAP.pack(tid, 0, len(answer) + 1, unit) + answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._clients.discard(writer)
            self._tasks.discard(task)
            writer.close()

    def _answer(self, unit: int, pdu: bytes) -> bytes:
        fc = pdu[0]
        result: bytes | int | None
        if fc in (3, 4) and len(pdu) == 5:
            address, count = READ.unpack_from(pdu, 1)
            result = self.handler.read(unit, address, count) if 0 < count <= 125 else 3
            if isinstance(result, bytes):
                return bytes((fc, len(result))) + result
        elif fc == 6 and len(pdu) == 5:
            result = self.handler.write(unit, READ.unpack_from(pdu, 1)[0], pdu[3:5])
            if result is None:
                return pdu
        elif fc == 16 and len(pdu) >= 6:
            address, count, nbytes = WRITE16.unpack_from(pdu, 1)
            data = pdu[6:]
            ok = 0 < count <= 123 and nbytes == 2 * count == len(data)
            result = self.handler.write(unit, address, data) if ok else 3
            if result is None:
                return pdu[:5]
        else:
            result = 1
        return bytes((fc | 0x80, int(result or 4)))
