"""What ``gx-gateway scan`` prints: ``[[device]]`` tables with free instances, and a summary.

With ``--gateway URL`` the scan also asks a running gateway (``/api/v1/status``, its
``sources``) what it already polls. That finds a device the scan could not ask itself: a
SolarEdge accepts one Modbus-TCP client, so while a gateway polls it, a scan sees only a
connection closed at once ("busy"). Devices the gateway polls keep the gateway's instance
(SCADA keeps reading the same unit ids), role and position, and say so in a comment; new
devices get instances the gateway does not use.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from gateway.sources.network_scan import NOT_DEVICES, Found

FIRST_INSTANCE: Final = 40  # suggestions start here (below: the GX's usual fixed devices)
KEPT_OPTIONS: Final = ("model", "meter", "position")  # [[device]] keys carried over from the gateway
ONE_CLIENT: Final = "it accepts one Modbus-TCP client, so only one gateway at a time can poll it"


@dataclass(frozen=True, slots=True)
class Polled:
    """One ``[[device]]`` of a running gateway, as its status API tells it."""

    driver: str
    host: str
    port: int
    unit: int
    service: str
    instance: int
    name: str
    options: tuple[tuple[str, Any], ...]

    def matches(self, f: Found) -> bool:
        meter = dict(f.options).get("meter")
        return (
            _same_host(self.host, f.host)
            and self.port == f.port
            and self.unit == f.unit
            and self.driver == f.driver
            and (meter is None or dict(self.options).get("meter", 1) == meter)
        )


def _same_host(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return a.lower() == b.lower()


def polled(status: dict[str, Any]) -> list[Polled]:
    """The devices a gateway's ``/api/v1/status`` says it polls (ValueError if it is not one)."""
    sources, devices = status.get("sources"), status.get("devices")
    if not isinstance(sources, list) or not isinstance(devices, list):
        raise ValueError("the answer has no 'sources' and 'devices': not a gx-gateway status, or an older one")
    names = {(d.get("service"), d.get("instance")): d.get("name") for d in devices if isinstance(d, dict)}
    out = []
    for s in sources:
        try:
            service, instance = str(s["service"]), int(s["instance"])
            kept = tuple((k, s[k]) for k in KEPT_OPTIONS if k in s)
            name = names.get((service, instance)) or f"{s['driver']} device"
            where = (str(s["host"]), int(s["port"]), int(s.get("unit", 0)))
            out.append(Polled(str(s["driver"]), *where, service, instance, str(name), kept))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"a source the gateway lists is incomplete ({e!s}): {s!r}") from None
    return out


def with_gateway(found: Sequence[Found], known: Sequence[Polled], url: str) -> list[Found]:
    """``found`` with what the gateway at ``url`` polls: matches keep its instance, role and
    options; a busy port it polls becomes its devices there."""
    out: list[Found] = []
    for f in found:
        if f.what.startswith("busy"):
            mine = [p for p in known if _same_host(p.host, f.host) and p.port == f.port]
            if not mine:
                out.append(f)
            for p in mine:
                note = f"polled by the gateway at {url} as {p.service} {p.instance}; {ONE_CLIENT}"
                out.append(Found(f.host, f.port, p.unit, p.driver, p.service, p.name, p.options, p.instance, note))
            continue
        match = next((p for p in known if p.matches(f)), None)
        if match is None:
            out.append(f)
            continue
        options = dict(f.options) | dict(match.options)
        note = f"already polled by the gateway at {url} as {match.service} {match.instance}"
        out.append(replace(f, role=match.service, options=tuple(options.items()), instance=match.instance, note=note))
    return out


def suggest_instances(found: Iterable[Found], used: Iterable[tuple[str, int]] = ()) -> list[tuple[Found, int]]:
    """An instance per found device: its kept one, else a free one from FIRST_INSTANCE up,
    skipping ``used`` (service, instance) pairs; one number per device so unit ids never clash."""
    devices = [f for f in found if not f.what.startswith(NOT_DEVICES)]
    taken = {i for _, i in used} | {f.instance for f in devices if f.instance is not None}
    out: list[tuple[Found, int]] = []
    n = FIRST_INSTANCE
    for f in devices:
        if f.instance is not None:
            out.append((f, f.instance))
            continue
        while n in taken:
            n += 1
        out.append((f, n))
        taken.add(n)
    return out


def render(found: Sequence[Found], used: Iterable[tuple[str, int]] = ()) -> str:
    """Ready-to-paste ``[[device]]`` tables and the ports that are no device (deterministic)."""
    lines: list[str] = []
    grid_taken = any(f.role == "grid" and f.instance is not None for f in found)
    for f, instance in suggest_instances(found, used):
        role = f.role
        if role == "grid" and f.instance is None:  # one grid: a second meter suggests acload
            role = "grid" if not grid_taken else "acload"
            grid_taken = True
        lines.append(f"# {f.what} at {f.host}:{f.port} unit {f.unit}")
        if f.note:
            lines.append(f"# {f.note}")
        lines += ["[[device]]", f'driver = "{f.driver}"']
        lines += [f'host = "{f.host}"', f"port = {f.port}", f"unit = {f.unit}", f"instance = {instance}"]
        options = dict(f.options)
        for key, value in options.items():
            if key != "position":
                lines.append(f'{key} = "{value}"' if isinstance(value, str) else f"{key} = {value}")
        if f.driver in ("meter", "sunspec") or role != "pvinverter":
            lines.append(f'role = "{role}"  # grid | pvinverter | genset | acload | evcharger')
        if role == "pvinverter":
            lines.append(f'position = "{options.get("position", "ac-in-1")}"  # ac-in-1 | ac-out | ac-in-2')
        lines.append("")
    for f in found:
        if f.what.startswith(NOT_DEVICES):
            lines.append(f"# {f.host}:{f.port}" + (f" unit {f.unit}" if f.unit else "") + f": {f.what}")
    return "\n".join(lines).rstrip("\n") + ("\n" if lines else "")


def summary(found: Sequence[Found], hosts: int, ports: int, seconds: float) -> str:
    kinds: dict[str, int] = {}
    for f in found:
        if not f.what.startswith(NOT_DEVICES):
            kinds[f.driver] = kinds.get(f.driver, 0) + 1
    parts = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "nothing"
    known = sum(1 for f in found if f.instance is not None)
    also = f" ({known} already polled by the gateway)" if known else ""
    return f"scanned {hosts} host(s) x {ports} port(s) in {seconds:.1f} s: found {parts}{also}"
