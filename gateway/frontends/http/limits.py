"""HTTP hardening: a connection cap, header and body deadlines, size limits, a file-descriptor
budget, and ``/healthz``. Kept apart from the API module so the API can grow freely.

Without these, 50 half-sent requests stayed open for minutes, and a few hundred of them took
the process's file descriptors (1024 under systemd) from Modbus. Now:

- ``HttpGuard.serve`` listens with each aiohttp protocol wrapped in ``Guarded``: over
  ``max_connections`` a newcomer is closed at once; one sweep a second closes connections
  whose request headers are not complete ``header_timeout_s`` after their first byte (or
  after connecting), so a trickle cannot hold a slot.
- The body must arrive within ``body_timeout_s`` of the request (checked by the same sweep,
  without consuming it: handlers read it as they like); a declared body above
  ``max_body_bytes`` is refused with 413. Header lines and fields are limited to
  ``max_header_bytes`` and ``max_headers`` by aiohttp's parser (431/400).
- ``raise_nofile`` lifts the soft RLIMIT_NOFILE to the hard limit (at most 65536) at start,
  and ``http_budget`` caps HTTP connections so Modbus keeps its share of descriptors (both,
  and ``HttpLimits``, live in gateway/frontends/http/fd_budget.py, which does not import aiohttp).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import cast

from aiohttp import web

from gateway.core.loglimit import Throttle
from gateway.frontends.http.fd_budget import HttpLimits, http_budget, raise_nofile

__all__ = ["Guarded", "HttpGuard", "HttpLimits", "http_budget", "raise_nofile"]

log = logging.getLogger(__name__)

NEW, RECEIVING, HANDLING, IDLE = range(4)


class Guarded(asyncio.Protocol):
    """aiohttp's protocol for one connection, with the state the guard's sweep needs."""

    def __init__(self, guard: HttpGuard, inner: asyncio.Protocol) -> None:
        self.guard = guard
        self.inner = inner
        self.transport: asyncio.Transport | None = None
        self.state = NEW
        self.since = time.monotonic()
        self.admitted = False
        self.body: web.Request | None = None  # a request whose body is still on its way
        self.body_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's do not subclass it
        if not self.guard.admit(self):
            self.transport.abort()
            return
        self.admitted = True
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.state in (NEW, IDLE):
            self.state, self.since = RECEIVING, time.monotonic()
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.admitted else None

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.forget(self)
        if self.admitted:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HttpGuard:
    def __init__(self, limits: HttpLimits) -> None:
        self.limits = limits
        self.connections: dict[asyncio.Transport, Guarded] = {}
        self.counts: Counter[str] = Counter()
        self.throttle = Throttle(log)
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None

    def install(self, app: web.Application) -> None:
        app.middlewares.append(self.middleware)

    def admit(self, conn: Guarded) -> bool:
        if len(self.connections) >= self.limits.max_connections:
            self._count("refused: connection limit", f"{self.limits.max_connections} open")
            return False
        assert conn.transport is not None
        self.connections[conn.transport] = conn
        return True

    def forget(self, conn: Guarded) -> None:
        if conn.transport is not None:
            self.connections.pop(conn.transport, None)

    def _count(self, cause: str, detail: str) -> None:
        self.counts[cause] += 1
        self.throttle.log(cause, logging.WARNING, "HTTP: %s (%s)", cause, detail)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        transport = request.transport
        conn = self.connections.get(transport) if transport is not None else None
        if conn is not None:
            conn.state = HANDLING
            if request.can_read_body:
                conn.body, conn.body_since = request, time.monotonic()
        try:
            declared = request.content_length
            if request.can_read_body and declared is not None and declared > self.limits.max_body_bytes:
                self._count("refused: body too large", f"{declared} bytes")
                return web.json_response({"error": "request body too large"}, status=413)
            return await handler(request)
        finally:
            if conn is not None:
                conn.state, conn.since = IDLE, time.monotonic()

    async def serve(self, server: Callable[[], asyncio.Protocol], sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: Guarded(self, server()), sock=sock)
        self._sweeper = asyncio.create_task(self._sweep(), name="http guard")

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
            for transport in list(self.connections):
                transport.abort()
            await self._server.wait_closed()

    async def _sweep(self) -> None:
        period = min(1.0, self.limits.header_timeout_s / 4, self.limits.body_timeout_s / 4)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for transport, conn in list(self.connections.items()):
                if conn.body is not None and conn.body.content.is_eof():
                    conn.body = None
                if conn.state in (NEW, RECEIVING) and now - conn.since > self.limits.header_timeout_s:
                    cause, limit = "closed: request headers not received in time", self.limits.header_timeout_s
                elif conn.body is not None and now - conn.body_since > self.limits.body_timeout_s:
                    cause, limit = "closed: body not received in time", self.limits.body_timeout_s
                else:
                    continue
                self._count(cause, f"{limit:g} s")
                self.connections.pop(transport, None)
                transport.abort()
            self.throttle.flush()
