"""``gx-gateway scan``: find SunSpec inverters, known meters, SMA native inverters and Fronius
datamanagers on a network, and write the ``[[device]]`` tables that poll them.

Each host:port is tried with a short connect timeout; an open port is asked, over one
connection, for "SunS" (units 126, 1, 2, 3), each meter probe register of mappings/devices
(units 1, 2) and SMA's power register (unit 3). A port that answers Modbus with HTTP is asked
for the Solar API (GetAPIVersion.cgi, then GetInverterInfo.cgi). Concurrency is bounded (a
semaphore), every wait is short, and results are sorted, so a scan of the same network gives
the same output each time. Pure of any UI: the command line adds the progress bar.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from gateway.sources.meter import UnsupportedDevice, identify
from gateway.sources.poller import ProbeFailed
from gateway.sources.solar_api import ALL_METERS, API_VERSION_PATH, INVERTER_INFO, SolarApiError, api_version, parse
from gateway.sources.sunspec_chain import find_base, logical_devices, read_block, walk
from gateway.transports.http import HttpClient, HttpError
from gateway.transports.tcp import ExceptionResponse, LinkDown, ModbusError, ModbusLink
from registers.meters import MeterModel

SUNSPEC_UNITS: Final = (126, 1, 2, 3)
METER_UNITS: Final = (1, 2)
SMA_UNIT: Final = 3
SMA_POWER: Final = 30775
INVERTERS: Final = (101, 102, 103, 111, 112, 113)
METERS: Final = (201, 202, 203, 204)
DEFAULT_PORTS: Final = (502, 1502, 80)
BUSY: Final = (
    "it closed the connection at once: a SolarEdge accepts one Modbus-TCP client; is something else polling it?"
    " (--gateway URL recognises it when a gx-gateway polls it)"
)
NOT_DEVICES: Final = ("unsupported", "busy")  # what a Found that is no device starts with


@dataclass(frozen=True, slots=True, order=True)
class Found:
    host: str
    port: int
    unit: int
    driver: str  # sunspec | meter | sma | fronius
    role: str  # pvinverter | grid (a suggestion)
    what: str  # what it said it is
    options: tuple[tuple[str, Any], ...] = ()  # extra [[device]] keys (model, meter, position)
    instance: int | None = None  # the instance to keep (a running gateway's); None: suggest one
    note: str = ""  # one more comment line above its table


def expand_hosts(hosts: str | None, subnet: str | None) -> list[str]:
    """Hosts from ``--hosts a,b`` and/or ``--subnet CIDR`` (ValueError with a clear message)."""
    out: list[str] = []
    if hosts:
        out += [h.strip() for h in hosts.split(",") if h.strip()]
    if subnet:
        try:
            net = ipaddress.ip_network(subnet, strict=False)
        except ValueError:
            raise ValueError(f"--subnet: not a network like 192.168.1.0/24: {subnet!r}") from None
        if net.num_addresses > 4096:
            raise ValueError(f"--subnet: {subnet} has {net.num_addresses} addresses; scan at most a /20")
        out += [str(a) for a in (net.hosts() if net.num_addresses > 2 else net)]
    return list(dict.fromkeys(out))


async def _open(host: str, port: int, timeout: float) -> bool:
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(0.2):
            await writer.wait_closed()
    return True


class NotModbus(Exception):
    """The port speaks something else (HTTP)."""


async def _sunspec(link: ModbusLink, host: str, port: int) -> list[Found]:
    found: list[Found] = []
    for unit in SUNSPEC_UNITS:
        try:
            base = await find_base(link, unit)
            devices = logical_devices(await walk(link, unit, base))
        except ProbeFailed:
            continue
        meter_index = 0
        for device in devices:
            common = device.models[0]
            ident = await read_block(link, unit, common.address + 2, 32)
            maker, model = (ident[i : i + 32].split(b"\0")[0].decode("latin-1").strip() for i in (0, 32))
            what = f"{maker} {model} (SunSpec {', '.join(str(m.id) for m in device.models[1:])})".strip()
            if device.first(*INVERTERS) is not None:
                found.append(Found(host, port, unit, "sunspec", "pvinverter", what))
            elif device.first(*METERS) is not None:
                meter_index += 1
                found.append(Found(host, port, unit, "sunspec", "grid", what, (("meter", meter_index),)))
        if found:
            break  # the same device answers at several unit ids: take the first
    return found


async def _meters(link: ModbusLink, host: str, port: int, models: Mapping[str, MeterModel]) -> list[Found]:
    found: list[Found] = []
    for unit in METER_UNITS:
        try:
            model = await identify(link, unit, models)
        except UnsupportedDevice as e:
            found.append(Found(host, port, unit, "meter", "grid", f"unsupported: {e}"))
            continue
        except ProbeFailed:
            continue
        found.append(Found(host, port, unit, "meter", "grid", model.product, (("model", model.name),)))
    return found


async def _sma(link: ModbusLink, host: str, port: int) -> list[Found]:
    try:
        data = await link.read_locked(SMA_UNIT, SMA_POWER, 2)
    except ExceptionResponse:
        return []
    if len(data) != 4:
        return []
    return [Found(host, port, SMA_UNIT, "sma", "pvinverter", "SMA inverter (SMA Modbus profile)")]


async def scan_modbus(host: str, port: int, models: Mapping[str, MeterModel], timeout: float) -> list[Found]:
    link = ModbusLink(host, port, timeout_s=timeout, backoff_min_s=0.0, backoff_max_s=0.0)
    found: list[Found] = []
    try:
        async with link.lock:
            try:
                found += await _sunspec(link, host, port)
                if not found:  # a SunSpec device is not also asked for meter ids or SMA registers
                    found += await _meters(link, host, port, models)
                    found += await _sma(link, host, port)
            except LinkDown as e:
                if "closed by the device" in str(e) and not found:
                    found.append(Found(host, port, 0, "modbus", "", f"busy: {BUSY}"))
            except ModbusError as e:
                if "not a Modbus-TCP answer" in str(e):
                    raise NotModbus() from None
    finally:
        await link.close()
    return found


async def scan_solar_api(host: str, port: int, timeout: float) -> list[Found]:
    base = f"http://{host}:{port}"
    http = HttpClient(limit_per_host=0)
    try:
        status, body = await http.get(base + API_VERSION_PATH, timeout)
        if status != 200 or api_version(parse(body)) != 1:
            return []
        info = parse((await http.get(base + INVERTER_INFO, timeout))[1]).get("Body", {}).get("Data", {})
        ids = sorted(int(k) for k in info if str(k).isdigit())
        what = "Fronius inverter, Solar API device {}"
        found = [Found(host, port, i, "fronius", "pvinverter", what.format(i)) for i in ids]
        return found + await _solar_api_meters(http, base, host, port, timeout)
    except (HttpError, TimeoutError, SolarApiError):
        return []
    finally:
        await http.close()


async def _solar_api_meters(http: HttpClient, base: str, host: str, port: int, timeout: float) -> list[Found]:
    """The datamanager's Smart Meters (device id 0 and up); none when it has no meter API."""
    try:
        status, body = await http.get(base + ALL_METERS, timeout)
        meters = parse(body).get("Body", {}).get("Data", {}) if status == 200 else {}
    except (HttpError, TimeoutError, SolarApiError):
        return []
    out = []
    for key, data in sorted(meters.items(), key=lambda kv: int(kv[0]) if str(kv[0]).isdigit() else -1):
        if not str(key).isdigit() or not isinstance(data, dict):
            continue
        details = data["Details"] if isinstance(data.get("Details"), dict) else {}
        name = " ".join(str(details[k]) for k in ("Manufacturer", "Model") if details.get(k)) or "Fronius meter"
        # Meter_Location_Current: 0 at the feed-in point (the grid), 1 in the consumption path.
        role = "grid" if data.get("Meter_Location_Current", 0) == 0 else "acload"
        out.append(Found(host, port, int(key), "fronius", role, f"{name}, Solar API meter {key}"))
    return out


async def scan(
    hosts: Sequence[str],
    ports: Sequence[int],
    models: Mapping[str, MeterModel],
    *,
    concurrency: int = 64,
    timeout: float = 0.5,
    progress: Callable[[], None] | None = None,
) -> list[Found]:
    """Every device found on ``hosts`` x ``ports``, sorted."""
    gate = asyncio.Semaphore(concurrency)

    async def one(host: str, port: int) -> list[Found]:
        async with gate:
            try:
                if not await _open(host, port, timeout):
                    return []
                try:
                    return await scan_modbus(host, port, models, timeout)
                except NotModbus:
                    return await scan_solar_api(host, port, max(timeout, 1.0))
            finally:
                if progress is not None:
                    progress()

    results = await asyncio.gather(*(one(h, p) for h in hosts for p in ports))
    return sorted((f for r in results for f in r), key=lambda f: (_host_key(f.host), f.port, f.unit, f.driver))


def _host_key(host: str) -> tuple[int, str]:
    try:
        return (int(ipaddress.ip_address(host)), host)
    except ValueError:
        return (1 << 129, host)
