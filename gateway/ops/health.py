"""Health and status over HTTP: ``GET /healthz`` and ``GET /api/v1/status``.

``/healthz`` answers 200 ``{"status": "ok", ...}`` when the Store holds the gateway's own
devices, the Modbus listener is bound and every source reports itself up; otherwise 503 with
``problems`` saying what is not. Container HEALTHCHECKs and load balancers ask it (through
``gx-gateway status --health``). A component tells its own health by defining
``health(self) -> str | None`` (None = up, else why not); sources do this without importing
anything from here.

``/api/v1/status`` is the summary ``gx-gateway status`` prints: version, uptime, listeners,
connections, devices with unit ids and online state, the last warnings and errors.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway.core.components import StartupError
from gateway.core.derived import gateway_version
from gateway.core.store import Device
from gateway.ops.logs import RECENT
from gateway.sources.drivers import DRIVERS

if TYPE_CHECKING:
    from gateway.ops.view import RunningGateway

GATEWAY_KEY: web.AppKey[RunningGateway] = web.AppKey("gateway")  # the running gateway
STARTED_KEY = web.AppKey("started", float)  # time.monotonic() when the HTTP API was mounted


def device_online(device: Device) -> bool:
    """A device's ``/Connected`` when it publishes one, else whether it has any valid value."""
    connected = device.values.get("/Connected")
    if connected is not None:
        return connected.valid and connected.value == 1
    return any(r.valid for r in device.values.values())


def last_update_age(device: Device, now: float) -> float | None:
    """Seconds since the device last published anything (None: never)."""
    seen = max((r.last_seen for r in device.values.values()), default=None)
    return None if seen is None else max(0.0, now - seen)


def component_label(component: object) -> str:
    label = getattr(component, "label", None)
    return label.lower() if isinstance(label, str) else type(component).__name__


def checks(gateway: RunningGateway) -> dict[str, str]:
    """What is up ("ok") and what is not (the reason), by part."""
    found: dict[str, str] = {}
    system = gateway.store.device("system", 0)
    if gateway.starting:
        found["store"] = "starting"  # the HTTP frontend is up before the last components
    else:
        found["store"] = "ok" if gateway.running and system is not None else "the gateway is not running"
    modbus = gateway.modbus
    found["modbus"] = "ok" if modbus is not None and modbus.sockets else "the Modbus-TCP listener is not bound"
    for component in gateway.components:
        report = getattr(component, "health", None)
        if callable(report):
            why = report()
            found[component_label(component)] = "ok" if why is None else str(why)
    return found


def device_summaries(gateway: RunningGateway) -> list[dict[str, Any]]:
    now = time.monotonic()
    rows = []
    for d in sorted(gateway.store.devices(), key=lambda d: (d.service, d.instance)):
        name = d.get("/CustomName") or d.get("/ProductName")
        age = last_update_age(d, now)
        rows.append(
            {
                "service": d.service,
                "instance": d.instance,
                "unit_id": gateway.cmap.modbus.unit_for_instance(d.instance)
                if d.service in gateway.cmap.modbus.tables
                else None,
                "name": name if isinstance(name, str) else None,
                "online": device_online(d),
                "last_update_age_s": None if age is None else round(age, 1),
            }
        )
    return rows


SOURCE_KEYS = ("unit", "role", "position", "model", "meter")  # never tokens or passwords


def source_summaries(gateway: RunningGateway) -> list[dict[str, Any]]:
    """Each ``[[device]]`` that polls a device on the network: where it is (a simulator's
    address once started) and as what it is served. ``gx-gateway scan --gateway`` reads this
    to recognise devices the gateway already polls, even one that accepts a single client."""
    rows = []
    for d in gateway.devices:
        try:
            host, port = gateway.sources.endpoints.of(d)
        except (KeyError, StartupError):  # a simulated device, or a simulator not (yet) running
            continue
        service = DRIVERS[d.driver].service(d)
        device = gateway.store.device(service, d.instance)
        unused = "meter" if service == "pvinverter" else "position"  # a default that means nothing here
        keys = [k for k in SOURCE_KEYS if k != unused and d.options.get(k) is not None]
        rows.append(
            {
                "driver": d.driver,
                "host": host,
                "port": port,
                **{k: d.options[k] for k in keys},
                "service": service,
                "instance": d.instance,
                "online": device is not None and device_online(device),
            }
        )
    return rows


async def healthz(request: web.Request) -> web.Response:
    found = checks(request.app[GATEWAY_KEY])
    problems = [f"{part}: {why}" for part, why in found.items() if why != "ok"]
    body = {"status": "failing" if problems else "ok", "checks": found, "problems": problems}
    # Warnings (a settings fallback at start, a setpoint the watchdog reverted) and policy
    # counters from gateway/guards.py: worth a person's attention, never a reason to restart.
    body.update(request.app[GATEWAY_KEY].health.report())
    body["status"] = "failing" if problems else "ok"
    return web.json_response(body, status=503 if problems else 200)


async def status(request: web.Request) -> web.Response:
    gateway: RunningGateway = request.app[GATEWAY_KEY]
    modbus = gateway.modbus
    handler = modbus.handler if modbus is not None else None
    body = {
        "version": gateway_version(),
        "uptime_s": round(time.monotonic() - request.app[STARTED_KEY], 1),
        "health": checks(gateway),
        "modbus": {
            "listen": [list(s) for s in modbus.sockets] if modbus is not None else [],
            "connections": len(modbus.connections) if modbus is not None else 0,
            "refused": modbus.refused if modbus is not None else 0,
            "requests": sum(handler.requests) if handler is not None else 0,
            "exceptions": sum(handler.exceptions.values()) if handler is not None else 0,
        },
        "writes": {"accepted": gateway.gate.accepted, "refused": gateway.gate.refused},
        "mqtt": _mqtt_status(gateway),
        "control": _control_status(gateway),
        "devices": device_summaries(gateway),
        "sources": source_summaries(gateway),
        "recent_problems": list(RECENT.events),
    }
    return web.json_response(body)


def _mqtt_status(gateway: RunningGateway) -> dict[str, Any] | None:
    """The MQTT frontend's state, when [mqtt] is configured."""
    return dict(gateway.mqtt.status()) if gateway.mqtt is not None else None


def _control_status(gateway: RunningGateway) -> dict[str, Any]:
    """Each control rule's steps, writes, refusals and one-line status (gateway/control/room.py)."""
    for component in gateway.components:
        if getattr(component, "label", None) == "control" and callable(getattr(component, "status", None)):
            return dict(component.status())  # type: ignore[attr-defined]
    return {}


def add_health_routes(app: web.Application, gateway: RunningGateway) -> None:
    app[GATEWAY_KEY] = gateway
    app[STARTED_KEY] = time.monotonic()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/v1/status", status)
