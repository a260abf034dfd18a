"""The meter driver's keys for Modbus RTU (``transport = "rtu"``) and the rules across them.

A meter is reached over Modbus-TCP (``host``, ``port`` = a TCP port) or on an RS485 bus
(``transport = "rtu"``, ``port`` = the serial device path). One ``port`` key for both, as users
write it; the rules make a mismatch one clear line instead of a silent surprise. Meters on one
bus share its line settings, so those must agree, and each needs a unit id of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Final

from gateway.core.keys import ConfigError, Key, choice, integer
from gateway.sources.registry import COMMON_KEYS, DeviceConfig
from gateway.transports.serial import SerialSettings


def tcp_port_or_path(where: str, v: Any) -> int | str:
    if isinstance(v, str) and v:
        return v
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 65535:
        raise ConfigError(
            f'{where}: expected a TCP port 1..65535, or with transport = "rtu" a serial device path, got {v!r}'
        )
    return v


TRANSPORT: Final = Key(
    "transport", "tcp", choice("tcp", "rtu"), 'Modbus-TCP, or "rtu": Modbus RTU on an RS485 bus at port'
)
HOST: Final = replace(COMMON_KEYS["host"], required=False)  # required with Modbus-TCP only (check_transports)
PORT: Final = Key(
    "port",
    502,
    tcp_port_or_path,
    'TCP port of the device; with transport = "rtu" the serial device path (/dev/serial/by-id/..., /dev/ttyUSB0)',
)
BAUD: Final = Key("baud", 9600, integer(1200, 921600), "rtu: bits per second, as set on the meter")
PARITY: Final = Key("parity", "none", choice("none", "even", "odd"), "rtu: parity, as set on the meter")
STOPBITS: Final = Key("stopbits", 1, integer(1, 2), "rtu: stop bits, as set on the meter")
KEYS: Final = (TRANSPORT, HOST, PORT, BAUD, PARITY, STOPBITS)


def is_rtu(d: DeviceConfig) -> bool:
    return d.options.get("transport") == "rtu"


def serial_settings(d: DeviceConfig) -> SerialSettings:
    return SerialSettings(baud=d.option("baud"), parity=d.option("parity"), stopbits=d.option("stopbits"))


def check_transports(devices: Sequence[DeviceConfig]) -> None:
    """Each meter's keys fit its transport; meters on one bus agree on its line and units."""
    buses: dict[str, DeviceConfig] = {}
    units: dict[tuple[str, int], DeviceConfig] = {}
    for d in devices:
        port = d.option("port")
        if not is_rtu(d):
            if isinstance(port, str):
                raise ConfigError(f'{d.where}.port: {port!r} is a serial device path: add transport = "rtu"')
            if d.options.get("host") is None and not d.options.get("simulator"):
                raise ConfigError(f'{d.where}.host: missing (address of the device, or transport = "rtu")')
            continue
        if not isinstance(port, str):
            raise ConfigError(
                f'{d.where}.port: transport = "rtu" takes the serial device path, e.g. "/dev/ttyUSB0" (got {port!r})'
            )
        for key in ("host", "simulator"):
            if d.options.get(key):
                raise ConfigError(f'{d.where}.{key}: not used with transport = "rtu" (the meter is on port {port!r})')
        first = buses.setdefault(port, d)
        if serial_settings(first) != serial_settings(d):
            raise ConfigError(
                f"{d.where}: {port} is one bus: baud, parity and stopbits must match {first.where}'s "
                "(every meter on it must be set alike)"
            )
        other = units.setdefault((port, d.option("unit")), d)
        if other is not d:
            raise ConfigError(
                f"{d.where}.unit: {d.option('unit')} is already {other.where}'s on {port} (one unit per meter on a bus)"
            )
