"""The HTTP frontend: the MFD app (static files), the JSON API under ``/api/v1/`` and ``/ws``.

One aiohttp application on its own socket. Reads come from the Store (``reads.py``), writes
go through the gateway's one write gate behind the web guards (``write.py``), live values
stream over the WebSocket (``ws.py``), and ``/api/v1/openapi.json`` describes all of it
(tests check the real answers against that document).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any, Final

from aiohttp import web

from gateway.core.store import Store
from gateway.core.writes import WriteGate
from gateway.frontends.http import reads, write
from gateway.frontends.http.common import CMAP_KEY, DESCRIPTION_PATH, GATE_KEY, STORE_KEY, error
from gateway.frontends.http.limits import HttpGuard, HttpLimits
from gateway.frontends.http.write import WriteGuard
from gateway.frontends.http.ws import WebSocketHub
from registers.model import CompiledMap

__all__ = ["HttpServer", "make_app", "openapi_document"]

PACKAGE: Final = resources.files("gateway.frontends.http")
NO_CACHE: Final = {"Cache-Control": "no-cache"}  # plotters keep pages forever otherwise


def openapi_document() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(PACKAGE.joinpath("openapi.json").read_text(encoding="utf-8"))
    return doc


@web.middleware
async def json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as e:  # unknown routes, wrong methods: JSON like everything else
        if e.status < 400:
            raise
        return error(e.status, e.reason)
    return response


def make_app(
    store: Store,
    cmap: CompiledMap,
    gate: WriteGate,
    guard: WriteGuard,
    hub: WebSocketHub,
    name: str = "gx-gateway",
    serial: Callable[[], str] = lambda: "000000000000",
    n2k_status: Callable[[], dict[str, Any]] | None = None,
) -> web.Application:
    app = web.Application(middlewares=[json_errors])
    app[STORE_KEY] = store
    app[CMAP_KEY] = cmap
    app[GATE_KEY] = gate
    reads.add_routes(app)
    write.add_routes(app, guard)
    app.router.add_get("/ws", hub.handle)
    spec = json.dumps(openapi_document())

    async def openapi(request: web.Request) -> web.Response:
        return web.Response(text=spec, content_type="application/json")

    app.router.add_get("/api/v1/openapi.json", openapi)

    async def n2k(request: web.Request) -> web.Response:  # the NMEA 2000 frontend's bus budget
        return web.json_response(n2k_status()) if n2k_status is not None else error(404, "NMEA 2000 is off")

    app.router.add_get("/api/v1/n2k", n2k)
    static = PACKAGE.joinpath("static")
    index = static.joinpath("index.html").read_bytes()

    async def page(request: web.Request) -> web.Response:
        return web.Response(body=index, content_type="text/html", charset="utf-8", headers=NO_CACHE)

    async def upnp(request: web.Request) -> web.Response:
        from gateway.frontends.http.ssdp import description_xml  # the UPnP library, when first asked (common.py)

        xml = description_xml(name, serial(), f"{request.scheme}://{request.host}")
        return web.Response(text=xml, content_type="text/xml")

    app.router.add_get("/", page)
    app.router.add_get(DESCRIPTION_PATH, upnp)
    app.router.add_static("/static/", str(static), append_version=False)
    return app


class HttpServer:
    """The web frontend on its own socket (bound here, so the port is known and errors are ours).

    ``gate`` is the gateway's one write gate (a private one when omitted, for tests of reads);
    ``writes``, ``token`` and ``allow`` are the ``[http]`` guards of POST /api/v1/write;
    ``name`` and ``serial`` describe the gateway to UPnP control points. ``limits`` (connection
    cap, header/body deadlines, sizes) are applied by gateway/frontends/http/limits.py.
    """

    def __init__(
        self,
        store: Store,
        cmap: CompiledMap,
        gate: WriteGate | None = None,
        *,
        writes: bool = False,
        token: str = "",
        allow: Sequence[str] = (),
        ws_send_timeout_s: float = 5.0,
        name: str = "gx-gateway",
        serial: Callable[[], str] = lambda: "000000000000",
        limits: HttpLimits | None = None,
        n2k_status: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.hub = WebSocketHub(store, send_timeout_s=ws_send_timeout_s)
        guard = WriteGuard(writes=writes, token=token, allow=tuple(allow))
        app = make_app(store, cmap, gate or WriteGate(store, cmap), guard, self.hub, name, serial, n2k_status)
        self.guard = HttpGuard(limits or HttpLimits())
        self.guard.install(app)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False, **self.guard.limits.server_options())
        self.sock: socket.socket | None = None

    async def start(self, host: str, port: int) -> None:
        """Raises OSError when the address is in use."""
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, addr = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(addr)
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        self.sock = sock
        self.hub.start()
        await self.runner.setup()
        assert self.runner.server is not None
        await self.guard.serve(self.runner.server, sock)

    @property
    def sockets(self) -> list[tuple[str, int]]:
        return [self.sock.getsockname()[:2]] if self.sock is not None else []

    async def stop(self) -> None:
        await self.guard.close()
        await self.hub.stop()
        await self.runner.cleanup()
        if self.sock is not None:
            self.sock.close()
