"""The Bluetooth LE drivers' declarations: ``victron-ble``, ``mopeka`` and ``ruuvi``.

Only keys and checks live here (config and docs read them without Bluetooth); the component
(``ble_source``) and the decoders (``ble_decode``: victron-ble, mopeka-iot-ble, ruuvitag-ble)
are imported when a config has such a device.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, Final

from gateway.core.components import Component
from gateway.core.keys import ConfigError, Key, choice, positive
from gateway.core.store import Store
from gateway.sources.registry import DeviceConfig, DriverSpec, SourceContext
from gateway.transports.ble_advert import mac_address
from gateway.transports.ble_scan import parse_source

FLUID_NAMES: Final = ("fuel", "fresh-water", "waste-water", "live-well", "oil", "black-water", "gasoline",
                      "diesel", "lpg", "lng", "hydraulic-oil", "raw-water")  # fmt: skip


def _address(where: str, v: Any) -> str:
    try:
        return mac_address(where, v)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _source(where: str, v: Any) -> str:
    try:
        return parse_source(where, v if isinstance(v, str) else repr(v))
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _key(where: str, v: Any) -> str:
    text = v.strip().lower() if isinstance(v, str) else ""
    if len(text) != 32 or any(c not in "0123456789abcdef" for c in text):
        got = f"{len(text)} characters" if isinstance(v, str) else repr(v)
        raise ConfigError(f"{where}: expected the 32 hex digits of the device's advertisement key "
                          f"(VictronConnect: Product info > Instant readout details), got {got}")  # fmt: skip
    return text


def _curve(where: str, v: Any) -> tuple[tuple[float, float], ...]:
    ok = isinstance(v, list) and len(v) >= 2 and all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in p)
        for p in v
    )  # fmt: skip
    points = tuple((float(p[0]), float(p[1])) for p in v) if ok else ()
    if not ok or any(b[0] <= a[0] or b[1] < a[1] for a, b in itertools.pairwise(points)):
        raise ConfigError(f"{where}: expected [[height_mm, percent], ...] rising in both, got {v!r}")
    return points


COMMON: Final = (
    Key("address", None, _address, "the sensor's Bluetooth MAC address (gx-gateway scan --ble lists them)", True),
    Key(
        "source",
        "bluez",
        _source,
        "where its advertisements come from: bluez[:hciN] (live), replay:FILE or replay-loop:FILE",
    ),
)


def _build(kind: str) -> Any:
    def build(store: Store, devices: Sequence[DeviceConfig], context: SourceContext) -> Component:
        from gateway.sources.ble_source import BleDevices  # the decoding libraries: only when configured

        return BleDevices(store, devices, context, kind)

    return build


def _victron_service(device: DeviceConfig) -> str:
    return str(device.option("service"))


VICTRON_SPEC: Final = DriverSpec(
    name="victron-ble",
    doc="a Victron SmartShunt/BMV (service battery) or SmartSolar (service solarcharger) read from its "
    "Bluetooth Instant Readout advertisements, decrypted with its key",
    keys=(
        *COMMON,
        Key("key", None, _key, "the advertisement key from VictronConnect (32 hex digits)", True),
        Key("service", "battery", choice("battery", "solarcharger"), "what the device is"),
    ),
    service=_victron_service,
    build=_build("victron-ble"),
)

MOPEKA_SPEC: Final = DriverSpec(
    name="mopeka",
    doc="a Mopeka Pro Check (or Pro Plus, TD40...) ultrasonic tank sensor, read from its Bluetooth advertisements",
    keys=(
        *COMMON,
        Key("fluid", "fresh-water", choice(*FLUID_NAMES), "what the tank holds (sets the speed of sound)"),
        Key("tank_height_mm", 500.0, positive, "fluid height of a full tank, for a tank with straight sides"),
        Key("curve", (), _curve, "instead of a straight tank: [[height_mm, percent], ...] points"),
        Key("capacity_m3", 0.1, positive, "the tank's capacity (m3), for /Remaining"),
    ),
    service=lambda d: "tank",
    build=_build("mopeka"),
)

RUUVI_SPEC: Final = DriverSpec(
    name="ruuvi",
    doc="a RuuviTag temperature, humidity and pressure sensor, read from its Bluetooth advertisements",
    keys=COMMON,
    service=lambda d: "temperature",
    build=_build("ruuvi"),
)
