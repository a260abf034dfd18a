"""Home Assistant MQTT discovery (``homeassistant_discovery = true``): retained documents under
``homeassistant/<component>/<node>/<object>/config``, so a plain Home Assistant with its MQTT
integration shows the installation without any Victron add-on.

One HA device per gateway device; a sensor per path the compiled map knows (device class,
state class and unit from the path's unit), a number or select for writable paths (commands
go to the Venus ``W/`` topic, so through the write gate), availability from ``/Connected``.
The values are the Venus ``N/`` topics themselves; since a plain HA sends no Venus keep-alive,
the frontend publishes changes all the time while discovery is on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any, Final

from gateway.core.store import Device
from gateway.frontends.mqtt.topics import Topics
from registers.model import CompiledMap, PathSpec

PREFIX: Final = "homeassistant"
# unit in the compiled map -> (HA unit, device class, state class)
UNITS: Final[dict[str, tuple[str, str | None, str]]] = {
    "W": ("W", "power", "measurement"),
    "W DC": ("W", "power", "measurement"),
    "W AC": ("W", "power", "measurement"),
    "kWh": ("kWh", "energy", "total_increasing"),
    "V": ("V", "voltage", "measurement"),
    "V DC": ("V", "voltage", "measurement"),
    "V AC": ("V", "voltage", "measurement"),
    "A": ("A", "current", "measurement"),
    "A DC": ("A", "current", "measurement"),
    "A AC": ("A", "current", "measurement"),
    "Hz": ("Hz", "frequency", "measurement"),
    "%": ("%", None, "measurement"),
    "Ah": ("Ah", None, "measurement"),
    "Degrees celsius": ("°C", "temperature", "measurement"),
    "Degrees Celsius": ("°C", "temperature", "measurement"),
    "Degrees centigrade": ("°C", "temperature", "measurement"),
    "RPM": ("rpm", None, "measurement"),
    "kPa": ("kPa", "pressure", "measurement"),
    "hPa": ("hPa", "pressure", "measurement"),
}
SKIP: Final = frozenset({"/DeviceInstance", "/ProductId", "/Connected", "/Mgmt/Connection", "/ProductName"})


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


class Discovery:
    def __init__(self, cmap: CompiledMap, topics: Topics, writes: bool) -> None:
        self.paths = cmap.paths
        self.topics = topics
        self.writes = writes
        self.announced: dict[tuple[str, int], set[str]] = {}  # device -> paths with a document

    def forget(self) -> None:
        """A new connection: the broker may have lost the retained documents."""
        self.announced.clear()

    def new_documents(self, device: Device, paths: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        """Documents for the paths not announced yet (a driver's device grows as it is polled)."""
        done = self.announced.setdefault(device.key, set())
        fresh = [p for p in paths if p not in done]
        done.update(fresh)
        return self.documents(device, fresh) if fresh else iter(())

    def node(self, device: Device) -> str:
        return f"gxgw_{_slug(self.topics.portal)}_{device.service}_{device.instance}"

    def documents(self, device: Device, paths: Iterable[str] | None = None) -> Iterator[tuple[str, bytes]]:
        """(topic, retained payload) for the device's paths (all by default) that the map knows."""
        specs = self.paths.get(device.service, {})
        node = self.node(device)
        for path in device.values if paths is None else paths:
            spec = specs.get(path)
            if spec is None or path in SKIP or device.service == "settings":
                continue
            component, doc = self._entity(device, spec)
            doc.update(self._common(device, node, path))
            yield f"{PREFIX}/{component}/{node}/{_slug(path)}/config", json.dumps(doc).encode()

    def removals(self, device: Device) -> Iterator[tuple[str, bytes]]:
        """Empty retained payloads: Home Assistant removes the entities of a device that went."""
        self.announced.pop(device.key, None)
        for topic, _ in self.documents(device):
            yield topic, b""

    def _common(self, device: Device, node: str, path: str) -> dict[str, Any]:
        t = self.topics
        name = device.get("/CustomName") or device.get("/ProductName") or f"{device.service} {device.instance}"
        return {
            "name": path.strip("/").replace("/", " "),
            "unique_id": f"{node}_{_slug(path)}",
            "state_topic": t.notify(device.service, device.instance, path),
            "availability_topic": t.notify(device.service, device.instance, "/Connected"),
            "availability_template": "{{ 'online' if value_json.value in (1, None) else 'offline' }}",
            "device": {
                "identifiers": [node],
                "name": str(name),
                "manufacturer": "gx-gateway",
                "model": str(device.get("/ProductName") or device.service),
                **({"via_device": f"gxgw_{_slug(t.portal)}_system_0"} if device.service != "system" else {}),
            },
        }

    def _entity(self, device: Device, spec: PathSpec) -> tuple[str, dict[str, Any]]:
        command = f"{self.topics.prefix}W/{self.topics.portal}/{device.service}/{device.instance}{spec.path}"
        if spec.lookup is not None:
            labels = {label: first for first, last, label in spec.lookup.entries if first == last}
            names = json.dumps({str(v): k for k, v in labels.items()})
            doc: dict[str, Any] = {
                "value_template": f"{{{{ {names}.get(value_json.value | string, value_json.value) }}}}"
            }
            if spec.writable and self.writes and labels:
                doc.update(
                    options=list(labels),
                    command_topic=command,
                    command_template=f'{{"value": {{{{ {json.dumps(labels)}[value] }}}}}}',
                )
                return "select", doc
            return "sensor", doc
        doc = {"value_template": "{{ value_json.value }}"}
        unit = UNITS.get(spec.unit)
        if unit is not None:
            doc["unit_of_measurement"], device_class, doc["state_class"] = unit
            if device_class is not None:
                doc["device_class"] = device_class
        if spec.writable and self.writes and not spec.text:
            doc.update(command_topic=command, command_template='{"value": {{ value }}}')
            if spec.minimum is not None:
                doc["min"] = spec.minimum
            if spec.maximum is not None:
                doc["max"] = spec.maximum
            doc.pop("state_class", None)
            return "number", doc
        return "sensor", doc
