"""JSON API over the Store (read-only for now): ``/api/v1/...`` on aiohttp.

Conventions (docs N2K-AND-MFD.md): paths versioned under ``/api/v1/``; a service may be
named by its short type (``battery``) or in full (``com.victronenergy.battery``); errors
are JSON ``{"error": "..."}`` with 404 for an unknown device or path.
"""

from __future__ import annotations

import socket
from typing import Any

from aiohttp import web

from gateway.health import Health
from gateway.mfd.limits import HttpGuard, HttpLimits
from gateway.store import Device, Reading, Store
from registers.model import SERVICE_PREFIX, CompiledMap

STORE_KEY = web.AppKey("store", Store)
CMAP_KEY = web.AppKey("cmap", CompiledMap)


def _short(service: str) -> str:
    return service[len(SERVICE_PREFIX) :] if service.startswith(SERVICE_PREFIX) else service


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _value(v: Reading) -> dict[str, Any]:
    return {"value": v.value if v.valid else None, "valid": v.valid, "timestamp": round(v.changed, 3)}


def _summary(device: Device, cmap: CompiledMap) -> dict[str, Any]:
    return {
        "service": SERVICE_PREFIX + device.service,
        "type": device.service,
        "instance": device.instance,
        "unit_id": cmap.modbus.unit_for_instance(device.instance) if device.service in cmap.modbus.tables else None,
    }


def _device(request: web.Request) -> Device | web.Response:
    service = _short(request.match_info["service"])
    try:
        instance = int(request.match_info["instance"])
    except ValueError:
        return _error(404, f"instance {request.match_info['instance']!r} is not a number")
    device = request.app[STORE_KEY].device(service, instance)
    if device is None:
        return _error(404, f"no device {service} instance {instance}")
    return device


async def list_devices(request: web.Request) -> web.Response:
    store, cmap = request.app[STORE_KEY], request.app[CMAP_KEY]
    devices = sorted(store.devices(), key=lambda d: (d.service, d.instance))
    return web.json_response({"devices": [_summary(d, cmap) for d in devices]})


async def get_device(request: web.Request) -> web.Response:
    device = _device(request)
    if isinstance(device, web.Response):
        return device
    body = _summary(device, request.app[CMAP_KEY])
    body["values"] = {p: _value(v) for p, v in sorted(device.values.items())}
    return web.json_response(body)


async def get_value(request: web.Request) -> web.Response:
    device = _device(request)
    if isinstance(device, web.Response):
        return device
    path = "/" + request.match_info["path"]
    v = device.values.get(path)
    if v is None:
        return _error(404, f"{device.service} instance {device.instance} has no path {path}")
    return web.json_response({"path": path, **_value(v)})


@web.middleware
async def json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as e:  # unknown routes, wrong methods: JSON like everything else
        return _error(e.status, e.reason)
    return response


def make_app(store: Store, cmap: CompiledMap) -> web.Application:
    app = web.Application(middlewares=[json_errors])
    app[STORE_KEY] = store
    app[CMAP_KEY] = cmap
    app.router.add_get("/api/v1/devices", list_devices)
    app.router.add_get("/api/v1/devices/{service}/{instance}", get_device)
    app.router.add_get("/api/v1/devices/{service}/{instance}/{path:.+}", get_value)
    return app


class HttpServer:
    """The JSON API on its own socket (bound here, so the port is known and errors are ours).
    Its limits and ``/healthz`` live in gateway/mfd/limits.py."""

    def __init__(
        self, store: Store, cmap: CompiledMap, limits: HttpLimits | None = None, health: Health | None = None
    ) -> None:
        app = make_app(store, cmap)
        self.guard = HttpGuard(limits or HttpLimits())
        self.guard.install(app)
        if health is not None:
            health.add_route(app)
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
        await self.runner.setup()
        assert self.runner.server is not None
        await self.guard.serve(self.runner.server, sock)

    @property
    def sockets(self) -> list[tuple[str, int]]:
        return [self.sock.getsockname()[:2]] if self.sock is not None else []

    async def stop(self) -> None:
        await self.guard.close()
        await self.runner.cleanup()
        if self.sock is not None:
            self.sock.close()
