"""The device-driver registry: each driver's ``[[device]]`` keys, its doc, and its factory.

A driver is declared once, as a ``DriverSpec``; from it the config is validated (only the keys
that driver declares are accepted), docs/config.md is generated, and the gateway builds one
running component for all the devices of that driver (devices of a driver share things: the
simulated ones one plant, SunSpec ones a connection per host:port).

Sources publish into the Store; they never import a frontend (gateway/frontends/modbus, gateway/frontends/http).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from gateway.core.components import Component
from gateway.core.endpoints import Endpoints
from gateway.core.keys import ConfigError, Key, choice, host_name, integer, positive, text
from gateway.core.store import Store
from registers.model import CompiledMap


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    """One checked ``[[device]]`` table: the driver's own keys in ``options``, defaults filled in."""

    index: int  # position in the file, for messages: device[index]
    driver: str
    instance: int
    name: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"device[{self.index}]"

    def option(self, key: str) -> Any:
        return self.options[key]

    def config_values(self, service: str) -> dict[str, Any]:
        """The paths a device's config fixes: its ``/CustomName``, and a PV inverter's
        ``/Position`` (0 AC input 1, 1 AC output, 2 AC input 2)."""
        values: dict[str, Any] = {"/CustomName": self.name} if self.name else {}
        if service == "pvinverter":
            values["/Position"] = POSITIONS[str(self.options.get("position", "ac-in-1"))]
        return values


POSITIONS: Final = {"ac-in-1": 0, "ac-out": 1, "ac-in-2": 2}  # config position -> /Position


@dataclass(frozen=True, slots=True)
class SourceContext:
    """What the gateway hands every driver's component besides its devices."""

    cmap: CompiledMap
    endpoints: Endpoints = field(default_factory=Endpoints)  # addresses of [[simulator]]s by name
    shared: dict[str, object] = field(default_factory=dict)  # what drivers share (the BLE scanners)
    state_dir: Path | None = None  # where drivers keep what must survive a restart (assigned instances)


Builder = Callable[[Store, Sequence[DeviceConfig], SourceContext], Component]


def _no_rules(devices: Sequence[DeviceConfig]) -> None:
    return None


@dataclass(frozen=True, slots=True)
class DriverSpec:
    name: str
    doc: str  # one line
    keys: tuple[Key, ...]  # its own keys; every device also has driver, instance and name
    service: Callable[[DeviceConfig], str]  # the service type a device appears as
    build: Builder  # one component for all this driver's devices
    rules: Callable[[Sequence[DeviceConfig]], None] = _no_rules  # checks across its devices (ConfigError)
    # The driver gives a device without ``instance`` one of its own, kept in the state_dir
    # (a GX numbers VE.Direct devices by port); such a DeviceConfig has instance -1.
    auto_instance: bool = False

    @property
    def all_keys(self) -> tuple[Key, ...]:
        if self.auto_instance:
            optional = replace(BASE_KEYS[1], required=False, doc=BASE_KEYS[1].doc + "; without it, one kept per port")
            return (BASE_KEYS[0], optional, *BASE_KEYS[2:], *self.keys)
        return (*BASE_KEYS, *self.keys)


# Every [[device]] has these.
BASE_KEYS: Final = (
    Key("driver", None, text, "which driver talks to the device", required=True),
    Key("instance", None, integer(0, 65535), "device instance = the unit id clients use (see unit_ids.csv)", True),
    Key("name", None, text, "custom name shown to clients"),
)

# Keys that mean the same for every driver that takes them; a driver lists the ones it takes.
COMMON_KEYS: Final[Mapping[str, Key]] = {
    k.name: k
    for k in (
        Key("host", None, host_name, "address of the device", required=True),
        Key("port", 502, integer(1, 65535), "TCP port of the device"),
        Key("unit", 1, integer(0, 255), "Modbus unit id on the device (not the one clients use)"),
        Key("role", "pvinverter", choice("pvinverter", "grid", "genset", "acload", "evcharger"), "what it measures"),
        Key("position", "ac-in-1", choice("ac-in-1", "ac-out", "ac-in-2"), "where a PV inverter is connected"),
        Key("poll_interval_s", 1.0, positive, "seconds between polls"),
        Key("simulator", None, text, "instead of host and port: the name of a [[simulator]] in this config"),
    )
}


# Serial drivers (VE.Direct; Modbus RTU later) name their device path ``port`` too, as users
# write it: one key for all of them, distinct from the TCP port of the network drivers.
SERIAL_PORT: Final = Key(
    "port", None, text, "serial device: /dev/serial/by-id/... (stable across re-plugs), /dev/ttyUSB0, a pty"
)
# Instead of a port or bus: the ``via`` name of a simulated device (the demo's VE.Direct and CAN links).
LINK: Final = Key("link", None, text, "instead of port/interface: a simulated device's via name (the demo)")


def port_or_link(name: str) -> Callable[[Sequence[DeviceConfig]], None]:
    """A driver's rule: each device names its ``name`` (port, interface) or a ``link``."""

    def check(devices: Sequence[DeviceConfig]) -> None:
        for d in devices:
            if d.options.get(name) is None and d.options.get("link") is None:
                raise ConfigError(f"{d.where}.{name}: missing (or link = a simulated device's via name)")

    return check


def common_default(name: str, default: Any) -> Key:
    """A common key with this driver's own default (e.g. port 80 for HTTP): same name, check
    and meaning, documented with its default in the driver's table."""
    return replace(COMMON_KEYS[name], default=default)


def role_of(device: DeviceConfig) -> str:
    """The service type a device with a ``role`` key publishes as (pvinverter, grid, ...)."""
    return str(device.option("role"))


def common(*names: str) -> tuple[Key, ...]:
    """The common keys a driver takes, by name (KeyError for a name that is not common)."""
    return tuple(COMMON_KEYS[n] for n in names)


def parse_devices(raw: Any, drivers: Mapping[str, DriverSpec]) -> tuple[DeviceConfig, ...]:
    """Check every ``[[device]]`` table against its driver's keys; the first problem in one line."""
    if not isinstance(raw, list):
        raise ConfigError("device: use [[device]] tables, one per device")
    devices = tuple(_parse_device(i, table, drivers) for i, table in enumerate(raw))
    seen: dict[tuple[str, int], DeviceConfig] = {}
    for d in devices:
        if d.instance < 0:
            continue  # the driver assigns it (auto_instance)
        service = drivers[d.driver].service(d)
        first = seen.setdefault((service, d.instance), d)
        if first is not d:
            raise ConfigError(
                f"{d.where}.instance: {d.instance} is already used by {first.where} of the same service ({service})"
            )
    for spec in drivers.values():
        spec.rules([d for d in devices if d.driver == spec.name])
    _one_driver_per_serial_port(devices)
    return devices


def _one_driver_per_serial_port(devices: Sequence[DeviceConfig]) -> None:
    """A serial port (a ``port`` that is a path) belongs to one driver: a VE.Direct device and
    an RS485 bus of meters cannot share a cable (each driver checks its own devices)."""
    claimed: dict[str, DeviceConfig] = {}
    for d in devices:
        path = d.options.get("port")
        if not isinstance(path, str):
            continue  # a TCP port number, or none
        first = claimed.setdefault(path, d)
        if first.driver != d.driver:
            raise ConfigError(
                f"{d.where}.port: {path} is already {first.where}'s (driver {first.driver}): one port, one driver"
            )


def _parse_device(index: int, table: Any, drivers: Mapping[str, DriverSpec]) -> DeviceConfig:
    where = f"device[{index}]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table, got {table!r}")
    known = ", ".join(drivers)
    if "driver" not in table:
        raise ConfigError(f"{where}.driver: missing (known: {known})")
    spec = drivers.get(table["driver"]) if isinstance(table["driver"], str) else None
    if spec is None:
        raise ConfigError(f"{where}.driver: unknown driver {table['driver']!r} (known: {known})")
    keys = {k.name: k for k in spec.all_keys}
    values: dict[str, Any] = {}
    for name, value in table.items():
        key = keys.get(name)
        if key is None:
            raise ConfigError(f"{where}.{name}: not a key of driver {spec.name!r} (its keys: {', '.join(keys)})")
        values[name] = key.check(f"{where}.{name}", value)
    for key in spec.all_keys:
        if key.name not in values:
            if key.required and not (key.name == "host" and values.get("simulator")):  # a simulator replaces host
                raise ConfigError(f"{where}.{key.name}: missing ({key.doc})")
            values[key.name] = key.default
    base = {k.name: values.pop(k.name) for k in BASE_KEYS}
    if base["instance"] is None:
        base["instance"] = -1
    return DeviceConfig(index=index, options=values, **base)


def build_sources(
    store: Store, devices: Sequence[DeviceConfig], drivers: Mapping[str, DriverSpec], context: SourceContext
) -> list[Component]:
    """One component per driver in use, in the order drivers first appear in the file."""
    by_driver: dict[str, list[DeviceConfig]] = {}
    for d in devices:
        by_driver.setdefault(d.driver, []).append(d)
    return [drivers[name].build(store, group, context) for name, group in by_driver.items()]
