"""``POST /api/v1/write``: one value, through the gateway's one write gate, behind the web guards.

Checks in this order, each with its own answer, and nothing is written unless all pass:
the client's network (``[http] allow``, 403), writes switched on (``[http] writes``, 403), the
token (``[http] token``, 401), ``Content-Type: application/json`` (415), the body size (413),
JSON (400), the body's shape (400), then the write gate: unknown device or path 404,
read-only or out of range 422 with the reason, refused by the device 422, no answer 504.
Every attempt that reaches the gate is logged with the peer address, accepted or not.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import web

from gateway.core.writes import Refusal, Writer, WriteRefused
from gateway.frontends.http.common import GATE_KEY, STORE_KEY, error, peer_of, short
from registers.model import SERVICE_PREFIX

log = logging.getLogger(__name__)

MAX_BODY: Final = 4096  # bytes; one write is well under 200
STATUS: Final = {
    Refusal.UNKNOWN_PATH: 404,
    Refusal.NO_DEVICE: 404,
    Refusal.READ_ONLY: 422,
    Refusal.BAD_VALUE: 422,
    Refusal.OWNER_REFUSED: 422,
    Refusal.FORBIDDEN: 403,
    Refusal.TIMEOUT: 504,
}
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class WriteGuard:
    """The web's own conditions before a write reaches the gate ([http] writes, token, allow)."""

    writes: bool = False
    token: str = ""
    allow: Sequence[str] = ()
    networks: tuple[Network, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "networks", tuple(ipaddress.ip_network(a, strict=False) for a in self.allow))

    def allowed(self, host: str | None) -> bool:
        if not self.networks:
            return True
        try:
            addr = ipaddress.ip_address((host or "").split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return any(addr in net for net in self.networks if net.version == addr.version)

    def refuse(self, request: web.Request) -> web.Response | None:
        """The answer for a request that may not write, or None when it may."""
        host = request.remote
        if not self.allowed(host):
            return error(403, f"{host} is not in the [http] allow list for writes")
        if not self.writes:
            return error(403, "writes are switched off ([http] writes = false)")
        if self.token:
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
                why = "a wrong token" if given else "no token"
                return error(
                    401, f"this write needs Authorization: Bearer TOKEN; got {why}", {"WWW-Authenticate": "Bearer"}
                )
        return None


GUARD_KEY = web.AppKey("guard", WriteGuard)


async def _body(request: web.Request) -> dict[str, Any] | web.Response:
    if request.content_type != "application/json":
        return error(415, f"expected Content-Type: application/json, got {request.content_type or 'none'}")
    if request.content_length is not None and request.content_length > MAX_BODY:
        return error(413, f"body of {request.content_length} bytes; at most {MAX_BODY}")
    data = bytearray()
    async for chunk in request.content.iter_chunked(1024):
        data += chunk
        if len(data) > MAX_BODY:
            return error(413, f"body over {MAX_BODY} bytes")
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        return error(400, f"malformed JSON: {e}")
    if not isinstance(body, dict):
        return error(400, 'expected a JSON object {"service", "instance", "path", "value"}')
    missing = [k for k in ("service", "instance", "path", "value") if k not in body]
    if missing:
        return error(400, f"missing {', '.join(missing)}")
    unknown = sorted(set(body) - {"service", "instance", "path", "value"})
    if unknown:
        return error(400, f"unknown field {unknown[0]}")
    if not isinstance(body["service"], str) or not isinstance(body["path"], str) or not body["path"].startswith("/"):
        return error(400, "service and path must be strings; a path starts with /")
    instance = body["instance"]
    if isinstance(instance, bool) or not isinstance(instance, int):
        return error(400, f"instance must be an integer, got {instance!r}")
    value = body["value"]
    if value is None or isinstance(value, (bool, list, dict)):
        return error(400, f"value must be a number or a string, got {json.dumps(value)}")
    return body


async def write_value(request: web.Request) -> web.Response:
    refused = request.app[GUARD_KEY].refuse(request)
    if refused is not None:
        log.info("web write from %s refused: %s", peer_of(request), json.loads(refused.text or "{}").get("error"))
        return refused
    body = await _body(request)
    if isinstance(body, web.Response):
        return body
    service, instance, path, value = short(body["service"]), body["instance"], body["path"], body["value"]
    peer = peer_of(request)
    try:
        await request.app[GATE_KEY].write(service, instance, {path: value}, Writer("http", peer))
    except WriteRefused as e:
        log.info("web write from %s: %s %d %s = %r refused: %s", peer, service, instance, path, value, e.reason)
        return error(STATUS[e.refusal], e.reason)
    log.info("web write from %s: %s %d %s = %r", peer, service, instance, path, value)
    device = request.app[STORE_KEY].device(service, instance)
    reading = device.values.get(path) if device is not None else None
    return web.json_response(
        {
            "service": SERVICE_PREFIX + service,
            "type": service,
            "instance": instance,
            "path": path,
            "value": reading.value if reading is not None and reading.valid else None,
        }
    )


def add_routes(app: web.Application, guard: WriteGuard) -> None:
    app[GUARD_KEY] = guard
    app.router.add_post("/api/v1/write", write_value)
