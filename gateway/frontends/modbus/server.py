"""Modbus-TCP server: MBAP framing over asyncio, back-pressure, and the connection policy.

Frames are parsed in place with ``struct.unpack_from``; every complete frame in a segment
is answered, in order, and the replies of one segment go out in one write. A write request
(awaiting its owner) holds back the frames behind it, so replies never overtake each other.
A header that cannot be trusted (protocol id != 0, length < 2 or > 254) closes the
connection as soon as its first 6 bytes are in: the stream cannot be re-synchronised.

Back-pressure: the transport's high-water mark (``HIGH_WATER``) calls ``pause_writing``; the
connection then stops reading and answering until ``resume_writing``, so a client that sends
and never reads costs at most about the high-water mark plus one read buffer, however long it
goes on. Who may stay connected is decided by ``gateway.frontends.modbus.policy``; its timeouts are
checked by one periodic sweep, never by per-packet timers.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import struct
import time
from collections.abc import Mapping, Sequence
from typing import Final, cast

from gateway.core.store import Store
from gateway.core.writes import WriteGate, Writer
from gateway.frontends.modbus.images import RegisterImages
from gateway.frontends.modbus.pdu import RequestHandler, WriteReply
from gateway.frontends.modbus.policy import ConnectionPolicy, Limits
from gateway.frontends.modbus.tls import role_of_transport
from registers.model import CompiledMap

log = logging.getLogger(__name__)

HEADER: Final = struct.Struct(">HHHBB")  # tid, protocol id, length, unit, function code
PREFIX: Final = struct.Struct(">HHH")  # tid, protocol id, length: enough to judge a header
READ_ARGS: Final = struct.Struct(">HH")
READ_REQUEST: Final = struct.Struct(">HHHBBHH")  # a whole FC 3/4 request: header, start, count
READ_REQUEST_SIZE: Final = READ_REQUEST.size  # 12
MAX_PENDING_BYTES: Final = 64 * 1024  # stop reading from a client that only sends
HIGH_WATER: Final = 64 * 1024  # unsent replies above this: stop reading from that client
LOW_WATER: Final = 16 * 1024
FLUSH_FRAMES: Final = 256  # within one segment, hand replies to the transport every this many


class Connection(asyncio.Protocol):
    __slots__ = (
        "buf",
        "first_request",
        "frame_started",
        "handler",
        "host",
        "last_request",
        "last_rx",
        "paused_since",
        "peer",
        "requests",
        "server",
        "transport",
        "waiting",
        "writer",
    )

    def __init__(self, server: ModbusServer) -> None:
        self.server = server
        self.handler = server.handler
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiting: asyncio.Future[None] | None = None
        self.last_rx = time.monotonic()
        self.frame_started = 0.0  # when the partial frame in buf began (0.0: none)
        self.requests = 0  # frames answered
        self.first_request = self.last_request = 0.0
        self.paused_since = 0.0  # when the client stopped reading its replies (0.0: it reads)
        self.host = "?"
        self.peer = "?"
        self.writer = Writer(server.frontend)

    @property
    def busy(self) -> bool:
        return self.waiting is not None

    # --- asyncio callbacks ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.host = str(peer[0]) if peer else "?"
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        role = self.server.role_of(transport) if self.server.tls is not None else None
        self.writer = Writer(self.server.frontend, self.peer, role)
        self.transport.set_write_buffer_limits(high=HIGH_WATER, low=LOW_WATER)
        if not self.server.policy.admit(self, time.monotonic()):
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.policy.forget(self)
        if self.waiting is not None:
            self.waiting.cancel()

    def pause_writing(self) -> None:
        self.paused_since = time.monotonic()
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.paused_since = 0.0
        if self.waiting is None:
            self._resume()

    def data_received(self, data: bytes) -> None:
        self.last_rx = now = time.monotonic()
        # The fast path, most segments of a polling client: exactly one read request, nothing
        # pending. It answers what _process would, minus its loop (see docs/BENCHMARKS.md).
        if len(data) == READ_REQUEST_SIZE and self.waiting is None and not self.paused_since and not self.buf:
            tid, pid, length, unit, fc, start, count = READ_REQUEST.unpack(data)
            transport = self.transport
            if pid == 0 and length == 6 and (fc == 3 or fc == 4) and transport is not None:
                if not transport.is_closing():
                    transport.write(self.handler.read(tid, unit, fc, start, count))
                    if not self.requests:
                        self.first_request = now
                    self.requests += 1
                    self.last_request = now
                    if self.frame_started:
                        self.frame_started = 0.0
                return
        if self.waiting is not None or self.paused_since or self.buf:
            self.buf += data
            if self.waiting is not None or self.paused_since:
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
                self._malformed(out, pid, length)
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
                    self._answered(out)
                    self.buf += data[end:]
                    self.frame_started = 0.0
                    self.waiting = asyncio.ensure_future(self._finish(result))
                    return
            pos = end
            if len(out) >= FLUSH_FRAMES:
                self._answered(out)
                out = []
                if self.paused_since:  # the client does not keep up: the rest waits in buf
                    self.buf += data[pos:]
                    self.frame_started = 0.0
                    return
        if 6 <= n - pos < 8:  # judge a header as soon as its length field is in
            _, pid, length = PREFIX.unpack_from(data, pos)
            if pid != 0 or length < 2 or length > 254:
                self._malformed(out, pid, length)
                return
        if out:  # _answered, inlined: this is the hot path
            transport.write(out[0] if len(out) == 1 else b"".join(out))
            if not self.requests:
                self.first_request = self.last_rx
            self.requests += len(out)
            self.last_request = self.last_rx
        if pos < n:
            self.buf += data[pos:]
            if pos or not self.frame_started:
                self.frame_started = self.last_rx
        elif self.frame_started:
            self.frame_started = 0.0

    def _answered(self, out: list[bytes]) -> None:
        if not out:
            return
        assert self.transport is not None
        self.transport.write(out[0] if len(out) == 1 else b"".join(out))
        if not self.requests:
            self.first_request = self.last_rx
        self.requests += len(out)
        self.last_request = self.last_rx

    def _malformed(self, out: list[bytes], pid: int, length: int) -> None:
        self._answered(out)
        self.server.policy.count_malformed(self.peer, pid, length)
        assert self.transport is not None
        self.transport.close()

    async def _finish(self, pending: WriteReply) -> None:
        try:
            reply = await pending
        finally:
            self.waiting = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self._answered([reply])
        if not self.paused_since:
            self._resume()

    def _resume(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.resume_reading()
        if self.buf:
            data = bytes(self.buf)
            self.buf.clear()
            self._process(data)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class ModbusServer:
    """The Modbus-TCP frontend: register images + request handler + listening socket.

    With ``tls`` (an ``ssl.SSLContext`` requiring client certificates) it is a Modbus/TCP
    Security listener: each client's role comes from its certificate (``role_of``) and
    travels with its writes to the write gate, which decides what that role may write."""

    def __init__(
        self,
        cmap: CompiledMap,
        store: Store,
        *,
        writes: bool = True,
        allow: Sequence[str] = (),
        max_connections: int = 64,
        max_per_address: int = 16,
        idle_timeout_s: float = 120.0,
        frame_timeout_s: float = 5.0,
        send_timeout_s: float = 30.0,
        invalid_zero: bool = False,
        write_timeout_s: float = 2.0,
        gate: WriteGate | None = None,
        tls: ssl.SSLContext | None = None,
        roles: Mapping[str, str] | None = None,
    ) -> None:
        self.store = store
        self.gate = gate if gate is not None else WriteGate(store, cmap)
        self.images = RegisterImages(cmap, invalid_zero=invalid_zero)
        self.handler = RequestHandler(
            cmap, self.images.by_service, self.gate, writes=writes, write_timeout_s=write_timeout_s
        )
        self.limits = Limits(max_connections, max_per_address, idle_timeout_s, frame_timeout_s, send_timeout_s)
        self.policy = ConnectionPolicy(self.limits, allow)
        self.tls = tls
        self.frontend = "modbus-tls" if tls is not None else "modbus"
        if roles is not None:
            self.gate.roles.update(roles)
        self._server: asyncio.Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._unsubscribe = store.subscribe(self.images)

    @property
    def connections(self) -> set[Connection]:
        return cast(set[Connection], self.policy.connections)

    @property
    def refused(self) -> int:
        return self.policy.refused

    @property
    def sockets(self) -> list[tuple[str, int]]:
        if self._server is None:
            return []
        return [s.getsockname()[:2] for s in self._server.sockets]

    @property
    def port(self) -> int:
        return self.sockets[0][1]

    def role_of(self, transport: asyncio.BaseTransport) -> str:
        return role_of_transport(transport)

    async def start(self, host: str, port: int) -> None:
        """Listen (port 0 = an ephemeral port); raises OSError when the address is in use."""
        loop = asyncio.get_running_loop()
        if self.tls is not None:
            self._server = await loop.create_server(
                lambda: Connection(self), host, port, reuse_address=True, ssl=self.tls, ssl_handshake_timeout=10.0
            )
        else:
            self._server = await loop.create_server(lambda: Connection(self), host, port, reuse_address=True)
        self._ticker = asyncio.create_task(self._tick())

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.abort()
        if self._server is not None:
            await self._server.wait_closed()
        self._unsubscribe()

    async def _tick(self) -> None:
        """A few times a second: refresh clock-driven registers, apply the connection policy."""
        lim = self.limits
        period = max(0.05, min(1.0, lim.idle_timeout_s / 4, lim.frame_timeout_s / 4, lim.send_timeout_s / 4))
        while True:
            await asyncio.sleep(period)
            self.images.refresh_volatile()
            self.policy.sweep(time.monotonic())
