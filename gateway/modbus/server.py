"""Modbus-TCP server: MBAP framing over asyncio, connection limits, allow-list, idle timeout.

Frames are parsed in place with ``struct.unpack_from``; every complete frame in a segment
is answered, in order, and the replies of one segment go out in one write. A write request
(awaiting its owner) holds back the frames behind it, so replies never overtake each other.
A header that cannot be trusted (protocol id != 0, length < 2 or > 254) closes the
connection: the stream cannot be re-synchronised. Idle connections are swept by one
periodic task, not per-packet timers.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import struct
import time
from collections.abc import Sequence
from typing import Final, cast

from gateway.modbus.images import RegisterImages
from gateway.modbus.pdu import RequestHandler, WriteReply
from gateway.store import Store
from gateway.writes import WriteGate, Writer
from registers.model import CompiledMap

log = logging.getLogger(__name__)

HEADER: Final = struct.Struct(">HHHBB")  # tid, protocol id, length, unit, function code
READ_ARGS: Final = struct.Struct(">HH")
MAX_PENDING_BYTES: Final = 64 * 1024  # stop reading from a client that only sends
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Connection(asyncio.Protocol):
    __slots__ = ("buf", "handler", "last_rx", "peer", "server", "transport", "waiting", "writer")

    def __init__(self, server: ModbusServer) -> None:
        self.server = server
        self.handler = server.handler
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiting: asyncio.Future[None] | None = None
        self.last_rx = time.monotonic()
        self.peer = "?"
        self.writer = Writer("modbus")

    # --- asyncio callbacks ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.writer = Writer("modbus", self.peer)
        if not self.server.admit(self, peer[0] if peer else None):
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.forget(self)
        if self.waiting is not None:
            self.waiting.cancel()

    def data_received(self, data: bytes) -> None:
        self.last_rx = time.monotonic()
        if self.waiting is not None or self.buf:
            self.buf += data
            if self.waiting is not None:
                if len(self.buf) > MAX_PENDING_BYTES and self.transport is not None:
                    self.transport.pause_reading()
                return
            data = bytes(self.buf)
            self.buf.clear()
        self._process(data)

    # --- framing ---------------------------------------------------------------------------
    def _process(self, data: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        handler = self.handler
        n = len(data)
        pos = 0
        out: list[bytes] = []
        while n - pos >= 8:
            tid, pid, length, unit, fc = HEADER.unpack_from(data, pos)
            if pid != 0 or length < 2 or length > 254:
                if out:
                    transport.write(b"".join(out))
                log.info("%s: malformed MBAP header (protocol %d, length %d); closing", self.peer, pid, length)
                transport.close()
                return
            end = pos + 6 + length
            if end > n:
                break
            if (fc == 3 or fc == 4) and length == 6:
                start, count = READ_ARGS.unpack_from(data, pos + 8)
                out.append(handler.read(tid, unit, fc, start, count))
            else:
                result = handler.handle(tid, unit, fc, data[pos + 8 : end], self.writer)
                if isinstance(result, bytes):
                    out.append(result)
                else:  # a write awaiting its owner: everything behind it waits
                    if out:
                        transport.write(b"".join(out))
                    self.buf += data[end:]
                    self.waiting = asyncio.ensure_future(self._finish(result))
                    return
            pos = end
        if out:
            transport.write(out[0] if len(out) == 1 else b"".join(out))
        if pos < n:
            self.buf += data[pos:]

    async def _finish(self, pending: WriteReply) -> None:
        try:
            reply = await pending
        finally:
            self.waiting = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(reply)
        transport.resume_reading()
        if self.buf:
            data = bytes(self.buf)
            self.buf.clear()
            self._process(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class ModbusServer:
    """The Modbus-TCP frontend: register images + request handler + listening socket."""

    def __init__(
        self,
        cmap: CompiledMap,
        store: Store,
        *,
        writes: bool = True,
        allow: Sequence[str] = (),
        max_connections: int = 64,
        idle_timeout_s: float = 120.0,
        invalid_zero: bool = False,
        write_timeout_s: float = 2.0,
        gate: WriteGate | None = None,
    ) -> None:
        self.store = store
        self.gate = gate if gate is not None else WriteGate(store, cmap)
        self.images = RegisterImages(cmap, invalid_zero=invalid_zero)
        self.handler = RequestHandler(
            cmap, self.images.by_service, self.gate, writes=writes, write_timeout_s=write_timeout_s
        )
        self.allow: tuple[Network, ...] = tuple(ipaddress.ip_network(a, strict=False) for a in allow)
        self.max_connections = max_connections
        self.idle_timeout_s = idle_timeout_s
        self.connections: set[Connection] = set()
        self._server: asyncio.Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._unsubscribe = store.subscribe(self.images)
        self.refused = 0

    @property
    def sockets(self) -> list[tuple[str, int]]:
        if self._server is None:
            return []
        return [s.getsockname()[:2] for s in self._server.sockets]

    @property
    def port(self) -> int:
        return self.sockets[0][1]

    async def start(self, host: str, port: int) -> None:
        """Listen (port 0 = an ephemeral port); raises OSError when the address is in use."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: Connection(self), host, port, reuse_address=True)
        self._ticker = asyncio.create_task(self._tick())

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.abort()
        if self._server is not None:
            await self._server.wait_closed()
        self._unsubscribe()

    # --- connection policy -----------------------------------------------------------------
    def admit(self, conn: Connection, host: str | None) -> bool:
        if self.allow and not self._allowed(host):
            log.info("%s: not in the allow-list; closed", conn.peer)
            self.refused += 1
            return False
        if len(self.connections) >= self.max_connections:
            idle = [c for c in self.connections if c.waiting is None and not c.buf]
            if not idle:
                log.warning("%s: %d connections, none idle; refused", conn.peer, len(self.connections))
                self.refused += 1
                return False
            oldest = min(idle, key=lambda c: c.last_rx)
            log.info("%s: connection limit; closing the oldest idle connection %s", conn.peer, oldest.peer)
            self.connections.discard(oldest)
            oldest.close()
        self.connections.add(conn)
        return True

    def forget(self, conn: Connection) -> None:
        self.connections.discard(conn)

    def _allowed(self, host: str | None) -> bool:
        if host is None:
            return False
        try:
            addr = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return any(addr in net for net in self.allow if net.version == addr.version)

    async def _tick(self) -> None:
        """Once a period: refresh clock-driven registers and close idle connections."""
        period = max(0.05, min(1.0, self.idle_timeout_s / 4))
        while True:
            await asyncio.sleep(period)
            self.images.refresh_volatile()
            deadline = time.monotonic() - self.idle_timeout_s
            for conn in [c for c in self.connections if c.last_rx < deadline and c.waiting is None]:
                log.info("%s: idle for %g s; closing", conn.peer, self.idle_timeout_s)
                conn.close()
