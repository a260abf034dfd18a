"""Configuration keys: a name, a check, a default and a line of doc.

Shared by the top-level schema (gateway/config.py) and the device drivers (gateway/sources/),
so a driver declares its keys the same way the gateway declares its own, and both validate
and document themselves from that one declaration.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """One line, naming the key: ``modbus.listen: expected HOST:PORT, got '502'``."""


Check = Callable[[str, Any], Any]  # (where, raw value) -> parsed value, or raises ConfigError


@dataclass(frozen=True, slots=True)
class Key:
    name: str
    default: Any
    check: Check
    doc: str
    required: bool = False


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


def boolean(where: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise ConfigError(f"{where}: expected true or false, got {v!r}")
    return v


def integer(lo: int, hi: int) -> Check:
    def check(where: str, v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise ConfigError(f"{where}: expected an integer {lo}..{hi}, got {v!r}")
        return v

    return check


def positive(where: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
        raise ConfigError(f"{where}: expected a number > 0, got {v!r}")
    return float(v)


def at_least(lo: float) -> Check:
    """A number of seconds (or similar) no smaller than ``lo``: 1e-9 s is a typo, not a setting."""

    def check(where: str, v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= lo or v != v or v == float("inf"):
            raise ConfigError(f"{where}: expected a number >= {lo:g}, got {v!r}")
        return float(v)

    return check


def choice(*options: str) -> Check:
    def check(where: str, v: Any) -> str:
        if v not in options:
            raise ConfigError(f"{where}: expected one of {', '.join(options)}, got {v!r}")
        return str(v)

    return check


def cidrs(where: str, v: Any) -> tuple[str, ...]:
    if not isinstance(v, list):
        raise ConfigError(f"{where}: expected a list of CIDR networks, got {v!r}")
    for i, item in enumerate(v):
        if not isinstance(item, str):  # 10 would otherwise be taken as 0.0.0.10/32
            raise ConfigError(f'{where}[{i}]: expected a string like "192.168.1.0/24", got {item!r}')
        try:
            ipaddress.ip_network(item, strict=False)
        except (ValueError, TypeError):
            raise ConfigError(f"{where}[{i}]: not a network like 192.168.1.0/24: {item!r}") from None
    return tuple(v)


def file_path(where: str, v: Any) -> Path:
    if not isinstance(v, str) or not v:
        raise ConfigError(f"{where}: expected a file path, got {v!r}")
    return Path(v)


def ipv4_addresses(where: str, v: Any) -> tuple[str, ...]:
    """Interface addresses (IPv4), e.g. ["192.168.1.10"]; an empty list switches the feature off."""
    if not isinstance(v, list):
        raise ConfigError(f"{where}: expected a list of interface addresses, got {v!r}")
    for i, item in enumerate(v):
        try:
            ipaddress.IPv4Address(item)
        except (ValueError, TypeError):
            raise ConfigError(f"{where}[{i}]: not an IPv4 interface address like 192.168.1.10: {item!r}") from None
    return tuple(v)


def folder(where: str, v: Any) -> Path:
    if not isinstance(v, str) or not v:
        raise ConfigError(f"{where}: expected a folder path, got {v!r}")
    return Path(v)


def text(where: str, v: Any) -> str:
    if not isinstance(v, str):
        raise ConfigError(f"{where}: expected a string, got {v!r}")
    return v


def host_name(where: str, v: Any) -> str:
    if not isinstance(v, str) or not v or any(c.isspace() for c in v):
        raise ConfigError(f"{where}: expected a host name or address, got {v!r}")
    return v


def check_table(where: str, table: Any, keys: tuple[Key, ...], allow_tables: tuple[str, ...] = ()) -> dict[str, Any]:
    """The checked values of the keys present (no defaults); an unknown key is refused."""
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


def format_value(v: Any) -> str:
    """A value as it is written in the TOML file (for the docs)."""
    if isinstance(v, tuple) and len(v) == 2 and isinstance(v[1], int) and isinstance(v[0], str):
        return f'"{v[0]}:{v[1]}"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):
        return "{" + ", ".join(f'{k} = "{x}"' for k, x in v.items()) + "}"
    if isinstance(v, (tuple, list)):
        return "[]" if not v else str(list(v))
    if isinstance(v, (str, Path)):
        return f'"{v}"'
    return "—" if v is None else str(v)
