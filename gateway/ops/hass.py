"""Home Assistant ``modbus:`` YAML from register tags (gateway/ops/tags.py).

One hub (``type: tcp``, the gateway's Modbus host and port) and one sensor per register:
``device_address`` = unit id, ``address``, ``input_type: holding`` (FC 3; the gateway answers FC 3
and 4 alike), ``data_type`` from the register type, ``count`` for strings only (Home Assistant
refuses it with fixed-width types, whose width it knows), ``scale`` = 1 / map scale with the
``precision`` that scale needs, and the unit, device class and state class where Home Assistant
has one for the unit. Codes from a lookup table and strings get no unit or state class.

YAML is written by hand: every string is double-quoted JSON, which YAML reads as is.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from typing import Final

from gateway.ops.tags import Tag

# register type -> Home Assistant data_type
DATA_TYPES: Final = {
    "uint16": "uint16",
    "int16": "int16",
    "uint32": "uint32",
    "int32": "int32",
    "uint64": "uint64",
    "int64": "int64",
    "acc32": "uint32",
    "acc64": "uint64",
    "sunssf": "int16",
    "float32": "float32",
}
# the map's unit text -> (Home Assistant unit, device class or None, state class)
UNITS: Final[dict[str, tuple[str | None, str | None, str]]] = {
    "W": ("W", "power", "measurement"),
    "W AC": ("W", "power", "measurement"),
    "W DC": ("W", "power", "measurement"),
    "V": ("V", "voltage", "measurement"),
    "V AC": ("V", "voltage", "measurement"),
    "V DC": ("V", "voltage", "measurement"),
    "A": ("A", "current", "measurement"),
    "A AC": ("A", "current", "measurement"),
    "A DC": ("A", "current", "measurement"),
    "kWh": ("kWh", "energy", "total_increasing"),
    "Hz": ("Hz", "frequency", "measurement"),
    "Degrees celsius": ("°C", "temperature", "measurement"),
    "Degrees Celsius": ("°C", "temperature", "measurement"),
    "Degrees centigrade": ("°C", "temperature", "measurement"),
    "%": ("%", None, "measurement"),
    "Ah": ("Ah", None, "measurement"),
    "s": ("s", "duration", "measurement"),
    "seconds": ("s", "duration", "measurement"),
    "Seconds": ("s", "duration", "measurement"),
    "hour": ("h", "duration", "measurement"),
    "day": ("d", "duration", "measurement"),
    "RPM": ("rpm", None, "measurement"),
    "kPa": ("kPa", "pressure", "measurement"),
    "hPa": ("hPa", "pressure", "measurement"),
    "m/s": ("m/s", "wind_speed", "measurement"),
    "lux": ("lx", "illuminance", "measurement"),
    "W/m^2": ("W/m²", "irradiance", "measurement"),
    "m3": ("m³", "volume_storage", "measurement"),
    "m": ("m", "distance", "measurement"),
    "ppm": ("ppm", None, "measurement"),
    "ug/m^3": ("µg/m³", None, "measurement"),
    "Degrees": ("°", None, "measurement"),
    "Decimal degrees": ("°", None, "measurement"),
    "count": (None, None, "measurement"),
}


def data_type(tag: Tag) -> str:
    return "string" if tag.text else DATA_TYPES[tag.type]


def ha_scale(tag: Tag) -> float:
    """What Home Assistant multiplies the register by: the inverse of the map's scale."""
    return 1.0 / tag.scale


def precision(tag: Tag) -> int:
    """Decimals a value carries at the map's scale (scale 100 -> 2, scale 0.1 -> 0)."""
    return max(0, math.ceil(math.log10(abs(tag.scale)) - 1e-9))


def unit_of(tag: Tag) -> tuple[str | None, str | None, str | None]:
    if tag.text or tag.enum:
        return None, None, None
    unit, device_class, state_class = UNITS.get(tag.unit, (tag.unit or None, None, "measurement"))
    if tag.unit == "%" and tag.path.endswith("/Soc"):
        device_class = "battery"
    return unit, device_class, state_class


def slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_")


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def render_yaml(tags: Sequence[Tag], host: str, port: int, hub: str = "gx_gateway", header: str = "") -> str:
    repeated = Counter((t.service, t.instance, t.path) for t in tags)
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines += ["modbus:", f"  - name: {_q(hub)}", "    type: tcp", f"    host: {_q(host)}", f"    port: {port}"]
    lines.append("    sensors:")
    for t in tags:
        name = f"{t.device} {t.path}"
        if repeated[(t.service, t.instance, t.path)] > 1:
            name += f" ({t.type} @{t.address})"
        kind = data_type(t)
        lines += [
            f"      - name: {_q(name)}",
            f"        unique_id: {_q(f'{hub}_{t.unit_id}_{t.address}')}",
            f"        device_address: {t.unit_id}",
            f"        address: {t.address}",
            "        input_type: holding",
            f"        data_type: {kind}",
        ]
        if kind == "string":
            lines.append(f"        count: {t.count}")
        else:
            lines += [f"        scale: {ha_scale(t)!r}", f"        precision: {precision(t)}"]
        unit, device_class, state_class = unit_of(t)
        if unit is not None:
            lines.append(f"        unit_of_measurement: {_q(unit)}")
        if device_class is not None:
            lines.append(f"        device_class: {device_class}")
        if state_class is not None:
            lines.append(f"        state_class: {state_class}")
    return "\n".join(lines) + "\n"
