"""Bluetooth LE advertisements to Venus paths, through the kept decoders.

- Victron Instant Readout (company 0x02E1): ``victron-ble`` decrypts (AES-CTR with the
  device's advertisement key) and parses; battery monitors (SmartShunt, BMV) become
  ``battery``, solar chargers (SmartSolar) ``solarcharger``.
- Mopeka tank sensors (company 0x0059 with the Mopeka service UUID): ``mopeka-iot-ble`` gives
  the fluid height in mm for the configured medium; the tank's height (or a curve of height
  to percent, for a tank that is not a box) makes it ``/Level`` and ``/Remaining``.
- RuuviTag (company 0x0499): ``ruuvitag-ble``'s data-format decoders; ``temperature``.

Each decoder returns the paths of one advertisement, or raises ``BleFault`` whose ``reason``
is the counter it goes to (wrong key, corrupt payload, another manufacturer...). Which library
value goes to which path, and its scale to Venus units (minutes to seconds, Wh to kWh), is
``mappings/ble/<decoder>.csv`` (``registers.ble``); here only what is computed: a battery's
power (V x I) and a tank's level from the configured tank.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Mapping, Sequence
from typing import Any, Final

from gateway.transports.ble_advert import Advert
from registers.ble import BleMap
from registers.values import Scalar

VICTRON: Final = 0x02E1
MOPEKA: Final = 0x0059
RUUVI: Final = 0x0499
MOPEKA_SERVICE: Final = "0000fee5-0000-1000-8000-00805f9b34fb"
# Venus /FluidType (mappings/lookups/tank_fluid_type.csv) -> mopeka-iot-ble's MediumType value
FLUIDS: Final[Mapping[str, tuple[int, str]]] = {
    "fuel": (0, "diesel"),
    "fresh-water": (1, "fresh_water"),
    "waste-water": (2, "waste_water"),
    "live-well": (3, "live_well"),
    "oil": (4, "oil"),
    "black-water": (5, "black_water"),
    "gasoline": (6, "gasoline"),
    "diesel": (7, "diesel"),
    "lpg": (8, "propane"),
    "lng": (9, "lng"),
    "hydraulic-oil": (10, "hydraulic_oil"),
    "raw-water": (11, "raw_water"),
}


class BleFault(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason


class VictronDecoder:
    """One Victron device's Instant Readout, decrypted with its advertisement key."""

    def __init__(self, key: str, service: str, bmap: BleMap) -> None:
        from victron_ble.devices import BatteryMonitor, SolarCharger  # pycryptodome: only when configured

        self.key, self.service, self.bmap = key, service, bmap
        self._kinds: dict[str, type[Any]] = {"battery": BatteryMonitor, "solarcharger": SolarCharger}

    def decode(self, advert: Advert) -> dict[str, Scalar]:
        from victron_ble.devices import detect_device_type
        from victron_ble.exceptions import AdvertisementKeyMismatchError

        data = advert.manufacturer.get(VICTRON)
        if data is None:
            raise BleFault("other_manufacturer")
        if len(data) < 9 or data[0] != 0x10:
            raise BleFault("not_instant_readout", "not an Instant Readout record")
        kind = detect_device_type(data)
        if kind is None or not issubclass(kind, self._kinds[self.service]):
            raise BleFault("wrong_kind", f"record type {data[4]:#04x} is not a {self.service}")
        try:
            parsed = kind(self.key).parse(data)
        except AdvertisementKeyMismatchError:
            raise BleFault("wrong_key", "the advertisement key does not match (see VictronConnect)") from None
        except (ValueError, IndexError, KeyError, struct.error) as exc:  # an enum value no firmware sends
            raise BleFault("corrupt", f"corrupt payload: {exc}") from None
        values = self.bmap.decode("victron", self.service, lambda name: _call(parsed, f"get_{name}"))
        if self.service == "battery":  # computed, as Venus does: the record has no power
            volts, amps = values.get("/Dc/0/Voltage"), values.get("/Dc/0/Current")
            power = None
            if isinstance(volts, (int, float)) and isinstance(amps, (int, float)):
                power = round(volts * amps, 2)
            values["/Dc/0/Power"] = power
        return values


def _call(parsed: Any, getter: str) -> object:
    """A getter of victron-ble's parsed record; None where this record kind has none."""
    method = getattr(parsed, getter, None)
    return method() if callable(method) else None


def level_of(height_mm: float, tank_mm: float, curve: Sequence[tuple[float, float]]) -> float:
    """Percent full from the fluid height: linear in the tank's height, or along the curve
    (height mm, percent) pairs, sorted by height, for a tank that is not a box."""
    if not curve:
        return max(0.0, min(100.0, 100.0 * height_mm / tank_mm))
    if height_mm <= curve[0][0]:
        return curve[0][1]
    for (h0, p0), (h1, p1) in itertools.pairwise(curve):
        if height_mm <= h1:
            return p0 + (p1 - p0) * (height_mm - h0) / (h1 - h0)
    return curve[-1][1]


class MopekaDecoder:
    def __init__(
        self, fluid: str, tank_mm: float, capacity_m3: float, curve: Sequence[tuple[float, float]], bmap: BleMap
    ) -> None:
        from mopeka_iot_ble import MediumType, MopekaIOTBluetoothDeviceData

        self.bmap = bmap
        self.fluid_type, medium = FLUIDS[fluid]
        self._parser = MopekaIOTBluetoothDeviceData(MediumType(medium))
        self.tank_mm, self.capacity, self.curve = tank_mm, capacity_m3, tuple(curve)

    def decode(self, advert: Advert) -> dict[str, Scalar]:
        from home_assistant_bluetooth import BluetoothServiceInfo

        data = advert.manufacturer.get(MOPEKA)
        if data is None:
            raise BleFault("other_manufacturer")
        if MOPEKA_SERVICE not in advert.uuids:
            raise BleFault("not_mopeka", "no Mopeka service UUID")
        info = BluetoothServiceInfo(
            advert.name, advert.address, advert.rssi, {MOPEKA: data}, {}, list(advert.uuids), "gx-gateway"
        )
        update = self._parser.update(info)
        sensors = {k.key: _number(v.native_value) for k, v in update.entity_values.items()}
        if "tank_level" not in sensors:  # the library refused it: unknown model or wrong length
            raise BleFault("corrupt", f"not a Mopeka reading ({len(data)} bytes, model {data[:1].hex()})")
        height = sensors["tank_level"]
        level = round(level_of(height, self.tank_mm, self.curve), 1) if height is not None else None
        return {
            **self.bmap.decode("mopeka", "tank", sensors.get),
            # from the configured tank, not the advert:
            "/Level": level,
            "/Remaining": round(self.capacity * level / 100, 4) if level is not None else None,
            "/Capacity": self.capacity,
            "/FluidType": self.fluid_type,
            "/RawUnit": "mm",
            "/Status": 0 if height is not None else 4,  # 4 unknown: the reading quality is too poor
        }


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class RuuviDecoder:
    def __init__(self, bmap: BleMap) -> None:
        self.bmap = bmap

    def decode(self, advert: Advert) -> dict[str, Scalar]:
        from ruuvitag_ble.parser import decoder_classes

        data = advert.manufacturer.get(RUUVI)
        if data is None:
            raise BleFault("other_manufacturer")
        kind = decoder_classes.get(data[0]) if data else None
        if kind is None:
            raise BleFault("corrupt", f"unknown RuuviTag data format {data[:1].hex()}")
        try:
            d = kind(data)
            values = self.bmap.decode("ruuvi", "temperature", lambda name: getattr(d, name, None))
        except (ValueError, IndexError, struct.error) as exc:
            raise BleFault("corrupt", f"corrupt payload: {exc}") from None
        values["/TemperatureType"] = 2  # generic
        return values
