"""Computed registers (the mappings' ``derive`` column), read over a real socket.

777 solarcharger /Pv/I = /Yield/Power / /Pv/V (x10); 830 system /DateAndTime (uint64, Unix
time, refreshed on a clock); 834 system /FirmwareVersion (0x00MMmmpp of the installed
gx-gateway); 3214 genset and 5202 dcgenset /ErrorCode (a number from /Error/0/Id's text).
"""

from __future__ import annotations

import asyncio
import re
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import metadata

import pytest

from gateway.core.store import Store
from gateway.frontends.modbus.server import ModbusServer
from registers import CompiledMap
from tests.modbus_rig import RawClient, read_pdu, words

SYSTEM_UNIT = 100  # -> instance 0
SOLAR_UNIT, SOLAR = 224, 278  # unit_ids.csv: 224 -> 278
GENSET = 40  # no exception: unit 40 -> instance 40
DCGENSET = 41

Serve = Callable[..., Awaitable[tuple[Store, RawClient]]]


@pytest.fixture
async def serve(cmap: CompiledMap) -> AsyncIterator[Serve]:
    """A Store with a solar charger, the system, a genset and a DC genset behind a real server."""
    servers: list[ModbusServer] = []
    clients: list[RawClient] = []

    async def start(invalid_zero: bool = False) -> tuple[Store, RawClient]:
        store = Store()
        store.add_device("solarcharger", SOLAR, None, {"/Yield/Power": 1000, "/Pv/V": 80.0})
        store.add_device("system", 0)
        store.add_device("genset", GENSET)
        store.add_device("dcgenset", DCGENSET)
        server = ModbusServer(cmap, store, invalid_zero=invalid_zero)
        await server.start("127.0.0.1", 0)
        servers.append(server)
        client = await RawClient.connect(server.port)
        clients.append(client)
        return store, client

    yield start
    for c in clients:
        await c.close()
    for s in servers:
        await s.stop()


async def read1(client: RawClient, unit: int, register: int) -> int:
    return words(await client.request(unit, read_pdu(register, 1)))[0]


# --- 777 solarcharger /Pv/I = /Yield/Power / /Pv/V, scale 10 -------------------------------------
async def test_pv_current_is_power_over_voltage(serve: Serve) -> None:
    store, c = await serve()
    assert await read1(c, SOLAR_UNIT, 777) == 125  # 1000 W / 80 V = 12.5 A
    store.publish("solarcharger", SOLAR, {"/Pv/V": 75.0})  # follows its inputs
    assert words(await c.request(SOLAR_UNIT, read_pdu(776, 2))) == [7500, 133]  # 13.33 A
    store.publish("solarcharger", SOLAR, {"/Yield/Power": 0})
    assert await read1(c, SOLAR_UNIT, 777) == 0  # night: 0 A is a real value


async def test_pv_current_invalid_when_voltage_zero_or_an_input_missing(serve: Serve) -> None:
    store, c = await serve()
    store.publish("solarcharger", SOLAR, {"/Pv/V": 0})
    assert await read1(c, SOLAR_UNIT, 777) == 0xFFFF  # not available (sentinel)
    store.publish("solarcharger", SOLAR, {"/Pv/V": 50, "/Yield/Power": None})
    assert await read1(c, SOLAR_UNIT, 777) == 0xFFFF
    store.publish("solarcharger", SOLAR, {"/Yield/Power": 500})
    assert await read1(c, SOLAR_UNIT, 777) == 100


async def test_pv_current_invalid_reads_zero_with_invalid_zero(serve: Serve) -> None:
    store, c = await serve(invalid_zero=True)
    store.publish("solarcharger", SOLAR, {"/Pv/V": 0})
    assert await read1(c, SOLAR_UNIT, 777) == 0


# --- 830 system /DateAndTime: uint64 Unix time, refreshed on a clock ------------------------------
async def read_time(client: RawClient) -> int:
    reply = await client.request(SYSTEM_UNIT, read_pdu(830, 4))
    assert reply[:2] == bytes((3, 8))
    value: int = struct.unpack(">Q", reply[2:10])[0]  # 4 registers, high word first
    return value


async def test_date_and_time_is_now_and_advances(serve: Serve) -> None:
    _, c = await serve()
    first = await read_time(c)
    assert abs(first - time.time()) <= 2
    # The server refreshes it about once a second; wait past that, but not forever.
    deadline = time.monotonic() + 4.0
    later = first
    while later == first and time.monotonic() < deadline:
        await asyncio.sleep(1.1)
        later = await read_time(c)
    assert later > first, "/DateAndTime did not advance within 4 s"
    assert abs(later - time.time()) <= 2


# --- 834 system /FirmwareVersion: 0x00MMmmpp ------------------------------------------------------
async def test_firmware_version_is_the_installed_version(serve: Serve) -> None:
    _, c = await serve()
    m = re.match(r"(\d+)\.(\d+)\.(\d+)", metadata.version("gx-gateway"))
    assert m, metadata.version("gx-gateway")
    major, minor, patch = (int(g) for g in m.groups())
    reply = await c.request(SYSTEM_UNIT, read_pdu(834, 2))
    assert reply[2:6] == bytes((0, major, minor, patch))


# --- 3214 genset and 5202 dcgenset /ErrorCode, from /Error/0/Id ----------------------------------
@pytest.mark.parametrize(("service", "unit", "register"), [("genset", GENSET, 3214), ("dcgenset", DCGENSET, 5202)])
async def test_genset_error_code_summarises_the_first_error(
    serve: Serve, service: str, unit: int, register: int
) -> None:
    store, c = await serve()
    assert await read1(c, unit, register) == 0  # absent: no error
    for text, code in (("vebus:12", 12), ("", 0), ("dse:3", 3), ("Overspeed", 65280), ("7", 7), (None, 0)):
        store.publish(service, unit, {"/Error/0/Id": text})
        assert await read1(c, unit, register) == code, text
