"""Bluetooth LE as data: the compiled form of ``mappings/ble/`` (one file per decoder).

Each row takes one value a decoding library gives (``victron``: the ``get_<field>()`` of
victron-ble's parsed record; ``mopeka``: a mopeka-iot-ble sensor key; ``ruuvi``: an attribute
of ruuvitag-ble's data-format decoder) to a GX path of a service, times ``scale`` (minutes to
seconds, Wh to kWh). An enum value stands for its number; a value the library does not have
(None) stays invalid. A new field is a row here, never code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from registers.origin import Source
from registers.values import Scalar

DECODERS: Final = ("victron", "mopeka", "ruuvi")


@dataclass(frozen=True, slots=True)
class BleField:
    service: str
    field: str
    path: str
    scale: float
    source: Source

    def value(self, raw: object) -> Scalar:
        raw = getattr(raw, "value", raw)  # an enum (charge state, error): its number
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            return None
        if self.scale == 1:
            return raw
        scaled = raw * self.scale
        return int(scaled) if float(scaled).is_integer() and abs(self.scale) >= 1 else round(scaled, 6)


@dataclass(frozen=True, slots=True)
class BleMap:
    fields: Mapping[str, tuple[BleField, ...]]  # decoder -> its rows

    def rows(self, decoder: str, service: str) -> tuple[BleField, ...]:
        return tuple(f for f in self.fields.get(decoder, ()) if f.service == service)

    def decode(self, decoder: str, service: str, get: Callable[[str], object]) -> dict[str, Scalar]:
        """Every row's path from ``get(field)`` (the library's value of that field)."""
        return {f.path: f.value(get(f.field)) for f in self.rows(decoder, service)}


def ble_map(cmap: object) -> BleMap:
    """The BLE map of a compiled map (``cmap.devices["ble"]``), typed."""
    found = getattr(cmap, "devices", {}).get("ble")
    if not isinstance(found, BleMap):
        raise LookupError("the compiled map has no mappings/ble")
    return found
