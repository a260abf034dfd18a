"""A real server on 127.0.0.1 (ephemeral port) over a Store with a few devices."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from gateway.core.store import Device, Store, WriteRejected
from gateway.frontends.modbus.server import ModbusServer
from registers import CompiledMap, load_default
from registers.values import Scalar


@pytest.fixture(scope="session")
def cmap() -> CompiledMap:
    return load_default()


@dataclass
class RecordingOwner:
    """A device owner as a driver would be: applies writes to the Store, records them."""

    store: Store
    delay_s: float = 0.0
    reject: bool = False
    crash: bool = False
    writes: list[tuple[str, int, dict[str, Scalar]]] = field(default_factory=list)

    async def write(self, device: Device, changes: Mapping[str, Scalar]) -> None:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.reject:
            raise WriteRejected("refused by the device")
        if self.crash:
            raise RuntimeError("a bug in the driver")
        self.writes.append((device.service, device.instance, dict(changes)))
        self.store.publish(device.service, device.instance, changes)


BATTERY: dict[str, Scalar] = {
    "/Dc/0/Voltage": 52.31,  # 259 uint16 x100
    "/Dc/0/Current": -12.5,  # 261 int16 x10
    "/Dc/0/Power": -654,  # 258 int16 x1
    "/Soc": 81.5,  # 266 uint16 x10
    "/CustomName": "House bank",  # 1336 string[8]
    "/Relay/0/State": 0,  # 280 W
}
VEBUS: dict[str, Scalar] = {"/Mode": 3, "/Ac/Out/L1/P": 900, "/Hub4/L1/AcPowerSetpoint": 0, "/State": 9}
SETTINGS: dict[str, Scalar] = {
    "/Settings/CGwacs/AcPowerSetPoint": 50,
    "/Settings/CGwacs/BatteryLife/MinimumSocLimit": 20,
}


@dataclass
class Rig:
    server: ModbusServer
    store: Store
    owner: RecordingOwner

    @property
    def port(self) -> int:
        return self.server.port


MakeRig = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def make_rig(cmap: CompiledMap) -> AsyncIterator[MakeRig]:
    servers: list[ModbusServer] = []

    async def make(**options: Any) -> Rig:
        store = Store()
        owner = RecordingOwner(store)
        store.add_device("battery", 512, owner, BATTERY)
        store.add_device("vebus", 276, owner, VEBUS)
        store.add_device("settings", 0, owner, SETTINGS)
        server = ModbusServer(cmap, store, **options)
        await server.start("127.0.0.1", 0)
        servers.append(server)
        return Rig(server, store, owner)

    yield make
    for s in servers:
        await s.stop()


@pytest.fixture
async def rig(make_rig: MakeRig) -> Rig:
    return await make_rig(idle_timeout_s=5.0)


MBAP = struct.Struct(">HHHB")


class RawClient:
    """Bytes in, frames out: for testing exactly what goes over the wire."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        return cls(r, w)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def frame(self, timeout: float = 2.0) -> tuple[int, int, bytes]:
        """One reply: (transaction id, unit, PDU)."""
        head = await asyncio.wait_for(self.reader.readexactly(7), timeout)
        tid, pid, length, unit = MBAP.unpack(head)
        assert pid == 0
        pdu = await asyncio.wait_for(self.reader.readexactly(length - 1), timeout)
        return tid, unit, pdu

    async def request(self, unit: int, pdu: bytes, tid: int = 1) -> bytes:
        await self.send(adu(tid, unit, pdu))
        rtid, runit, reply = await self.frame()
        assert (rtid, runit) == (tid, unit)
        return reply

    async def closed(self, timeout: float = 2.0) -> bool:
        """True when the server closes the connection (EOF) within the timeout."""
        try:
            data = await asyncio.wait_for(self.reader.read(1024), timeout)
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False
        return data == b""

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            await self.writer.wait_closed()


def adu(tid: int, unit: int, pdu: bytes, protocol: int = 0) -> bytes:
    return MBAP.pack(tid, protocol, len(pdu) + 1, unit) + pdu


def read_pdu(start: int, count: int, fc: int = 3) -> bytes:
    return struct.pack(">BHH", fc, start, count)


def words(pdu: bytes) -> list[int]:
    """Register values of a read reply PDU (fc, byte count, data)."""
    assert pdu[0] in (3, 4, 23), pdu
    n = pdu[1]
    return list(struct.unpack(f">{n // 2}H", pdu[2 : 2 + n]))
