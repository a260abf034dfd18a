"""The TOML configuration of ``gx-gateway run --config FILE``: schema, validation, docs.

The schema below is the single source: it validates (unknown keys and bad values are refused
with a one-line message naming the key) and it renders docs/config.md.
"""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final


class ConfigError(ValueError):
    """One line, naming the key: ``modbus.listen: expected HOST:PORT, got '502'``."""


@dataclass(frozen=True, slots=True)
class Key:
    name: str
    default: Any
    check: Callable[[str, Any], Any]  # returns the parsed value or raises ConfigError
    doc: str
    demo: Any = None  # the demo's value, where it differs


def parse_listen(where: str, v: Any) -> tuple[str, int]:
    if not isinstance(v, str) or ":" not in v:
        raise ConfigError(f"{where}: expected HOST:PORT, got {v!r}")
    host, _, port = v.rpartition(":")
    host = host.strip("[]")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{where}: port must be 0..65535, got {port!r}")
    if not host:
        raise ConfigError(f"{where}: missing host (use 0.0.0.0 for every interface)")
    return host, int(port)


def _bool(where: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise ConfigError(f"{where}: expected true or false, got {v!r}")
    return v


def _int(lo: int, hi: int) -> Callable[[str, Any], int]:
    def check(where: str, v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise ConfigError(f"{where}: expected an integer {lo}..{hi}, got {v!r}")
        return v

    return check


def _positive(where: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
        raise ConfigError(f"{where}: expected a number > 0, got {v!r}")
    return float(v)


def _choice(*options: str) -> Callable[[str, Any], str]:
    def check(where: str, v: Any) -> str:
        if v not in options:
            raise ConfigError(f"{where}: expected one of {', '.join(options)}, got {v!r}")
        return str(v)

    return check


def _cidrs(where: str, v: Any) -> tuple[str, ...]:
    if not isinstance(v, list):
        raise ConfigError(f"{where}: expected a list of CIDR networks, got {v!r}")
    for i, item in enumerate(v):
        try:
            ipaddress.ip_network(item, strict=False)
        except (ValueError, TypeError):
            raise ConfigError(f"{where}[{i}]: not a network like 192.168.1.0/24: {item!r}") from None
    return tuple(v)


def _path(where: str, v: Any) -> Path:
    if not isinstance(v, str) or not v:
        raise ConfigError(f"{where}: expected a folder path, got {v!r}")
    return Path(v)


def _optional_str(where: str, v: Any) -> str:
    if not isinstance(v, str):
        raise ConfigError(f"{where}: expected a string, got {v!r}")
    return v


SIMULATED_KINDS: Final = ("vebus", "battery", "solarcharger", "tank", "temperature", "digitalinput")
SIMULATED_ONCE: Final = ("vebus", "battery")  # the simulator models one inverter/charger and one bank
DRIVERS_AVAILABLE: Final = ("simulated",)
DRIVERS_PLANNED: Final = ("sunspec", "fronius", "sma", "meter")

TOP: Final = (Key("state_dir", Path("/var/lib/gx-gateway"), _path, "settings and identities", "a temporary folder"),)
MODBUS: Final = (
    Key("listen", ("0.0.0.0", 502), parse_listen, "HOST:PORT of the Modbus-TCP server", ("127.0.0.1", 5020)),
    Key("writes", True, _bool, "accept writes (FC 6, 16, 23); false answers them with exception 02"),
    Key("allow", (), _cidrs, "client networks (CIDR) allowed to connect; empty = everyone"),
    Key("max_connections", 64, _int(1, 10000), "over the cap, the oldest idle connection is closed"),
    Key("idle_timeout_s", 120.0, _positive, "close a connection silent for this long"),
    Key(
        "invalid",
        "zero",
        _choice("zero", "sentinel"),
        'an invalid value reads as 0, as on a GX; "sentinel" = the type\'s not-available value (e.g. 0xFFFF)',
    ),
)
HTTP: Final = (
    Key(
        "listen",
        ("0.0.0.0", 80),
        parse_listen,
        "HOST:PORT of the JSON API; no [http] section = no HTTP",
        ("127.0.0.1", 8088),
    ),
)
DEVICE: Final = (
    Key(
        "driver",
        None,
        _choice(*DRIVERS_AVAILABLE, *DRIVERS_PLANNED),
        "simulated (sunspec, fronius, sma, meter: planned)",
    ),
    Key("kind", None, _choice(*SIMULATED_KINDS), "simulated devices: which device"),
    Key("instance", None, _int(0, 65535), "device instance = the unit id clients use (see unit_ids.csv)"),
    Key("name", None, _optional_str, "custom name shown to clients"),
)
SECTIONS: Final[Mapping[str, tuple[Key, ...]]] = {"": TOP, "modbus": MODBUS, "http": HTTP, "device": DEVICE}


@dataclass(frozen=True, slots=True)
class ModbusConfig:
    listen: tuple[str, int] = ("0.0.0.0", 502)
    writes: bool = True
    allow: tuple[str, ...] = ()
    max_connections: int = 64
    idle_timeout_s: float = 120.0
    invalid: str = "zero"


@dataclass(frozen=True, slots=True)
class HttpConfig:
    listen: tuple[str, int] = ("0.0.0.0", 80)


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    driver: str
    instance: int
    kind: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Config:
    state_dir: Path | None = Path("/var/lib/gx-gateway")
    modbus: ModbusConfig = field(default_factory=ModbusConfig)
    http: HttpConfig | None = None
    devices: tuple[DeviceConfig, ...] = ()


def _section(where: str, table: Any, keys: tuple[Key, ...], allow_tables: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError(f"{where or 'config'}: expected a table, got {table!r}")
    known = {k.name: k for k in keys}
    out: dict[str, Any] = {}
    for name, value in table.items():
        full = f"{where}.{name}" if where else name
        if name in allow_tables:
            continue
        key = known.get(name)
        if key is None:
            hint = ", ".join([*known, *allow_tables])
            raise ConfigError(f"{full}: unknown key (known here: {hint})")
        out[name] = key.check(full, value)
    return out


def parse_config(data: Mapping[str, Any]) -> Config:
    top = _section("", dict(data), TOP, allow_tables=("modbus", "http", "device"))
    modbus = ModbusConfig(**_section("modbus", data.get("modbus", {}), MODBUS))
    http = HttpConfig(**_section("http", data["http"], HTTP)) if "http" in data else None
    raw_devices = data.get("device", [])
    if not isinstance(raw_devices, list):
        raise ConfigError("device: use [[device]] tables, one per device")
    devices: list[DeviceConfig] = []
    seen: dict[tuple[str, int], int] = {}
    for i, raw in enumerate(raw_devices):
        where = f"device[{i}]"
        d = _section(where, raw, DEVICE)
        for required in ("driver", "instance"):
            if required not in d:
                raise ConfigError(f"{where}.{required}: missing")
        if d["driver"] in DRIVERS_PLANNED:
            raise ConfigError(
                f"{where}.driver: {d['driver']!r} is not available in this version (available: simulated)"
            )
        if d["driver"] == "simulated" and "kind" not in d:
            raise ConfigError(f"{where}.kind: missing (one of {', '.join(SIMULATED_KINDS)})")
        if d["driver"] == "simulated" and d["kind"] in SIMULATED_ONCE:
            first = next((j for j, e in enumerate(devices) if e.driver == "simulated" and e.kind == d["kind"]), None)
            if first is not None:
                raise ConfigError(f"{where}.kind: the simulator models one {d['kind']} (device[{first}] is one)")
        key = (d.get("kind") or d["driver"], d["instance"])
        if key in seen:
            raise ConfigError(f"{where}.instance: {key[1]} is already used by device[{seen[key]}] of the same kind")
        seen[key] = i
        devices.append(DeviceConfig(**d))
    return Config(state_dir=top.get("state_dir", TOP[0].default), modbus=modbus, http=http, devices=tuple(devices))


def load_config(path: Path) -> Config:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: TOML syntax: {e}") from None
    return parse_config(data)


def _fmt(v: Any) -> str:
    if isinstance(v, tuple) and len(v) == 2 and isinstance(v[1], int) and isinstance(v[0], str):
        return f'"{v[0]}:{v[1]}"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (tuple, list)):
        return "[]" if not v else str(list(v))
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, Path):
        return f'"{v}"'
    return "—" if v is None else str(v)


def render_config_docs() -> str:
    lines = [
        "# Configuration reference",
        "",
        "Generated from `gateway/config.py` (`gx-gateway config-docs`); do not edit by hand.",
        "",
        "`gx-gateway run --config FILE` reads one TOML file. Unknown keys and bad values are refused",
        "with a one-line message naming the key. `gx-gateway demo` needs no file: it uses the demo",
        "column and its flags (`--modbus`, `--http`, `--state-dir`) override those keys.",
    ]
    for section, keys in SECTIONS.items():
        title = {"": "top level", "device": "[[device]] (one table per device)"}.get(section, f"[{section}]")
        lines += ["", f"## {title}", "", "| key | default | demo | meaning |", "|---|---|---|---|"]
        for k in keys:
            demo = _fmt(k.demo) if k.demo is not None else "same"
            lines.append(f"| `{k.name}` | {_fmt(k.default)} | {demo} | {k.doc} |")
    lines += [
        "",
        "## Example",
        "",
        "```toml",
        'state_dir = "/var/lib/gx-gateway"',
        "",
        "[modbus]",
        'listen = "0.0.0.0:502"',
        "writes = true",
        'allow = ["192.168.1.0/24"]',
        "max_connections = 64",
        "idle_timeout_s = 120",
        'invalid = "zero"',
        "",
        "[[device]]",
        'driver = "simulated"',
        'kind = "battery"',
        "instance = 512",
        "```",
    ]
    return "\n".join(lines) + "\n"
