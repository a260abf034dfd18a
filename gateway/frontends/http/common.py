"""What the web handlers share: the app keys, service names, JSON errors, value entries.

Conventions (docs/api.md): paths versioned under ``/api/v1/``; a service may be named by its
short type (``battery``) or in full (``com.victronenergy.battery``); errors are JSON
``{"error": "..."}``; an invalid value is ``null``, never 0.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from gateway.core.store import Reading, Store
from gateway.core.writes import WriteGate
from registers.model import SERVICE_PREFIX, CompiledMap

STORE_KEY = web.AppKey("store", Store)
CMAP_KEY = web.AppKey("cmap", CompiledMap)
GATE_KEY = web.AppKey("gate", WriteGate)

# The UPnP device description SSDP points to; served with or without SSDP, so the route is
# here and the UPnP library (gateway/frontends/http/ssdp.py) is imported at the first request of it.
DESCRIPTION_PATH: Final = "/upnp/description.xml"


def short(service: str) -> str:
    """``com.victronenergy.battery`` -> ``battery``; a short name stays as it is."""
    return service[len(SERVICE_PREFIX) :] if service.startswith(SERVICE_PREFIX) else service


def error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def reading(v: Reading) -> dict[str, Any]:
    return {"value": v.value if v.valid else None, "valid": v.valid, "timestamp": round(v.changed, 3)}


def peer_of(request: web.Request) -> str:
    """``host:port`` of the client, for the write log."""
    peer = request.transport.get_extra_info("peername") if request.transport is not None else None
    return f"{peer[0]}:{peer[1]}" if peer else "?"
