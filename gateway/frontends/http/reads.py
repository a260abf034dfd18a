"""The read side of the JSON API: devices, values, the register list, what paths mean.

All answers come from the Store and the compiled map as they are at the request; nothing is
cached here, so a value read right after a change (or a write) is the new one.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.core.store import Device
from gateway.frontends.http.common import CMAP_KEY, STORE_KEY, error, reading, short
from registers.docs import render_csv
from registers.model import SERVICE_PREFIX, CompiledMap, PathSpec


def _summary(device: Device, cmap: CompiledMap) -> dict[str, Any]:
    return {
        "service": SERVICE_PREFIX + device.service,
        "type": device.service,
        "instance": device.instance,
        "unit_id": cmap.modbus.unit_for_instance(device.instance) if device.service in cmap.modbus.tables else None,
    }


def _device(request: web.Request) -> Device | web.Response:
    service = short(request.match_info["service"])
    try:
        instance = int(request.match_info["instance"])
    except ValueError:
        return error(404, f"instance {request.match_info['instance']!r} is not a number")
    device = request.app[STORE_KEY].device(service, instance)
    if device is None:
        return error(404, f"no device {service} instance {instance}")
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
    body["values"] = {p: reading(v) for p, v in sorted(device.values.items())}
    return web.json_response(body)


async def get_value(request: web.Request) -> web.Response:
    device = _device(request)
    if isinstance(device, web.Response):
        return device
    path = "/" + request.match_info["path"]
    v = device.values.get(path)
    if v is None:
        return error(404, f"{device.service} instance {device.instance} has no path {path}")
    return web.json_response({"path": path, **reading(v)})


async def list_values(request: web.Request) -> web.Response:
    """Every value, or those of ``?service=&instance=&path=`` (each optional); 404 when a given
    filter matches nothing, 400 when the instance is not a number."""
    q = request.query
    service = short(q["service"]) if "service" in q else None
    instance: int | None = None
    if "instance" in q:
        try:
            instance = int(q["instance"])
        except ValueError:
            return error(400, f"instance {q['instance']!r} is not a number")
    path = q.get("path")
    devices = [d for d in request.app[STORE_KEY].devices(service) if instance is None or d.instance == instance]
    if (service is not None or instance is not None) and not devices:
        what = " ".join(x for x in (service, None if instance is None else f"instance {instance}") if x)
        return error(404, f"no device {what}")
    out = []
    for d in sorted(devices, key=lambda d: (d.service, d.instance)):
        items = sorted(d.values.items()) if path is None else [(path, d.values[path])] if path in d.values else []
        for p, v in items:
            out.append(
                {
                    "service": SERVICE_PREFIX + d.service,
                    "type": d.service,
                    "instance": d.instance,
                    "path": p,
                    **reading(v),
                }
            )
    if path is not None and not out:
        return error(404, f"no device has a value at {path}")
    return web.json_response({"values": out})


async def list_registers(request: web.Request) -> web.StreamResponse:
    """The compiled Modbus map: JSON (default) or ``?format=csv`` (the reference's columns)."""
    cmap = request.app[CMAP_KEY]
    fmt = request.query.get("format", "json")
    if fmt == "csv":
        return web.Response(text=render_csv(cmap), content_type="text/csv")
    if fmt != "json":
        return error(400, f"format {fmt!r}: expected json or csv")
    registers = []
    for table in sorted(cmap.modbus.tables.values(), key=lambda t: t.low):
        for r in table.registers:
            if r.reserved:
                continue
            registers.append(
                {
                    "service": table.service,
                    "path": r.path,
                    "register": r.address,
                    "type": r.codec.name,
                    "scale": r.scale,
                    "writable": r.writable,
                    "unit": r.spec.unit if r.spec is not None else "",
                }
            )
    return web.json_response({"registers": registers, "unit_ids": _unit_ids(cmap)})


def _unit_ids(cmap: CompiledMap) -> dict[str, int]:
    """The exceptions of unit_ids.csv: unit id -> device instance (other units are their instance)."""
    return {str(unit): instance for unit, instance in sorted(cmap.modbus.unit_ids.items())}


def path_meaning(spec: PathSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"unit": spec.unit, "writable": spec.writable, "text": spec.text}
    if spec.lookup is not None:
        out["labels"] = {(str(a) if a == b else f"{a}-{b}"): t for a, b, t in spec.lookup.entries}
    if spec.minimum is not None:
        out["minimum"] = spec.minimum
    if spec.maximum is not None:
        out["maximum"] = spec.maximum
    return out


async def list_paths(request: web.Request) -> web.Response:
    """What each path of a service type means (unit, labels of an enum, writable, range)."""
    paths = request.app[CMAP_KEY].paths
    wanted = [short(s) for s in request.query["service"].split(",")] if "service" in request.query else sorted(paths)
    unknown = [s for s in wanted if s not in paths]
    if unknown:
        return error(404, f"unknown service type {unknown[0]}")
    return web.json_response(
        {"services": {s: {p: path_meaning(spec) for p, spec in sorted(paths[s].items())} for s in wanted}}
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/devices", list_devices)
    app.router.add_get("/api/v1/devices/{service}/{instance}", get_device)
    app.router.add_get("/api/v1/devices/{service}/{instance}/{path:.+}", get_value)
    app.router.add_get("/api/v1/values", list_values)
    app.router.add_get("/api/v1/registers", list_registers)
    app.router.add_get("/api/v1/paths", list_paths)
