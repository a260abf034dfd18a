"""The TOML configuration of ``gx-gateway run --config FILE``: schema, validation, docs.

The schema below and the driver registry (gateway/sources) are the single source: they
validate (unknown keys and bad values are refused with a one-line message naming the key) and
render docs/config.md. The demo is a config file too, ``gateway/demo.toml`` (package data), so
``demo`` starts exactly like ``run``; its values are read from that file, never copied here.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Final

from gateway.control.control_keys import KEYS as CONTROL
from gateway.control.control_keys import ControlConfig, parse_control
from gateway.core.keys import (
    ConfigError,
    Key,
    at_least,
    boolean,
    check_table,
    choice,
    cidrs,
    file_path,
    folder,
    format_value,
    integer,
    ipv4_addresses,
    parse_listen,
    positive,
    text,
)
from gateway.frontends.mqtt.options import MQTT, MqttConfig, parse_mqtt
from gateway.sim.protocols.simulators import KEYS as SIMULATOR_KEYS
from gateway.sim.protocols.simulators import SimulatorConfig, parse_simulators
from gateway.sources.drivers import DRIVERS
from gateway.sources.registry import DeviceConfig, parse_devices

__all__ = [
    "Config",
    "ConfigError",
    "DiscoveryConfig",
    "HttpConfig",
    "ModbusConfig",
    "MqttConfig",
    "N2kConfig",
    "SetpointsConfig",
    "TlsConfig",
    "load_config",
    "parse_config",
    "parse_interface_key",
    "parse_listen",
]


def role_table(where: str, v: Any) -> dict[str, str]:
    if not isinstance(v, dict):
        raise ConfigError(f'{where}: expected a table like {{ operator = "read-write" }}, got {v!r}')
    return {str(k): choice("read-only", "read-write")(f"{where}.{k}", x) for k, x in v.items()}


def setpoint_timeout(where: str, v: Any) -> float:
    if v == 0 and not isinstance(v, bool):
        return 0.0
    return float(at_least(1.0)(where, v))


TOP: Final = (Key("state_dir", Path("/var/lib/gx-gateway"), folder, "settings and identities"),)
MODBUS: Final = (
    Key("listen", ("0.0.0.0", 502), parse_listen, "HOST:PORT of the Modbus-TCP server"),
    Key("writes", False, boolean, "accept writes (FC 6, 16, 23); false (the default) answers them with exception 02"),
    Key("allow", (), cidrs, "client networks (CIDR) allowed to connect; empty = everyone"),
    Key(
        "max_connections",
        64,
        integer(1, 10000),
        "over the cap, a stalled, never used or irregular connection makes room (docs/modbus.md)",
    ),
    Key("idle_timeout_s", 120.0, at_least(1.0), "close a connection silent for this long"),
    Key(
        "invalid",
        "zero",
        choice("zero", "sentinel"),
        'an invalid value reads as 0, as on a GX; "sentinel" = the type\'s not-available value (e.g. 0xFFFF)',
    ),
    Key("max_per_address", 16, integer(1, 10000), "connections one client address may hold (loopback included)"),
    Key("frame_timeout_s", 5.0, at_least(0.5), "a started request frame must be complete within this time"),
)
TLS: Final = (
    Key("listen", ("0.0.0.0", 802), parse_listen, "HOST:PORT of the Modbus/TCP Security (TLS) listener"),
    Key("cert", Path("/etc/gx-gateway/server.pem"), file_path, "the server's certificate chain (PEM)"),
    Key("key", Path("/etc/gx-gateway/server.key"), file_path, "the server's private key (PEM)"),
    Key("client_ca", Path("/etc/gx-gateway/clients-ca.pem"), file_path, "CA(s) that sign client certificates"),
    Key("roles", {}, role_table, 'role (certificate extension) -> "read-only" or "read-write"; others read only'),
)
SETPOINTS: Final = (
    Key(
        "timeout_s",
        60.0,
        setpoint_timeout,
        "volatile EMS setpoints not written again within this time revert to a safe value; 0 = never",
    ),
)
HTTP: Final = (
    Key("listen", ("0.0.0.0", 80), parse_listen, "HOST:PORT of the MFD app and JSON API; no [http] section = no HTTP"),
    Key("writes", False, boolean, "accept writes (POST /api/v1/write, the app's controls); false answers 403"),
    Key("token", "", text, "when set, a write must carry `Authorization: Bearer TOKEN` (else 401)"),
    Key("allow", (), cidrs, "client networks (CIDR) allowed to write; empty = everyone (reading stays open)"),
)
DISCOVERY: Final = (
    Key("navico", (), ipv4_addresses, "interface addresses to send the Navico MFD announcement on (every 10 s)"),
    Key("ssdp", (), ipv4_addresses, "interface addresses to announce the app on by SSDP/UPnP"),
    Key("mdns", (), ipv4_addresses, "interface addresses to announce the app on by mDNS (_http._tcp)"),
    Key("name", "gx-gateway", text, "the name plotters and browsers show for the app"),
)


def parse_interface_key(where: str, v: Any) -> str:
    from gateway.transports.can import parse_interface  # only with [n2k] or --n2k: it imports python-can

    if not isinstance(v, str):
        raise ConfigError(f"{where}: expected a string like socketcan:can0, got {v!r}")
    if v == "off":  # NMEA 2000 in only
        return v
    try:
        parse_interface(where, v)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return v


def _input(where: str, v: Any) -> str:
    """NMEA 2000 in: false (off), true (the interface N2K out uses) or a raw CAN bus of its own."""
    from gateway.transports.can_raw import SPECS, parse_raw_bus  # python-can, only with [n2k]

    if v is False or v == "":
        return ""
    if v is True:
        return "same"
    if not isinstance(v, str):
        raise ConfigError(f"{where}: expected true, false or {SPECS}, got {v!r}")
    try:
        parse_raw_bus(where, v)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return v


def _pgn_list(where: str, v: Any) -> tuple[int, ...]:
    if not isinstance(v, list) or not all(type(p) is int and 0 < p < 1 << 18 for p in v):
        raise ConfigError(f"{where}: expected a list of PGN numbers like [127505, 130312], got {v!r}")
    return tuple(v)


def _senders(where: str, v: Any) -> tuple[str, ...]:
    if not isinstance(v, list) or not all(isinstance(p, str) and p.strip() for p in v):
        raise ConfigError(f"{where}: expected a list of NAMEs (16 hex digits) or manufacturers, got {v!r}")
    from gateway.sources.n2k_names import sender_filter  # the nmea2000 package, only with [n2k]

    try:
        sender_filter(tuple(v))
    except ValueError as e:
        raise ConfigError(f"{where}: {str(e).split(': ', 1)[1]}") from None
    return tuple(v)


def _ratio(where: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.01 <= v <= 1.0:
        raise ConfigError(f"{where}: expected a fraction 0.01..1.0 of the bus, got {v!r}")
    return float(v)


N2K: Final = (
    Key(
        "interface",
        "socketcan:can0",
        parse_interface_key,
        "socketcan:IFACE, yden:HOST:PORT (Yacht Devices RAW), actisense:DEVICE (NGT-1), candump:PATH, virtual:NAME;"
        " no [n2k] section = no NMEA 2000; off = NMEA 2000 in only",
    ),
    Key(
        "unique_number_base",
        0,
        integer(0, (1 << 21) - 256),
        "first NAME unique number of this gateway's block of 256; 0 = derived from the gateway serial",
    ),
    Key("max_bus_load", 0.3, _ratio, "cap on the planned bus load (of 250 kbit/s); over it, intervals stretch"),
    Key("stale_s", 10.0, positive, "a PGN stops when a required value was not published for this long"),
    Key(
        "input",
        "",
        _input,
        "NMEA 2000 in (docs/n2k-in.md): true = read the interface too (socketcan/virtual),"
        " or a bus of its own: socketcan:IFACE, virtual:NAME, candump-replay:FILE, candump-loop:FILE; false = off",
    ),
    Key("input_pgns", (), _pgn_list, "NMEA 2000 in reads only these PGNs; empty = every PGN the maps read"),
    Key("input_senders", (), _senders, "NMEA 2000 in reads only these senders: NAMEs (16 hex) or manufacturers"),
    Key("input_first_instance", 40, integer(1, 247), "NMEA 2000 in numbers its services (= unit ids) from here"),
)
SECTIONS: Final[Mapping[str, tuple[Key, ...]]] = {
    "": TOP,
    "modbus": MODBUS,
    "modbus.tls": TLS,
    "http": HTTP,
    "discovery": DISCOVERY,
    "setpoints": SETPOINTS,
    "n2k": N2K,
    "mqtt": MQTT,
    "control": CONTROL,
}
DEMO_FILE: Final = "demo.toml"  # in the gateway package
# What the `demo` command sets itself rather than reading from demo.toml.
DEMO_COMMAND: Final = {"state_dir": "a temporary folder (or --state-dir)"}


@dataclass(frozen=True, slots=True)
class ModbusConfig:
    listen: tuple[str, int] = MODBUS[0].default
    writes: bool = MODBUS[1].default
    allow: tuple[str, ...] = MODBUS[2].default
    max_connections: int = MODBUS[3].default
    idle_timeout_s: float = MODBUS[4].default
    invalid: str = MODBUS[5].default
    max_per_address: int = MODBUS[6].default
    frame_timeout_s: float = MODBUS[7].default
    tls: TlsConfig | None = None  # [modbus.tls]; absent = no TLS listener


@dataclass(frozen=True, slots=True)
class TlsConfig:
    listen: tuple[str, int] = TLS[0].default
    cert: Path = TLS[1].default
    key: Path = TLS[2].default
    client_ca: Path = TLS[3].default
    roles: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SetpointsConfig:
    timeout_s: float = SETPOINTS[0].default


@dataclass(frozen=True, slots=True)
class HttpConfig:
    listen: tuple[str, int] = HTTP[0].default
    writes: bool = HTTP[1].default
    token: str = HTTP[2].default
    allow: tuple[str, ...] = HTTP[3].default


@dataclass(frozen=True, slots=True)
class DiscoveryConfig:
    """Each announcement is off while its list of interfaces is empty."""

    navico: tuple[str, ...] = DISCOVERY[0].default
    ssdp: tuple[str, ...] = DISCOVERY[1].default
    mdns: tuple[str, ...] = DISCOVERY[2].default
    name: str = DISCOVERY[3].default


@dataclass(frozen=True, slots=True)
class N2kConfig:
    interface: str = N2K[0].default
    unique_number_base: int = N2K[1].default
    max_bus_load: float = N2K[2].default
    stale_s: float = N2K[3].default
    input: str = N2K[4].default  # "" off, "same" the interface, else a can_raw spec
    input_pgns: tuple[int, ...] = N2K[5].default
    input_senders: tuple[str, ...] = N2K[6].default
    input_first_instance: int = N2K[7].default


@dataclass(frozen=True, slots=True)
class Config:
    state_dir: Path | None = TOP[0].default
    modbus: ModbusConfig = field(default_factory=ModbusConfig)
    http: HttpConfig | None = None
    devices: tuple[DeviceConfig, ...] = ()
    discovery: DiscoveryConfig = field(default_factory=DiscoveryConfig)
    setpoints: SetpointsConfig = field(default_factory=SetpointsConfig)
    simulators: tuple[SimulatorConfig, ...] = ()
    n2k: N2kConfig | None = None
    mqtt: MqttConfig | None = None  # [mqtt]; absent = no MQTT
    control: ControlConfig = field(default_factory=ControlConfig)  # [control]: ESS, limiter, relays


def parse_config(data: Mapping[str, Any]) -> Config:
    tables = ("modbus", "http", "device", "discovery", "setpoints", "simulator", "n2k", "mqtt", "control")
    top = check_table("", dict(data), TOP, allow_tables=tables)
    modbus_table = data.get("modbus", {})
    modbus = ModbusConfig(**check_table("modbus", modbus_table, MODBUS, allow_tables=("tls",)))
    if isinstance(modbus_table, dict) and "tls" in modbus_table:
        tls = TlsConfig(**check_table("modbus.tls", modbus_table["tls"], TLS))
        modbus = replace(modbus, tls=tls)
    http = HttpConfig(**check_table("http", data["http"], HTTP)) if "http" in data else None
    devices = parse_devices(data.get("device", []), DRIVERS)
    discovery = DiscoveryConfig(**check_table("discovery", data.get("discovery", {}), DISCOVERY))
    if http is None and (discovery.navico or discovery.ssdp or discovery.mdns):
        raise ConfigError("discovery: announces the web app, so it needs an [http] section")
    setpoints = SetpointsConfig(**check_table("setpoints", data.get("setpoints", {}), SETPOINTS))
    simulators = parse_simulators(data.get("simulator", []))
    _check_simulator_names(devices, simulators)
    return Config(
        state_dir=top.get("state_dir", TOP[0].default),
        modbus=modbus,
        http=http,
        devices=devices,
        discovery=discovery,
        setpoints=setpoints,
        simulators=simulators,
        n2k=N2kConfig(**check_table("n2k", data["n2k"], N2K)) if "n2k" in data else None,
        mqtt=parse_mqtt(data["mqtt"]) if "mqtt" in data else None,
        control=parse_control(data.get("control", {})),
    )


def _check_simulator_names(devices: tuple[DeviceConfig, ...], simulators: tuple[SimulatorConfig, ...]) -> None:
    """A device pointed at a simulator (``simulator = NAME``) names a [[simulator]] of the file."""
    names = {s.name for s in simulators}
    for d in devices:
        wanted = d.options.get("simulator")
        if wanted is not None and wanted not in names:
            known = ", ".join(sorted(names)) or "none"
            raise ConfigError(f"{d.where}.simulator: no [[simulator]] named {wanted!r} (known: {known})")


def _parse_toml(text: str, origin: object) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{origin}: TOML syntax: {e}") from None


def load_config(path: Path) -> Config:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from None
    return parse_config(_parse_toml(text, path))


def demo_toml() -> str:
    """The packaged demo configuration, as text."""
    return resources.files("gateway").joinpath(DEMO_FILE).read_text(encoding="utf-8")


DEMO_N2K_LOG: Final = "n2k-demo.log"  # demo.toml's NMEA 2000 in replay, written on first use
DEMO_BLE_LOG: Final = "ble-demo.jsonl"  # demo.toml's Bluetooth replay, likewise


def load_demo_config() -> Config:
    """demo.toml, its replays looped (it runs for hours) through this process's own links."""
    config = parse_config(_parse_toml(demo_toml(), f"gateway/{DEMO_FILE}"))
    if config.n2k is not None and config.n2k.input == f"candump-replay:{DEMO_N2K_LOG}":
        from gateway.sim.demo_replays import n2k_replay

        config = replace(config, n2k=replace(config.n2k, input=f"candump-loop:{n2k_replay()}"))
    if any(d.options.get("source") == f"replay:{DEMO_BLE_LOG}" for d in config.devices):
        from gateway.sim.demo_replays import ble_replay

        source = f"replay-loop:{ble_replay()}"
        devices = tuple(
            replace(d, options={**d.options, "source": source})
            if d.options.get("source") == f"replay:{DEMO_BLE_LOG}"
            else d
            for d in config.devices
        )
        config = replace(config, devices=devices)
    return config


def render_config_docs() -> str:
    demo = tomllib.loads(demo_toml())
    lines = [
        "# Configuration reference",
        "",
        "Generated from `gateway/config.py`, the driver registry (`gateway/sources/`) and",
        "`gateway/demo.toml` (`gx-gateway config-docs`); do not edit by hand.",
        "",
        "`gx-gateway run --config FILE` reads one TOML file. Unknown keys and bad values are refused",
        "with a one-line message naming the key. `gx-gateway demo` needs no file: it runs the packaged",
        "`demo.toml` (shown at the end; its values are the demo column) the same way, and its flags",
        "(`--modbus`, `--http HOST:PORT|off`, `--n2k SPEC|off`, `--state-dir`) override those keys.",
    ]
    for section, keys in SECTIONS.items():
        title = "top level" if not section else f"[{section}]"
        table = demo.get(section, {}) if section else demo
        lines += ["", f"## {title}", "", "| key | default | demo | meaning |", "|---|---|---|---|"]
        for k in keys:
            where = f"{section}.{k.name}" if section else k.name
            shown = format_value(k.check(where, table[k.name])) if k.name in table else "same"
            shown = DEMO_COMMAND.get(where, shown)
            lines.append(f"| `{k.name}` | {format_value(k.default)} | {shown} | {k.doc} |")
    lines += [
        "",
        "## [[device]] (one table per device)",
        "",
        "Each device names its `driver`; only the keys that driver declares are accepted. An",
        "instance is used once per service type.",
    ]
    for spec in DRIVERS.values():
        lines += ["", f'### driver = "{spec.name}"', "", f"{spec.doc[0].upper()}{spec.doc[1:]}.", ""]
        lines += ["| key | default | meaning |", "|---|---|---|"]
        for k in spec.all_keys:
            default = "required" if k.required else format_value(k.default)
            lines.append(f"| `{k.name}` | {default} | {k.doc} |")
    lines += [
        "",
        "## [[simulator]] (protocol simulators the gateway starts itself)",
        "",
        "Each listens on loopback (any free port by default); a `[[device]]` with",
        '`simulator = "NAME"` is polled by its real driver over a real socket at that address.',
        "",
        "| key | default | meaning |",
        "|---|---|---|",
    ]
    for k in SIMULATOR_KEYS:
        default = "required" if k.required else format_value(k.default)
        lines.append(f"| `{k.name}` | {default} | {k.doc} |")
    lines += ["", "## Example: every key at its default", "", "```toml"]
    for section, keys in SECTIONS.items():
        lines += [f"[{section}]"] if section else []
        lines += [f"{k.name} = {format_value(k.default)}" for k in keys] + [""]
    lines[-1] = "```"
    lines += ["", f"## The demo (`gateway/{DEMO_FILE}`)", "", "```toml", demo_toml().rstrip("\n"), "```"]
    return "\n".join(lines) + "\n"
