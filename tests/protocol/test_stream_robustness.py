"""Any split of the same byte stream gives the same replies; garbage never kills the server."""

from __future__ import annotations

import asyncio
import itertools
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.modbus.server import ModbusServer
from gateway.store import Store
from registers import load_default
from tests.modbus_rig import BATTERY, VEBUS, RecordingOwner, adu, read_pdu


class ThreadedServer:
    """The real server on its own event loop thread, so blocking clients can drive it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.errors: list[dict[str, Any]] = []
        self.loop.set_exception_handler(lambda _loop, ctx: self.errors.append(ctx))
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(5)

    async def _start(self) -> ModbusServer:
        store = Store()
        owner = RecordingOwner(store)
        store.add_device("battery", 512, owner, BATTERY)
        store.add_device("vebus", 276, owner, VEBUS)
        server = ModbusServer(load_default(), store, idle_timeout_s=2.0)
        await server.start("127.0.0.1", 0)
        return server

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedServer]:
    s = ThreadedServer()
    yield s
    s.stop()
    assert not s.errors, s.errors


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=3)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_all(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


# A stream of mixed requests: reads, an idempotent write (/Mode is already 3), errors.
STREAM = b"".join(
    [
        adu(1, 225, read_pdu(258, 4)),
        adu(2, 227, struct.pack(">BHH", 6, 33, 3)),
        adu(3, 227, read_pdu(33, 1, fc=4)),
        adu(4, 225, read_pdu(0, 1)),
        adu(5, 9, read_pdu(259, 1)),
        adu(6, 225, bytes((43, 14, 1, 0))),
        adu(7, 227, struct.pack(">BHHB", 16, 37, 1, 2) + b"\x00\x00"),
        adu(8, 225, read_pdu(1336, 8)),
    ]
)


def expected_replies(port: int) -> bytes:
    sock = connect(port)
    sock.sendall(STREAM)
    sizes = 0
    out = b""
    while sizes < 8:
        head = recv_all(sock, 6)
        length = struct.unpack(">H", head[4:6])[0]
        out += head + recv_all(sock, length)
        sizes += 1
    sock.close()
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(1, len(STREAM) - 1), max_size=12, unique=True))
def test_any_segmentation_gives_the_same_replies(server: ThreadedServer, cuts: list[int]) -> None:
    port = server.server.port
    reference = expected_replies(port)
    sock = connect(port)
    bounds = [0, *sorted(cuts), len(STREAM)]
    for a, b in itertools.pairwise(bounds):
        sock.sendall(STREAM[a:b])
        time.sleep(0.0005)  # let the server see the pieces separately
    got = recv_all(sock, len(reference))
    sock.close()
    assert got == reference


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.binary(min_size=1, max_size=600))
def test_garbage_never_kills_the_server(server: ThreadedServer, garbage: bytes) -> None:
    port = server.server.port
    bystander = connect(port)
    victim = connect(port)
    victim.sendall(garbage)
    victim.settimeout(0.05)
    try:
        while victim.recv(4096):  # replies or EOF, either is fine
            pass
    except (TimeoutError, ConnectionResetError):
        pass
    victim.close()
    bystander.sendall(adu(77, 225, read_pdu(259, 1)))
    assert recv_all(bystander, 11) == struct.pack(">HHHBBBH", 77, 0, 5, 225, 3, 2, 5231)
    bystander.close()
    assert not server.errors, server.errors
