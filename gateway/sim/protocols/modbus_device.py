"""A small Modbus-TCP *device* (slave) for simulators: FC 3 / FC 4 reads of register banks.

Not the gateway's server (gateway/frontends/modbus serves the GX map to clients); this one plays a meter
or an inverter on the other side of a driver, over a real socket. It answers only its own unit
ids (others: exception 0x0B, as a TCP bridge answers for a missing device), reads that leave
the registers the device has (exception 02), and it can be told to misbehave: go offline
(connections closed, connection refused), hang (accept, never answer) or answer every read with
an exception (e.g. 04, device failure), and come back on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from dataclasses import dataclass, field
from typing import Final

HEADER: Final = struct.Struct(">HHHB")  # transaction, protocol, length, unit
READ: Final = struct.Struct(">BHH")  # function, address, count
ILLEGAL_FUNCTION, ILLEGAL_ADDRESS, ILLEGAL_VALUE, DEVICE_FAILURE, NO_RESPONSE = 0x01, 0x02, 0x03, 0x04, 0x0B


@dataclass
class RegisterBank:
    """The registers of one function code: ``words[address] -> 2 bytes``; only addresses
    present can be read."""

    words: dict[int, bytes] = field(default_factory=dict)

    def put(self, address: int, data: bytes) -> None:
        for i in range(0, len(data), 2):
            self.words[address + i // 2] = data[i : i + 2]

    def cover(self, address: int, count: int) -> None:
        """Make ``count`` registers from ``address`` readable (zeros where nothing is put)."""
        for a in range(address, address + count):
            self.words.setdefault(a, b"\x00\x00")

    def read(self, address: int, count: int) -> bytes | None:
        try:
            return b"".join(self.words[a] for a in range(address, address + count))
        except KeyError:
            return None


class ModbusDevice:
    """Serves ``banks`` (function code -> RegisterBank) for ``units`` on HOST:PORT."""

    def __init__(self, banks: dict[int, RegisterBank], units: frozenset[int] | set[int]) -> None:
        self.banks = banks
        self.units = frozenset(units)
        self.fail_with: int | None = None  # answer every read with this exception code
        self.hang = False  # accept and read requests, never answer
        self.requests = 0
        self.accepted: list[float] = []  # loop time of each connection accepted (tests measure reconnects)
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()
        self.host = "127.0.0.1"
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = await asyncio.start_server(self._serve, host, port)
        self.host, self.port = self._server.sockets[0].getsockname()[:2]

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for w in list(self._clients):
            w.close()
        if server is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await server.wait_closed()

    async def offline(self) -> None:
        """Gone from the network: open connections dropped, new ones refused."""
        await self.stop()

    async def online(self) -> None:
        """Back, on the same address and port (waiting up to 2 s while another socket holds it,
        e.g. a client that got that port number as its own while this one was away)."""
        for attempt in range(40):
            if self._server is not None:
                return
            try:
                self._server = await asyncio.start_server(self._serve, self.host, self.port)
            except OSError:
                if attempt == 39:
                    raise
                await asyncio.sleep(0.05)

    @property
    def is_online(self) -> bool:
        return self._server is not None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.add(writer)
        self.accepted.append(asyncio.get_running_loop().time())
        try:
            while True:
                head = await reader.readexactly(HEADER.size)
                tid, proto, length, unit = HEADER.unpack(head)
                if length < 2 or length > 254:
                    return
                pdu = await reader.readexactly(length - 1)
                self.requests += 1
                if self.hang or proto != 0:
                    continue
                answer = self.answer(unit, pdu)
                writer.write(HEADER.pack(tid, 0, len(answer) + 1, unit) + answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._clients.discard(writer)
            writer.close()

    def answer(self, unit: int, pdu: bytes) -> bytes:
        """The response PDU to a request PDU (pure: the register logic, tested on its own)."""
        function = pdu[0]
        if unit not in self.units:
            return bytes((function | 0x80, NO_RESPONSE))
        if function not in self.banks or len(pdu) != READ.size:
            return bytes((function | 0x80, ILLEGAL_FUNCTION))
        _, address, count = READ.unpack(pdu)
        if not 1 <= count <= 125:
            return bytes((function | 0x80, ILLEGAL_VALUE))
        if self.fail_with is not None:
            return bytes((function | 0x80, self.fail_with))
        data = self.banks[function].read(address, count)
        if data is None:
            return bytes((function | 0x80, ILLEGAL_ADDRESS))
        return bytes((function, len(data))) + data
